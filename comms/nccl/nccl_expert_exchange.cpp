#include "comms/nccl/nccl_expert_exchange.h"

#include <fmt/format.h>

#include <cstdint>
#include <stdexcept>

#include "comms/nccl/nccl_communicator.h"

namespace flashline {

struct NcclExpertExchange::State {
  int world_rank = 0;
  // Reused across calls, grown only: [0, size) sizes sent, [size, 2 size) sizes received.
  DeviceBuffer sizes, send, recv;
  std::vector<uint64_t> host_sizes;
  NcclCommunicator nccl;  // destroyed first (see Route in the pipeline link)
};

int cuda_device_count() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

NcclExpertExchange::NcclExpertExchange(MPI_Comm stage, int device) : state_(std::make_unique<State>()) {
  MPI_Comm_rank(stage, &rank_);
  MPI_Comm_size(stage, &size_);
  MPI_Comm_rank(MPI_COMM_WORLD, &state_->world_rank);
  select_cuda_device(device, state_->world_rank);
  state_->nccl.init_over(stage, state_->world_rank);
  state_->host_sizes.resize(2 * size_);
}

NcclExpertExchange::~NcclExpertExchange() = default;

std::vector<ByteBuffer> NcclExpertExchange::all_to_all(std::vector<ByteBuffer> send) {
  auto& s = *state_;
  const int wr = s.world_rank, n = size_;
  if (int(send.size()) != n)
    throw std::logic_error(fmt::format("expert exchange: {} destinations for {} lanes", send.size(), n));
  std::vector<ByteBuffer> out(n);
  out[rank_] = std::move(send[rank_]);  // its own rows never leave the host
  if (n == 1) return out;
  const cudaStream_t stream = s.nccl.stream();
  ncclComm_t comm = s.nccl.comm();

  // Sizes first: the receiver must post ncclRecv with the exact count.
  uint64_t* host_sizes = s.host_sizes.data();
  for (int r = 0; r < n; ++r) host_sizes[r] = r == rank_ ? 0 : send[r].size();
  s.sizes.reserve(2 * n * sizeof(uint64_t), stream, wr);
  auto* dsizes = reinterpret_cast<uint64_t*>(s.sizes.data());
  check_cuda(cudaMemcpyAsync(dsizes, host_sizes, n * sizeof(uint64_t), cudaMemcpyHostToDevice, stream), wr,
             "copying sizes to the device");
  check_nccl(ncclGroupStart(), wr, "ncclGroupStart");
  for (int r = 0; r < n; ++r) {
    if (r == rank_) continue;
    check_nccl(ncclSend(dsizes + r, 1, ncclUint64, r, comm, stream), wr, fmt::format("ncclSend of sizes to lane {}", r).c_str());
    check_nccl(ncclRecv(dsizes + n + r, 1, ncclUint64, r, comm, stream), wr,
               fmt::format("ncclRecv of sizes from lane {}", r).c_str());
  }
  check_nccl(ncclGroupEnd(), wr, "ncclGroupEnd (sizes)");
  s.nccl.wait();
  check_cuda(cudaMemcpyAsync(host_sizes + n, dsizes + n, n * sizeof(uint64_t), cudaMemcpyDeviceToHost, stream), wr,
             "copying sizes to the host");
  s.nccl.wait();

  // One contiguous device buffer each way, peers at increasing offsets.
  std::vector<std::size_t> soff(n + 1, 0), roff(n + 1, 0);
  for (int r = 0; r < n; ++r) {
    soff[r + 1] = soff[r] + host_sizes[r];
    roff[r + 1] = roff[r] + (r == rank_ ? 0 : host_sizes[n + r]);
  }
  s.send.reserve(soff[n], stream, wr);
  s.recv.reserve(roff[n], stream, wr);
  for (int r = 0; r < n; ++r)
    if (host_sizes[r])
      check_cuda(cudaMemcpyAsync(s.send.data() + soff[r], send[r].data(), host_sizes[r], cudaMemcpyHostToDevice, stream),
                 wr, "staging rows on the device");
  // Empty messages are skipped on both sides: each side knows both sizes by now.
  check_nccl(ncclGroupStart(), wr, "ncclGroupStart");
  for (int r = 0; r < n; ++r) {
    if (r == rank_) continue;
    if (host_sizes[r])
      check_nccl(ncclSend(s.send.data() + soff[r], host_sizes[r], ncclUint8, r, comm, stream), wr,
                 fmt::format("ncclSend of {} bytes to lane {}", host_sizes[r], r).c_str());
    if (const auto bytes = roff[r + 1] - roff[r])
      check_nccl(ncclRecv(s.recv.data() + roff[r], bytes, ncclUint8, r, comm, stream), wr,
                 fmt::format("ncclRecv of {} bytes from lane {}", bytes, r).c_str());
  }
  check_nccl(ncclGroupEnd(), wr, "ncclGroupEnd (rows)");
  s.nccl.wait();
  for (int r = 0; r < n; ++r) {
    if (r == rank_) continue;
    out[r].resize(roff[r + 1] - roff[r]);
    if (!out[r].empty())
      check_cuda(cudaMemcpyAsync(out[r].data(), s.recv.data() + roff[r], out[r].size(), cudaMemcpyDeviceToHost, stream),
                 wr, "copying rows to the host");
  }
  s.nccl.wait();
  return out;
}

}  // namespace flashline
