#pragma once
// One NCCL communicator with its own CUDA stream, and the checks and device buffers the NCCL
// backends share. Private to flashline_comms_nccl: code using the backends sees no CUDA or NCCL
// header.
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <cstddef>

namespace flashline {

// Throw std::runtime_error "nccl backend: rank R: WHAT: <CUDA/NCCL error string>"; `rank` is the
// world rank, so a message from any rank says who failed.
void check_cuda(cudaError_t e, int rank, const char* what);
void check_nccl(ncclResult_t r, int rank, const char* what);

// Makes `device` current for this process; every later CUDA call of the process uses it.
void select_cuda_device(int device, int rank);

// Device memory that only grows. Allocation is stream-ordered (cudaMallocAsync) because a plain
// cudaMalloc may synchronise the whole device, and a device-wide wait while an NCCL kernel of
// another communicator waits for its peer can deadlock the job.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(DeviceBuffer&& o) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer();
  void reserve(std::size_t bytes, cudaStream_t stream, int rank);
  std::byte* data() const { return data_; }

 private:
  std::byte* data_ = nullptr;
  std::size_t capacity_ = 0;
};

class NcclCommunicator {
 public:
  NcclCommunicator() = default;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;
  ~NcclCommunicator();

  // Collective over `group`: its rank 0 makes the unique id and broadcasts it over MPI.
  void init_over(MPI_Comm group, int world_rank);
  // Inside ncclGroupStart/End several of these may be started at once (one thread, many
  // communicators); the id was agreed beforehand.
  void start_init(int nranks, const ncclUniqueId& id, int me, int world_rank);

  ncclComm_t comm() const { return comm_; }
  cudaStream_t stream() const { return stream_; }
  // Waits until the stream is idle without pinning a core (ranks may share cores), and turns an
  // asynchronous NCCL failure (a peer died, a network error) into an exception.
  void wait();
  bool idle() const;

 private:
  void make_stream();
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  int world_rank_ = 0;
};

}  // namespace flashline
