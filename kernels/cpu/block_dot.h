#pragma once
// Inlined dot-product building blocks. Exact block dots of the quantised GEMMs' 32- and 128-wide
// K blocks: double accumulation (e4m3/e2m1 values times e4m3-grid activations are exact in
// double, and so is their sum), rounded once. Fast paths: eight fp32 lanes combined in a fixed
// tree, the order reduce.h's dot uses.
#include <cstdint>
#include <cstring>

#include "kernels/cpu/numerics.h"

namespace flashline {

template <int N>
inline float block_dot_exact(const float* a, const float* b) {
  double acc = 0.0;
  for (int i = 0; i < N; ++i) acc += double(a[i]) * double(b[i]);
  return float(acc + 0.0);
}

// Eight fp32 lanes as one vector value: AVX where compiled for it, two SSE halves otherwise,
// the same per-lane operations either way.
using Lanes8 = float __attribute__((vector_size(32)));

[[gnu::always_inline]] inline Lanes8 load8(const float* p) {
  Lanes8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

[[gnu::always_inline]] inline float combine8(Lanes8 p) { return ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7])); }

// Eight unsigned lanes, for widening bf16 weights straight into vector registers.
using U32x8 = uint32_t __attribute__((vector_size(32)));
using U16x8 = uint16_t __attribute__((vector_size(16)));

[[gnu::always_inline]] inline U32x8 load_u16x8(const uint16_t* p) {
  U16x8 b;
  std::memcpy(&b, p, sizeof b);
  return __builtin_convertvector(b, U32x8);
}
[[gnu::always_inline]] inline Lanes8 bits_as_float(U32x8 u) {
  Lanes8 f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
// bf16 bit patterns in the lanes -> their values.
[[gnu::always_inline]] inline Lanes8 bf16_lanes(U32x8 b) { return bits_as_float(b << 16); }

}  // namespace flashline
