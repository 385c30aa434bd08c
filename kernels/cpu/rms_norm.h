#pragma once
#include "kernels/cpu/numerics.h"

namespace flashline {

// RMSNorm of one row: r = rsqrt(mean(x^2) + eps) in fp32, out = bf16(w * (x * r)).
// `out` may alias `x`.
void rms_norm(const float* x, int n, const float* w, float eps, float* out, Numerics num);
// Rows of a row-major [m, n] matrix.
void rms_norm_rows(const float* x, int m, int n, const float* w, float eps, float* out, Numerics num);

}  // namespace flashline
