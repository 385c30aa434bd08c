#pragma once
// fp32 reductions in the two numerics modes. Exact: the terms (already rounded to fp32) are
// summed in double and the result rounded once (the accumulator starts at +0.0). Fast: eight
// fp32 partial sums in a fixed lane order, combined in a fixed tree, so the result depends only
// on the inputs, never on threads or batch composition.
#include <cstdint>

#include "kernels/cpu/numerics.h"

namespace flashline {

float dot(const float* a, const float* b, int n, Numerics m);
float sum(const float* a, int n, Numerics m);
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
