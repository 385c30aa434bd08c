// Fast-mode quantised and bf16 GEMMs on every instruction-set path this CPU runs (lower ones
// forced with set_isa): FP4 bit-identical to exact mode (its block dots are exact), FP8 and BF16
// within the fp32 accumulation bound, all of them batch-invariant (a token's output bit-identical
// alone and inside larger batches, at 1, 2 and 3 threads).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/isa.h"

namespace flashline {
namespace {

constexpr double kU = 1.0 / (1 << 24);
double gamma_n(int n) { return n * kU / (1 - n * kU); }
double bf16_ulp(double v) { return std::ldexp(1.0, std::ilogb(std::max(std::abs(v), 1e-30)) - 7); }

std::vector<Isa> isas() {
  std::vector<Isa> v;
  for (Isa i : {Isa::Avx512, Isa::Avx2, Isa::Portable})
    if (i <= detected_isa()) v.push_back(i);
  return v;
}

// Forces an instruction-set level for a scope.
struct IsaScope {
  Isa saved = active_isa();
  explicit IsaScope(Isa isa) { set_isa(isa); }
  ~IsaScope() { set_isa(saved); }
};

struct Rng {
  std::mt19937 g{99};
  float normal(float sd = 1.0f) { return std::normal_distribution<float>(0.0f, sd)(g); }
  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(g); }
  std::vector<float> bf16_vector(std::size_t n, float sd = 1.0f) {
    std::vector<float> v(n);
    for (auto& x : v) x = bf16_round(normal(sd));
    return v;
  }
  std::vector<uint8_t> bytes(std::size_t n, int lo, int hi) {
    std::vector<uint8_t> v(n);
    for (auto& b : v) b = uint8_t(uniform(lo, hi));
    return v;
  }
};

bool same_bits(float a, float b) { return float_to_bits(a) == float_to_bits(b); }

// Activation rows whose act_quant hits the extremes: per 128 block one value at +-448 (scale 1
// after quantisation), the rest e4m3 subnormals, zeros, +-448 and random grid values.
std::vector<float> adversarial_rows(Rng& r, int m, int k) {
  std::vector<float> x(std::size_t(m) * k);
  const float* t = e4m3_table();
  for (std::size_t i = 0; i < x.size(); ++i) {
    switch (r.uniform(0, 5)) {
      case 0: x[i] = 0.0f; break;
      case 1: x[i] = r.uniform(0, 1) ? 448.0f : -448.0f; break;
      case 2: x[i] = t[r.uniform(1, 7)] * (r.uniform(0, 1) ? 1.0f : -1.0f); break;  // e4m3 subnormals
      default: x[i] = t[r.uniform(0, 0x7E)] * (r.uniform(0, 1) ? 1.0f : -1.0f);
    }
    if (i % 128 == 0) x[i] = 448.0f;
  }
  return x;
}

struct Fp4Case {
  std::vector<uint8_t> codes, scales;
  Fp4Weight w() const { return {codes.data(), scales.data(), n, k}; }
  int n, k;
};

// --- FP4: fast == exact, bit for bit ---------------------------------------------------------

void expect_fp4_identical(const QuantizedRows& xq, const Fp4Weight& w, const std::string& what) {
  std::vector<float> ye(std::size_t(xq.m) * w.n), yf(ye.size(), -1.0f);
  gemm_fp4(xq, w, ye.data(), Numerics::Exact);
  for (Isa isa : isas()) {
    IsaScope scope(isa);
    std::fill(yf.begin(), yf.end(), -1.0f);
    gemm_fp4(xq, w, yf.data(), Numerics::Fast);
    int bad = 0;
    for (std::size_t i = 0; i < ye.size(); ++i)
      if (!same_bits(ye[i], yf[i]) && bad++ < 5)
        ADD_FAILURE() << what << " isa " << isa_name(isa) << " element " << i << ": exact " << ye[i] << " fast " << yf[i];
    EXPECT_EQ(bad, 0) << what << " isa " << isa_name(isa);
  }
}

TEST(GemmFast, Fp4RandomEqualsExact) {
  Rng r;
  for (auto [m, n, k] : {std::tuple{1, 37, 128}, {3, 130, 384}, {5, 64, 640}, {12, 24, 256}, {17, 33, 2048}, {2, 16, 4096}}) {
    auto x = r.bf16_vector(std::size_t(m) * k, 3.0f);
    auto xq = quantize_rows(x.data(), m, k);
    Fp4Case c{r.bytes(std::size_t(n) * k / 2, 0, 255), r.bytes(std::size_t(n) * k / 32, 110, 135), n, k};
    expect_fp4_identical(xq, c.w(), "random m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k));
  }
}

TEST(GemmFast, Fp4AdversarialEqualsExact) {
  Rng r;
  const int m = 20, n = 35, k = 512;  // a token-lane group of 16 and a row-lane pass of 4
  auto x = adversarial_rows(r, m, k);
  auto xq = quantize_rows(x.data(), m, k);
  // max codes everywhere (+6 / -6): the largest block dots the integer path must hold
  Fp4Case big{std::vector<uint8_t>(std::size_t(n) * k / 2, 0x77), std::vector<uint8_t>(std::size_t(n) * k / 32, 127), n, k};
  for (std::size_t i = 0; i < big.codes.size(); i += 3) big.codes[i] = 0xFF;
  expect_fp4_identical(xq, big.w(), "max codes");
  auto ones = std::vector<float>(std::size_t(m) * k, 448.0f);
  expect_fp4_identical(quantize_rows(ones.data(), m, k), big.w(), "all 448 x all 6");
  // zeros: zero codes, zero activations
  Fp4Case zero{std::vector<uint8_t>(std::size_t(n) * k / 2, 0), std::vector<uint8_t>(std::size_t(n) * k / 32, 127), n, k};
  expect_fp4_identical(xq, zero.w(), "zero weights");
  auto zx = std::vector<float>(std::size_t(m) * k, 0.0f);
  expect_fp4_identical(quantize_rows(zx.data(), m, k), big.w(), "zero activations");
  // subnormal and tiny scales (e8m0 bytes 0..3), huge scales (up to 254, overflow to inf)
  Fp4Case tiny{r.bytes(std::size_t(n) * k / 2, 0, 255), r.bytes(std::size_t(n) * k / 32, 0, 3), n, k};
  expect_fp4_identical(xq, tiny.w(), "subnormal scales");
  auto xs = r.bf16_vector(std::size_t(m) * k, 1e-30f);
  expect_fp4_identical(quantize_rows(xs.data(), m, k), tiny.w(), "tiny activations, subnormal scales");
  Fp4Case huge{r.bytes(std::size_t(n) * k / 2, 0, 255), r.bytes(std::size_t(n) * k / 32, 240, 254), n, k};
  auto xl = r.bf16_vector(std::size_t(m) * k, 1e30f);
  expect_fp4_identical(quantize_rows(xl.data(), m, k), huge.w(), "huge activations, huge scales");
}

// The token kernel's long chains (each block's even and odd pairs in one fp32 chain each, when
// 12 * sum|a| over a chain's inputs stays below 2^24): per chain, `big` activations at 448
// (a = 448 * 2^9) against weight 6 (2 * e2m1 = 12), the rest at 2^-9 (a = 1) against weight 1.5
// (3, odd, so a sum past 2^24 would round), one sign per chain. 6 big ones stay inside the
// bound, 7 do not (the short chains must take them); a bound set too loose makes the 7 case
// differ from exact (checked).
TEST(GemmFast, Fp4TokenChainBound) {
  const int m = 16, n = 16, k = 256;
  auto is_big = [](int t, int big) {  // chain c = (t / 2) % 2 takes inputs 4j + 2c + {0, 1}
    const int j = t / 4, within = t % 2;
    return j < big && within == (j & 1);
  };
  for (int big : {6, 7}) {
    std::vector<float> x(std::size_t(m) * k);
    for (int i = 0; i < m; ++i)
      for (int t = 0; t < k; ++t)
        // the chains' big terms cancel, so that a rounded partial sum would show in the bf16 result
        x[std::size_t(i) * k + t] = is_big(t % 32, big) ? ((i + t / 2) % 2 ? 448.0f : -448.0f) : 0x1p-9f;
    Fp4Case c{std::vector<uint8_t>(std::size_t(n) * k / 2), std::vector<uint8_t>(std::size_t(n) * k / 32, 127), n, k};
    for (int row = 0; row < n; ++row)
      for (int p = 0; p < k / 2; ++p) {
        const auto code = [&](int t) { return uint8_t(is_big(t % 32, big) ? 0x7 : 0x3); };
        c.codes[std::size_t(row) * k / 2 + p] = uint8_t(code(2 * p) | code(2 * p + 1) << 4);
      }
    expect_fp4_identical(quantize_rows(x.data(), m, k), c.w(), std::to_string(big) + " big activations per chain");
  }
}

// The row-lane kernel's chains of 8 products (lane L of a chunk: inputs 8L..8L+7) at the edge
// of their bound: lane 0 adds 7 products of 448 * 6 (past 2^24) and one of 2^-9 * 0.5, which as
// integers is odd and would be lost to rounding if it came last in one chain; lane 1 cancels the
// big terms, so the loss would reach the output. Rows put the small product at each of lane 0's
// inputs, whichever comes last in the instruction's order. Checked: allowing the chain up to 2^26
// makes it fail.
TEST(GemmFast, Fp4RowChainBound) {
  const int m = 1, n = 8, k = 128;
  std::vector<float> x(k, 0.0f);
  for (int t = 0; t < 16; ++t) x[t] = 448.0f;
  x[11] = 0.0f;  // lane 1: 7 big products
  Fp4Case c{std::vector<uint8_t>(std::size_t(n) * k / 2, 0), std::vector<uint8_t>(std::size_t(n) * k / 32, 127), n, k};
  for (int row = 0; row < n; ++row) {
    std::vector<uint8_t> code(k, 0);
    for (int t = 0; t < 8; ++t) code[t] = t == row ? 0x1 : 0x7;  // +0.5 where the small product is, else +6
    for (int t = 8; t < 16; ++t) code[t] = 0xF;                    // -6
    for (int p = 0; p < k / 2; ++p) c.codes[std::size_t(row) * k / 2 + p] = uint8_t(code[2 * p] | code[2 * p + 1] << 4);
  }
  for (int row = 0; row < n; ++row) {
    std::vector<float> xr = x;
    xr[row] = 0x1p-9f;  // the small activation meets the 0.5 weight of row `row` only in row `row`
    const QuantizedRows xq = quantize_rows(xr.data(), m, k);
    std::vector<float> ye(n), yf(n);
    gemm_fp4(xq, c.w(), ye.data(), Numerics::Exact);
    for (Isa isa : isas()) {
      IsaScope scope(isa);
      gemm_fp4(xq, c.w(), yf.data(), Numerics::Fast);
      EXPECT_TRUE(same_bits(ye[row], yf[row])) << "small product at input " << row << ", isa " << isa_name(isa)
                                               << ": exact " << ye[row] << " fast " << yf[row];
    }
    EXPECT_NE(ye[row], 0.0f);  // the small product is what remains
  }
}

TEST(GemmFast, Fp4NonFiniteRowsMatchExact) {
  Rng r;
  const int m = 3, n = 20, k = 256;
  auto x = r.bf16_vector(std::size_t(m) * k);
  x[k + 5] = std::nanf("");
  auto xq = quantize_rows(x.data(), m, k);
  Fp4Case c{r.bytes(std::size_t(n) * k / 2, 0, 255), r.bytes(std::size_t(n) * k / 32, 120, 130), n, k};
  expect_fp4_identical(xq, c.w(), "NaN row");
}

// --- FP8: within the fp32 accumulation bound ---------------------------------------------

void expect_fp8_within_bound(const QuantizedRows& xq, const Fp8Weight& w, const std::string& what) {
  const int m = xq.m, n = w.n, k = w.k, nb = k / 128;
  std::vector<float> ye(std::size_t(m) * n), yf(ye.size());
  gemm_fp8(xq, w, ye.data(), Numerics::Exact);
  const auto deq = dequantize_fp8(w);
  for (Isa isa : isas()) {
    IsaScope scope(isa);
    gemm_fp8(xq, w, yf.data(), Numerics::Fast);
    int bad = 0;
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double abs_sum = 0;
        for (int t = 0; t < k; ++t)
          abs_sum += std::abs(double(xq.q[std::size_t(i) * k + t]) * xq.s[std::size_t(i) * nb + t / 128] * deq[std::size_t(j) * k + t]);
        const double e = ye[std::size_t(i) * n + j], f = yf[std::size_t(i) * n + j];
        const double bound = 2 * gamma_n(128) * abs_sum + bf16_ulp(e) + nb * 0x1p-149;
        if (!(std::abs(e - f) <= bound) && bad++ < 5)
          ADD_FAILURE() << what << " isa " << isa_name(isa) << " (" << i << "," << j << "): exact " << e << " fast " << f;
      }
    EXPECT_EQ(bad, 0) << what << " isa " << isa_name(isa);
  }
}

TEST(GemmFast, Fp8RandomWithinBound) {
  Rng r;
  for (auto [m, n, k] : {std::tuple{1, 37, 128}, {3, 130, 384}, {6, 20, 256}, {17, 48, 1024}, {2, 257, 512}}) {
    auto x = r.bf16_vector(std::size_t(m) * k, 3.0f);
    auto xq = quantize_rows(x.data(), m, k);
    auto codes = r.bytes(std::size_t(n) * k, 0, 0x7E);
    for (std::size_t i = 0; i < codes.size(); i += 2) codes[i] |= 0x80;
    auto scales = r.bytes(std::size_t((n + 127) / 128) * (k / 128), 115, 130);
    expect_fp8_within_bound(xq, {codes.data(), scales.data(), n, k},
                            "random m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k));
  }
}

TEST(GemmFast, Fp8AdversarialWithinBound) {
  Rng r;
  const int m = 3, n = 40, k = 512;
  auto x = adversarial_rows(r, m, k);
  auto xq = quantize_rows(x.data(), m, k);
  std::vector<uint8_t> codes(std::size_t(n) * k);
  for (auto& c : codes) {
    const int kind = r.uniform(0, 3);
    c = kind == 0 ? 0x7E : kind == 1 ? uint8_t(r.uniform(0, 7)) : uint8_t(r.uniform(0, 0x7E));  // 448, subnormals
    if (r.uniform(0, 1)) c |= 0x80;
  }
  auto scales = r.bytes(std::size_t((n + 127) / 128) * (k / 128), 120, 127);
  expect_fp8_within_bound(xq, {codes.data(), scales.data(), n, k}, "extreme codes");
  auto tiny = r.bytes(scales.size(), 0, 3);
  expect_fp8_within_bound(xq, {codes.data(), tiny.data(), n, k}, "subnormal scales");
  std::vector<uint8_t> zeros(codes.size(), 0);
  expect_fp8_within_bound(xq, {zeros.data(), scales.data(), n, k}, "zero weights");
}

// The AVX-512 kernel decodes blocks of normal e4m3 codes with bit moves (their values times
// 2^-120, activations times 2^119) and blocks holding a subnormal or NaN code with a table
// (fp8_table_blocks): the same products up to powers of two, so the same bits as the table alone.
TEST(GemmFast, Fp8BitMovesEqualTableDecoder) {
  Rng r;
  for (auto [m, n, k] : {std::tuple{1, 37, 128}, {4, 50, 384}, {9, 130, 512}, {17, 16, 1024}}) {
    std::vector<uint8_t> codes(std::size_t(n) * k);
    for (auto& c : codes) {
      const int kind = r.uniform(0, 9);
      c = kind == 0 ? 0x7E : kind == 1 ? 0x00 : kind == 2 ? 0x08 : uint8_t(r.uniform(8, 0x7E));  // 448, 0, 2^-6
      if (r.uniform(0, 1)) c |= 0x80;
    }
    const int nb = k / 128;
    for (int row = 0; row < n; ++row)
      for (int b = 0; b < nb; ++b)
        if (r.uniform(0, 2) == 0) codes[std::size_t(row) * k + b * 128 + r.uniform(0, 127)] = uint8_t(r.uniform(1, 7) | (r.uniform(0, 1) << 7));
    // Row 0 holds only zeros and subnormals: bit moves would read it as zero.
    for (int i = 0; i < k; ++i) codes[i] = i % 3 ? uint8_t(r.uniform(1, 7) | (r.uniform(0, 1) << 7)) : 0;
    // A NaN code must reach the table decoder too (bit moves would make it a finite value).
    const bool with_nan = n >= 50;
    if (with_nan) codes[std::size_t(n / 2) * k + 5] = 0x7F;
    auto scales = r.bytes(std::size_t((n + 127) / 128) * nb, 110, 135);
    Fp8Weight plain{codes.data(), scales.data(), n, k};
    Fp8Weight mapped = plain;
    mapped.table_blocks = fp8_table_blocks(plain);
    // The map marks exactly the (block, row) pieces with a subnormal or NaN code.
    int marked = 0;
    for (int row = 0; row < n; ++row)
      for (int b = 0; b < nb; ++b) {
        bool special = false;
        for (int i = 0; i < 128; ++i) {
          const int v = codes[std::size_t(row) * k + b * 128 + i] & 0x7F;
          special |= (v >= 1 && v <= 7) || v == 0x7F;
        }
        const std::size_t bit = std::size_t(b) * n + row;
        const bool set = (*mapped.table_blocks)[bit / 64] >> (bit % 64) & 1;
        EXPECT_EQ(set, special) << "row " << row << " block " << b;
        marked += set;
      }
    ASSERT_GT(marked, 0);
    ASSERT_LT(marked, n * nb);  // both decoders run
    for (int kind = 0; kind < 2; ++kind) {
      const auto x = kind ? adversarial_rows(r, m, k) : r.bf16_vector(std::size_t(m) * k, 3.0f);
      const QuantizedRows xq = quantize_rows(x.data(), m, k);
      const std::string what = std::string(kind ? "extreme" : "random") + " m=" + std::to_string(m) +
                               " n=" + std::to_string(n) + " k=" + std::to_string(k);
      for (Isa isa : isas()) {
        IsaScope scope(isa);
        std::vector<float> a(std::size_t(m) * n), b(a.size(), -1.0f);
        gemm_fp8(xq, plain, a.data(), Numerics::Fast);
        gemm_fp8(xq, mapped, b.data(), Numerics::Fast);
        int differ = 0;
        for (std::size_t i = 0; i < a.size(); ++i) differ += !same_bits(a[i], b[i]);
        EXPECT_EQ(differ, 0) << what << " isa " << isa_name(isa);
        // 0x7F is NaN in e4m3fn, on every path as in exact mode.
        if (with_nan) {
          for (int i = 0; i < m; ++i) EXPECT_TRUE(std::isnan(b[std::size_t(i) * n + n / 2])) << what << " NaN code";
        }
      }
      if (with_nan) {
        std::vector<float> e(std::size_t(m) * n);
        gemm_fp8(xq, plain, e.data(), Numerics::Exact);
        for (int i = 0; i < m; ++i) EXPECT_TRUE(std::isnan(e[std::size_t(i) * n + n / 2])) << what << " NaN code, exact";
      } else {
        expect_fp8_within_bound(xq, mapped, what + " (mapped)");
      }
    }
  }
}

// --- BF16 weights: within the fp32 accumulation bound ------------------------------------

TEST(GemmFast, Bf16WithinBound) {
  Rng r;
  for (auto [m, n, k, exact_rows] :
       {std::tuple{1, 37, 1024, true}, {3, 40, 1000, true}, {4, 33, 96, false}, {5, 130, 4096, false}, {2, 17, 7, true}}) {
    std::vector<float> x(std::size_t(m) * k);
    for (auto& v : x) v = exact_rows ? bf16_round(r.normal()) : r.normal();
    std::vector<uint16_t> w(std::size_t(n) * k);
    std::vector<float> wf(w.size());
    for (std::size_t i = 0; i < w.size(); ++i) {
      w[i] = float_to_bf16_bits(r.normal(0.05f));
      wf[i] = bf16_to_float(w[i]);
    }
    std::vector<float> ye(std::size_t(m) * n), yf(ye.size());
    gemm_f32(x.data(), m, k, w.data(), n, ye.data(), Numerics::Exact);
    for (Isa isa : isas()) {
      IsaScope scope(isa);
      gemm_f32(x.data(), m, k, w.data(), n, yf.data(), Numerics::Fast);
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
          double abs_sum = 0;
          for (int t = 0; t < k; ++t) abs_sum += std::abs(double(x[std::size_t(i) * k + t]) * wf[std::size_t(j) * k + t]);
          const double e = ye[std::size_t(i) * n + j], f = yf[std::size_t(i) * n + j];
          EXPECT_LE(std::abs(e - f), gamma_n(3 * k) * abs_sum + kU * std::abs(e))
              << isa_name(isa) << " m=" << m << " k=" << k << " (" << i << "," << j << ")";
        }
    }
  }
}

// --- the AVX-512 BF16 body performs the AVX2 body's operations: identical results ---------

TEST(GemmFast, Bf16Avx512EqualsAvx2) {
  if (detected_isa() < Isa::Avx512) GTEST_SKIP() << "CPU without the AVX-512 level";
  Rng r;
  // K: whole pairs of 8-steps, an odd last 8-step, tails of 1..7, K below 16, rows up to and
  // beyond 1024, even and odd numbers of 16-steps for the two-step loads of a batch of up to 4
  // (1040 = 65 steps and a tail, 144 = 9 steps); M: passes of 1 to 8 bf16-valued tokens and more
  // than 8; the last row is not bf16-valued (the AVX2 body's own rows) mixed in.
  for (auto [m, n, k] : {std::tuple{1, 37, 1024}, {6, 40, 1000}, {5, 33, 96}, {9, 130, 4104}, {2, 17, 7}, {3, 16, 15},
                         {3, 20, 2056}, {4, 24, 128}, {8, 24, 200}, {12, 20, 64}, {18, 35, 1024}, {2, 37, 1040},
                         {5, 23, 144}, {2, 19, 2048}}) {
    std::vector<float> x = r.bf16_vector(std::size_t(m) * k, 2.0f);
    for (int t = 0; t < k; t += 3) x[std::size_t(m - 1) * k + t] = r.normal();  // not bf16-valued
    for (int t = 0; t < k; t += 5) x[t] = 0.0f;
    std::vector<uint16_t> w(std::size_t(n) * k);
    for (auto& v : w) v = float_to_bf16_bits(r.normal(0.05f));
    for (std::size_t i = 0; i < w.size(); i += 7) w[i] = 0x8000;  // -0: signed zero products
    std::vector<float> y2(std::size_t(m) * n), y5(y2.size());
    {
      IsaScope scope(Isa::Avx2);
      gemm_f32(x.data(), m, k, w.data(), n, y2.data(), Numerics::Fast);
    }
    {
      IsaScope scope(Isa::Avx512);
      gemm_f32(x.data(), m, k, w.data(), n, y5.data(), Numerics::Fast);
    }
    int differ = 0;
    for (std::size_t i = 0; i < y2.size(); ++i) differ += !same_bits(y2[i], y5[i]);
    EXPECT_EQ(differ, 0) << "m=" << m << " n=" << n << " k=" << k;
  }
}

// --- the AVX2 and portable builds of one body give identical results -----------------------

TEST(GemmFast, Avx2EqualsPortable) {
  if (detected_isa() < Isa::Avx2) GTEST_SKIP() << "CPU without AVX2";
  Rng r;
  const int m = 3, n = 21, k = 384;
  auto x = r.bf16_vector(std::size_t(m) * k, 2.0f);
  auto xq = quantize_rows(x.data(), m, k);
  auto codes = r.bytes(std::size_t(n) * k, 0, 0x7E);
  auto scales = r.bytes(std::size_t((n + 127) / 128) * (k / 128), 118, 130);
  std::vector<uint16_t> wb(std::size_t(n) * k);
  for (auto& v : wb) v = float_to_bf16_bits(r.normal());
  std::vector<float> a(std::size_t(m) * n), b(a.size()), c(a.size()), d(a.size());
  {
    IsaScope s(Isa::Avx2);
    gemm_fp8(xq, {codes.data(), scales.data(), n, k}, a.data(), Numerics::Fast);
    gemm_f32(x.data(), m, k, wb.data(), n, c.data(), Numerics::Fast);
  }
  {
    IsaScope s(Isa::Portable);
    gemm_fp8(xq, {codes.data(), scales.data(), n, k}, b.data(), Numerics::Fast);
    gemm_f32(x.data(), m, k, wb.data(), n, d.data(), Numerics::Fast);
  }
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4));
  EXPECT_EQ(0, std::memcmp(c.data(), d.data(), c.size() * 4));
}

// --- batch invariance ----------------------------------------------------------------------

// Runs `gemm(x rows, m, y)` for every pool row alone and inside batches of several sizes (rows
// drawn from the pool at shifting positions), at 1, 2 and 3 threads, and expects every token's
// output row bit-identical to its output alone.
template <typename Gemm>
void expect_batch_invariant(const std::vector<float>& pool, int k, int n, Gemm gemm, const std::string& what) {
  const int pool_rows = int(pool.size() / k);
  std::vector<float> alone(std::size_t(pool_rows) * n);
  omp_set_num_threads(1);
  for (int i = 0; i < pool_rows; ++i) gemm(pool.data() + std::size_t(i) * k, 1, alone.data() + std::size_t(i) * n);
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    // Sizes that give every split of a batch between the kernels (row-lane passes of 1 to 8
    // tokens, token groups of 16 and their remainders).
    for (int m : {2, 3, 5, 7, 8, 12, 16, 17, 27, 30, 64, 512}) {
      std::vector<float> x(std::size_t(m) * k), y(std::size_t(m) * n);
      std::vector<int> src(m);
      for (int i = 0; i < m; ++i) {
        src[i] = (i * 13 + m + threads) % pool_rows;
        std::copy_n(pool.data() + std::size_t(src[i]) * k, k, x.data() + std::size_t(i) * k);
      }
      gemm(x.data(), m, y.data());
      int differ = 0;
      for (int i = 0; i < m; ++i)
        if (std::memcmp(alone.data() + std::size_t(src[i]) * n, y.data() + std::size_t(i) * n, n * sizeof(float)) != 0 &&
            differ++ < 3)
          ADD_FAILURE() << what << ": pool row " << src[i] << " alone vs at row " << i << " of " << m << ", " << threads
                        << " threads";
      EXPECT_EQ(differ, 0) << what << ", " << m << " tokens, " << threads << " threads";
    }
  }
  omp_set_num_threads(omp_get_num_procs());
}

TEST(GemmFast, BatchInvariance) {
  Rng r;
  const int k = 512, n = 40, pool_rows = 64;
  auto pool = r.bf16_vector(std::size_t(pool_rows) * k, 2.0f);
  for (int i = 1; i < pool_rows; i += 3)  // some rows that are not bf16 values (on AVX-512, the AVX2 body)
    for (int t = 0; t < k; ++t) pool[std::size_t(i) * k + t] = r.normal(2.0f);
  auto c4 = r.bytes(std::size_t(n) * k / 2, 0, 255), s4 = r.bytes(std::size_t(n) * k / 32, 118, 132);
  auto c8 = r.bytes(std::size_t(n) * k, 0, 0x7E), s8 = r.bytes(std::size_t((n + 127) / 128) * (k / 128), 118, 132);
  for (std::size_t i = 0; i < c8.size(); i += 2) c8[i] |= 0x80;
  std::vector<uint16_t> wb(std::size_t(n) * k);
  for (auto& v : wb) v = float_to_bf16_bits(r.normal(0.1f));
  const Fp4Weight w4{c4.data(), s4.data(), n, k};
  const Fp8Weight w8{c8.data(), s8.data(), n, k};
  for (Isa isa : isas()) {
    IsaScope scope(isa);
    const std::string tag = isa_name(isa);
    expect_batch_invariant(pool, k, n, [&](const float* x, int m, float* y) {
      gemm_fp4(quantize_rows(x, m, k), w4, y, Numerics::Fast);
    }, "fp4 " + tag);
    expect_batch_invariant(pool, k, n, [&](const float* x, int m, float* y) {
      gemm_fp8(quantize_rows(x, m, k), w8, y, Numerics::Fast);
    }, "fp8 " + tag);
    expect_batch_invariant(pool, k, n, [&](const float* x, int m, float* y) {
      gemm_f32(x, m, k, wb.data(), n, y, Numerics::Fast);
    }, "bf16 " + tag);
    // a token whose row is not bf16-valued
    std::vector<float> pool2(pool.begin() + k, pool.end());
    expect_batch_invariant(pool2, k, n, [&](const float* x, int m, float* y) {
      gemm_f32(x, m, k, wb.data(), n, y, Numerics::Fast);
    }, "bf16 not bf16-valued " + tag);
  }
}

// FP8 block dots of e4m3 values are usually exact in fp32 and the bf16 output hides what is not,
// which would let an order that depends on the batch go unseen. Here the second 128-block of every
// row cancels the first (negated weights, nearly equal activations with a wide exponent range), so
// the output is a small difference of two rounded block dots and their rounding shows in bf16.
TEST(GemmFast, Fp8BatchInvarianceCancellation) {
  Rng r;
  const int k = 256, n = 64, pool_rows = 40;
  auto pool = adversarial_rows(r, pool_rows, k);
  for (int i = 0; i < pool_rows; ++i) {
    float* row = pool.data() + std::size_t(i) * k;
    std::copy_n(row, 128, row + 128);
    row[128 + 1 + i % 100] = e4m3_table()[r.uniform(1, 0x30)];
  }
  std::vector<uint8_t> codes(std::size_t(n) * k);
  for (int j = 0; j < n; ++j)
    for (int t = 0; t < 128; ++t) {
      const uint8_t c = uint8_t((r.uniform(0, 1) ? r.uniform(0x60, 0x7E) : r.uniform(1, 0x1F)) | (r.uniform(0, 1) << 7));
      codes[std::size_t(j) * k + t] = c;
      codes[std::size_t(j) * k + 128 + t] = c ^ 0x80;
    }
  std::vector<uint8_t> scales(std::size_t((n + 127) / 128) * (k / 128), 127);
  const Fp8Weight w8{codes.data(), scales.data(), n, k};
  // the data must make the order visible: fast differs from exact somewhere
  {
    auto xq = quantize_rows(pool.data(), pool_rows, k);
    std::vector<float> ye(std::size_t(pool_rows) * n), yf(ye.size());
    gemm_fp8(xq, w8, ye.data(), Numerics::Exact);
    gemm_fp8(xq, w8, yf.data(), Numerics::Fast);
    EXPECT_NE(0, std::memcmp(ye.data(), yf.data(), ye.size() * sizeof(float)));
  }
  for (Isa isa : isas()) {
    IsaScope scope(isa);
    expect_batch_invariant(pool, k, n, [&](const float* x, int m, float* y) {
      gemm_fp8(quantize_rows(x, m, k), w8, y, Numerics::Fast);
    }, std::string("fp8 cancellation ") + isa_name(isa));
  }
}

TEST(GemmFast, IsaSelection) {
  EXPECT_EQ(parse_isa("avx2"), Isa::Avx2);
  EXPECT_EQ(parse_isa("portable"), Isa::Portable);
  EXPECT_EQ(parse_isa("avx512"), Isa::Avx512);
  EXPECT_FALSE(parse_isa("sse9").has_value());
  IsaScope scope(Isa::Portable);
  EXPECT_EQ(active_isa(), Isa::Portable);
  EXPECT_EQ(set_isa(Isa::Avx512), detected_isa());  // never above what the CPU runs
}

}  // namespace
}  // namespace flashline
