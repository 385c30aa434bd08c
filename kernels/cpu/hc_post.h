#pragma once
// The mHC post-mix of one token (fast numerics): for each copy k and element d,
//   out[k][d] = bf16(post[k] * a[d] + sum_j(comb[j][k] * x[j][d]))
// with the sum in the fast short-sum order of reduce.h (sum(), n <= 8). hc <= 8.
namespace flashline {

void hc_post_fast_row(const float* a, const float* x, const float* comb, const float* post, int hc, int dim,
                      float* out);

}  // namespace flashline
