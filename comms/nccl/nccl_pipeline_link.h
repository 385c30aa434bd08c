#pragma once
// The pipeline link over NCCL. NCCL has no tags and no probe, and its operations on one
// communicator run in issue order, so one communicator (two ranks, own stream) carries each
// directed route `from -> to` the pipeline uses: a route is a FIFO, and messages of different
// routes never wait for each other. Each message is a 16-byte header (tag, size) and then the
// payload, both by ncclSend/ncclRecv; the receiver keeps messages of other tags until asked for.
// Sends return once the payload is staged on the device (the link owns that buffer until the
// send completes). Messages to itself wait in a host queue.
#include <mpi.h>

#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "comms/pipeline_link.h"

namespace flashline {

class NcclPipelineLink final : public PipelineLink {
 public:
  // Collective over `world` (not owned): every rank passes the same `routes` (world ranks
  // `{from, to}`); the communicators of this rank's routes are created together.
  NcclPipelineLink(MPI_Comm world, int device, const std::vector<std::pair<int, int>>& routes);
  ~NcclPipelineLink() override;
  int rank() const override { return rank_; }
  void send(int to, LinkTag tag, ByteBuffer msg) override;
  ByteBuffer recv(int from, LinkTag tag) override;
  // NCCL has no probe: the engine polls its MPI link for the step header and then receives the
  // hc stream here with recv.
  std::optional<ByteBuffer> try_recv(int, LinkTag) override {
    throw std::logic_error("NCCL pipeline link: not pollable (poll the MPI link for the header)");
  }
  void flush() override;

 private:
  struct State;
  int rank_ = 0;
  std::unique_ptr<State> state_;
};

}  // namespace flashline
