#include <stdexcept>
#include <string>

#include "comms/pipeline_link.h"

namespace flashline {

void LoopbackPipelineLink::send(int to, LinkTag tag, ByteBuffer msg) {
  if (to != 0) throw std::logic_error("loopback link: send to rank " + std::to_string(to) + " in a one-rank world");
  queues_[{0, tag}].push_back(std::move(msg));
}

ByteBuffer LoopbackPipelineLink::recv(int from, LinkTag tag) {
  auto& q = queues_[{from, tag}];
  if (q.empty())
    throw std::logic_error("loopback link: receive of tag " + std::to_string(int(tag)) + " with nothing sent");
  ByteBuffer b = std::move(q.front());
  q.pop_front();
  return b;
}

std::optional<ByteBuffer> LoopbackPipelineLink::try_recv(int from, LinkTag tag) {
  auto& q = queues_[{from, tag}];
  if (q.empty()) return std::nullopt;
  ByteBuffer b = std::move(q.front());
  q.pop_front();
  return b;
}

}  // namespace flashline
