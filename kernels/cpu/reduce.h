#pragma once
// fp32 reductions in the two numerics modes. Exact: the terms (already rounded to fp32) are
// summed in double and the result rounded once (the accumulator starts at +0.0). Fast: eight
// fp32 partial sums in a fixed lane order, combined in a fixed tree, so the result depends only
// on the inputs, never on threads or batch composition.
#include <cstdint>

#include "kernels/cpu/numerics.h"

namespace flashline {

float dot(const float* a, const float* b, int n, Numerics m);
// Fast mode, four dots with one a: out[r] = dot(a, b_r, n, Fast) bit for bit (the same lanes in the
// same order), with four independent accumulators per pass over a.
void dot4_fast(const float* a, const float* b0, const float* b1, const float* b2, const float* b3, int n, float* out);
float sum_any(const float* a, int n, Numerics m);
// Short sums (the hc_mult terms of mHC, per element) inline: the fast result for n <= 8 is the
// same sequence of operations as the vector code (lanes start at +0, take a[0..n-1], then the
// fixed tree and + 0), without a call per element.
inline float sum(const float* a, int n, Numerics m) {
  if (m == Numerics::Fast && n >= 0 && n <= 8) {
    float p[8];
    for (int j = 0; j < 8; ++j) p[j] = 0.0f + (j < n ? a[j] : 0.0f);
    return (((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]))) + 0.0f;
  }
  return sum_any(a, n, m);
}
// sum(a) / n, rounded once in exact mode.
float mean(const float* a, int n, Numerics m);
// mean of a[i]^2 (each square rounded to fp32 first, as the reference squares in fp32).
float mean_square(const float* a, int n, Numerics m);

// Transcendentals: exact mode evaluates in double and rounds once (correctly rounded except in
// vanishingly rare double-rounding cases); fast mode uses the fp32 library functions.
float exp_f(float x, Numerics m);
float sigmoid_f(float x, Numerics m);
float silu_f(float x, Numerics m);
float rsqrt_f(float x, Numerics m);
float sqrt_f(float x, Numerics m);
float softplus_f(float x, Numerics m);  // x for x > 20

}  // namespace flashline
