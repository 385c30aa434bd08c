#pragma once
// Which lane and which micro-batch slot each request belongs to, and which slot stage 0 feeds
// at each tick. Every rank computes the same schedule from the same request list, so no
// assignment has to be sent. Diagram and reasoning: docs/pipeline.md.
#include <vector>

namespace flashline {

class MicroBatchSchedule {
 public:
  // `slots` micro-batches per lane; at least one. Decode keeps every stage busy from
  // slots >= stages on (a slot's next step needs the id its previous step produced).
  MicroBatchSchedule(int requests, int lanes, int slots);
  int lanes() const { return lanes_; }
  int slots() const { return slots_; }
  // Request i -> lane i % lanes, then slot (i / lanes) % slots: balanced over lanes and slots.
  int lane_of(int request) const { return request % lanes_; }
  int slot_of(int request) const { return (request / lanes_) % slots_; }
  // The requests of one lane / of one slot of one lane, in increasing index.
  const std::vector<int>& lane_requests(int lane) const { return by_lane_.at(lane); }
  const std::vector<int>& slot_requests(int lane, int slot) const { return by_slot_.at(lane).at(slot); }
  // Stage 0 feeds slot tick % slots at each tick; stage s works on it s ticks later.
  int slot_at_tick(int tick) const { return tick % slots_; }

 private:
  int lanes_, slots_;
  std::vector<std::vector<int>> by_lane_;
  std::vector<std::vector<std::vector<int>>> by_slot_;
};

}  // namespace flashline
