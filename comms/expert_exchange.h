#pragma once
// The expert exchange: an all-to-all-v among the ranks (lanes) of one pipeline stage. The MoE
// layer uses it twice per layer: dispatch (token rows to the ranks owning their experts) and
// combine (expert outputs back to the token's rank). Stages see only this interface.
//
// Packed form, no staging copy on either side: the caller packs what it sends into one buffer
// with per-lane counts and offsets, and reads what it receives in place: the parts from other
// lanes land in one receive buffer the caller keeps across calls (grown, never shrunk, so a
// steady state allocates nothing), and this lane's own part is not copied at all (its view points
// into the send buffer).
#include <cstddef>
#include <span>
#include <vector>

#include "base/byte_codec.h"

namespace flashline {

// Where each lane's bytes sit in one packed buffer: [offsets[r], offsets[r] + counts[r]).
struct PackedLayout {
  std::vector<std::size_t> counts, offsets;
  // Parts one after another in lane order.
  static PackedLayout consecutive(std::vector<std::size_t> counts);
  std::size_t total() const;  // end of the furthest part
};

// What one exchange delivered: parts[r] holds the bytes lane r sent to this lane. This lane's own
// part is a view of the caller's send buffer; the others point into the caller's receive buffer.
struct ReceivedParts {
  std::vector<std::span<const std::byte>> parts;
  std::size_t size(int lane) const { return parts[std::size_t(lane)].size(); }
  const std::byte* data(int lane) const { return parts[std::size_t(lane)].data(); }
};

class ExpertExchange {
 public:
  virtual ~ExpertExchange() = default;
  virtual int rank() const = 0;  // this rank's index among the stage's lanes
  virtual int size() const = 0;  // number of lanes in the stage

  // Collective: lane r receives send[layout.offsets[r], + layout.counts[r]). Parts from the other
  // lanes are placed in `recv` (grown when too small; the returned views stay valid until `recv`
  // or `send` change). `expected`, when every lane knows what it will receive (a reply of the
  // sizes it was sent), gives those byte counts: the backend may skip telling sizes, and checks
  // them. Every lane of the stage calls it the same number of times, with or without data.
  virtual ReceivedParts exchange(const std::byte* send, const PackedLayout& layout, ByteBuffer& recv,
                                 const std::vector<std::size_t>* expected = nullptr) = 0;

  // Convenience for small messages (counters): send[r] goes to lane r; returns what each lane
  // sent here, copied out. Built on exchange().
  std::vector<ByteBuffer> all_to_all(std::vector<ByteBuffer> send);

 protected:
  // std::logic_error unless the layout (and `expected`, when given) has one entry per lane.
  void check_layout(const PackedLayout& layout, const std::vector<std::size_t>* expected) const;
};

// One process holds every expert: the exchange hands the data back to itself.
class LoopbackExpertExchange final : public ExpertExchange {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  ReceivedParts exchange(const std::byte* send, const PackedLayout& layout, ByteBuffer& recv,
                         const std::vector<std::size_t>* expected = nullptr) override;
};

}  // namespace flashline
