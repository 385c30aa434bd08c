#include "runtime/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <string>

#include "base/input_error.h"
#include "runtime/counter_rng.h"

namespace flashline {
namespace {

constexpr uint64_t kSeed = 20240601;

SamplingParams at_temperature(float t) {
  SamplingParams p;
  p.temperature = t;
  return p;
}

SampleResult sample(const std::vector<float>& logits, const SamplingParams& p,
                    const TokenCounts& h = {}, uint64_t seed = kSeed, uint64_t position = 0) {
  Sampler s;
  return s.sample(logits, p, h, seed, position);
}

// Counts of each id over `n` draws at positions 0..n-1 (one seed), the way a request's tokens
// would be drawn.
std::vector<int> histogram(const std::vector<float>& logits, const SamplingParams& p, int n,
                           uint64_t seed = kSeed) {
  Sampler s;
  TokenCounts none;
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < n; ++i) ++counts[size_t(s.sample(logits, p, none, seed, uint64_t(i)).id)];
  return counts;
}

std::set<int32_t> drawn_ids(const std::vector<float>& logits, const SamplingParams& p, int n) {
  std::set<int32_t> ids;
  const auto counts = histogram(logits, p, n);
  for (size_t i = 0; i < counts.size(); ++i)
    if (counts[i] > 0) ids.insert(int32_t(i));
  return ids;
}

std::vector<double> softmax(const std::vector<float>& logits, double temperature) {
  const double m = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double s = 0;
  for (size_t i = 0; i < logits.size(); ++i) s += p[i] = std::exp((logits[i] - m) / temperature);
  for (double& v : p) v /= s;
  return p;
}

double chi_square(const std::vector<int>& observed, const std::vector<double>& probs, int n) {
  double stat = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] == 0) {
      EXPECT_EQ(observed[i], 0) << "id " << i << " has probability 0 but was drawn";
      continue;
    }
    const double e = probs[i] * n;
    stat += (observed[i] - e) * (observed[i] - e) / e;
  }
  return stat;
}

// Logits from a fixed generator whose output the standard specifies (mt19937), uniform in
// [lo, hi).
std::vector<float> random_logits(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 g(seed);
  std::vector<float> v(n);
  for (float& x : v) x = lo + (hi - lo) * float(g() >> 8) * 0x1.0p-24f;
  return v;
}

// ---------------------------------------------------------------------------------------------
// Greedy, bias, penalties

TEST(Sampler, GreedyTakesTheArgmaxWithTiesToTheLowerId) {
  EXPECT_EQ(sample({1, 3, 3, 2}, at_temperature(0)).id, 1);
  EXPECT_EQ(sample({5, -1, 5}, at_temperature(0)).id, 0);
  // Below 1e-5 counts as greedy, whatever the draw.
  for (uint64_t pos = 0; pos < 50; ++pos)
    EXPECT_EQ(sample({1, 3, 2.9f, 2}, at_temperature(5e-6f), {}, kSeed, pos).id, 1);
}

TEST(Sampler, LogitBiasForcesAToken) {
  SamplingParams p = at_temperature(1.0f);
  p.logit_bias = {{2, 100.0f}};
  for (uint64_t pos = 0; pos < 200; ++pos) EXPECT_EQ(sample({5, 0, 0, 4}, p, {}, kSeed, pos).id, 2);
  // A large negative bias bans the argmax.
  SamplingParams g = at_temperature(0);
  g.logit_bias = {{0, -100.0f}};
  EXPECT_EQ(sample({5, 0, 0, 4}, g).id, 3);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  std::vector<float> z = {2, -2, 2, -2, 1, 3};
  TokenCounts h;
  const std::vector<int32_t> prompt = {0, 1};
  h.add_prompt(prompt);
  h.add_generated(2);
  h.add_generated(2);
  h.add_generated(0);  // in the prompt too: penalised once
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  apply_penalties(z, p, h);
  EXPECT_EQ(z, (std::vector<float>{1, -4, 1, -2, 1, 3}));
}

TEST(Sampler, FrequencyAndPresencePenaltiesCountGeneratedIdsOnly) {
  std::vector<float> z = {1, 1, 1, 1};
  TokenCounts h;
  const std::vector<int32_t> prompt = {2, 3, 3};
  h.add_prompt(prompt);
  for (int i = 0; i < 3; ++i) h.add_generated(0);
  h.add_generated(1);
  SamplingParams p;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  apply_penalties(z, p, h);
  EXPECT_FLOAT_EQ(z[0], 1 - 3 * 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(z[1], 1 - 0.5f - 0.25f);
  EXPECT_EQ(z[2], 1.0f);
  EXPECT_EQ(z[3], 1.0f);
}

TEST(Sampler, PenaltiesApplyInOrderBiasRepetitionFrequency) {
  // Bias before repetition: (1 - 3) * 2 = -4 (the other order gives 0.5 - 3 = -2.5).
  // Repetition before frequency: 4 / 2 - 1 = 1 (the other order gives (4 - 1) / 2 = 1.5).
  std::vector<float> z = {1, 4};
  TokenCounts h;
  h.add_generated(0);
  h.add_generated(1);
  SamplingParams p;
  p.logit_bias = {{0, -3.0f}};
  p.repetition_penalty = 2.0f;
  p.frequency_penalty = 1.0f;
  apply_penalties(z, p, h);
  EXPECT_EQ(z[0], -4.0f - 1.0f);
  EXPECT_EQ(z[1], 1.0f);
}

TEST(Sampler, PenaltiesChangeTheSampledToken) {
  TokenCounts h;
  h.add_generated(0);
  SamplingParams p = at_temperature(0);
  p.presence_penalty = 2.0f;
  EXPECT_EQ(sample({3, 2}, p, h).id, 1);
  p.presence_penalty = 0.5f;
  EXPECT_EQ(sample({3, 2}, p, h).id, 0);
}

// ---------------------------------------------------------------------------------------------
// Truncation

TEST(Sampler, TopKOneEqualsGreedy) {
  const auto logits = random_logits(1000, 3, -4, 4);
  SamplingParams p = at_temperature(1.5f);
  p.top_k = 1;
  const int32_t greedy = sample(logits, at_temperature(0)).id;
  for (uint64_t pos = 0; pos < 100; ++pos) EXPECT_EQ(sample(logits, p, {}, kSeed, pos).id, greedy);
}

TEST(Sampler, TopKTiesAtTheBoundaryKeepTheLowerIds) {
  SamplingParams p = at_temperature(1.0f);
  p.top_k = 3;
  EXPECT_EQ(drawn_ids({0, 0, 0, 0, -50}, p, 600), (std::set<int32_t>{0, 1, 2}));
  p.top_k = 4;
  EXPECT_EQ(drawn_ids({0, 0, 0, 0, -50}, p, 600), (std::set<int32_t>{0, 1, 2, 3}));
}

TEST(Sampler, TopPOneKeepsEveryToken) {
  SamplingParams p = at_temperature(1.0f);
  p.top_p = 1.0f;
  EXPECT_EQ(drawn_ids({0, 0, 0, -1.5f}, p, 2000), (std::set<int32_t>{0, 1, 2, 3}));
}

TEST(Sampler, TinyTopPKeepsOnlyTheMostProbableToken) {
  SamplingParams p = at_temperature(1.0f);
  p.top_p = 1e-6f;
  EXPECT_EQ(drawn_ids({1, 2, 0.5f, 1.99f}, p, 500), (std::set<int32_t>{1}));
  p.top_k = 3;  // the same through the top-k path
  EXPECT_EQ(drawn_ids({1, 2, 0.5f, 1.99f}, p, 500), (std::set<int32_t>{1}));
}

TEST(Sampler, TopPTiesAtTheBoundaryKeepTheLowerIds) {
  // Four tokens of 1/4: mass 1/2 is reached exactly by ids 0 and 1; ids 2 and 3, tied with
  // them, are dropped.
  SamplingParams p = at_temperature(1.0f);
  p.top_p = 0.5f;
  EXPECT_EQ(drawn_ids({0, 0, 0, 0}, p, 600), (std::set<int32_t>{0, 1}));
  p.top_p = 0.51f;
  EXPECT_EQ(drawn_ids({0, 0, 0, 0}, p, 600), (std::set<int32_t>{0, 1, 2}));
  p.top_k = 4;  // the same through the top-k path
  EXPECT_EQ(drawn_ids({0, 0, 0, 0}, p, 600), (std::set<int32_t>{0, 1, 2}));
}

TEST(Sampler, MinPEdges) {
  SamplingParams p = at_temperature(1.0f);
  p.min_p = 0.0f;
  EXPECT_EQ(drawn_ids({1, 3, 3, 0}, p, 2000), (std::set<int32_t>{0, 1, 2, 3}));
  // min_p = 1 keeps the tokens tied with the maximum and nothing else.
  p.min_p = 1.0f;
  EXPECT_EQ(drawn_ids({1, 3, 3, 0}, p, 600), (std::set<int32_t>{1, 2}));
  // Token 1 has half the probability of token 0.
  const std::vector<float> half = {0, std::log(0.5f)};
  p.min_p = 0.49f;
  EXPECT_EQ(drawn_ids(half, p, 600), (std::set<int32_t>{0, 1}));
  p.min_p = 0.51f;
  EXPECT_EQ(drawn_ids(half, p, 600), (std::set<int32_t>{0}));
  p.top_k = 2;  // the same through the top-k path
  EXPECT_EQ(drawn_ids(half, p, 600), (std::set<int32_t>{0}));
}

TEST(Sampler, TemperatureSharpensAndFlattens) {
  // p(id 1) = sigmoid(1 / T): 0.982 at T = 0.25, 0.562 at T = 4. 4000 draws: sigma < 0.008.
  const int n = 4000;
  EXPECT_NEAR(histogram({0, 1}, at_temperature(0.25f), n)[1] / double(n), 1 / (1 + std::exp(-4.0)),
              0.03);
  EXPECT_NEAR(histogram({0, 1}, at_temperature(4.0f), n)[1] / double(n), 1 / (1 + std::exp(-0.25)),
              0.03);
}

// ---------------------------------------------------------------------------------------------
// Logprobs

TEST(Sampler, LogprobsAreTheLogSoftmaxOfTheProcessedLogits) {
  const std::vector<float> logits = {1, 2, 3, 0.5f};
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0) + std::exp(0.5));
  SamplingParams p = at_temperature(0);
  p.logprobs = 2;
  const SampleResult r = sample(logits, p);
  EXPECT_EQ(r.id, 2);
  EXPECT_NEAR(r.logprob, 3 - lse, 1e-6);
  ASSERT_EQ(r.top.size(), 2u);
  EXPECT_EQ(r.top[0].first, 2);
  EXPECT_NEAR(r.top[0].second, 3 - lse, 1e-6);
  EXPECT_EQ(r.top[1].first, 1);
  EXPECT_NEAR(r.top[1].second, 2 - lse, 1e-6);

  // Temperature, top-k and top-p do not change them; the bias does.
  SamplingParams t = p;
  t.temperature = 0.3f;
  t.top_k = 2;
  t.top_p = 0.5f;
  const SampleResult rt = sample(logits, t, {}, kSeed, 9);
  EXPECT_EQ(rt.top, r.top);
  EXPECT_NEAR(rt.logprob, logits[size_t(rt.id)] - lse, 1e-6);
  SamplingParams b = p;
  b.logit_bias = {{3, 2.5f}};  // id 3 becomes 3.0, tied with id 2
  const double lse_b = std::log(std::exp(1.0) + std::exp(2.0) + 2 * std::exp(3.0));
  const SampleResult rb = sample(logits, b);
  EXPECT_EQ(rb.id, 2);
  ASSERT_EQ(rb.top.size(), 2u);
  EXPECT_EQ(rb.top[0].first, 2);  // tie: lower id first
  EXPECT_EQ(rb.top[1].first, 3);
  EXPECT_NEAR(rb.top[1].second, 3 - lse_b, 1e-6);
}

TEST(Sampler, LogprobsCountEdges) {
  const std::vector<float> logits = {0, 1, 1};
  SamplingParams p = at_temperature(0);
  p.logprobs = -1;  // none
  SampleResult r = sample(logits, p);
  EXPECT_EQ(r.logprob, 0.0f);
  EXPECT_TRUE(r.top.empty());
  p.logprobs = 0;  // the chosen id only
  r = sample(logits, p);
  EXPECT_NEAR(r.logprob, 1 - std::log(1 + 2 * std::exp(1.0)), 1e-6);
  EXPECT_TRUE(r.top.empty());
  p.logprobs = 10;  // more than the vocabulary: all of it
  r = sample(logits, p);
  ASSERT_EQ(r.top.size(), 3u);
  EXPECT_EQ(r.top[0].first, 1);
  EXPECT_EQ(r.top[1].first, 2);
  EXPECT_EQ(r.top[2].first, 0);
  double mass = 0;
  for (const auto& [id, lp] : r.top) mass += std::exp(double(lp));
  EXPECT_NEAR(mass, 1.0, 1e-6);
}

// ---------------------------------------------------------------------------------------------
// Determinism and the distribution

TEST(Sampler, SameSeedAndPositionGiveTheSameToken) {
  const auto logits = random_logits(5000, 11, -3, 3);
  SamplingParams p = at_temperature(1.0f);
  p.top_p = 0.95f;
  std::vector<int32_t> forward, backward(200), reseeded;
  Sampler a, b;
  TokenCounts none;
  for (uint64_t pos = 0; pos < 200; ++pos)
    forward.push_back(a.sample(logits, p, none, kSeed, pos).id);
  // Another sampler, positions in the other order: nothing carries over between calls.
  for (uint64_t pos = 200; pos-- > 0;) backward[pos] = b.sample(logits, p, none, kSeed, pos).id;
  EXPECT_EQ(forward, backward);
  for (uint64_t pos = 0; pos < 200; ++pos)
    reseeded.push_back(a.sample(logits, p, none, kSeed + 1, pos).id);
  EXPECT_NE(forward, reseeded);
  // Different positions draw differently: 200 draws over 5000 near-uniform tokens.
  EXPECT_GT(std::set<int32_t>(forward.begin(), forward.end()).size(), 150u);
}

TEST(Sampler, DrawsMatchTheSoftmaxChiSquare) {
  // 8 tokens at temperature 0.8, weights spread over several binades. Chi-square with 7
  // degrees of freedom; 24.32 is the 99.9% point. Deterministic (fixed seed): the statistic
  // obtained is 9.15.
  const std::vector<float> logits = {2.0f, 1.5f, 0.3f, -0.4f, -1.0f, 0.9f, -2.5f, 0.0f};
  const int n = 20000;
  const double stat =
      chi_square(histogram(logits, at_temperature(0.8f), n), softmax(logits, 0.8), n);
  EXPECT_LT(stat, 24.32);
}

TEST(Sampler, TopKDrawsMatchTheTruncatedSoftmaxChiSquare) {
  // Top 3 of the 8 (ids 0, 1, 5), renormalised: 2 degrees of freedom, 99.9% point 13.82.
  // Statistic obtained: 3.12.
  const std::vector<float> logits = {2.0f, 1.5f, 0.3f, -0.4f, -1.0f, 0.9f, -2.5f, 0.0f};
  SamplingParams p = at_temperature(0.8f);
  p.top_k = 3;
  auto probs = softmax(logits, 0.8);
  double kept = probs[0] + probs[1] + probs[5];
  for (size_t i = 0; i < probs.size(); ++i)
    probs[i] = (i == 0 || i == 1 || i == 5) ? probs[i] / kept : 0.0;
  const int n = 20000;
  EXPECT_LT(chi_square(histogram(logits, p, n), probs, n), 13.82);
}

TEST(Sampler, TopPDrawsMatchTheTruncatedSoftmaxChiSquare) {
  // Probabilities at T = 0.8, descending: id 0 .484, 1 .259, 5 .122, 2 .058, 7 .040, ...
  // Mass 0.9 is first reached with id 2 (0.865 before it, 0.923 with it): four tokens kept,
  // 3 degrees of freedom, 99.9% point 16.27. Statistic obtained: 6.51.
  const std::vector<float> logits = {2.0f, 1.5f, 0.3f, -0.4f, -1.0f, 0.9f, -2.5f, 0.0f};
  SamplingParams p = at_temperature(0.8f);
  p.top_p = 0.9f;
  auto probs = softmax(logits, 0.8);
  std::vector<size_t> order(probs.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return probs[a] > probs[b]; });
  double mass = 0;
  size_t n_kept = 0;
  while (mass < 0.9) mass += probs[order[n_kept++]];
  ASSERT_EQ(n_kept, 4u);
  ASSERT_GT(mass - 0.9, 1e-3);
  ASSERT_GT(0.9 - (mass - probs[order[n_kept - 1]]),
            1e-3);  // not at the boundary, so float rounding cannot move it
  for (size_t r = 0; r < order.size(); ++r)
    probs[order[r]] = r < n_kept ? probs[order[r]] / mass : 0.0;
  const int n = 20000;
  EXPECT_LT(chi_square(histogram(logits, p, n), probs, n), 16.27);
}

// The definition of the order of operations written out with a full sort of the vocabulary:
// the sampler must give the same id bit for bit whatever shortcuts it takes.
int32_t reference_sample(std::vector<float> z, const SamplingParams& p, uint64_t seed,
                         uint64_t position) {
  const int32_t vocab = int32_t(z.size());
  if (p.temperature < 1e-5f) return int32_t(std::max_element(z.begin(), z.end()) - z.begin());
  const double m = *std::max_element(z.begin(), z.end());
  std::vector<double> w(z.size());
  double total = 0;
  for (size_t i = 0; i < z.size(); ++i)
    total += w[i] = std::exp((double(z[i]) - m) * (1.0 / double(p.temperature)));
  std::vector<int32_t> ids(z.size());
  std::iota(ids.begin(), ids.end(), 0);
  const bool top_k = p.top_k > 0 && p.top_k < vocab;
  if (top_k) {
    std::sort(ids.begin(), ids.end(),
              [&](int32_t a, int32_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); });
    ids.resize(size_t(p.top_k));
  }
  std::sort(ids.begin(), ids.end(),
            [&](int32_t a, int32_t b) { return w[a] > w[b] || (w[a] == w[b] && a < b); });
  std::vector<double> cum;
  double c = 0;
  for (int32_t id : ids) cum.push_back(c += w[size_t(id)]);
  size_t n = ids.size();
  if (p.top_p < 1.0f) {
    const double need = double(p.top_p) * (top_k ? cum.back() : total);
    n = 0;
    while (n < ids.size() && cum[n] < need) ++n;
    n = std::min(n + 1, ids.size());
  }
  size_t kept = 1;
  while (kept < n && w[size_t(ids[kept])] > 0 && w[size_t(ids[kept])] >= p.min_p) ++kept;
  double kept_mass = cum[kept - 1];
  if (!top_k && p.top_p >= 1.0f) {  // every token min_p keeps: the mass in vocabulary order
    kept_mass = 0;
    for (double v : w)
      if (v > 0 && v >= p.min_p) kept_mass += v;
  }
  const double target = CounterRng::uniform(seed, position, 0) * kept_mass;
  for (size_t r = 0; r < kept; ++r)
    if (cum[r] > target) return ids[r];
  return ids[kept - 1];
}

TEST(Sampler, EqualsTheFullSortDefinition) {
  struct Case {
    float temperature, top_p;
    int32_t top_k;
    float min_p;
  };
  const Case cases[] = {{1.0f, 1.0f, 0, 0.0f},   {0.7f, 1.0f, 0, 0.0f},  {1.0f, 0.9f, 0, 0.0f},
                        {0.6f, 0.5f, 0, 0.0f},   {1.0f, 1.0f, 40, 0.0f}, {1.2f, 0.8f, 50, 0.0f},
                        {1.0f, 1.0f, 0, 0.05f},  {0.9f, 0.95f, 0, 0.1f}, {1.0f, 0.9f, 20, 0.2f},
                        {1.0f, 0.999f, -1, 0.0f}};
  // A flat row, a peaked one (one dominant logit and a long tail) and one with a wide range.
  std::vector<std::vector<float>> rows = {random_logits(3000, 1, -2, 2),
                                          random_logits(3000, 2, -12, 0),
                                          random_logits(3000, 3, -40, 10)};
  rows[1][1234] = 9.0f;
  Sampler s;
  TokenCounts none;
  int checked = 0;
  for (const auto& row : rows)
    for (const Case& c : cases) {
      SamplingParams p = at_temperature(c.temperature);
      p.top_p = c.top_p;
      p.top_k = c.top_k;
      p.min_p = c.min_p;
      for (uint64_t pos = 0; pos < 40; ++pos, ++checked)
        ASSERT_EQ(s.sample(row, p, none, kSeed, pos).id, reference_sample(row, p, kSeed, pos))
            << "case t=" << c.temperature << " top_p=" << c.top_p << " top_k=" << c.top_k
            << " min_p=" << c.min_p << " position " << pos;
    }
  EXPECT_EQ(checked, 3 * 10 * 40);
}

TEST(Sampler, NonFiniteLogits) {
  const float inf = std::numeric_limits<float>::infinity(),
              nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(sample({nan, 1, 2}, at_temperature(0)).id, 2);
  EXPECT_EQ(drawn_ids({nan, 0, 0, -inf}, at_temperature(1.0f), 300), (std::set<int32_t>{1, 2}));
  EXPECT_EQ(drawn_ids({0, inf, 5}, at_temperature(1.0f), 300), (std::set<int32_t>{1}));
  // Nothing finite left: uniform.
  EXPECT_EQ(drawn_ids({-inf, -inf, nan}, at_temperature(1.0f), 300), (std::set<int32_t>{0, 1, 2}));
}

// ---------------------------------------------------------------------------------------------
// Parameters, history, stop tokens

TEST(Sampler, BadParametersNameTheField) {
  auto message = [](const SamplingParams& p) {
    try {
      check_sampling_params(p, 100);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  SamplingParams p;
  EXPECT_EQ(message(p), "accepted");
  p.top_p = 0;
  EXPECT_NE(message(p).find("top_p"), std::string::npos);
  p = {};
  p.temperature = -1;
  EXPECT_NE(message(p).find("temperature"), std::string::npos);
  p = {};
  p.min_p = 1.5f;
  EXPECT_NE(message(p).find("min_p"), std::string::npos);
  p = {};
  p.repetition_penalty = 0;
  EXPECT_NE(message(p).find("repetition_penalty"), std::string::npos);
  p = {};
  p.top_k = -2;
  EXPECT_NE(message(p).find("top_k"), std::string::npos);
  p = {};
  p.logprobs = -3;
  EXPECT_NE(message(p).find("logprobs"), std::string::npos);
  p = {};
  p.logit_bias = {{5, 1.0f}, {100, 1.0f}};
  const std::string m = message(p);
  EXPECT_NE(m.find("logit_bias[1]"), std::string::npos) << m;
  EXPECT_NE(m.find("100"), std::string::npos) << m;
  // sample() refuses them too.
  EXPECT_THROW(sample(std::vector<float>(100, 0.0f), p), InputError);
}

TEST(Sampler, TokenCountsTrackPromptAndGeneratedIds) {
  TokenCounts h;
  const std::vector<int32_t> chunk1 = {5, 70, 5}, chunk2 = {200};
  h.add_prompt(chunk1);
  h.add_prompt(chunk2);
  EXPECT_TRUE(h.in_prompt(5));
  EXPECT_TRUE(h.in_prompt(70));
  EXPECT_TRUE(h.in_prompt(200));
  EXPECT_FALSE(h.in_prompt(6));
  EXPECT_FALSE(h.in_prompt(100000));
  h.add_generated(7);
  h.add_generated(7);
  h.add_generated(5);
  EXPECT_EQ(h.generated_count(7), 2);
  EXPECT_EQ(h.generated_count(5), 1);
  EXPECT_EQ(h.generated_count(70), 0);
  EXPECT_EQ(h.generated_total(), 3);
  const std::vector<int32_t> bad = {-1};
  EXPECT_THROW(h.add_prompt(bad), InputError);
  EXPECT_THROW(h.add_generated(-4), InputError);
  h.clear();
  EXPECT_FALSE(h.in_prompt(5));
  EXPECT_EQ(h.generated_count(7), 0);
  // Ids beyond the row are ignored by the penalties.
  h.add_prompt(chunk2);
  std::vector<float> z = {1, 1};
  SamplingParams p;
  p.repetition_penalty = 2;
  apply_penalties(z, p, h);
  EXPECT_EQ(z, (std::vector<float>{1, 1}));
}

TEST(Sampler, StopTokens) {
  SamplingParams p;
  EXPECT_TRUE(is_stop_token(1, p, 1));
  EXPECT_FALSE(is_stop_token(2, p, 1));
  p.ignore_eos = true;
  EXPECT_FALSE(is_stop_token(1, p, 1));
  p.stop_token_ids = {7, 9};
  EXPECT_TRUE(is_stop_token(9, p, 1));
  EXPECT_FALSE(is_stop_token(8, p, 1));
}

}  // namespace
}  // namespace flashline
