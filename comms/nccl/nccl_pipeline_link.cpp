#include "comms/nccl/nccl_pipeline_link.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <stdexcept>

#include "comms/mpi/mpi_world.h"
#include "comms/nccl/nccl_communicator.h"

namespace flashline {
namespace {

constexpr int kIdTag = 7011;  // MPI tag of the unique-id bootstrap messages
constexpr uint32_t kMagic = 0x464c4e43;  // "FLNC"
struct Header {
  uint32_t magic;
  int32_t tag;
  uint64_t bytes;
};
static_assert(sizeof(Header) == 16);

// In a route's two-rank communicator the sender is rank 0 and the receiver rank 1.
constexpr int kSender = 0, kReceiver = 1;

struct InFlight {
  DeviceBuffer buffer;  // header, then payload
  cudaEvent_t done = nullptr;
};

struct Route {
  std::list<InFlight> in_flight;    // sender side: sends not yet received
  std::vector<DeviceBuffer> spare;  // sender side: buffers of completed sends, for reuse
  DeviceBuffer recv_buffer;         // receiver side
  // Last, so destroyed first: a teardown after an error aborts the pending operations before
  // their buffers are freed.
  NcclCommunicator nccl;
};

}  // namespace

struct NcclPipelineLink::State {
  int rank = 0;
  cudaStream_t copy_stream = nullptr;
  // (from, to) -> the route's communicator and buffers; only routes this rank is on.
  std::map<std::pair<int, int>, Route> routes;
  std::map<std::pair<int, LinkTag>, std::deque<ByteBuffer>> arrived;  // received ahead, or sent to itself

  ~State() {
    for (auto& [key, r] : routes)
      for (auto& f : r.in_flight)
        if (f.done) cudaEventDestroy(f.done);
    routes.clear();
    if (copy_stream) cudaStreamDestroy(copy_stream);
  }

  Route& route(int from, int to) {
    auto it = routes.find({from, to});
    if (it == routes.end())
      throw std::logic_error(fmt::format("pipeline link: rank {}: no NCCL route from rank {} to rank {}", rank, from, to));
    return it->second;
  }

  void reap(Route& r) {
    for (auto it = r.in_flight.begin(); it != r.in_flight.end();) {
      const cudaError_t e = cudaEventQuery(it->done);
      if (e == cudaErrorNotReady) {
        ++it;
        continue;
      }
      check_cuda(e, rank, "pipeline link: waiting for a send");
      cudaEventDestroy(it->done);
      r.spare.push_back(std::move(it->buffer));
      it = r.in_flight.erase(it);
    }
  }

  // Copies into device memory on the copy stream and waits for it: the route's stream may hold
  // sends still waiting for their receiver, and a pageable copy on that stream would wait too.
  void stage(std::byte* dst, const void* src, std::size_t bytes) {
    check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, copy_stream), rank, "pipeline link: staging");
    check_cuda(cudaStreamSynchronize(copy_stream), rank, "pipeline link: staging");
  }

  // One message (header + payload) from the route's FIFO.
  std::pair<LinkTag, ByteBuffer> receive(int from, Route& r) {
    const cudaStream_t stream = r.nccl.stream();
    r.recv_buffer.reserve(sizeof(Header), stream, rank);
    check_nccl(ncclRecv(r.recv_buffer.data(), sizeof(Header), ncclUint8, kSender, r.nccl.comm(), stream), rank,
               fmt::format("pipeline link: ncclRecv of a header from rank {}", from).c_str());
    r.nccl.wait();
    Header h{};
    check_cuda(cudaMemcpyAsync(&h, r.recv_buffer.data(), sizeof h, cudaMemcpyDeviceToHost, stream), rank,
               "pipeline link: copying a header to the host");
    r.nccl.wait();
    if (h.magic != kMagic)
      throw std::runtime_error(fmt::format("pipeline link: rank {}: malformed header from rank {}", rank, from));
    ByteBuffer msg(h.bytes);
    if (h.bytes) {
      r.recv_buffer.reserve(h.bytes, stream, rank);
      check_nccl(ncclRecv(r.recv_buffer.data(), h.bytes, ncclUint8, kSender, r.nccl.comm(), stream), rank,
                 fmt::format("pipeline link: ncclRecv of {} bytes from rank {}", h.bytes, from).c_str());
      r.nccl.wait();
      check_cuda(cudaMemcpyAsync(msg.data(), r.recv_buffer.data(), h.bytes, cudaMemcpyDeviceToHost, stream), rank,
                 "pipeline link: copying a message to the host");
      r.nccl.wait();
    }
    return {LinkTag(h.tag), std::move(msg)};
  }
};

NcclPipelineLink::NcclPipelineLink(MPI_Comm world, int device, const std::vector<std::pair<int, int>>& routes)
    : state_(std::make_unique<State>()) {
  MPI_Comm_rank(world, &rank_);
  auto& s = *state_;
  s.rank = rank_;
  select_cuda_device(device, rank_);
  check_cuda(cudaStreamCreateWithFlags(&s.copy_stream, cudaStreamNonBlocking), rank_, "cudaStreamCreate");
  std::vector<std::pair<int, int>> mine;
  for (const auto& r : routes)
    if (r.first != r.second && (r.first == rank_ || r.second == rank_)) mine.push_back(r);
  std::sort(mine.begin(), mine.end());
  mine.erase(std::unique(mine.begin(), mine.end()), mine.end());
  // The sender of each route makes its id and hands it to the receiver over MPI.
  std::vector<ncclUniqueId> ids(mine.size());
  std::vector<MPI_Request> reqs;
  for (std::size_t i = 0; i < mine.size(); ++i) {
    const auto [from, to] = mine[i];
    if (from == rank_) {
      check_nccl(ncclGetUniqueId(&ids[i]), rank_, "ncclGetUniqueId");
      reqs.emplace_back();
      MPI_Isend(&ids[i], sizeof(ncclUniqueId), MPI_BYTE, to, kIdTag, world, &reqs.back());
    } else {
      reqs.emplace_back();
      MPI_Irecv(&ids[i], sizeof(ncclUniqueId), MPI_BYTE, from, kIdTag, world, &reqs.back());
    }
  }
  if (MPI_Waitall(int(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE) != MPI_SUCCESS)
    throw std::runtime_error(fmt::format("pipeline link: rank {}: exchanging NCCL unique ids failed", rank_));
  // All of this rank's communicators start in one group: initialised one by one, two ranks that
  // list their shared routes in different orders would each wait in a different one.
  check_nccl(ncclGroupStart(), rank_, "ncclGroupStart");
  for (std::size_t i = 0; i < mine.size(); ++i) {
    const auto [from, to] = mine[i];
    s.routes[mine[i]].nccl.start_init(2, ids[i], from == rank_ ? kSender : kReceiver, rank_);
  }
  check_nccl(ncclGroupEnd(), rank_, "ncclGroupEnd (communicator setup)");
}

NcclPipelineLink::~NcclPipelineLink() = default;

void NcclPipelineLink::send(int to, LinkTag tag, ByteBuffer msg) {
  auto& s = *state_;
  if (to == rank_) {
    s.arrived[{rank_, tag}].push_back(std::move(msg));
    return;
  }
  Route& r = s.route(rank_, to);
  s.reap(r);
  InFlight f;
  if (!r.spare.empty()) f.buffer = std::move(r.spare.back()), r.spare.pop_back();
  const cudaStream_t stream = r.nccl.stream();
  const Header h{kMagic, int32_t(tag), msg.size()};
  // The header sits at the front; the payload follows at a 256-byte offset (aligned copies).
  constexpr std::size_t kPayload = 256;
  f.buffer.reserve(kPayload + msg.size(), s.copy_stream, rank_);
  s.stage(f.buffer.data(), &h, sizeof h);
  if (!msg.empty()) s.stage(f.buffer.data() + kPayload, msg.data(), msg.size());
  const auto what = fmt::format("pipeline link: ncclSend to rank {}", to);
  check_nccl(ncclSend(f.buffer.data(), sizeof h, ncclUint8, kReceiver, r.nccl.comm(), stream), rank_, what.c_str());
  if (!msg.empty())
    check_nccl(ncclSend(f.buffer.data() + kPayload, msg.size(), ncclUint8, kReceiver, r.nccl.comm(), stream), rank_,
               what.c_str());
  check_cuda(cudaEventCreateWithFlags(&f.done, cudaEventDisableTiming), rank_, "cudaEventCreate");
  check_cuda(cudaEventRecord(f.done, stream), rank_, "cudaEventRecord");
  r.in_flight.push_back(std::move(f));
}

ByteBuffer NcclPipelineLink::recv(int from, LinkTag tag) {
  auto& s = *state_;
  auto take = [&](std::deque<ByteBuffer>& q) {
    ByteBuffer b = std::move(q.front());
    q.pop_front();
    return b;
  };
  if (auto it = s.arrived.find({from, tag}); it != s.arrived.end() && !it->second.empty()) return take(it->second);
  if (from == rank_)  // nothing was sent to itself: waiting would block forever
    throw std::logic_error(fmt::format("pipeline link: rank {} receives from itself with nothing queued", rank_));
  Route& r = s.route(from, rank_);
  for (;;) {
    auto [got, msg] = s.receive(from, r);
    if (got == tag) return std::move(msg);
    s.arrived[{from, got}].push_back(std::move(msg));
  }
}

void NcclPipelineLink::flush() {
  auto& s = *state_;
  for (auto& [key, r] : s.routes) {
    for (int spin = 0; !r.in_flight.empty(); ++spin) {
      s.reap(r);
      if (!r.in_flight.empty()) {
        // Surface a peer's failure instead of waiting forever.
        ncclResult_t async = ncclSuccess;
        check_nccl(ncclCommGetAsyncError(r.nccl.comm(), &async), rank_, "ncclCommGetAsyncError");
        check_nccl(async, rank_, fmt::format("pipeline link: send to rank {} failed", key.second).c_str());
        mpi_idle(spin);
      }
    }
  }
}

}  // namespace flashline
