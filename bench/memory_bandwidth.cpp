#include "bench/memory_bandwidth.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>

namespace flashline {

ReadBandwidthProbe::ReadBandwidthProbe(std::size_t bytes)
    : n_(bytes / sizeof(uint64_t)), data_(new uint64_t[n_]) {
  const std::size_t n = n_;
#pragma omp parallel for schedule(static)
  for (std::size_t i = 0; i < n; ++i) data_[i] = i;  // first touch by the reading threads
}

// XOR of a range, 64 bytes per step in four independent 16-byte chains: a single scalar chain
// retires one 8-byte load per cycle, which on one core is below what memory delivers, so the
// figure would be the loop's speed rather than the memory's.
uint64_t xor_range(const uint64_t* p, std::size_t n) {
  using V = uint64_t __attribute__((vector_size(16)));
  V a{}, b{}, c{}, d{};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    V v0, v1, v2, v3;
    std::memcpy(&v0, p + i, 16);
    std::memcpy(&v1, p + i + 2, 16);
    std::memcpy(&v2, p + i + 4, 16);
    std::memcpy(&v3, p + i + 6, 16);
    a ^= v0;
    b ^= v1;
    c ^= v2;
    d ^= v3;
  }
  const V x = a ^ b ^ c ^ d;
  uint64_t r = x[0] ^ x[1];
  for (; i < n; ++i) r ^= p[i];
  return r;
}

double ReadBandwidthProbe::measure(int reps) const {
  const std::size_t n = n_;
  const double bytes = double(n * sizeof(uint64_t));
  double best = 0;
  volatile uint64_t sink = 0;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    uint64_t acc = 0;
#pragma omp parallel reduction(^ : acc)
    {
      const std::size_t t = omp_get_thread_num(), nt = omp_get_num_threads();
      const std::size_t per = (n / nt + 7) / 8 * 8, lo = std::min(n, t * per), hi = std::min(n, lo + per);
      acc ^= xor_range(data_.get() + lo, hi - lo);
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sink = sink ^ acc;
    best = std::max(best, bytes / s);
  }
  return best;
}

double measure_read_bandwidth(std::size_t bytes, int reps) { return ReadBandwidthProbe(bytes).measure(reps); }

}  // namespace flashline
