// The inlined short sum, the four-row dot and the 8-head attention scores are the vector
// reductions' results bit for bit, and the vectorised mHC post-mix and collapse and the attention
// value sums are the per-element scalar formulas bit for bit:
// same lanes, same order (negative zeros, infinities, NaN and tails included), and the fp32-weight
// GEMM built on them equals dot() per element.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/hc_rows.h"
#include "kernels/cpu/head_scores.h"
#include "kernels/cpu/reduce.h"

namespace flashline {
namespace {

float special(std::mt19937& g) {
  switch (g() % 8) {
    case 0: return -0.0f;
    case 1: return 0.0f;
    case 2: return bits_to_float(uint32_t(g() % 0x7FFFFF) | (g() % 2 ? 0x80000000u : 0u));  // subnormal
    case 3: return std::ldexp(1.0f, int(g() % 60) - 30) * (g() % 2 ? 1.0f : -1.0f);
    default: return std::normal_distribution<float>(0.0f, 1.0f)(g);
  }
}

bool same(float a, float b) { return float_to_bits(a) == float_to_bits(b) || (std::isnan(a) && std::isnan(b)); }

TEST(ReduceFast, ShortSumInlineEqualsVectorSum) {
  std::mt19937 g(5);
  for (int trial = 0; trial < 20000; ++trial) {
    const int n = int(g() % 9);
    float a[8];
    for (float& v : a) v = special(g);
    if (trial % 97 == 0) a[g() % 8] = INFINITY;
    if (trial % 89 == 0) a[g() % 8] = NAN;
    const float inl = sum(a, n, Numerics::Fast), vec = sum_any(a, n, Numerics::Fast);
    ASSERT_TRUE(same(inl, vec)) << "n " << n << " inline " << inl << " vector " << vec;
  }
  float negz[4] = {-0.0f, -0.0f, -0.0f, -0.0f};
  EXPECT_EQ(float_to_bits(sum(negz, 4, Numerics::Fast)), 0u);  // the lanes start at +0
}

TEST(ReduceFast, FourRowDotEqualsDot) {
  std::mt19937 g(6);
  for (int k : {1, 3, 7, 8, 9, 15, 16, 17, 40, 129, 4096}) {
    std::vector<float> a(k), b(4 * std::size_t(k));
    for (auto& v : a) v = special(g);
    for (auto& v : b) v = special(g);
    float out[4];
    dot4_fast(a.data(), b.data(), b.data() + k, b.data() + 2 * k, b.data() + 3 * k, k, out);
    for (int r = 0; r < 4; ++r)
      EXPECT_TRUE(same(out[r], dot(a.data(), b.data() + std::size_t(r) * k, k, Numerics::Fast))) << "k " << k << " row " << r;
  }
}

TEST(ReduceFast, F32GemmEqualsDotPerElement) {
  std::mt19937 g(8);
  for (auto [m, n, k] : {std::tuple{1, 1, 5}, {2, 3, 24}, {3, 7, 4096}, {5, 24, 1000}}) {
    std::vector<float> x(std::size_t(m) * k), w(std::size_t(n) * k), y(std::size_t(m) * n);
    for (auto& v : x) v = special(g);
    for (auto& v : w) v = special(g);
    gemm_f32(x.data(), m, k, w.data(), n, y.data(), Numerics::Fast);
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j)
        EXPECT_TRUE(same(y[std::size_t(i) * n + j], dot(&x[std::size_t(i) * k], &w[std::size_t(j) * k], k, Numerics::Fast)))
            << m << "x" << n << "x" << k << " element " << i << "," << j;
  }
}

// The mHC post-mix over a whole row equals the element-by-element formula of the scalar path
// (product per term, sum() in fast mode, post * a + sum, bf16 rounding), for every hc up to 8,
// lengths that are not multiples of the vector width, and special values.
TEST(ReduceFast, HcPostRowEqualsScalarFormula) {
  std::mt19937 g(11);
  for (int hc = 1; hc <= 8; ++hc)
    for (int dim : {1, 7, 64, 131}) {
      std::vector<float> a(dim), x(std::size_t(hc) * dim), comb(std::size_t(hc) * hc), post(hc), out(x.size());
      for (auto* v : {&a, &x, &comb, &post})
        for (float& f : *v) f = special(g);
      x[g() % x.size()] = NAN;
      a[g() % a.size()] = INFINITY;
      hc_post_fast_row(a.data(), x.data(), comb.data(), post.data(), hc, dim, out.data());
      for (int k = 0; k < hc; ++k)
        for (int d = 0; d < dim; ++d) {
          float terms[8];
          for (int j = 0; j < hc; ++j) terms[j] = comb[std::size_t(j) * hc + k] * x[std::size_t(j) * dim + d];
          const float want = bf16_round(post[k] * a[d] + sum(terms, hc, Numerics::Fast));
          ASSERT_TRUE(same(out[std::size_t(k) * dim + d], want)) << "hc " << hc << " dim " << dim << " k " << k << " d " << d;
        }
    }
}

TEST(ReduceFast, HcCollapseRowEqualsScalarFormula) {
  std::mt19937 g(13);
  for (int hc = 1; hc <= 8; ++hc)
    for (int dim : {1, 7, 64, 131}) {
      std::vector<float> x(std::size_t(hc) * dim), w(hc), y(dim);
      for (auto* v : {&x, &w})
        for (float& f : *v) f = special(g);
      x[g() % x.size()] = NAN;
      hc_collapse_fast_row(x.data(), w.data(), hc, dim, y.data());
      for (int d = 0; d < dim; ++d) {
        float terms[8];
        for (int j = 0; j < hc; ++j) terms[j] = w[j] * x[std::size_t(j) * dim + d];
        ASSERT_TRUE(same(y[d], bf16_round(sum(terms, hc, Numerics::Fast)))) << "hc " << hc << " dim " << dim << " d " << d;
      }
    }
}

TEST(ReduceFast, HeadScoresEqualDot) {
  if (!head_scores8_available()) GTEST_SKIP() << "needs the AVX-512 level";
  std::mt19937 g(11);
  for (int D : {1, 7, 8, 72, 70, 256}) {
    std::vector<float> q(std::size_t(8) * D), k(D);
    for (float& v : q) v = special(g);
    for (float& v : k) v = special(g);
    float out[8];
    head_scores8(pack_heads8(q.data(), D), k.data(), out);
    for (int h = 0; h < 8; ++h)
      EXPECT_TRUE(same(out[h], dot(q.data() + std::size_t(h) * D, k.data(), D, Numerics::Fast))) << "D " << D << " head " << h;
  }
}

TEST(ReduceFast, HeadValuesEqualScalarFormula) {
  if (!head_scores8_available()) GTEST_SKIP() << "needs the AVX-512 level";
  std::mt19937 g(12);
  for (int D : {5, 16, 72, 70, 256}) {
    const int n = 40, pstride = 64;
    std::vector<float> rows(std::size_t(n) * D), p(std::size_t(8) * pstride), acc(std::size_t(8) * D), alpha(8);
    for (float& v : rows) v = special(g);
    for (float& v : p) v = special(g);
    for (float& v : acc) v = special(g);
    for (float& v : alpha) v = std::abs(special(g));
    std::vector<const float*> ptr(n);
    std::vector<int> b(n);
    for (int i = 0; i < n; ++i) {
      ptr[i] = rows.data() + std::size_t((i * 7) % n) * D;
      b[i] = (i * 5 + 3) % pstride;
    }
    bool active[8] = {true, true, false, true, true, true, false, true};
    std::vector<float> want = acc;
    for (int h = 0; h < 8; ++h) {
      if (!active[h]) continue;
      for (int d = 0; d < D; ++d) {
        float pv = 0.0f;
        for (int i = 0; i < n; ++i) pv += p[h * pstride + b[i]] * ptr[i][d];
        want[std::size_t(h) * D + d] = want[std::size_t(h) * D + d] * alpha[h] + pv;
      }
    }
    head_values8(p.data(), pstride, b.data(), ptr.data(), n, D, alpha.data(), active, acc.data());
    int bad = 0;
    for (std::size_t i = 0; i < acc.size(); ++i) bad += !same(acc[i], want[i]);
    EXPECT_EQ(bad, 0) << "D " << D;
  }
}

}  // namespace
}  // namespace flashline
