#include "runtime/micro_batch_schedule.h"

#include <stdexcept>

namespace flashline {

MicroBatchSchedule::MicroBatchSchedule(int requests, int lanes, int slots) : lanes_(lanes), slots_(slots) {
  if (lanes < 1 || slots < 1 || requests < 0) throw std::invalid_argument("micro-batch schedule: bad sizes");
  by_lane_.resize(lanes);
  by_slot_.assign(lanes, std::vector<std::vector<int>>(slots));
  for (int i = 0; i < requests; ++i) {
    by_lane_[lane_of(i)].push_back(i);
    by_slot_[lane_of(i)][slot_of(i)].push_back(i);
  }
}

}  // namespace flashline
