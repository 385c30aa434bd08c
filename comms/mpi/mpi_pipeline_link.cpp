#include "comms/mpi/mpi_pipeline_link.h"

#include <fmt/format.h>

#include <climits>
#include <stdexcept>

#include "comms/mpi/mpi_world.h"

namespace flashline {

MpiPipelineLink::MpiPipelineLink(MPI_Comm world) : comm_(world) { MPI_Comm_rank(comm_, &rank_); }

MpiPipelineLink::~MpiPipelineLink() {
  // Unfinished sends at destruction mean the run is being torn down after an error; the
  // buffers must outlive MPI's use of them, so they are leaked rather than freed under it.
  if (!pending_.empty()) new std::list<Pending>(std::move(pending_));
}

void MpiPipelineLink::send(int to, LinkTag tag, ByteBuffer msg) {
  if (msg.size() > std::size_t(INT_MAX))
    throw std::runtime_error(fmt::format("pipeline link: message of {} bytes to rank {} is too large", msg.size(), to));
  reap();
  auto& p = pending_.emplace_back(Pending{std::move(msg), MPI_REQUEST_NULL});
  if (MPI_Isend(p.data.data(), int(p.data.size()), MPI_BYTE, to, int(tag), comm_, &p.req) != MPI_SUCCESS)
    throw std::runtime_error(fmt::format("pipeline link: MPI_Isend to rank {} failed", to));
}

ByteBuffer MpiPipelineLink::recv(int from, LinkTag tag) {
  for (int spin = 0;; ++spin) {
    if (auto b = try_recv(from, tag)) return std::move(*b);
    mpi_idle(spin);  // sends progress inside try_recv while we wait
  }
}

std::optional<ByteBuffer> MpiPipelineLink::try_recv(int from, LinkTag tag) {
  MPI_Message m;
  MPI_Status st;
  int found = 0;
  if (MPI_Improbe(from, int(tag), comm_, &found, &m, &st) != MPI_SUCCESS)
    throw std::runtime_error(fmt::format("pipeline link: probe for rank {} failed", from));
  reap();
  if (!found) return std::nullopt;
  int count = 0;
  MPI_Get_count(&st, MPI_BYTE, &count);
  ByteBuffer b(static_cast<std::size_t>(count));
  if (MPI_Mrecv(b.data(), count, MPI_BYTE, &m, MPI_STATUS_IGNORE) != MPI_SUCCESS)
    throw std::runtime_error(fmt::format("pipeline link: receive from rank {} failed", from));
  return b;
}

void MpiPipelineLink::reap() {
  for (auto it = pending_.begin(); it != pending_.end();) {
    int done = 0;
    MPI_Test(&it->req, &done, MPI_STATUS_IGNORE);
    it = done ? pending_.erase(it) : std::next(it);
  }
}

void MpiPipelineLink::flush() {
  for (auto& p : pending_) mpi_wait(p.req);
  pending_.clear();
}

}  // namespace flashline
