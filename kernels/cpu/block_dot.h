#pragma once
// Dot products of short fixed-size blocks (the 32- and 128-wide K blocks of the quantised
// GEMMs), inlined so the fast path vectorises. Exact: double accumulation (the products of
// e4m3/e2m1 values and e4m3-grid activations are exact in double, and so is their sum), rounded
// once. Fast: eight fp32 lanes combined in a fixed tree, the same order as reduce.h's dot.
#include "kernels/cpu/numerics.h"

namespace flashline {

template <int N>
inline float block_dot_exact(const float* a, const float* b) {
  double acc = 0.0;
  for (int i = 0; i < N; ++i) acc += double(a[i]) * double(b[i]);
  return float(acc + 0.0);
}

template <int N>
inline float block_dot_fast(const float* a, const float* b) {
  static_assert(N % 8 == 0);
  float p[8] = {};
  for (int i = 0; i < N; i += 8)
    for (int j = 0; j < 8; ++j) p[j] += a[i + j] * b[i + j];
  return ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
}

}  // namespace flashline
