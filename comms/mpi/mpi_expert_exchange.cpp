#include "comms/mpi/mpi_expert_exchange.h"

#include <fmt/format.h>

#include <climits>
#include <cstdint>
#include <stdexcept>


namespace flashline {

MpiExpertExchange::MpiExpertExchange(MPI_Comm stage) : comm_(stage) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

std::vector<ByteBuffer> MpiExpertExchange::all_to_all(std::vector<ByteBuffer> send) {
  if (int(send.size()) != size_)
    throw std::logic_error(fmt::format("expert exchange: {} destinations for {} lanes", send.size(), size_));
  std::vector<uint64_t> send_bytes(size_), recv_bytes(size_);
  for (int r = 0; r < size_; ++r) send_bytes[r] = send[r].size();
  if (MPI_Alltoall(send_bytes.data(), 1, MPI_UINT64_T, recv_bytes.data(), 1, MPI_UINT64_T, comm_) != MPI_SUCCESS)
    throw std::runtime_error(fmt::format("expert exchange: MPI_Alltoall of sizes failed on lane {}", rank_));
  // One contiguous buffer each way: MPI_Alltoallv counts and displacements are ints.
  std::vector<int> sc(size_), sd(size_), rc(size_), rd(size_);
  uint64_t stotal = 0, rtotal = 0;
  for (int r = 0; r < size_; ++r) {
    sd[r] = int(stotal), rd[r] = int(rtotal);
    sc[r] = int(send_bytes[r]), rc[r] = int(recv_bytes[r]);
    stotal += send_bytes[r], rtotal += recv_bytes[r];
  }
  if (stotal > uint64_t(INT_MAX) || rtotal > uint64_t(INT_MAX))
    throw std::runtime_error(fmt::format("expert exchange: {} / {} bytes exceed one MPI_Alltoallv", stotal, rtotal));
  // Staging buffers persist across calls: fresh multi-megabyte buffers every call cost more in
  // page faults than the transfer itself.
  sbuf_.resize(stotal), rbuf_.resize(rtotal);
  auto &sbuf = sbuf_, &rbuf = rbuf_;
  for (int r = 0; r < size_; ++r) std::copy(send[r].begin(), send[r].end(), sbuf.begin() + sd[r]);
  // Blocking: Open MPI's tuned all-to-all progresses without our polling (a nonblocking
  // collective only advances inside MPI_Test, which made large exchanges 100x slower), and it
  // yields the core while waiting when ranks are oversubscribed.
  if (MPI_Alltoallv(sbuf.data(), sc.data(), sd.data(), MPI_BYTE, rbuf.data(), rc.data(), rd.data(), MPI_BYTE,
                    comm_) != MPI_SUCCESS)
    throw std::runtime_error(fmt::format("expert exchange: MPI_Alltoallv failed on lane {}", rank_));
  std::vector<ByteBuffer> out(size_);
  for (int r = 0; r < size_; ++r) out[r].assign(rbuf.begin() + rd[r], rbuf.begin() + rd[r] + rc[r]);
  return out;
}

}  // namespace flashline
