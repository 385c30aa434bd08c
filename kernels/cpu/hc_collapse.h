#pragma once
// The mHC collapse of one token (fast numerics): for each element d,
//   y[d] = bf16(sum_j(w[j] * x[j][d]))
// with the sum in the fast short-sum order of reduce.h (sum(), n <= 8). hc <= 8.
namespace flashline {

void hc_collapse_fast_row(const float* x, const float* w, int hc, int dim, float* y);

}  // namespace flashline
