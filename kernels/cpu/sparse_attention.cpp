#include "kernels/cpu/sparse_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include "kernels/cpu/head_scores.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/simd.h"
#include "kernels/cpu/threads.h"

namespace flashline {

namespace {

inline const float* kv_row(const SparseAttentionArgs& a, int r) {
  return r < a.N ? a.kv + std::size_t(r) * a.D : a.kv2 + std::size_t(r - a.N) * a.D;
}

// Element-wise fast-mode steps, vectorised: each element gets the scalar loop's operations (one
// fp32 rounding per product and per sum; the build never contracts them into FMAs).
FLASHLINE_ELEMENTWISE_CLONES
void axpy(float* y, float p, const float* x, int n) {
  for (int d = 0; d < n; ++d) y[d] += p * x[d];
}

FLASHLINE_ELEMENTWISE_CLONES
void rescale_add(float* acc, float alpha, const float* pv, int n) {
  for (int d = 0; d < n; ++d) acc[d] = acc[d] * alpha + pv[d];
}

constexpr int kChunk = 64;

// Heads h0 .. h0 + g - 1 of query i together: all heads of a query share its index list and the
// single K=V row of each entry, so each row is read once for the group. Per head the operations
// are those of one head alone: the scores are dot() (dot4_fast and head_scores8 are its fast
// result bit for bit), the softmax runs per head, and the PV sums run per head in entry order
// (exact mode: in double, rounded once).
struct Scratch {
  std::vector<float> s, p, acc, pv, m, l, alpha;
  std::vector<double> pv64;
  std::vector<const float*> rows;  // a chunk's valid K=V rows and their entry numbers
  std::vector<int> cols;
  explicit Scratch(int g, int d)
      : s(std::size_t(g) * kChunk), p(s.size()), acc(std::size_t(g) * d), pv(acc.size()), m(g), l(g), alpha(g),
        pv64(d), rows(kChunk), cols(kChunk) {}
};

void attend(const SparseAttentionArgs& a, int i, int h0, int g, Scratch& w, float* out, Numerics num) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const bool fast = num == Numerics::Fast;
  const int D = a.D;
  const float* q = a.q + (std::size_t(i) * a.H + h0) * D;
  const int32_t* idx = a.idx + std::size_t(i) * a.T;
  // A full group of 8 on AVX-512: two heads per register for the scores, the values 16 wide.
  std::optional<PackedHeads8> packed;
  if (fast && g == 8 && head_scores8_available()) packed = pack_heads8(q, D);
  std::fill(w.m.begin(), w.m.end(), neg_inf);
  std::fill(w.l.begin(), w.l.end(), 0.0f);
  std::fill(w.acc.begin(), w.acc.end(), 0.0f);
  for (int c0 = 0; c0 < a.T; c0 += kChunk) {
    const int nc = std::min(kChunk, a.T - c0);
    for (int b = 0; b < nc; ++b) {
      const int r = idx[c0 + b];
      if (r < 0) {
        for (int h = 0; h < g; ++h) w.s[h * kChunk + b] = neg_inf;
        continue;
      }
      const float* k = kv_row(a, r);
      if (packed) {
        float d8[8];
        head_scores8(*packed, k, d8);
        for (int h = 0; h < 8; ++h) w.s[h * kChunk + b] = d8[h] * a.scale;
        continue;
      }
      int h = 0;
      for (; fast && h + 4 <= g; h += 4) {
        float d4[4];
        const float* qh = q + std::size_t(h) * D;
        dot4_fast(k, qh, qh + D, qh + 2 * D, qh + 3 * D, D, d4);
        for (int j = 0; j < 4; ++j) w.s[(h + j) * kChunk + b] = d4[j] * a.scale;
      }
      for (; h < g; ++h) w.s[h * kChunk + b] = dot(q + std::size_t(h) * D, k, D, num) * a.scale;
    }
    bool any = false;
    for (int h = 0; h < g; ++h) {
      const float* sh = w.s.data() + h * kChunk;
      float* ph = w.p.data() + h * kChunk;
      float smax = neg_inf;
      for (int b = 0; b < nc; ++b) smax = std::max(smax, sh[b]);
      const float m_new = std::max(w.m[h], smax);
      if (m_new == neg_inf) {  // nothing valid yet: the chunk changes nothing for this head
        w.alpha[h] = 0.0f;
        std::fill(ph, ph + nc, 0.0f);
        continue;
      }
      any = true;
      w.alpha[h] = exp_f(w.m[h] - m_new, num);
      for (int b = 0; b < nc; ++b) ph[b] = exp_f(sh[b] - m_new, num);
      w.l[h] = w.l[h] * w.alpha[h] + sum(ph, nc, num);
      w.m[h] = m_new;
      for (int b = 0; b < nc; ++b) ph[b] = bf16_round(ph[b]);  // PV takes p rounded to bf16
    }
    if (!any) continue;
    int n = 0;  // the chunk's valid rows
    for (int b = 0; b < nc; ++b) {
      if (idx[c0 + b] < 0) continue;
      w.rows[n] = kv_row(a, idx[c0 + b]);
      w.cols[n++] = b;
    }
    if (packed) {
      bool active[8];
      for (int h = 0; h < 8; ++h) active[h] = w.m[h] != neg_inf;
      head_values8(w.p.data(), kChunk, w.cols.data(), w.rows.data(), n, D, w.alpha.data(), active, w.acc.data());
      continue;
    }
    for (int h = 0; h < g; ++h) {
      if (w.m[h] == neg_inf) continue;
      const float* ph = w.p.data() + h * kChunk;
      float* acc = w.acc.data() + std::size_t(h) * D;
      if (fast) {
        float* pv = w.pv.data() + std::size_t(h) * D;
        std::fill(pv, pv + D, 0.0f);
        for (int j = 0; j < n; ++j) axpy(pv, ph[w.cols[j]], w.rows[j], D);
        rescale_add(acc, w.alpha[h], pv, D);
      } else {
        std::fill(w.pv64.begin(), w.pv64.end(), 0.0);
        for (int j = 0; j < n; ++j)
          for (int d = 0; d < D; ++d) w.pv64[d] += double(ph[w.cols[j]]) * double(w.rows[j][d]);
        for (int d = 0; d < D; ++d) acc[d] = acc[d] * w.alpha[h] + float(w.pv64[d] + 0.0);
      }
    }
  }
  for (int h = 0; h < g; ++h) {
    const float l = w.l[h] + exp_f(a.sink[h0 + h] - w.m[h], num);
    float* o = out + (std::size_t(i) * a.H + h0 + h) * D;
    const float* acc = w.acc.data() + std::size_t(h) * D;
    for (int d = 0; d < D; ++d) o[d] = bf16_round(acc[d] / l);
  }
}

}  // namespace

void sparse_attention(const SparseAttentionArgs& a, float* out, Numerics num) {
  // Fast mode: groups of 8 heads, so a K=V row is reused 8 times from L1 and a decode step of one
  // query still splits over the threads. Exact mode: one head per piece of work (its double
  // sums are the cost).
  const int G = num == Numerics::Fast ? 8 : 1;
  const int groups = (a.H + G - 1) / G;
#pragma omp parallel num_threads(kernel_threads(a.S * groups))
  {
    Scratch w(G, a.D);
#pragma omp for collapse(2) schedule(static)
    for (int i = 0; i < a.S; ++i)
      for (int gi = 0; gi < groups; ++gi) attend(a, i, gi * G, std::min(G, a.H - gi * G), w, out, num);
  }
}

}  // namespace flashline
