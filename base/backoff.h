#pragma once
// Waiting without pinning a core: a loop that polls for work calls idle() after each empty
// poll. The first polls only yield (work usually arrives within microseconds while a step is
// in flight); then the sleeps double up to `max_sleep`, so an idle rank wakes a few hundred
// times a second at most and still starts new work within `max_sleep` of its arrival.
#include <chrono>
#include <thread>

namespace flashline {

class Backoff {
 public:
  explicit Backoff(std::chrono::microseconds max_sleep = std::chrono::microseconds(2000)) : max_(max_sleep) {}
  void idle() {
    if (++polls_ < 64) return std::this_thread::yield();
    std::this_thread::sleep_for(sleep_);
    sleep_ = std::min(max_, sleep_ * 2);
  }
  void reset() {
    polls_ = 0;
    sleep_ = std::chrono::microseconds(20);
  }

 private:
  std::chrono::microseconds max_;
  std::chrono::microseconds sleep_{20};
  int polls_ = 0;
};

}  // namespace flashline
