#include "comms/nccl/nccl_expert_exchange.h"

#include <fmt/format.h>

#include <algorithm>
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

ReceivedParts NcclExpertExchange::exchange(const std::byte* send, const PackedLayout& layout, ByteBuffer& recv,
                                           const std::vector<std::size_t>* expected) {
  auto& s = *state_;
  const int wr = s.world_rank, n = size_;
  check_layout(layout, expected);
  ReceivedParts out;
  out.parts.resize(n);
  out.parts[rank_] = {send + layout.offsets[rank_], layout.counts[rank_]};  // never leaves the host
  if (n == 1) return out;
  const cudaStream_t stream = s.nccl.stream();
  ncclComm_t comm = s.nccl.comm();

  // Sizes first unless the caller knows them: the receiver must post ncclRecv with the exact count.
  uint64_t* host_sizes = s.host_sizes.data();
  if (expected) {
    for (int r = 0; r < n; ++r) host_sizes[n + r] = r == rank_ ? 0 : (*expected)[r];
  } else {
    for (int r = 0; r < n; ++r) host_sizes[r] = r == rank_ ? 0 : layout.counts[r];
    s.sizes.reserve(2 * n * sizeof(uint64_t), stream, wr);
    auto* dsizes = reinterpret_cast<uint64_t*>(s.sizes.data());
    check_cuda(cudaMemcpyAsync(dsizes, host_sizes, n * sizeof(uint64_t), cudaMemcpyHostToDevice, stream), wr,
               "copying sizes to the device");
    check_nccl(ncclGroupStart(), wr, "ncclGroupStart");
    for (int r = 0; r < n; ++r) {
      if (r == rank_) continue;
      check_nccl(ncclSend(dsizes + r, 1, ncclUint64, r, comm, stream), wr,
                 fmt::format("ncclSend of sizes to lane {}", r).c_str());
      check_nccl(ncclRecv(dsizes + n + r, 1, ncclUint64, r, comm, stream), wr,
                 fmt::format("ncclRecv of sizes from lane {}", r).c_str());
    }
    check_nccl(ncclGroupEnd(), wr, "ncclGroupEnd (sizes)");
    check_cuda(cudaMemcpyAsync(host_sizes + n, dsizes + n, n * sizeof(uint64_t), cudaMemcpyDeviceToHost, stream), wr,
               "copying sizes to the host");
    s.nccl.wait();
  }

  // The packed send buffer goes to the device as it is (one copy, its own part included when it
  // lies between others: cheaper than one copy per peer); received parts are consecutive in lane
  // order, as they will be in `recv`.
  std::size_t send_lo = SIZE_MAX, send_hi = 0;
  for (int r = 0; r < n; ++r)
    if (r != rank_ && layout.counts[r]) {
      send_lo = std::min(send_lo, layout.offsets[r]);
      send_hi = std::max(send_hi, layout.offsets[r] + layout.counts[r]);
    }
  if (send_lo > send_hi) send_lo = send_hi = 0;
  std::vector<std::size_t> roff(n + 1, 0);
  for (int r = 0; r < n; ++r) roff[r + 1] = roff[r] + (r == rank_ ? 0 : host_sizes[n + r]);
  s.send.reserve(send_hi - send_lo, stream, wr);
  s.recv.reserve(roff[n], stream, wr);
  if (send_hi > send_lo)
    check_cuda(cudaMemcpyAsync(s.send.data(), send + send_lo, send_hi - send_lo, cudaMemcpyHostToDevice, stream), wr,
               "copying the send buffer to the device");
  // Empty messages are skipped on both sides: each side knows both sizes by now.
  check_nccl(ncclGroupStart(), wr, "ncclGroupStart");
  for (int r = 0; r < n; ++r) {
    if (r == rank_) continue;
    if (layout.counts[r])
      check_nccl(ncclSend(s.send.data() + (layout.offsets[r] - send_lo), layout.counts[r], ncclUint8, r, comm, stream),
                 wr, fmt::format("ncclSend of {} bytes to lane {}", layout.counts[r], r).c_str());
    if (const auto bytes = roff[r + 1] - roff[r])
      check_nccl(ncclRecv(s.recv.data() + roff[r], bytes, ncclUint8, r, comm, stream), wr,
                 fmt::format("ncclRecv of {} bytes from lane {}", bytes, r).c_str());
  }
  check_nccl(ncclGroupEnd(), wr, "ncclGroupEnd (rows)");
  if (recv.size() < roff[n]) recv.resize(roff[n]);
  if (roff[n])
    check_cuda(cudaMemcpyAsync(recv.data(), s.recv.data(), roff[n], cudaMemcpyDeviceToHost, stream), wr,
               "copying received parts to the host");
  s.nccl.wait();
  for (int r = 0; r < n; ++r)
    if (r != rank_) out.parts[r] = {recv.data() + roff[r], roff[r + 1] - roff[r]};
  return out;
}

}  // namespace flashline
