#pragma once
// The pipeline link: point-to-point messages between the ranks of one lane (the hc residual
// stream plus step metadata to the next stage, sampled ids back to stage 0, results to rank 0).
// Sends are asynchronous: the link owns the buffer until it is delivered, so a stage can start
// its next micro-batch while the previous one is still on the wire. Receives block, or poll.
#include <deque>
#include <map>
#include <optional>
#include <utility>

#include "comms/expert_exchange.h"

namespace flashline {

// Message kinds; a receive names the kind it waits for, so kinds never overtake each other's
// slots. Values are the MPI tags.
enum class LinkTag : int { Forward = 11, Sampled = 12, Stream = 13, Control = 14, Report = 15 };

class PipelineLink {
 public:
  virtual ~PipelineLink() = default;
  virtual int rank() const = 0;  // this process's world rank
  // Asynchronous send of `msg` to world rank `to`.
  virtual void send(int to, LinkTag tag, ByteBuffer msg) = 0;
  // Blocks until a message of `tag` from world rank `from` arrives. Messages of one (from,
  // tag) pair arrive in the order they were sent.
  virtual ByteBuffer recv(int from, LinkTag tag) = 0;
  // The next message of `tag` from `from` if one has arrived, else nothing (never blocks).
  virtual std::optional<ByteBuffer> try_recv(int from, LinkTag tag) = 0;
  // Waits until every send has been delivered (before exit, so no buffer is dropped).
  virtual void flush() = 0;
};

// One process: messages to itself wait in a queue. A receive with nothing queued is a
// scheduling bug (it would block forever), so it throws instead.
class LoopbackPipelineLink final : public PipelineLink {
 public:
  int rank() const override { return 0; }
  void send(int to, LinkTag tag, ByteBuffer msg) override;
  ByteBuffer recv(int from, LinkTag tag) override;
  std::optional<ByteBuffer> try_recv(int from, LinkTag tag) override;
  void flush() override {}

 private:
  std::map<std::pair<int, LinkTag>, std::deque<ByteBuffer>> queues_;
};

}  // namespace flashline
