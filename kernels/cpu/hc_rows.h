#pragma once
// The mHC row kernels of one token (fast numerics), hc <= 8, each sum in the fast short-sum order
// of reduce.h (sum(), n <= 8):
//   post-mix:  out[k][d] = bf16(post[k] * a[d] + sum_j(comb[j][k] * x[j][d]))  for each copy k
//   collapse:  y[d] = bf16(sum_j(w[j] * x[j][d]))
namespace flashline {

void hc_post_fast_row(const float* a, const float* x, const float* comb, const float* post, int hc, int dim,
                      float* out);
void hc_collapse_fast_row(const float* x, const float* w, int hc, int dim, float* y);

}  // namespace flashline
