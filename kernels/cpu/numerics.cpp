#include "kernels/cpu/numerics.h"

#include <algorithm>
#include <array>

namespace flashline {
namespace {

std::array<float, 256> make_e4m3_table() {
  std::array<float, 256> t{};
  for (int b = 0; b < 256; ++b) {
    float s = (b & 0x80) ? -1.0f : 1.0f;
    int e = (b >> 3) & 0xF, m = b & 7;
    if (e == 15 && m == 7)
      t[b] = std::nanf("");
    else if (e == 0)
      t[b] = s * std::ldexp(float(m), -9);
    else
      t[b] = s * std::ldexp(1.0f + m / 8.0f, e - 7);
  }
  return t;
}

// Round-half-even of a/q*q for a grid spacing q (a power of two), all in double (exact).
inline double round_to_grid(double a, double q) { return std::nearbyint(a / q) * q; }

}  // namespace

const float* e4m3_table() {
  static const std::array<float, 256> table = make_e4m3_table();
  return table.data();
}

const float kE2M1Table[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                              -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

void bf16_round_inplace(std::span<float> x) {
  for (auto& v : x) v = bf16_round(v);
}

float e4m3_round(float v) {
  double a = std::fabs(double(v));
  if (a == 0.0) return v;
  int ex;
  std::frexp(a, &ex);                  // a = m * 2^ex, m in [0.5, 1)
  int lead = std::max(ex - 1, -6);     // exponent of the leading bit; min normal 2^-6
  double r = round_to_grid(a, std::ldexp(1.0, lead - 3));
  return float(std::copysign(r, double(v)));
}

float e2m1_round(float v) {
  double a = std::fabs(double(v));
  double q = a < 2 ? 0.5 : (a < 4 ? 1.0 : 2.0);
  return float(std::copysign(round_to_grid(a, q), double(v)));
}

float pow2_ceil(float p) {
  int e;
  float m = std::frexp(p, &e);  // p = m * 2^e, m in [0.5, 1)
  if (m == 0.5f) e -= 1;        // an exact power of two keeps its exponent
  return std::ldexp(1.0f, e);
}

void act_quant_fp8(std::span<const float> x, int block, std::span<float> q, std::span<float> s) {
  const float inv448 = float(1.0 / 448.0);
  for (std::size_t b = 0; b * block < x.size(); ++b) {
    const float* xb = x.data() + b * block;
    float amax = 0.0f;
    for (int i = 0; i < block; ++i) amax = std::max(amax, std::fabs(xb[i]));
    amax = std::max(amax, 1e-4f);
    float sc = pow2_ceil(amax * inv448);
    s[b] = sc;
    for (int i = 0; i < block; ++i) q[b * block + i] = e4m3_round(std::clamp(xb[i] / sc, -448.0f, 448.0f));
  }
}

void fp8_simulate(std::span<float> x, int block) {
  const float inv448 = float(1.0 / 448.0);
  for (std::size_t b = 0; b * block < x.size(); ++b) {
    float* xb = x.data() + b * block;
    float amax = 0.0f;
    for (int i = 0; i < block; ++i) amax = std::max(amax, std::fabs(xb[i]));
    float sc = pow2_ceil(std::max(amax, 1e-4f) * inv448);
    for (int i = 0; i < block; ++i) xb[i] = bf16_round(e4m3_round(std::clamp(xb[i] / sc, -448.0f, 448.0f)) * sc);
  }
}

void fp4_simulate(std::span<float> x, int block) {
  const float inv6 = float(1.0 / 6.0);
  const float floor_amax = float(6.0 * std::ldexp(1.0, -126));
  for (std::size_t b = 0; b * block < x.size(); ++b) {
    float* xb = x.data() + b * block;
    float amax = 0.0f;
    for (int i = 0; i < block; ++i) amax = std::max(amax, std::fabs(xb[i]));
    float sc = pow2_ceil(std::max(amax, floor_amax) * inv6);
    for (int i = 0; i < block; ++i) xb[i] = bf16_round(e2m1_round(std::clamp(xb[i] / sc, -6.0f, 6.0f)) * sc);
  }
}

}  // namespace flashline
