#pragma once
// Number formats of the DeepSeek-V4 inference numerics and the two evaluation modes.
//
// Activations are held as float arrays; a value the model stores in bf16 is a float whose low
// 16 bits are zero. FP8 (e4m3fn) and FP4 (e2m1) values appear as codes (weights) or as floats
// on their grids (quantised activations). Scales are powers of two (UE8M0).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <array>

namespace flashline {

// exact: every fp32 reduction accumulated exactly (double) and rounded once, transcendentals
// evaluated in double and rounded once (the reference definition). fast: fp32 accumulation,
// SIMD, threads. Both are deterministic and batch-invariant: no reduction order depends on
// the batch, the thread count or the placement.
enum class Numerics { Exact, Fast };

inline float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Round to bfloat16, nearest-even; NaN stays a quiet NaN. Result kept as float.
// Branch-free, so that loops of it vectorise.
inline float bf16_round(float x) {
  const uint32_t u = float_to_bits(x);
  const uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  return bits_to_float((u & 0x7FFFFFFFu) > 0x7F800000u ? 0x7FC00000u : r);
}
inline float bf16_to_float(uint16_t b) { return bits_to_float(uint32_t(b) << 16); }
inline uint16_t float_to_bf16_bits(float x) { return uint16_t(float_to_bits(bf16_round(x)) >> 16); }
void bf16_round_inplace(std::span<float> x);

// e4m3fn code -> value (0x7F / 0xFF are NaN).
const float* e4m3_table();
// The same without a table, for the kernels' vector loops: the code's bits placed in the fp32
// exponent and mantissa fields, times the power of two that re-biases the exponent (exact for
// every value, subnormals included); e4m3fn has no infinities, so 0x7F / 0xFF are NaN.
inline float e4m3_value(uint32_t c) {
  const float v = bits_to_float(((c & 0x7Fu) << 20) | ((c & 0x80u) << 24)) * 0x1p120f;
  return (c & 0x7Fu) == 0x7Fu ? bits_to_float(0x7FC00000u) : v;
}
// e2m1 code (4 bits) -> value: 0, .5, 1, 1.5, 2, 3, 4, 6 and their negatives.
extern const float kE2M1Table[16];
// UE8M0 byte e -> 2^(e-127) (0xFF is NaN), built from the bits: exponent field e, or the
// subnormal 2^-127 for e = 0.
inline float e8m0_decode(uint8_t e) {
  if (e == 0) return bits_to_float(0x00400000u);
  if (e == 0xFF) return bits_to_float(0x7FC00000u);
  return bits_to_float(uint32_t(e) << 23);
}

// Round |v| <= 448 onto the e4m3fn grid, nearest-even, subnormals (step 2^-9) included.
float e4m3_round(float v);
// Round |v| <= 6 onto the e2m1 grid, nearest-even.
float e2m1_round(float v);
// 2^ceil(log2(p)) for a positive normal float p.
float pow2_ceil(float p);

// act_quant: per block of `block` values along x, amax = max(max|x|, 1e-4),
// s = pow2_ceil(amax * fp32(1/448)), q = e4m3(clamp(x/s)). q has x.size() values, s has
// x.size()/block values.
void act_quant_fp8(std::span<const float> x, int block, std::span<float> q, std::span<float> s);
// In-place FP8 simulation: bf16(q * s) per block.
void fp8_simulate(std::span<float> x, int block);
// In-place FP4 simulation (indexer): amax floored at 6*2^-126, s = pow2_ceil(amax/6),
// q = e2m1(clamp(x/s, -6, 6)), bf16(q * s).
void fp4_simulate(std::span<float> x, int block);

}  // namespace flashline
