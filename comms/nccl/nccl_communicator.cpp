#include "comms/nccl/nccl_communicator.h"

#include <fmt/format.h>

#include <stdexcept>
#include <utility>

#include "comms/mpi/mpi_world.h"

namespace flashline {

void check_cuda(cudaError_t e, int rank, const char* what) {
  if (e != cudaSuccess)
    throw std::runtime_error(fmt::format("nccl backend: rank {}: {}: {}", rank, what, cudaGetErrorString(e)));
}

void check_nccl(ncclResult_t r, int rank, const char* what) {
  if (r != ncclSuccess && r != ncclInProgress)
    throw std::runtime_error(fmt::format("nccl backend: rank {}: {}: {} ({})", rank, what, ncclGetErrorString(r),
                                         ncclGetLastError(nullptr)));
}

void select_cuda_device(int device, int rank) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) count = 0;
  if (device < 0 || device >= count)
    throw std::runtime_error(
        fmt::format("nccl backend: rank {}: the plan places it on cuda:{}, but {} CUDA devices are visible", rank,
                    device, count));
  check_cuda(cudaSetDevice(device), rank, fmt::format("cudaSetDevice({})", device).c_str());
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), capacity_(std::exchange(o.capacity_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  std::swap(data_, o.data_);
  std::swap(capacity_, o.capacity_);
  return *this;
}

DeviceBuffer::~DeviceBuffer() {
  if (data_) cudaFree(data_);
}

void DeviceBuffer::reserve(std::size_t bytes, cudaStream_t stream, int rank) {
  if (bytes <= capacity_) return;
  // Half again as much as asked: sizes vary per call, and growing in small steps would
  // reallocate on most calls.
  const std::size_t want = bytes + bytes / 2;
  if (data_) check_cuda(cudaFreeAsync(data_, stream), rank, "cudaFreeAsync");
  data_ = nullptr, capacity_ = 0;
  void* p = nullptr;
  check_cuda(cudaMallocAsync(&p, want, stream), rank, fmt::format("cudaMallocAsync of {} bytes", want).c_str());
  data_ = static_cast<std::byte*>(p), capacity_ = want;
}

NcclCommunicator::~NcclCommunicator() {
  // Pending operations at destruction mean the run is being torn down after an error: abort
  // rather than wait for peers that may never come.
  if (comm_) idle() ? ncclCommDestroy(comm_) : ncclCommAbort(comm_);
  if (stream_) cudaStreamDestroy(stream_);
}

void NcclCommunicator::make_stream() {
  // Non-blocking: no implicit ordering with the legacy default stream, whose users would
  // otherwise wait for our NCCL kernels (and those for their peers).
  if (!stream_) check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), world_rank_, "cudaStreamCreate");
}

void NcclCommunicator::init_over(MPI_Comm group, int world_rank) {
  world_rank_ = world_rank;
  int me = 0, n = 1;
  MPI_Comm_rank(group, &me);
  MPI_Comm_size(group, &n);
  ncclUniqueId id{};
  if (me == 0) check_nccl(ncclGetUniqueId(&id), world_rank, "ncclGetUniqueId");
  if (MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, group) != MPI_SUCCESS)
    throw std::runtime_error(fmt::format("nccl backend: rank {}: MPI_Bcast of the NCCL unique id failed", world_rank));
  start_init(n, id, me, world_rank);
}

void NcclCommunicator::start_init(int nranks, const ncclUniqueId& id, int me, int world_rank) {
  world_rank_ = world_rank;
  make_stream();
  check_nccl(ncclCommInitRank(&comm_, nranks, id, me), world_rank,
             fmt::format("ncclCommInitRank ({} of {})", me, nranks).c_str());
}

bool NcclCommunicator::idle() const { return !stream_ || cudaStreamQuery(stream_) == cudaSuccess; }

void NcclCommunicator::wait() {
  for (int spin = 0;; ++spin) {
    const cudaError_t e = cudaStreamQuery(stream_);
    if (e == cudaSuccess) return;
    if (e != cudaErrorNotReady) check_cuda(e, world_rank_, "waiting for the NCCL stream");
    ncclResult_t async = ncclSuccess;
    check_nccl(ncclCommGetAsyncError(comm_, &async), world_rank_, "ncclCommGetAsyncError");
    check_nccl(async, world_rank_, "NCCL operation failed");
    mpi_idle(spin);
  }
}

}  // namespace flashline
