#include "runtime/counter_rng.h"

#include <gtest/gtest.h>

#include <set>

namespace flashline {
namespace {

// Known-answer vectors of Philox4x32-10 from Random123 (kat_vectors).
TEST(CounterRng, PhiloxKnownAnswers) {
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (PhiloxCounter{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(
      philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
      (PhiloxCounter{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(
      philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
      (PhiloxCounter{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
  // It is usable at compile time (and so identical on every rank and compiler).
  static_assert(philox4x32_10({0, 0, 0, 0}, {0, 0})[0] == 0x6627e8d5u);
}

TEST(CounterRng, BlockLayoutIsSeedKeyPositionDrawCounter) {
  const uint64_t seed = 0x299f31d0a4093822ull, position = 0x85a308d3243f6a88ull;
  EXPECT_EQ(CounterRng::block(seed, position, 0x13198a2e),
            philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0}, {0xa4093822, 0x299f31d0}));
}

TEST(CounterRng, UniformUsesTheTop53BitsOfTheFirstTwoWords) {
  const PhiloxCounter b = CounterRng::block(7, 11, 0);
  const uint64_t bits = ((uint64_t(b[0]) << 32) | b[1]) >> 11;
  EXPECT_EQ(CounterRng::uniform(7, 11, 0), double(bits) / 9007199254740992.0);
  EXPECT_EQ(CounterRng::uniform_float(7, 11, 0), float(b[0] >> 8) / 16777216.0f);
}

TEST(CounterRng, UniformIsInUnitIntervalWithMeanOneHalf) {
  double sum = 0, sum_f = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const double u = CounterRng::uniform(42, uint64_t(i), 0);
    const float f = CounterRng::uniform_float(42, uint64_t(i), 1);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    ASSERT_GE(f, 0.0f);
    ASSERT_LT(f, 1.0f);
    sum += u;
    sum_f += f;
  }
  // Standard deviation of the mean: sqrt(1/12 / n) = 0.0009; 5 sigma.
  EXPECT_NEAR(sum / n, 0.5, 0.0046);
  EXPECT_NEAR(sum_f / n, 0.5, 0.0046);
}

TEST(CounterRng, EveryCoordinateChangesTheDraw) {
  const double base = CounterRng::uniform(1, 5, 0);
  EXPECT_EQ(CounterRng::uniform(1, 5, 0), base);  // no state
  EXPECT_NE(CounterRng::uniform(2, 5, 0), base);
  EXPECT_NE(CounterRng::uniform(1ull << 40, 5, 0), base);  // the seed's high word is keyed too
  EXPECT_NE(CounterRng::uniform(1, 6, 0), base);
  EXPECT_NE(CounterRng::uniform(1, 5 + (1ull << 32), 0), base);  // so is the position's
  EXPECT_NE(CounterRng::uniform(1, 5, 1), base);
  std::set<double> distinct;
  for (uint64_t p = 0; p < 1000; ++p) distinct.insert(CounterRng::uniform(1, p, 0));
  EXPECT_EQ(distinct.size(), 1000u);
}

}  // namespace
}  // namespace flashline
