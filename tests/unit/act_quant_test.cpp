// quantize_rows (vectorised act_quant) against the scalar definition act_quant_fp8, bit for bit,
// on every instruction-set path this CPU runs: random rows at many magnitudes, random bit patterns
// (NaN and infinity included), and rows built to hit the edges: zeros and negative zeros, values
// under the 1e-4 amax floor, fp32 subnormals, e4m3 rounding ties in every binade and on the
// subnormal grid, carries into the next binade, and amax values around 448 * 2^e, where the
// scale changes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/isa.h"

namespace flashline {
namespace {

std::vector<Isa> isas() {
  std::vector<Isa> v;
  for (Isa i : {Isa::Avx512, Isa::Avx2, Isa::Portable})
    if (i <= detected_isa()) v.push_back(i);
  return v;
}

struct IsaScope {
  Isa saved = active_isa();
  explicit IsaScope(Isa isa) { set_isa(isa); }
  ~IsaScope() { set_isa(saved); }
};

// Compares quantize_rows with act_quant_fp8 row by row; returns the number of differing words.
int expect_same_as_scalar(const std::vector<float>& x, int m, int k, const std::string& what) {
  std::vector<float> q(x.size()), s(std::size_t(m) * (k / 128));
  for (int i = 0; i < m; ++i)
    act_quant_fp8({x.data() + std::size_t(i) * k, std::size_t(k)}, 128, {q.data() + std::size_t(i) * k, std::size_t(k)},
                  {s.data() + std::size_t(i) * (k / 128), std::size_t(k / 128)});
  int total = 0;
  for (Isa isa : isas()) {
    IsaScope scope(isa);
    const QuantizedRows r = quantize_rows(x.data(), m, k);
    EXPECT_EQ(r.m, m);
    EXPECT_EQ(r.k, k);
    int bad = 0;
    for (std::size_t i = 0; i < q.size(); ++i)
      if (float_to_bits(q[i]) != float_to_bits(r.q[i]) && bad++ < 5)
        ADD_FAILURE() << what << " isa " << isa_name(isa) << " q[" << i << "] x " << x[i] << " (0x" << std::hex
                      << float_to_bits(x[i]) << ") scalar 0x" << float_to_bits(q[i]) << " vector 0x"
                      << float_to_bits(r.q[i]) << std::dec;
    for (std::size_t i = 0; i < s.size(); ++i)
      if (float_to_bits(s[i]) != float_to_bits(r.s[i]) && bad++ < 5)
        ADD_FAILURE() << what << " isa " << isa_name(isa) << " s[" << i << "] scalar " << s[i] << " vector " << r.s[i];
    EXPECT_EQ(bad, 0) << what << " isa " << isa_name(isa);
    total += bad;
  }
  return total;
}

TEST(ActQuant, RandomRowsAtManyMagnitudes) {
  std::mt19937 g(7);
  for (float sd : {1e-30f, 1e-8f, 1e-4f, 0.01f, 1.0f, 3.0f, 448.0f, 1e6f, 1e30f}) {
    for (auto [m, k] : {std::pair{1, 128}, {3, 512}, {7, 4096}, {40, 2048}}) {  // 40 x 2048 runs threaded
      std::vector<float> x(std::size_t(m) * k);
      std::normal_distribution<float> d(0.0f, sd);
      for (auto& v : x) v = d(g);
      expect_same_as_scalar(x, m, k, "sd " + std::to_string(sd) + " m " + std::to_string(m));
    }
  }
}

TEST(ActQuant, RandomBitPatterns) {
  std::mt19937 g(11);
  const int m = 64, k = 1024;
  std::vector<float> x(std::size_t(m) * k);
  for (auto& v : x) v = bits_to_float(uint32_t(g()));
  expect_same_as_scalar(x, m, k, "any bits");
  // finite values of a narrow exponent range per block, so the grid edges are reached often
  std::uniform_int_distribution<int> ex(0, 253);
  for (std::size_t b = 0; b < x.size(); b += 128) {
    const uint32_t e = uint32_t(ex(g));
    for (int i = 0; i < 128; ++i) {
      const uint32_t e_i = std::min<uint32_t>(254, e + g() % 12);
      x[b + i] = bits_to_float((g() & 0x807FFFFFu) | (e_i << 23));
    }
  }
  expect_same_as_scalar(x, m, k, "narrow exponent ranges");
}

TEST(ActQuant, ZerosTinyAndNonFinite) {
  const int k = 128;
  std::vector<std::vector<float>> rows;
  rows.push_back(std::vector<float>(k, 0.0f));
  rows.push_back(std::vector<float>(k, -0.0f));
  std::vector<float> mixed(k);
  for (int i = 0; i < k; ++i) mixed[i] = (i % 3 == 0) ? -0.0f : (i % 3 == 1 ? 0.0f : (i % 2 ? 1e-5f : -3e-5f));
  rows.push_back(mixed);  // amax under the 1e-4 floor
  std::vector<float> sub(k);
  for (int i = 0; i < k; ++i) sub[i] = bits_to_float(uint32_t(i * 977) | (i % 2 ? 0x80000000u : 0u));  // fp32 subnormals
  rows.push_back(sub);
  std::vector<float> floor_edge(k);
  for (int i = 0; i < k; ++i) floor_edge[i] = std::nextafter(1e-4f, i % 2 ? 0.0f : 1.0f) * (i % 4 < 2 ? 1 : -1);
  rows.push_back(floor_edge);
  for (float special : {INFINITY, -INFINITY, NAN, -NAN}) {
    std::vector<float> r(k);
    for (int i = 0; i < k; ++i) r[i] = 0.37f * float(i - 64);
    r[17] = special;
    rows.push_back(r);
  }
  std::vector<float> all_nan(k, NAN);
  rows.push_back(all_nan);
  std::vector<float> big(k);
  for (int i = 0; i < k; ++i) big[i] = (i % 2 ? -1 : 1) * std::ldexp(1.0f + i / 128.0f, 127);
  rows.push_back(big);  // largest finite magnitudes
  std::vector<float> x;
  for (auto& r : rows) x.insert(x.end(), r.begin(), r.end());
  expect_same_as_scalar(x, int(rows.size()), k, "zeros/tiny/non-finite");
  // the same blocks side by side in one row: a non-finite block must not affect its neighbours
  expect_same_as_scalar(x, 1, int(x.size()), "one long row");
}

TEST(ActQuant, RoundingTiesAndClampEdges) {
  std::vector<float> x;
  // Scale 1 (amax 448): ties between neighbouring e4m3 values in every binade, both signs, and
  // their float neighbours; the subnormal grid (2^-9) and its ties; carries into the next binade.
  for (int e = -10; e <= 8; ++e)
    for (int mnt = 0; mnt < 16; ++mnt) {
      const float grid = std::ldexp(1.0f, std::max(e, -6) - 3);
      const float base = std::max(e, -6) == e ? std::ldexp(1.0f, e) : 0.0f;
      const float tie = base + (float(mnt) + 0.5f) * grid;
      for (float v : {tie, std::nextafter(tie, 0.0f), std::nextafter(tie, 1e9f)}) {
        if (v > 448.0f) continue;
        x.push_back(v);
        x.push_back(-v);
      }
    }
  while (x.size() % 127) x.push_back(0.0f);
  std::vector<float> rows;
  for (std::size_t b = 0; b < x.size(); b += 127) {
    rows.push_back(448.0f);  // amax -> scale 1
    rows.insert(rows.end(), x.begin() + b, x.begin() + b + 127);
  }
  // The same pattern at other scales: amax = 448 * 2^e and its float neighbours set the scale.
  const std::size_t base_rows = rows.size();
  for (int e : {-20, -3, 0, 5, 40, 100}) {
    for (int step = -3; step <= 3; ++step) {
      std::vector<float> blk(rows.begin(), rows.begin() + 128);
      const float amax = bits_to_float(uint32_t(int(float_to_bits(std::ldexp(448.0f, e))) + step));
      for (auto& v : blk) v = std::ldexp(v, e);
      blk[0] = amax;
      blk[1] = -amax;
      blk[2] = std::nextafter(amax, 0.0f);
      rows.insert(rows.end(), blk.begin(), blk.end());
    }
  }
  ASSERT_EQ(rows.size() % 128, 0u);
  expect_same_as_scalar(rows, int(rows.size() / 128), 128, "ties and clamp edges");

  // The edge rows reach what they are meant to: +-448 after quantisation, and on both sides of
  // amax = 448 * 2^e the two neighbouring scales. (The clamp itself cannot be reached by finite
  // inputs: fp32(1/448) exceeds 1/448 by more than the gap to the next float above 448 * 2^e, so
  // amax * fp32(1/448) rounds up past 2^e as soon as amax > 448 * 2^e.)
  const QuantizedRows r = quantize_rows(rows.data(), int(rows.size() / 128), 128);
  int at_448 = 0, below = 0, above = 0;
  for (float q : r.q) at_448 += std::fabs(q) == 448.0f;
  for (std::size_t b = base_rows / 128; b < r.s.size(); ++b) {
    const int e = std::ilogb(rows[b * 128]) - 8;  // amax = 448 * 2^e (nearly)
    below += r.s[b] == std::ldexp(1.0f, e);
    above += r.s[b] == std::ldexp(1.0f, e + 1);
  }
  EXPECT_GT(at_448, 0);
  EXPECT_GT(below, 0);
  EXPECT_GT(above, 0);
}

}  // namespace
}  // namespace flashline
