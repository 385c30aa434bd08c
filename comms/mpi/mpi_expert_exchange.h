#pragma once
// The expert exchange over MPI: sizes with MPI_Alltoall, payload with MPI_Alltoallv on the
// stage's communicator (host memory; Open MPI picks shared memory, TCP or UCX).
#include <mpi.h>

#include "comms/expert_exchange.h"

namespace flashline {

class MpiExpertExchange final : public ExpertExchange {
 public:
  explicit MpiExpertExchange(MPI_Comm stage);  // does not take ownership
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::vector<ByteBuffer> all_to_all(std::vector<ByteBuffer> send) override;

 private:
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  ByteBuffer sbuf_, rbuf_;
};

}  // namespace flashline
