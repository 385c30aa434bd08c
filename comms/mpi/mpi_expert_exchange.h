#pragma once
// The expert exchange over MPI (host memory; Open MPI picks shared memory, TCP or UCX), point to
// point on a private duplicate of the stage's communicator: one message per peer straight from
// the packed send buffer, received straight into the caller's receive buffer. When the receiver
// does not know the sizes (dispatch) it matches each peer's message with MPI_Mprobe and reads its
// size from the envelope, so telling sizes costs no extra round; when it does (combine) the
// receives are posted first, as MPI_Alltoallv does. This lane's own part is never copied.
#include <mpi.h>

#include "comms/expert_exchange.h"

namespace flashline {

class MpiExpertExchange final : public ExpertExchange {
 public:
  // Collective over `stage` (duplicates it; the original is not owned).
  explicit MpiExpertExchange(MPI_Comm stage);
  ~MpiExpertExchange() override;
  MpiExpertExchange(const MpiExpertExchange&) = delete;
  MpiExpertExchange& operator=(const MpiExpertExchange&) = delete;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  ReceivedParts exchange(const std::byte* send, const PackedLayout& layout, ByteBuffer& recv,
                         const std::vector<std::size_t>* expected = nullptr) override;

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::vector<MPI_Request> requests_;
  std::vector<MPI_Message> messages_;
  std::vector<MPI_Status> statuses_;
  std::vector<std::size_t> counts_, offsets_;
};

}  // namespace flashline
