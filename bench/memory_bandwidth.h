#pragma once
// Measured main-memory read bandwidth of this machine (all threads), the roofline that decode
// throughput is compared against.
#include <cstddef>

namespace flashline {

// Bytes per second of a multi-threaded streaming read over `bytes` of memory (best of `reps`).
double measure_read_bandwidth(std::size_t bytes = std::size_t(1) << 30, int reps = 5);

}  // namespace flashline
