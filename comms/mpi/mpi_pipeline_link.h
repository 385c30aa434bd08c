#pragma once
// The pipeline link over MPI point-to-point (MPI_Isend / probe + receive) on the world
// communicator.
#include <mpi.h>

#include <list>

#include "comms/pipeline_link.h"

namespace flashline {

class MpiPipelineLink final : public PipelineLink {
 public:
  explicit MpiPipelineLink(MPI_Comm world);
  ~MpiPipelineLink() override;
  int rank() const override { return rank_; }
  void send(int to, LinkTag tag, ByteBuffer msg) override;
  ByteBuffer recv(int from, LinkTag tag) override;
  std::optional<ByteBuffer> try_recv(int from, LinkTag tag) override;
  void flush() override;

 private:
  void reap();  // releases the buffers of completed sends
  struct Pending {
    ByteBuffer data;
    MPI_Request req;
  };
  MPI_Comm comm_;
  int rank_ = 0;
  std::list<Pending> pending_;
};

}  // namespace flashline
