#pragma once
// Measured main-memory read bandwidth of this machine (all threads), the roofline that decode
// throughput is compared against.
#include <cstddef>
#include <cstdint>
#include <memory>

namespace flashline {

// A buffer far larger than the caches, first touched by the reading threads, that can be read
// again whenever a fresh figure is wanted: a benchmark that measures between its own rounds
// compares each round with the bandwidth of its moment (a shared host's bandwidth drifts).
class ReadBandwidthProbe {
 public:
  explicit ReadBandwidthProbe(std::size_t bytes = std::size_t(1) << 30);
  // Bytes per second of a multi-threaded streaming read of the buffer, best of `reps`.
  double measure(int reps) const;

 private:
  std::size_t n_;
  std::unique_ptr<uint64_t[]> data_;  // not value-initialised: the readers touch it first
};

// One probe, measured once (best of `reps`).
double measure_read_bandwidth(std::size_t bytes = std::size_t(1) << 30, int reps = 5);

}  // namespace flashline
