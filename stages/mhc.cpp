#include "stages/mhc.h"

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/hc_rows.h"
#include "kernels/cpu/hc_split.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/threads.h"

namespace flashline {
namespace {

// mixes[r] = (X[r] . fn^T) * rsqrt(mean(X[r]^2) + eps) over the flattened copies.
std::vector<float> scaled_mixes(const float* X, HcShape s, const HcParams& p, float eps, Numerics num) {
  const int flat = s.hc * s.dim, mix = int(p.base.size());
  std::vector<float> mixes(std::size_t(s.rows) * mix);
  gemm_f32(X, s.rows, flat, p.fn.data(), mix, mixes.data(), num);
  for (int r = 0; r < s.rows; ++r) {
    const float* xf = X + std::size_t(r) * flat;
    const float rs = rsqrt_f(mean_square(xf, flat, num) + eps, num);
    for (int i = 0; i < mix; ++i) mixes[std::size_t(r) * mix + i] *= rs;
  }
  return mixes;
}

// y[r, d] = bf16(sum_j wts[r, j] * X[r, j, d]), each product rounded to fp32 first.
void weighted_collapse(const float* X, HcShape s, const float* wts, float* y, Numerics num) {
#pragma omp parallel for num_threads(kernel_threads(s.rows)) schedule(static)
  for (int r = 0; r < s.rows; ++r) {
    const float* xr = X + std::size_t(r) * s.hc * s.dim;
    if (num == Numerics::Fast && s.hc <= 8) {
      hc_collapse_fast_row(xr, wts + r * s.hc, s.hc, s.dim, y + std::size_t(r) * s.dim);
      continue;
    }
    std::vector<float> terms(s.hc);  // one term per copy
    for (int d = 0; d < s.dim; ++d) {
      for (int j = 0; j < s.hc; ++j) terms[j] = wts[r * s.hc + j] * xr[std::size_t(j) * s.dim + d];
      y[std::size_t(r) * s.dim + d] = bf16_round(sum(terms.data(), s.hc, num));
    }
  }
}

}  // namespace

void hc_pre(const float* X, HcShape s, const HcParams& p, const ModelConfig& c, float* y, HcWeights& w,
            Numerics num) {
  const auto mixes = scaled_mixes(X, s, p, c.norm_eps, num);
  const int mix = int(p.base.size());
  w.rows = s.rows;
  w.hc = s.hc;
  w.pre.resize(std::size_t(s.rows) * s.hc);
  w.post.resize(std::size_t(s.rows) * s.hc);
  w.comb.resize(std::size_t(s.rows) * s.hc * s.hc);
  for (int r = 0; r < s.rows; ++r)
    hc_split_sinkhorn(mixes.data() + std::size_t(r) * mix, p.scale.data(), p.base.data(), s.hc, c.sinkhorn_iters,
                      c.hc_eps, &w.pre[r * s.hc], &w.post[r * s.hc], &w.comb[std::size_t(r) * s.hc * s.hc], num);
  weighted_collapse(X, s, w.pre.data(), y, num);
}

void hc_post(const float* a, const float* X, HcShape s, const HcWeights& w, float* out, Numerics num) {
#pragma omp parallel for num_threads(kernel_threads(s.rows)) schedule(static)
  for (int r = 0; r < s.rows; ++r) {
    if (num == Numerics::Fast && s.hc <= 8) {
      hc_post_fast_row(a + std::size_t(r) * s.dim, X + std::size_t(r) * s.hc * s.dim, &w.comb[std::size_t(r) * s.hc * s.hc],
                       &w.post[std::size_t(r) * s.hc], s.hc, s.dim, out + std::size_t(r) * s.hc * s.dim);
      continue;
    }
    std::vector<float> terms(s.hc);  // one term per copy
    const float* xr = X + std::size_t(r) * s.hc * s.dim;
    const float* comb = &w.comb[std::size_t(r) * s.hc * s.hc];
    float* o = out + std::size_t(r) * s.hc * s.dim;
    for (int k = 0; k < s.hc; ++k) {
      const float post = w.post[r * s.hc + k];
      for (int d = 0; d < s.dim; ++d) {
        for (int j = 0; j < s.hc; ++j) terms[j] = comb[j * s.hc + k] * xr[std::size_t(j) * s.dim + d];
        o[std::size_t(k) * s.dim + d] = bf16_round(post * a[std::size_t(r) * s.dim + d] + sum(terms.data(), s.hc, num));
      }
    }
  }
}

void hc_head(const float* X, HcShape s, const HcParams& p, const ModelConfig& c, float* y, Numerics num) {
  const auto mixes = scaled_mixes(X, s, p, c.norm_eps, num);
  std::vector<float> pre(std::size_t(s.rows) * s.hc);
  for (int r = 0; r < s.rows; ++r)
    for (int j = 0; j < s.hc; ++j)
      pre[r * s.hc + j] = sigmoid_f(mixes[std::size_t(r) * s.hc + j] * p.scale[0] + p.base[j], num) + c.hc_eps;
  weighted_collapse(X, s, pre.data(), y, num);
}

}  // namespace flashline
