#include "comms/mpi/mpi_expert_exchange.h"

#include <fmt/format.h>

#include <climits>
#include <stdexcept>

namespace flashline {
namespace {

constexpr int kTag = 17;

int int_count(std::size_t bytes, int lane, int peer) {
  if (bytes > std::size_t(INT_MAX))
    throw std::runtime_error(
        fmt::format("expert exchange: {} bytes between lanes {} and {} exceed one MPI message", bytes, lane, peer));
  return int(bytes);
}

void check(int rc, const char* what, int lane) {
  if (rc != MPI_SUCCESS) throw std::runtime_error(fmt::format("expert exchange: {} failed on lane {}", what, lane));
}

}  // namespace

MpiExpertExchange::MpiExpertExchange(MPI_Comm stage) {
  // A private communicator: no other traffic on the stage's communicator can match our messages.
  check(MPI_Comm_dup(stage, &comm_), "MPI_Comm_dup", -1);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

MpiExpertExchange::~MpiExpertExchange() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

ReceivedParts MpiExpertExchange::exchange(const std::byte* send, const PackedLayout& layout, ByteBuffer& recv,
                                          const std::vector<std::size_t>* expected) {
  const int n = size_, me = rank_;
  check_layout(layout, expected);
  ReceivedParts out;
  out.parts.resize(n);
  out.parts[me] = {send + layout.offsets[me], layout.counts[me]};
  if (expected && (*expected)[me] != layout.counts[me])
    throw std::logic_error(fmt::format("expert exchange: lane {} sends itself {} bytes, expected {}", me,
                                       layout.counts[me], (*expected)[me]));
  if (n == 1) return out;

  // Peers in the order me+1, me+2, ...: lanes do not all talk to lane 0 first.
  auto peer = [&](int i) { return (me + i) % n; };
  counts_.assign(n, 0);
  offsets_.assign(n, 0);
  requests_.assign(2 * std::size_t(n - 1), MPI_REQUEST_NULL);
  statuses_.resize(requests_.size());
  MPI_Request* recv_req = requests_.data();
  MPI_Request* send_req = requests_.data() + (n - 1);
  auto place = [&] {  // consecutive parts in lane order, in a buffer grown only
    std::size_t at = 0;
    for (int r = 0; r < n; ++r)
      if (r != me) offsets_[r] = at, at += counts_[r];
    if (recv.size() < at) recv.resize(at);
  };
  auto post_sends = [&] {
    for (int i = 1; i < n; ++i) {
      const int p = peer(i);
      check(MPI_Isend(send + layout.offsets[p], int_count(layout.counts[p], me, p), MPI_BYTE, p, kTag, comm_,
                      &send_req[i - 1]),
            "MPI_Isend", me);
    }
  };

  if (expected) {
    // Sizes known on both sides: receives first, then sends (every message finds its buffer).
    for (int r = 0; r < n; ++r) counts_[r] = r == me ? 0 : (*expected)[r];
    place();
    for (int i = 1; i < n; ++i) {
      const int p = peer(i);
      check(MPI_Irecv(recv.data() + offsets_[p], int_count(counts_[p], me, p), MPI_BYTE, p, kTag, comm_,
                      &recv_req[i - 1]),
            "MPI_Irecv", me);
    }
    post_sends();
  } else {
    // Sizes unknown here: match each peer's message, read its size, then receive it in place.
    // Messages from one peer arrive in order, so probing by source never takes a later
    // exchange's message.
    post_sends();
    messages_.assign(n, MPI_MESSAGE_NULL);
    for (int i = 1; i < n; ++i) {
      const int p = peer(i);
      MPI_Status st;
      check(MPI_Mprobe(p, kTag, comm_, &messages_[p], &st), "MPI_Mprobe", me);
      int bytes = 0;
      MPI_Get_count(&st, MPI_BYTE, &bytes);
      counts_[p] = std::size_t(bytes);
    }
    place();
    for (int i = 1; i < n; ++i) {
      const int p = peer(i);
      check(MPI_Imrecv(recv.data() + offsets_[p], int(counts_[p]), MPI_BYTE, &messages_[p], &recv_req[i - 1]),
            "MPI_Imrecv", me);
    }
  }
  // Blocking: Open MPI progresses the transfers inside the wait, and yields the core while
  // waiting when ranks are oversubscribed.
  check(MPI_Waitall(int(requests_.size()), requests_.data(), statuses_.data()), "MPI_Waitall", me);
  for (int i = 1; i < n; ++i) {
    const int p = peer(i);
    int bytes = 0;
    MPI_Get_count(&statuses_[i - 1], MPI_BYTE, &bytes);
    if (std::size_t(bytes) != counts_[p])
      throw std::runtime_error(
          fmt::format("expert exchange: lane {} received {} bytes from lane {}, expected {}", me, bytes, p, counts_[p]));
    out.parts[p] = {recv.data() + offsets_[p], counts_[p]};
  }
  return out;
}

}  // namespace flashline
