// fast numerics, block by block: each block of tiny-a is fed its golden input stream and its
// outputs are compared with the golden outputs by relative RMS error. End to end, one ulp
// early on grows into large logit differences on these random weights, so end-to-end
// agreement is reported, not asserted.
#include <fmt/format.h>

#include <cmath>
#include <set>

#include "tests/golden/golden_fixture.h"

namespace flashline::testing {
namespace {

constexpr double kMaxRelRms = 3e-2;
constexpr double kMinRouterAgreement = 0.90;

double rel_rms(const float* a, const float* b, std::size_t n) {
  double d = 0, g = 0;
  for (std::size_t i = 0; i < n; ++i) {
    d += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    g += double(b[i]) * b[i];
  }
  return std::sqrt(d / g);
}

TEST(GoldenFast, EachBlockOnItsGoldenInput) {
  ModelUnderTest m(Numerics::Fast);
  const auto& c = m.tf.config();
  const auto ids = golden("prompt_len130_ids.npy").i32;
  const auto embed = golden("len130_embed.npy").f32;
  const auto after_attn = golden("len130_hc_after_attn.npy").f32;
  const auto after_block = golden("len130_hc_after_block.npy").f32;
  const auto router_idx = golden("len130_router_idx.npy").i32;
  const int S = 130, K = c.topk_experts;
  const std::size_t per_layer = std::size_t(S) * c.hc * c.dim;
  for (int l = 0; l < c.n_layers; ++l) {
    std::vector<float> X(per_layer);
    if (l == 0) {
      for (int s = 0; s < S; ++s)
        for (int j = 0; j < c.hc; ++j) std::copy_n(&embed[std::size_t(s) * c.dim], c.dim, &X[(std::size_t(s) * c.hc + j) * c.dim]);
    } else {
      std::copy_n(&after_block[(l - 1) * per_layer], per_layer, X.begin());
    }
    auto st = RequestState::fresh(c, l, l + 1);
    StepBatch b;
    b.add(ids, 0, &st);
    Trace tr;
    m.tf.run_layers(l, l + 1, b, X, &tr);
    const double e_attn = rel_rms(tr.hc_after_attn.at(l).data(), &after_attn[l * per_layer], per_layer);
    const double e_block = rel_rms(X.data(), &after_block[l * per_layer], per_layer);
    int same = 0;
    for (int s = 0; s < S; ++s) {
      const auto* got = &tr.router_idx.at(l)[std::size_t(s) * K];
      const auto* want = &router_idx[(std::size_t(l) * S + s) * K];
      same += std::set<int32_t>(got, got + K) == std::set<int32_t>(want, want + K);
    }
    RecordProperty(fmt::format("layer{}_rel_rms", l), fmt::format("{:.2e} / {:.2e}", e_attn, e_block));
    std::printf("layer %d: rel RMS after attention %.2e, after block %.2e, router sets equal %d/%d\n", l, e_attn,
                e_block, same, S);
    EXPECT_LE(e_attn, kMaxRelRms) << "layer " << l;
    EXPECT_LE(e_block, kMaxRelRms) << "layer " << l;
    EXPECT_GE(same, kMinRouterAgreement * S) << "layer " << l;
  }
}

TEST(GoldenFast, MtpBlockOnGoldenFinalStream) {
  ModelUnderTest m(Numerics::Fast);
  const auto& c = m.tf.config();
  const auto ids = golden("prompt_len130_ids.npy").i32;
  const auto after_block = golden("len130_hc_after_block.npy").f32;
  const std::size_t per_layer = std::size_t(130) * c.hc * c.dim;
  const float* final_stream = &after_block[(c.n_layers - 1) * per_layer];
  std::vector<float> h(final_stream, final_stream + std::size_t(129) * c.hc * c.dim);
  auto mst = m.tf.new_mtp_state();
  StepBatch b;
  b.add(std::vector<int32_t>(ids.begin() + 1, ids.end()), 0, &mst);
  const auto got = m.tf.mtp_logits(h, b);
  const auto want = golden("mtp_len130_logits.npy").f32;
  const double e = rel_rms(got.data(), want.data(), want.size());
  std::printf("MTP logits rel RMS %.2e\n", e);
  EXPECT_LE(e, kMaxRelRms);
}

// Information only: end-to-end agreement of fast mode with the goldens.
TEST(GoldenFast, EndToEndAgreementReport) {
  ModelUnderTest m(Numerics::Fast);
  const int V = m.tf.config().vocab;
  for (int n : {7, 130, 250}) {
    const auto ids = golden(fmt::format("prompt_len{}_ids.npy", n)).i32;
    auto st = m.tf.new_state();
    auto X = m.prefill(ids, st);
    const auto got = m.all_logits(X, n);
    const auto want = golden(fmt::format("prefill_len{}_logits.npy", n)).f32;
    double mad = 0;
    int agree = 0;
    for (int i = 0; i < n; ++i) {
      const float* g = &got[std::size_t(i) * V];
      const float* w = &want[std::size_t(i) * V];
      for (int v = 0; v < V; ++v) mad += std::abs(double(g[v]) - w[v]);
      agree += std::max_element(g, g + V) - g == std::max_element(w, w + V) - w;
    }
    std::printf("prefill len %d: mean |logit diff| %.4f, argmax agreement %d/%d\n", n, mad / (double(n) * V), agree, n);
    EXPECT_GT(agree, 0);
  }
}

}  // namespace
}  // namespace flashline::testing
