#include "bench/memory_bandwidth.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

namespace flashline {

double measure_read_bandwidth(std::size_t bytes, int reps) {
  const std::size_t n = bytes / sizeof(uint64_t);
  std::vector<uint64_t> data(n);
#pragma omp parallel for schedule(static)
  for (std::size_t i = 0; i < n; ++i) data[i] = i;  // first touch by the reading threads
  double best = 0;
  volatile uint64_t sink = 0;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    uint64_t acc = 0;
#pragma omp parallel for schedule(static) reduction(^ : acc)
    for (std::size_t i = 0; i < n; ++i) acc ^= data[i];
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sink = sink ^ acc;
    best = std::max(best, double(bytes) / s);
  }
  return best;
}

}  // namespace flashline
