#include "comms/expert_exchange.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace flashline {

PackedLayout PackedLayout::consecutive(std::vector<std::size_t> counts) {
  PackedLayout l;
  l.offsets.resize(counts.size());
  std::size_t at = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    l.offsets[r] = at;
    at += counts[r];
  }
  l.counts = std::move(counts);
  return l;
}

std::size_t PackedLayout::total() const {
  std::size_t end = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) end = std::max(end, offsets[r] + counts[r]);
  return end;
}

void ExpertExchange::check_layout(const PackedLayout& layout, const std::vector<std::size_t>* expected) const {
  const std::size_t n = std::size_t(size());
  if (layout.counts.size() != n || layout.offsets.size() != n)
    throw std::logic_error("expert exchange: " + std::to_string(layout.counts.size()) + " destinations for " +
                           std::to_string(n) + " lanes");
  if (expected && expected->size() != n)
    throw std::logic_error("expert exchange: " + std::to_string(expected->size()) + " expected sizes for " +
                           std::to_string(n) + " lanes");
}

std::vector<ByteBuffer> ExpertExchange::all_to_all(std::vector<ByteBuffer> send) {
  if (int(send.size()) != size())
    throw std::logic_error("expert exchange: " + std::to_string(send.size()) + " destinations for " +
                           std::to_string(size()) + " lanes");
  std::vector<std::size_t> counts(send.size());
  for (std::size_t r = 0; r < send.size(); ++r) counts[r] = send[r].size();
  const PackedLayout layout = PackedLayout::consecutive(std::move(counts));
  ByteBuffer packed(layout.total()), recv;
  for (std::size_t r = 0; r < send.size(); ++r) std::copy(send[r].begin(), send[r].end(), packed.begin() + layout.offsets[r]);
  const ReceivedParts got = exchange(packed.data(), layout, recv);
  std::vector<ByteBuffer> out(send.size());
  for (std::size_t r = 0; r < send.size(); ++r) out[r].assign(got.parts[r].begin(), got.parts[r].end());
  return out;
}

ReceivedParts LoopbackExpertExchange::exchange(const std::byte* send, const PackedLayout& layout, ByteBuffer&,
                                               const std::vector<std::size_t>* expected) {
  check_layout(layout, expected);
  if (expected && (*expected)[0] != layout.counts[0])
    throw std::logic_error("loopback exchange: expected sizes differ from what is sent");
  return {{std::span<const std::byte>(send + layout.offsets[0], layout.counts[0])}};
}

}  // namespace flashline
