// End-to-end comparison with the reference outputs of tiny-a in exact numerics: expected
// bit-identical; at most 1e-6 relative difference allowed, ids and choices identical.
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "tests/golden/golden_fixture.h"

namespace flashline::testing {
namespace {

constexpr double kRel = 1e-6;

std::vector<int32_t> ids_of(const std::string& file) { return golden(file).i32; }

class GoldenExact : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = new ModelUnderTest(Numerics::Exact); }
  static void TearDownTestSuite() { delete model_; }
  static ModelUnderTest* model_;
};
ModelUnderTest* GoldenExact::model_ = nullptr;

class GoldenPrefill : public GoldenExact, public ::testing::WithParamInterface<int> {};

TEST_P(GoldenPrefill, LogitsOfEveryPosition) {
  const int n = GetParam();
  const auto ids = ids_of(fmt::format("prompt_len{}_ids.npy", n));
  ASSERT_EQ(int(ids.size()), n);
  auto st = model_->tf.new_state();
  auto X = model_->prefill(ids, st);
  EXPECT_TRUE(close_rel(model_->all_logits(X, n), golden(fmt::format("prefill_len{}_logits.npy", n)).f32, kRel));
}
// Prompts of at least `window` tokens (and of fewer than 4, the first ratio): there the
// reference's prefill index lists are its decode lists.
INSTANTIATE_TEST_SUITE_P(Prompts, GoldenPrefill, ::testing::Values(1, 130, 250),
                         [](const auto& info) { return "len" + std::to_string(info.param); });

// A prompt shorter than the window: the reference's prefill walks an index list of min(S,
// window) window entries, so from position 3 (the first compressed entry) its online softmax
// groups a compressed entry with the window where its own decode does not, and its prefill
// differs from its token-by-token decode (by up to 2 in a logit). flashline extends every chunk
// with the decode lists (a prefill equals feeding the tokens one by one), so it matches the
// reference's prefill where the lists agree (positions 0-2) and the reference's token-by-token
// decode everywhere (token_by_token_len7_logits.npy, made by tests/reference/dsv4_ref.py: a
// one-token prefill and six decode steps).
TEST_F(GoldenExact, ShortPromptMatchesTheReferenceTokenByToken) {
  const auto ids = ids_of("prompt_len7_ids.npy");
  const int V = model_->tf.config().vocab;
  auto st = model_->tf.new_state();
  const auto logits = model_->all_logits(model_->prefill(ids, st), 7);
  EXPECT_TRUE(close_rel(logits, golden("token_by_token_len7_logits.npy").f32, kRel));
  const auto prefill = golden("prefill_len7_logits.npy").f32;
  EXPECT_TRUE(close_rel({logits.begin(), logits.begin() + 3 * V}, {prefill.begin(), prefill.begin() + 3 * V}, kRel));
}

// Per-row sets of a [rows, k] id array (ties may be ordered differently).
std::vector<std::set<int32_t>> row_sets(const std::vector<int32_t>& v, int k) {
  std::vector<std::set<int32_t>> out;
  for (std::size_t i = 0; i < v.size(); i += k) out.emplace_back(v.begin() + i, v.begin() + i + k);
  return out;
}

TEST_F(GoldenExact, Len130Intermediates) {
  const auto ids = ids_of("prompt_len130_ids.npy");
  const auto& c = model_->tf.config();
  Trace tr;
  auto st = model_->tf.new_state();
  auto X = model_->prefill(ids, st, &tr);
  model_->all_logits(X, 130, &tr);
  EXPECT_TRUE(close_rel(tr.embed, golden("len130_embed.npy").f32, kRel));
  const auto after_attn = golden("len130_hc_after_attn.npy").f32;
  const auto after_block = golden("len130_hc_after_block.npy").f32;
  const auto router_idx = golden("len130_router_idx.npy").i32;
  const auto router_w = golden("len130_router_w.npy").f32;
  const std::size_t per_layer = std::size_t(130) * c.hc * c.dim, per_route = std::size_t(130) * c.topk_experts;
  for (int l = 0; l < c.n_layers; ++l) {
    SCOPED_TRACE(fmt::format("layer {}", l));
    EXPECT_TRUE(close_rel(tr.hc_after_attn.at(l),
                          {after_attn.begin() + l * per_layer, after_attn.begin() + (l + 1) * per_layer}, kRel));
    EXPECT_TRUE(close_rel(tr.hc_after_block.at(l),
                          {after_block.begin() + l * per_layer, after_block.begin() + (l + 1) * per_layer}, kRel));
    EXPECT_EQ(tr.router_idx.at(l),
              std::vector<int32_t>(router_idx.begin() + l * per_route, router_idx.begin() + (l + 1) * per_route));
    EXPECT_TRUE(close_rel(tr.router_w.at(l), {router_w.begin() + l * per_route, router_w.begin() + (l + 1) * per_route},
                          kRel));
  }
  for (int l = 0; l < c.n_layers; ++l) {
    if (c.ratio(l) != 4) continue;
    SCOPED_TRACE(fmt::format("indexer layer {}", l));
    const auto topk = golden(fmt::format("len130_indexer_topk_layer{}.npy", l));
    const int k = int(topk.shape[1]);
    EXPECT_EQ(row_sets(tr.index_topk.at(l), k), row_sets(topk.i32, k));
    EXPECT_TRUE(close_rel(tr.index_scores.at(l), golden(fmt::format("len130_indexer_scores_layer{}.npy", l)).f32, kRel));
  }
  EXPECT_TRUE(close_rel(tr.final_norm_out, golden("len130_final_norm_out.npy").f32, kRel));
}

TEST_F(GoldenExact, MtpLogits) {
  const auto ids = ids_of("prompt_len130_ids.npy");
  const auto& c = model_->tf.config();
  auto st = model_->tf.new_state();
  auto X = model_->prefill(ids, st);
  std::vector<float> h(X.begin(), X.begin() + std::ptrdiff_t(129) * c.hc * c.dim);
  auto mst = model_->tf.new_mtp_state();
  StepBatch b;
  b.add(std::vector<int32_t>(ids.begin() + 1, ids.end()), 0, &mst);
  EXPECT_TRUE(close_rel(model_->tf.mtp_logits(h, b), golden("mtp_len130_logits.npy").f32, kRel));
}

TEST_F(GoldenExact, DecodeTeacherForcedAndFreeRunning) {
  const auto ids = ids_of("prompt_len250_ids.npy");
  const auto fed = ids_of("decode_input_ids.npy");
  const auto positions = ids_of("decode_positions.npy");
  const auto want = golden("decode_logits.npy").f32;
  const auto generated = ids_of("generated_ids.npy");
  const int V = model_->tf.config().vocab;
  auto argmax = [](const float* v, int n) { return int32_t(std::max_element(v, v + n) - v); };

  // teacher forcing: feed the reference's tokens, compare every step's logits
  auto st = model_->tf.new_state();
  auto X = model_->prefill(ids, st);
  auto last = model_->tf.logits(X, {249});
  EXPECT_EQ(argmax(last.data(), V), generated[0]);
  std::vector<float> got;
  for (std::size_t i = 0; i < fed.size(); ++i) {
    auto l = model_->decode(fed[i], positions[i], st);
    got.insert(got.end(), l.begin(), l.end());
  }
  EXPECT_TRUE(close_rel(got, want, kRel));

  // free running: our own argmax fed back, all 141 greedy ids
  auto st2 = model_->tf.new_state();
  auto X2 = model_->prefill(ids, st2);
  auto l = model_->tf.logits(X2, {249});
  std::vector<int32_t> ours{argmax(l.data(), V)};
  while (ours.size() < generated.size()) {
    l = model_->decode(ours.back(), 250 + int(ours.size()) - 1, st2);
    ours.push_back(argmax(l.data(), V));
  }
  EXPECT_EQ(ours, generated);
}

}  // namespace
}  // namespace flashline::testing
