// Properties that hold bit for bit in both numerics modes: prefill equals token-by-token
// decode (window wrap, compressor remainders and overlap halves carried in the state), and a
// request's results do not depend on the other requests in its batch.
#include <fmt/format.h>
#include <omp.h>

#include "stages/compressor.h"
#include "tests/golden/golden_fixture.h"

namespace flashline::testing {
namespace {

class Consistency : public ::testing::TestWithParam<Numerics> {};

std::vector<int32_t> prompt(int n, int salt) {
  std::vector<int32_t> ids(n);
  for (int i = 0; i < n; ++i) ids[i] = int32_t((1103515245LL * (i + 1 + 7 * salt) + 12345) % 2147483648LL % 2048);
  return ids;
}

TEST_P(Consistency, PrefillEqualsTokenByTokenDecode) {
  ModelUnderTest m(GetParam());
  const int n = 134;  // crosses the window (128), a ratio-128 block and many ratio-4 blocks
  const auto ids = prompt(n, 1);
  auto st = m.tf.new_state();
  auto X = m.prefill(ids, st);
  const auto whole = m.all_logits(X, n);
  const int V = m.tf.config().vocab;
  auto st2 = m.tf.new_state();
  auto X2 = m.prefill({ids[0]}, st2);
  auto row = m.tf.logits(X2, {0});
  EXPECT_EQ(row, std::vector<float>(whole.begin(), whole.begin() + V)) << "position 0";
  for (int p = 1; p < n; ++p) {
    row = m.decode(ids[p], p, st2);
    ASSERT_EQ(row, std::vector<float>(whole.begin() + std::ptrdiff_t(p) * V, whole.begin() + std::ptrdiff_t(p + 1) * V))
        << "position " << p;
  }
}

TEST_P(Consistency, BatchedRequestsEqualEachAlone) {
  ModelUnderTest m(GetParam());
  const int V = m.tf.config().vocab;
  const std::vector<std::vector<int32_t>> prompts{prompt(7, 2), prompt(130, 3), prompt(1, 4), prompt(40, 5)};
  const int steps = 6;
  // each request alone: prefill then `steps` greedy decode steps
  std::vector<std::vector<float>> alone(prompts.size());
  std::vector<std::vector<int32_t>> alone_ids(prompts.size());
  for (std::size_t r = 0; r < prompts.size(); ++r) {
    auto st = m.tf.new_state();
    auto X = m.prefill(prompts[r], st);
    auto l = m.tf.logits(X, {int(prompts[r].size()) - 1});
    for (int s = 0; s < steps; ++s) {
      alone[r].insert(alone[r].end(), l.begin(), l.end());
      const int32_t next = int32_t(std::max_element(l.begin(), l.end()) - l.begin());
      alone_ids[r].push_back(next);
      l = m.decode(next, int(prompts[r].size()) + s, st);
    }
  }
  // together: all prefills in one batch, then decode steps where requests join late
  std::vector<RequestState> states;
  for (std::size_t r = 0; r < prompts.size(); ++r) states.push_back(m.tf.new_state());
  StepBatch pre;
  for (std::size_t r = 0; r < prompts.size(); ++r) pre.add(prompts[r], 0, &states[r]);
  auto X = m.tf.embed(pre);
  m.tf.run_layers(0, m.tf.config().n_layers, pre, X);
  std::vector<int> last;
  for (const auto& s : pre.seqs) last.push_back(s.row_begin + s.rows - 1);
  auto l = m.tf.logits(X, last);
  std::vector<std::vector<float>> together(prompts.size());
  for (std::size_t r = 0; r < prompts.size(); ++r)
    together[r].insert(together[r].end(), l.begin() + std::ptrdiff_t(r) * V, l.begin() + std::ptrdiff_t(r + 1) * V);
  for (int s = 0; s + 1 < steps; ++s) {
    StepBatch step;
    std::vector<std::size_t> who;
    for (std::size_t r = 0; r < prompts.size(); ++r) {
      if (r == 2 && s % 2 == 1) continue;  // request 2 skips some steps: batch composition varies
      const int done = int(together[r].size()) / V;
      step.add({alone_ids[r][done - 1]}, int(prompts[r].size()) + done - 1, &states[r]);
      who.push_back(r);
    }
    auto Xs = m.tf.embed(step);
    m.tf.run_layers(0, m.tf.config().n_layers, step, Xs);
    std::vector<int> rows(who.size());
    for (std::size_t i = 0; i < who.size(); ++i) rows[i] = int(i);
    auto ls = m.tf.logits(Xs, rows);
    for (std::size_t i = 0; i < who.size(); ++i)
      together[who[i]].insert(together[who[i]].end(), ls.begin() + std::ptrdiff_t(i) * V,
                              ls.begin() + std::ptrdiff_t(i + 1) * V);
  }
  for (std::size_t r = 0; r < prompts.size(); ++r) {
    const std::size_t n = together[r].size();
    EXPECT_EQ(together[r], std::vector<float>(alone[r].begin(), alone[r].begin() + std::ptrdiff_t(n))) << "request " << r;
  }
}

// A compressor fed a prefill of S tokens then single tokens emits the same entries as one
// prefill of all tokens: the remainder rows and the ratio-4 overlap half survive in the state.
TEST_P(Consistency, CompressorRemainderAndOverlapCarry) {
  ModelUnderTest m(GetParam());
  const auto& c = m.tf.config();
  RopeTable rope({c.rope_dim, c.compress_rope_theta, c.rope_orig_len, c.rope_factor, c.beta_fast, c.beta_slow});
  for (int layer : {2, 3}) {
    const auto& w = *m.tf.weights().layer(layer).attn.compressor;
    const int total = w.ratio == 4 ? 14 : 260, cols = (w.overlap ? 2 : 1) * w.head_dim;
    std::vector<float> x(std::size_t(total) * c.dim);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = bf16_round(std::sin(0.37f * float(i)) * 2.0f);
    for (int split : {1, 2, w.ratio - 1, w.ratio, w.ratio + 1, 2 * w.ratio + 1}) {
      SCOPED_TRACE(fmt::format("layer {} split {}", layer, split));
      CompressorState a, b;
      a.reset(cols / w.head_dim * w.ratio, cols);
      b.reset(cols / w.head_dim * w.ratio, cols);
      auto whole = run_compressor(w, x.data(), total, 0, a, rope, c, GetParam());
      auto parts = run_compressor(w, x.data(), split, 0, b, rope, c, GetParam());
      for (int t = split; t < total; ++t) {
        auto e = run_compressor(w, x.data() + std::size_t(t) * c.dim, 1, t, b, rope, c, GetParam());
        parts.insert(parts.end(), e.begin(), e.end());
      }
      EXPECT_EQ(whole.size(), std::size_t(total / w.ratio) * w.head_dim);
      EXPECT_EQ(parts, whole);
    }
  }
}

TEST_P(Consistency, ThreadCountDoesNotChangeResults) {
  ModelUnderTest m(GetParam());
  const auto ids = prompt(70, 6);
  std::vector<std::vector<float>> runs;
  const int before = omp_get_max_threads();
  for (int threads : {1, 3, 4}) {
    omp_set_num_threads(threads);
    auto st = m.tf.new_state();
    auto X = m.prefill(ids, st);
    auto l = m.all_logits(X, 70);
    auto d = m.decode(5, 70, st);
    l.insert(l.end(), d.begin(), d.end());
    runs.push_back(std::move(l));
  }
  omp_set_num_threads(before);
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_EQ(runs[0], runs[2]);
}

INSTANTIATE_TEST_SUITE_P(Numerics, Consistency, ::testing::Values(Numerics::Exact, Numerics::Fast),
                         [](const auto& info) { return info.param == Numerics::Exact ? "exact" : "fast"; });

}  // namespace
}  // namespace flashline::testing
