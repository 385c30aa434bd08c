#include "kernels/cpu/sparse_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/reduce.h"
#include "kernels/cpu/threads.h"

namespace flashline {

namespace {

inline const float* kv_row(const SparseAttentionArgs& a, int r) {
  return r < a.N ? a.kv + std::size_t(r) * a.D : a.kv2 + std::size_t(r - a.N) * a.D;
}

}  // namespace

void sparse_attention(const SparseAttentionArgs& a, float* out, Numerics num) {
  constexpr int kChunk = 64;
  const float neg_inf = -std::numeric_limits<float>::infinity();
#pragma omp parallel num_threads(kernel_threads())
  {
    std::vector<float> s(kChunk), p(kChunk), acc(a.D), pv(a.D);
    std::vector<double> pv64(a.D);
#pragma omp for collapse(2) schedule(static)
    for (int i = 0; i < a.S; ++i)
      for (int h = 0; h < a.H; ++h) {
        const float* q = a.q + (std::size_t(i) * a.H + h) * a.D;
        const int32_t* idx = a.idx + std::size_t(i) * a.T;
        float m = neg_inf, l = 0.0f;
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int c0 = 0; c0 < a.T; c0 += kChunk) {
          const int nc = std::min(kChunk, a.T - c0);
          float smax = neg_inf;
          for (int b = 0; b < nc; ++b) {
            int r = idx[c0 + b];
            s[b] = r < 0 ? neg_inf : dot(q, kv_row(a, r), a.D, num) * a.scale;
            smax = std::max(smax, s[b]);
          }
          const float m_new = std::max(m, smax);
          if (m_new == neg_inf) continue;  // nothing valid yet: the chunk changes nothing
          const float alpha = exp_f(m - m_new, num);
          for (int b = 0; b < nc; ++b) p[b] = exp_f(s[b] - m_new, num);
          l = l * alpha + sum(p.data(), nc, num);
          // PV product with p rounded to bf16; exact mode sums each output dim in double.
          if (num == Numerics::Exact) {
            std::fill(pv64.begin(), pv64.end(), 0.0);
            for (int b = 0; b < nc; ++b) {
              int r = idx[c0 + b];
              if (r < 0) continue;
              const double pb = bf16_round(p[b]);
              const float* k = kv_row(a, r);
              for (int d = 0; d < a.D; ++d) pv64[d] += pb * double(k[d]);
            }
            for (int d = 0; d < a.D; ++d) pv[d] = float(pv64[d] + 0.0);
          } else {
            std::fill(pv.begin(), pv.end(), 0.0f);
            for (int b = 0; b < nc; ++b) {
              int r = idx[c0 + b];
              if (r < 0) continue;
              const float pb = bf16_round(p[b]);
              const float* k = kv_row(a, r);
              for (int d = 0; d < a.D; ++d) pv[d] += pb * k[d];
            }
          }
          for (int d = 0; d < a.D; ++d) acc[d] = acc[d] * alpha + pv[d];
          m = m_new;
        }
        l = l + exp_f(a.sink[h] - m, num);
        float* o = out + (std::size_t(i) * a.H + h) * a.D;
        for (int d = 0; d < a.D; ++d) o[d] = bf16_round(acc[d] / l);
      }
  }
}

}  // namespace flashline
