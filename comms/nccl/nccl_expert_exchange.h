#pragma once
// The expert exchange over NCCL: the packed host send buffer goes to the device in one copy, the
// per-peer sizes go first when the receiver does not know them (dispatch; a combine passes the
// sizes it expects and skips this), then one ncclGroupStart / ncclSend + ncclRecv per peer /
// ncclGroupEnd on the communicator's stream, and the received parts come back to the caller's
// receive buffer in one copy. This lane's own part never leaves the host. The
// communicator spans one stage's lanes and is bootstrapped over that stage's MPI communicator.
// No CUDA or NCCL header here: the runner and the benchmarks include this without them.
#include <mpi.h>

#include <memory>

#include "comms/expert_exchange.h"

namespace flashline {

class NcclExpertExchange final : public ExpertExchange {
 public:
  // Collective over `stage` (not owned); `device` is this rank's CUDA device (the plan's cuda:N).
  NcclExpertExchange(MPI_Comm stage, int device);
  ~NcclExpertExchange() override;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  ReceivedParts exchange(const std::byte* send, const PackedLayout& layout, ByteBuffer& recv,
                         const std::vector<std::size_t>* expected = nullptr) override;

 private:
  struct State;
  int rank_ = 0, size_ = 1;
  std::unique_ptr<State> state_;
};

// CUDA devices visible to this process; 0 where there is no driver or no device.
int cuda_device_count();

}  // namespace flashline
