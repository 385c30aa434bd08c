// Hand-checked cases of the number formats and small ops of the inference numerics.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/hc_split.h"
#include "kernels/cpu/numerics.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/topk.h"

namespace flashline {
namespace {

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(bf16_round(1.0f), 1.0f);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1.0)
  EXPECT_EQ(bf16_round(1.0f + std::ldexp(1.0f, -8)), 1.0f);
  // 1 + 3*2^-8 is halfway between 1+2^-7 and 1+2^-6: ties to even (1 + 2^-6)
  EXPECT_EQ(bf16_round(1.0f + 3 * std::ldexp(1.0f, -8)), 1.0f + std::ldexp(1.0f, -6));
  EXPECT_EQ(bf16_round(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)), 1.0f + std::ldexp(1.0f, -7));
  EXPECT_TRUE(std::isnan(bf16_round(std::nanf(""))));
}

TEST(E4M3, DecodeTable) {
  const float* t = e4m3_table();
  EXPECT_EQ(t[0x00], 0.0f);
  EXPECT_EQ(t[0x01], std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(t[0x07], 7 * std::ldexp(1.0f, -9));
  EXPECT_EQ(t[0x08], std::ldexp(1.0f, -6));  // smallest normal
  EXPECT_EQ(t[0x38], 1.0f);
  EXPECT_EQ(t[0x7E], 448.0f);
  EXPECT_TRUE(std::isnan(t[0x7F]));
  EXPECT_EQ(t[0xB8], -1.0f);
}

TEST(E4M3, RoundingTiesSubnormalsSaturation) {
  EXPECT_EQ(e4m3_round(1.0625f), 1.0f);     // tie between 1 and 1.125 -> even mantissa (1.0)
  EXPECT_EQ(e4m3_round(1.1875f), 1.25f);    // tie between 1.125 and 1.25 -> even (1.25)
  EXPECT_EQ(e4m3_round(1.07f), 1.125f);
  EXPECT_EQ(e4m3_round(-1.0625f), -1.0f);
  const float sub = std::ldexp(1.0f, -9);
  EXPECT_EQ(e4m3_round(0.5f * sub), 0.0f);  // tie with 0 -> 0 (even)
  EXPECT_EQ(e4m3_round(1.5f * sub), 2 * sub);  // tie 1 and 2 quanta -> 2 (even)
  EXPECT_EQ(e4m3_round(2.5f * sub), 2 * sub);
  EXPECT_EQ(e4m3_round(0.7f * sub), sub);
  EXPECT_EQ(e4m3_round(448.0f), 448.0f);
  EXPECT_EQ(e4m3_round(430.0f), 416.0f);    // step 32 above 256: 416 or 448
  EXPECT_EQ(e4m3_round(432.0f), 448.0f);    // tie: 416 has mantissa 101, 448 has 110 (even)
}

TEST(E2M1, RoundingTies) {
  EXPECT_EQ(e2m1_round(0.25f), 0.0f);
  EXPECT_EQ(e2m1_round(0.75f), 1.0f);
  EXPECT_EQ(e2m1_round(1.25f), 1.0f);
  EXPECT_EQ(e2m1_round(1.75f), 2.0f);
  EXPECT_EQ(e2m1_round(2.5f), 2.0f);
  EXPECT_EQ(e2m1_round(3.5f), 4.0f);
  EXPECT_EQ(e2m1_round(5.0f), 4.0f);
  EXPECT_EQ(e2m1_round(5.5f), 6.0f);
  EXPECT_EQ(e2m1_round(-2.6f), -3.0f);
}

TEST(UE8M0, Decode) {
  EXPECT_EQ(e8m0_decode(127), 1.0f);
  EXPECT_EQ(e8m0_decode(128), 2.0f);
  EXPECT_EQ(e8m0_decode(120), std::ldexp(1.0f, -7));
  EXPECT_EQ(e8m0_decode(0), std::ldexp(1.0f, -127));
  EXPECT_TRUE(std::isnan(e8m0_decode(255)));
}

TEST(Pow2Ceil, ExactPowersKeepTheirExponent) {
  EXPECT_EQ(pow2_ceil(1.0f), 1.0f);
  EXPECT_EQ(pow2_ceil(1.01f), 2.0f);
  EXPECT_EQ(pow2_ceil(0.3f), 0.5f);
  EXPECT_EQ(pow2_ceil(std::ldexp(1.0f, -20)), std::ldexp(1.0f, -20));
}

TEST(ActQuant, ScaleAndSaturation) {
  std::vector<float> x(128, 0.0f), q(128), s(1);
  x[0] = 448.0f;
  x[1] = -1.0f;
  act_quant_fp8(x, 128, q, s);
  EXPECT_EQ(s[0], 1.0f);  // amax 448 -> 448/448 = 1 -> scale 1
  EXPECT_EQ(q[0], 448.0f);
  EXPECT_EQ(q[1], -1.0f);
  x[0] = 449.0f;  // amax/448 just above 1 -> scale 2
  act_quant_fp8(x, 128, q, s);
  EXPECT_EQ(s[0], 2.0f);
  EXPECT_EQ(q[0], 224.0f);  // 224.5 -> 224 on the step-16 grid... 224 = 1.75*2^7
  std::fill(x.begin(), x.end(), 0.0f);
  act_quant_fp8(x, 128, q, s);  // all zero: amax floored at 1e-4
  EXPECT_EQ(s[0], pow2_ceil(1e-4f * float(1.0 / 448.0)));
}

TEST(Fp4Simulation, BlockScaleAndGrid) {
  std::vector<float> x(32, 0.0f);
  x[0] = 6.0f;
  x[1] = 1.25f;
  x[2] = -5.0f;
  fp4_simulate(x, 32);
  EXPECT_EQ(x[0], 6.0f);
  EXPECT_EQ(x[1], 1.0f);
  EXPECT_EQ(x[2], -4.0f);
}

TEST(Fp4Gemm, UnpacksLowNibbleFirst) {
  // one output row, k = 128: byte 0 = 0x21 -> column 0 code 1 (0.5), column 1 code 2 (1.0)
  std::vector<uint8_t> codes(64, 0), scales(4, 127);
  codes[0] = 0x21;
  std::vector<float> x(128, 0.0f);
  x[0] = 1.0f;
  x[1] = 1000.0f;  // ignored by the 0.5 weight of column 0, visible through column 1
  auto xq = quantize_rows(x.data(), 1, 128);
  float y = 0;
  gemm_fp4(xq, Fp4Weight{codes.data(), scales.data(), 1, 128}, &y, Numerics::Exact);
  EXPECT_EQ(y, bf16_round(0.5f * 1.0f + 1.0f * 1024.0f));  // 1000 quantises to 1024 (e4m3, scale 4)
}

TEST(Sinkhorn, CombIsNearlyDoublyStochastic) {
  const int hc = 4, mix = (2 + hc) * hc;
  std::vector<float> mixes(mix), base(mix), scale{0.5f, 0.7f, 1.3f};
  for (int i = 0; i < mix; ++i) {
    mixes[i] = std::sin(0.7f * i);
    base[i] = 0.1f * std::cos(1.3f * i);
  }
  float pre[4], post[4], comb[16];
  hc_split_sinkhorn(mixes.data(), scale.data(), base.data(), hc, 20, 1e-6f, pre, post, comb, Numerics::Exact);
  for (int j = 0; j < hc; ++j) {
    EXPECT_NEAR(pre[j], 1.0f / (1.0f + std::exp(-(mixes[j] * 0.5f + base[j]))) + 1e-6f, 1e-6f);
    EXPECT_NEAR(post[j], 2.0f / (1.0f + std::exp(-(mixes[hc + j] * 0.7f + base[hc + j]))), 1e-6f);
    float row = 0, col = 0;
    for (int k = 0; k < hc; ++k) row += comb[j * hc + k], col += comb[k * hc + j];
    EXPECT_NEAR(row, 1.0f, 1e-4f);
    EXPECT_NEAR(col, 1.0f, 1e-5f);  // the last normalisation is over columns
  }
  // a single iteration is just softmax rows (+eps) then column normalisation
  hc_split_sinkhorn(mixes.data(), scale.data(), base.data(), hc, 1, 0.0f, pre, post, comb, Numerics::Exact);
  for (int k = 0; k < hc; ++k) {
    float col = 0;
    for (int j = 0; j < hc; ++j) col += comb[j * hc + k];
    EXPECT_NEAR(col, 1.0f, 1e-6f);
  }
}

TEST(Yarn, ReleaseFrequencies) {
  // release values: rope dim 64, compress theta 160000, factor 16, original 65536, beta 32/1
  RopeTable plain({64, 160000.0, 0, 1.0, 32, 1});
  RopeTable yarn({64, 160000.0, 65536, 16.0, 32, 1});
  // low = 15, high = 25: dims below 15 keep their frequency, above 25 are divided by 16
  for (int i = 0; i < 32; ++i) {
    if (i <= 15) {
      EXPECT_EQ(yarn.inv_freq()[i], plain.inv_freq()[i]) << i;
    }
    if (i >= 25) {
      EXPECT_EQ(yarn.inv_freq()[i], plain.inv_freq()[i] / 16.0f) << i;
    }
  }
  const float ramp = (20.0f - 15.0f) / 10.0f;  // i = 20: halfway
  EXPECT_FLOAT_EQ(yarn.inv_freq()[20], plain.inv_freq()[20] / 16.0f * ramp + plain.inv_freq()[20] * (1 - ramp));
  EXPECT_EQ(plain.inv_freq()[0], 1.0f);
  float c[32], s[32];
  plain.angles(0, c, s);
  EXPECT_EQ(c[5], 1.0f);
  EXPECT_EQ(s[5], 0.0f);
}

TEST(Rope, RotatesPairsAndInverts) {
  float x[4] = {1.0f, 0.0f, 0.0f, 2.0f};
  const float c[2] = {0.0f, 1.0f}, s[2] = {1.0f, 0.0f};  // 90 degrees, 0 degrees
  apply_rope(x, c, s, 4, false);
  EXPECT_EQ(x[0], 0.0f);
  EXPECT_EQ(x[1], 1.0f);
  EXPECT_EQ(x[3], 2.0f);
  apply_rope(x, c, s, 4, true);
  EXPECT_EQ(x[0], 1.0f);
  EXPECT_EQ(x[1], 0.0f);
}

TEST(TopK, OrderTiesAndFewerCandidates) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> v{1.0f, 3.0f, 3.0f, -inf, 2.0f};
  EXPECT_EQ(topk_desc(v.data(), 5, 3), (std::vector<int32_t>{1, 2, 4}));
  EXPECT_EQ(topk_desc(v.data(), 5, 16), (std::vector<int32_t>{1, 2, 4, 0, 3}));  // k clamped to n
  EXPECT_TRUE(topk_desc(v.data(), 0, 4).empty());
}

}  // namespace
}  // namespace flashline
