// fast kernels against their exact counterparts on random inputs. The bounds are those of fp32
// accumulation: summing n products in fp32 in any order errs by at most gamma_n * sum|a_i b_i|
// with gamma_n = n u / (1 - n u), u = 2^-24; a bf16 output may in addition round to the
// neighbouring bf16 value (one bf16 ulp, 2^-8 relative).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/hadamard.h"
#include "kernels/cpu/hc_split.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/rms_norm.h"
#include "kernels/cpu/sparse_attention.h"

namespace flashline {
namespace {

constexpr double kU = 1.0 / (1 << 24);
double gamma_n(int n) { return n * kU / (1 - n * kU); }
double bf16_ulp(double v) { return std::ldexp(1.0, std::ilogb(std::max(std::abs(v), 1e-30)) - 7); }

struct Rng {
  std::mt19937 g{1234};
  float normal(float sd = 1.0f) { return std::normal_distribution<float>(0.0f, sd)(g); }
  std::vector<float> bf16_vector(std::size_t n, float sd = 1.0f) {
    std::vector<float> v(n);
    for (auto& x : v) x = bf16_round(normal(sd));
    return v;
  }
  std::vector<uint8_t> bytes(std::size_t n, int lo, int hi) {
    std::vector<uint8_t> v(n);
    for (auto& b : v) b = uint8_t(std::uniform_int_distribution<int>(lo, hi)(g));
    return v;
  }
};

TEST(KernelModes, DotAndSum) {
  Rng r;
  for (int n : {1, 7, 64, 1000, 4096}) {
    auto a = r.bf16_vector(n), b = r.bf16_vector(n);
    double abs_sum = 0;
    for (int i = 0; i < n; ++i) abs_sum += std::abs(double(a[i]) * b[i]);
    const float e = dot(a.data(), b.data(), n, Numerics::Exact), f = dot(a.data(), b.data(), n, Numerics::Fast);
    EXPECT_LE(std::abs(double(e) - f), gamma_n(n) * abs_sum + kU * std::abs(e)) << n;
    double s_abs = 0;
    for (float x : a) s_abs += std::abs(x);
    const float se = sum(a.data(), n, Numerics::Exact), sf = sum(a.data(), n, Numerics::Fast);
    EXPECT_LE(std::abs(double(se) - sf), gamma_n(n) * s_abs + kU * std::abs(se)) << n;
  }
}

TEST(KernelModes, Fp8AndFp4Gemm) {
  Rng r;
  const int m = 5, n = 130, k = 512;
  auto x = r.bf16_vector(std::size_t(m) * k, 3.0f);
  auto codes = r.bytes(std::size_t(n) * k, 0, 0x7E);  // no NaN codes
  for (std::size_t i = 0; i < codes.size(); i += 2) codes[i] |= 0x80;
  auto scales = r.bytes(std::size_t((n + 127) / 128) * (k / 128), 118, 126);
  auto xq = quantize_rows(x.data(), m, k);
  Fp8Weight w8{codes.data(), scales.data(), n, k};
  std::vector<float> ye(std::size_t(m) * n), yf(ye.size());
  gemm_fp8(xq, w8, ye.data(), Numerics::Exact);
  gemm_fp8(xq, w8, yf.data(), Numerics::Fast);
  auto deq = dequantize_fp8(w8);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double abs_sum = 0;
      for (int t = 0; t < k; ++t) abs_sum += std::abs(double(xq.q[i * k + t]) * xq.s[i * (k / 128) + t / 128] * deq[j * k + t]);
      const double e = ye[i * n + j], f = yf[i * n + j];
      EXPECT_LE(std::abs(e - f), 2 * gamma_n(128) * abs_sum + bf16_ulp(e)) << i << "," << j;
    }
  auto codes4 = r.bytes(std::size_t(n) * k / 2, 0, 255);
  auto scales4 = r.bytes(std::size_t(n) * k / 32, 120, 127);
  Fp4Weight w4{codes4.data(), scales4.data(), n, k};
  gemm_fp4(xq, w4, ye.data(), Numerics::Exact);
  gemm_fp4(xq, w4, yf.data(), Numerics::Fast);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double abs_sum = 0;
      for (int t = 0; t < k; ++t) {
        const uint8_t byte = codes4[(std::size_t(j) * k + t) / 2];
        const float wv = kE2M1Table[t % 2 ? byte >> 4 : byte & 0xF] * e8m0_decode(scales4[j * (k / 32) + t / 32]);
        abs_sum += std::abs(double(xq.q[i * k + t]) * xq.s[i * (k / 128) + t / 128] * wv);
      }
      const double e = ye[i * n + j], f = yf[i * n + j];
      EXPECT_LE(std::abs(e - f), 2 * gamma_n(32) * abs_sum + bf16_ulp(e)) << i << "," << j;
    }
}

TEST(KernelModes, Fp32Gemm) {
  Rng r;
  const int m = 3, n = 40, k = 1024;
  auto x = r.bf16_vector(std::size_t(m) * k), w = r.bf16_vector(std::size_t(n) * k, 0.05f);
  std::vector<float> ye(m * n), yf(m * n);
  gemm_f32(x.data(), m, k, w.data(), n, ye.data(), Numerics::Exact);
  gemm_f32(x.data(), m, k, w.data(), n, yf.data(), Numerics::Fast);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double abs_sum = 0;
      for (int t = 0; t < k; ++t) abs_sum += std::abs(double(x[i * k + t]) * w[j * k + t]);
      EXPECT_LE(std::abs(double(ye[i * n + j]) - yf[i * n + j]), gamma_n(k) * abs_sum + kU * std::abs(ye[i * n + j]));
    }
}

TEST(KernelModes, NormHadamardSinkhorn) {
  Rng r;
  auto x = r.bf16_vector(4096, 2.0f), w = r.bf16_vector(4096, 0.3f);
  std::vector<float> e(4096), f(4096);
  rms_norm(x.data(), 4096, w.data(), 1e-6f, e.data(), Numerics::Exact);
  rms_norm(x.data(), 4096, w.data(), 1e-6f, f.data(), Numerics::Fast);
  for (int i = 0; i < 4096; ++i) EXPECT_LE(std::abs(e[i] - f[i]), bf16_ulp(e[i])) << i;

  auto h = r.bf16_vector(128), he = h, hf = h;
  hadamard_bf16(he.data(), 128, Numerics::Exact);
  hadamard_bf16(hf.data(), 128, Numerics::Fast);
  double s_abs = 0;
  for (float v : h) s_abs += std::abs(v);
  for (int i = 0; i < 128; ++i)
    EXPECT_LE(std::abs(he[i] - hf[i]), bf16_ulp(he[i]) + gamma_n(7) * s_abs / std::sqrt(128.0)) << i;

  const int hc = 4, mix = 24;
  auto mixes = r.bf16_vector(mix), base = r.bf16_vector(mix, 0.2f);
  std::vector<float> scale{0.4f, 0.6f, 1.2f};
  float pe[4], po[4], ce[16], pf[4], pof[4], cf[16];
  hc_split_sinkhorn(mixes.data(), scale.data(), base.data(), hc, 20, 1e-6f, pe, po, ce, Numerics::Exact);
  hc_split_sinkhorn(mixes.data(), scale.data(), base.data(), hc, 20, 1e-6f, pf, pof, cf, Numerics::Fast);
  // 20 iterations of 8 fp32 normalisations: error stays within a few hundred ulps
  for (int i = 0; i < hc; ++i) {
    EXPECT_NEAR(pe[i], pf[i], 4 * kU);
    EXPECT_NEAR(po[i], pof[i], 8 * kU);
  }
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(ce[i], cf[i], 512 * kU);
}

// Random queries, kv rows and sinks; an index list with some -1 entries over two kv sources (the
// first 100 rows, then the rest).
struct AttentionCase {
  int S, H, D, N, T;
  std::vector<float> q, kv, sink;
  std::vector<int32_t> idx;
  AttentionCase(Rng& r, int s, int h, int d, int n, int t)
      : S(s), H(h), D(d), N(n), T(t), q(r.bf16_vector(std::size_t(s) * h * d)), kv(r.bf16_vector(std::size_t(n) * d)),
        sink(r.bf16_vector(h)), idx(std::size_t(s) * t) {
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = (i * 7919) % 11 == 0 ? -1 : int32_t((i * 31) % n);
  }
  SparseAttentionArgs args() const {
    return {q.data(), S, H, D, kv.data(), 100, kv.data() + 100 * D, N - 100, sink.data(), idx.data(), T,
            float(1.0 / std::sqrt(double(D)))};
  }
};

TEST(KernelModes, SparseAttention) {
  Rng r;
  const AttentionCase c(r, 9, 3, 128, 150, 140);
  const SparseAttentionArgs a = c.args();
  std::vector<float> e(c.q.size()), f(c.q.size());
  sparse_attention(a, e.data(), Numerics::Exact);
  sparse_attention(a, f.data(), Numerics::Fast);
  // the output is a convex combination of kv rows: bound by one bf16 ulp of the largest kv
  // magnitude plus fp32 accumulation over T entries
  double kv_max = 0;
  for (float v : c.kv) kv_max = std::max(kv_max, double(std::abs(v)));
  for (std::size_t i = 0; i < e.size(); ++i)
    EXPECT_LE(std::abs(e[i] - f[i]), bf16_ulp(e[i]) + 4 * gamma_n(c.T) * kv_max) << i;
}

// Fast mode computes heads in groups that share each K=V row; a head's output must be the one it
// gets alone (H = 1), bit for bit: head counts that leave partial groups, D with a tail of 8-lane
// steps, and a query whose first chunk holds no valid entry.
void expect_heads_alone(int d) {
  Rng r;
  AttentionCase c(r, 3, 11, d, 150, 140);
  for (int b = 0; b < 70; ++b) c.idx[b] = -1;
  const SparseAttentionArgs a = c.args();
  const int S = c.S, H = c.H, D = c.D;
  std::vector<float> all(c.q.size());
  sparse_attention(a, all.data(), Numerics::Fast);
  for (int h = 0; h < H; ++h) {
    std::vector<float> qh(std::size_t(S) * D), oh(qh.size());
    for (int i = 0; i < S; ++i) std::copy_n(c.q.data() + (std::size_t(i) * H + h) * D, D, qh.data() + std::size_t(i) * D);
    SparseAttentionArgs one = a;
    one.q = qh.data();
    one.H = 1;
    one.sink = c.sink.data() + h;
    sparse_attention(one, oh.data(), Numerics::Fast);
    for (int i = 0; i < S; ++i)
      EXPECT_EQ(0, std::memcmp(oh.data() + std::size_t(i) * D, all.data() + (std::size_t(i) * H + h) * D, D * sizeof(float)))
          << "query " << i << " head " << h;
  }
}

TEST(KernelModes, SparseAttentionFastHeadEqualsHeadAlone) {
  for (int d : {72, 70}) {  // D with and without a partial 8-lane step
    SCOPED_TRACE("D " + std::to_string(d));
    expect_heads_alone(d);
  }
}

}  // namespace
}  // namespace flashline
