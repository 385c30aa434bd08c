// Speculative decoding with the MTP block (docs/speculative.md), in one process:
//  - with k = 1..3 drafts every request gets the ids of the non-speculative run, and in exact
//    numerics the logits row of every emitted token bit for bit, on three tiny presets;
//  - forced drafts: at 100 % acceptance a request needs 1 + ceil((n - 1) / (k + 1)) steps, at
//    0 % it matches k = 0, at random rates too (ids and logits rows); every page comes back;
//  - a rejected draft leaves no trace: random partial acceptance leaves the state of every layer
//    (and of the MTP block after drafts on drafts) bit-identical to a run that never saw it;
//  - seeded sampling keeps the target distribution (chi-square over 20,000 seeds).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <numeric>
#include <random>

#include "comms/expert_exchange.h"
#include "launch/engine_bootstrap.h"
#include "launch/engine_run.h"
#include "runtime/last_stage.h"
#include "stages/checkpoint.h"
#include "stages/stage_executor.h"
#include "stages/tiny_model.h"

namespace flashline {
namespace {

const std::string kTinyA = std::string(FLASHLINE_TEST_DATA) + "/models/tiny-a";

// tiny-a from the test data; tiny-b (a CSA MTP block: its compressor and indexer roll back too)
// and tiny-c made once per test binary.
std::string model_dir(const std::string& preset) {
  if (preset == "tiny-a") return kTinyA;
  const auto dir = std::filesystem::path(::testing::TempDir()) / ("speculative-" + preset);
  if (!std::filesystem::exists(dir / "config.json"))
    write_tiny_model(preset == "tiny-c" ? tiny_preset_from_file(std::string(FLASHLINE_REFERENCE_DIR) + "/tiny-c.json")
                                        : tiny_preset(preset),
                     dir);
  return dir.string();
}

EngineOptions options(const std::string& model, int k, Numerics num = Numerics::Exact) {
  EngineOptions o;
  o.model = model;
  o.numerics = num;
  o.kv_cache_memory = "64MiB";
  o.speculative_tokens = k;
  return o;
}

std::vector<int32_t> prompt(int n, int salt, int vocab) {
  std::vector<int32_t> ids(n);
  for (int i = 0; i < n; ++i) ids[i] = int32_t((1103515245LL * (i + 1 + 31 * salt) + 12345) % 2147483648LL % vocab);
  return ids;
}

// Eight concurrent requests, prompts of 1 to 140 tokens (across the window and many compressed
// blocks), with the logits row of every token kept.
std::vector<TimedRequest> requests(int vocab, float temperature, int max_tokens = 10) {
  std::vector<TimedRequest> out;
  int i = 0;
  for (int n : {1, 5, 33, 140, 8, 64, 2, 17}) {
    TimedRequest t;
    t.request.prompt = prompt(n, i, vocab);
    t.request.sampling.max_tokens = max_tokens - i % 3;
    t.request.sampling.ignore_eos = true;
    t.request.sampling.temperature = temperature;
    t.request.sampling.seed = 77 + i;
    t.request.sampling.has_seed = true;
    t.request.debug.token_logits = true;
    out.push_back(t);
    ++i;
  }
  return out;
}

struct Run {
  std::vector<std::vector<int32_t>> ids;
  std::vector<std::vector<float>> logits;  // per request: the rows of its tokens, concatenated
  EngineStats stats;
  int64_t pages_left = 0;
};

Run run(const EngineOptions& o, const std::vector<TimedRequest>& reqs) {
  auto engine = start_engine(o);
  Run r;
  for (const auto& out : run_requests(*engine, reqs)) {
    EXPECT_NE(out.finish, FinishReason::Error) << out.error;
    r.ids.push_back(out.ids);
    r.logits.push_back(out.token_logits);
  }
  r.stats = engine->stats();
  engine->shutdown(0);
  for (const auto& s : engine->rank_stats()) r.pages_left += s.pages_used;
  return r;
}

class Presets : public ::testing::TestWithParam<std::string> {};

// Greedy, exact numerics: ids and every emitted token's logits row as without drafts; seeded
// sampling (temperature 0.8, on tiny-a): the same ids too, since a token is drawn as without
// drafts.
TEST_P(Presets, DraftsChangeNoIdAndNoLogitsRow) {
  const auto dir = model_dir(GetParam());
  const int vocab = engine_model_config(options(dir, 0)).vocab;
  for (float temperature : {0.0f, 0.8f}) {
    if (temperature > 0 && GetParam() != "tiny-a") continue;
    const auto reqs = requests(vocab, temperature);
    const auto base = run(options(dir, 0), reqs);
    for (int k = 1; k <= 3; ++k) {
      SCOPED_TRACE(fmt::format("{} temperature {} k {}", GetParam(), temperature, k));
      const auto spec = run(options(dir, k), reqs);
      EXPECT_EQ(spec.ids, base.ids);
      EXPECT_TRUE(spec.logits == base.logits) << "a logits row differs";
      EXPECT_GT(spec.stats.spec.draft_tokens, 0);
      EXPECT_EQ(spec.pages_left, 0);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Speculative, Presets, ::testing::Values("tiny-a", "tiny-b", "tiny-c"));

// Fast numerics: the extend primitive is bit-identical to decode there too.
TEST(Speculative, FastNumericsKeepsTheIds) {
  const int vocab = engine_model_config(options(kTinyA, 0)).vocab;
  const auto reqs = requests(vocab, 0.0f);
  const auto base = run(options(kTinyA, 0, Numerics::Fast), reqs);
  for (int k : {1, 3}) EXPECT_EQ(run(options(kTinyA, k, Numerics::Fast), reqs).ids, base.ids) << "k " << k;
}

// Drafts forced from a list: the ids of a non-speculative run altered at the given rate.
std::vector<int32_t> forced_drafts(const std::vector<int32_t>& ids, double wrong_rate, int vocab, unsigned seed) {
  std::mt19937 rng(seed);
  std::bernoulli_distribution wrong(wrong_rate);
  auto out = ids;
  for (auto& id : out)
    if (wrong(rng)) id = (id + 1) % vocab;
  return out;
}

TEST(Speculative, ForcedDraftsGiveTheirAcceptanceAndTheSameIds) {
  const int vocab = engine_model_config(options(kTinyA, 0)).vocab;
  const int n = 13;
  auto reqs = requests(vocab, 0.0f, n);
  reqs.resize(1);
  reqs[0].request.sampling.max_tokens = n;
  const auto base = run(options(kTinyA, 0), reqs);
  ASSERT_EQ(base.ids[0].size(), std::size_t(n));
  for (int k = 1; k <= 3; ++k) {
    SCOPED_TRACE(fmt::format("k {}", k));
    auto r = reqs;
    // 100 %: the first token comes from the prefill step, then k + 1 per step.
    r[0].request.debug.draft_ids = base.ids[0];
    auto all = run(options(kTinyA, k), r);
    EXPECT_EQ(all.ids, base.ids);
    EXPECT_TRUE(all.logits == base.logits) << "a logits row differs with every draft accepted";
    EXPECT_EQ(all.stats.steps, 1 + (n - 1 + k) / (k + 1));
    EXPECT_EQ(all.stats.spec.accepted_tokens, all.stats.spec.draft_tokens);
    EXPECT_EQ(all.pages_left, 0);
    // 0 %: every step one token, as without drafts.
    r[0].request.debug.draft_ids = forced_drafts(base.ids[0], 1.0, vocab, 1);
    auto none = run(options(kTinyA, k), r);
    EXPECT_EQ(none.ids, base.ids);
    EXPECT_EQ(none.stats.steps, n);
    EXPECT_EQ(none.stats.spec.accepted_tokens, 0);
    // 50 %: partial acceptance, the same ids.
    r[0].request.debug.draft_ids = forced_drafts(base.ids[0], 0.5, vocab, 2);
    auto half = run(options(kTinyA, k), r);
    EXPECT_EQ(half.ids, base.ids);
    EXPECT_TRUE(half.logits == base.logits) << "a logits row differs with half the drafts accepted";
    EXPECT_GT(half.stats.spec.accepted_tokens, 0);
    EXPECT_LT(half.stats.spec.accepted_tokens, half.stats.spec.draft_tokens);
    EXPECT_EQ(half.pages_left, 0);
  }
}

// Every row of every table of a state, as floats.
std::vector<std::vector<float>> dump(const RequestState& s) {
  std::vector<std::vector<float>> out;
  auto& m = const_cast<RequestState&>(s);  // for_each_rows is not const; nothing is written
  for (auto& l : m.layers)
    l.for_each_rows([&](KvRows& r) {
      std::vector<float> v(std::size_t(r.size()) * r.cols());
      r.get_all(v.data());
      out.push_back(std::move(v));
    });
  return out;
}

// A state fed step by step with speculative drafts, some rejected, equals the state of the
// same accepted tokens fed without drafts: every row of every layer (window ring, compressed
// entries, indexer keys, compressor rows incl. the ratio-4 overlap half), the pages it holds,
// and the MTP block's state after drafts on drafts were discarded.
TEST(Speculative, RejectedDraftsLeaveNoTrace) {
  for (const std::string preset : {"tiny-a", "tiny-b"}) {
    SCOPED_TRACE(preset);
    const auto ck = Checkpoint::open(model_dir(preset));
    const auto& c = ck.config();
    LoopbackExpertExchange exchange;
    Transformer tf(ck, Numerics::Exact, exchange, ExpertRoutes::single(c.n_experts));
    auto executor = [&] {
      return StageExecutor(tf, 0, c.n_layers, true, true, std::make_unique<KvStorage>(c, 64u << 20, 4096));
    };
    StageExecutor plain = executor(), spec = executor();
    const int n_prompt = 37, n = 150;
    const auto tokens = prompt(n, 3, c.vocab);
    std::mt19937 rng(11);
    std::vector<float> hc_row(std::size_t(c.hc) * c.dim);
    auto h_of = [&](int pos) {  // an MTP input row per position, the same in both runs
      std::mt19937 g(pos);
      std::normal_distribution<float> d;
      for (auto& v : hc_row) v = d(g);
      return hc_row;
    };
    auto feed = [&](StageExecutor& ex, int start, int rows, bool speculative, const std::vector<int32_t>& ids) {
      std::vector<float> X;
      ex.extend({{1, start, rows, speculative}}, ids, X);
      return X;
    };
    feed(plain, 0, n_prompt, false, {tokens.begin(), tokens.begin() + n_prompt});
    feed(spec, 0, n_prompt, false, {tokens.begin(), tokens.begin() + n_prompt});
    int pos = n_prompt;  // spec: next position to feed
    int mtp_pos = 0;
    while (pos < n - 4) {
      const int k = 1 + int(rng() % 3);
      std::vector<int32_t> ids{tokens[pos]};
      int accepted = 0;
      bool wrong_seen = false;
      for (int i = 1; i <= k; ++i) {
        const bool right = rng() % 2;
        ids.push_back(right ? tokens[pos + i] : (tokens[pos + i] + 1) % c.vocab);
        if (!right) wrong_seen = true;
        if (!wrong_seen) ++accepted;
      }
      feed(spec, pos, 1 + k, true, ids);
      for (int q = pos; q <= pos + accepted; ++q) feed(plain, q, 1, false, {tokens[q]});
      // The MTP block: the pairs of the kept positions, then drafts on drafts, discarded.
      std::vector<ExtendSeq> seq{{1, mtp_pos, pos + accepted + 1 - mtp_pos}};
      std::vector<int32_t> next;
      std::vector<float> h;
      for (int q = mtp_pos; q <= pos + accepted; ++q) {
        next.push_back(tokens[q + 1]);
        const auto row = h_of(q);
        h.insert(h.end(), row.begin(), row.end());
      }
      for (auto* ex : {&plain, &spec}) ex->extend_mtp(seq, next, h, false);
      mtp_pos = pos + accepted + 1;
      auto out = spec.extend_mtp({{1, mtp_pos, 1}}, {int32_t(rng() % c.vocab)}, h_of(0), true);
      spec.extend_mtp({{1, mtp_pos + 1, 1}}, {int32_t(rng() % c.vocab)}, out.X, true);
      spec.discard_mtp_drafts(1);
      pos += accepted + 1;
    }
    // The next step starts at the accepted position: the rejected rows roll back there.
    feed(spec, pos, 1, false, {tokens[pos]});
    feed(plain, pos, 1, false, {tokens[pos]});
    EXPECT_TRUE(dump(*spec.state(1)) == dump(*plain.state(1))) << "main layers differ";
    EXPECT_TRUE(dump(*spec.mtp_state(1)) == dump(*plain.mtp_state(1))) << "MTP block differs";
    EXPECT_EQ(spec.state(1)->pages(), plain.state(1)->pages());
    EXPECT_EQ(spec.pages_used(), plain.pages_used());
    spec.release(1);
    EXPECT_EQ(spec.pages_used(), 0);
  }
}

// Verification draws the token at each position exactly as without drafts (the request's
// seeded uniform for that position) and accepts a draft when it equals that token: with the
// MTP's one-hot drafts this is speculative rejection sampling (accept with probability
// p(draft), else a token from p without the draft, renormalised), so the emitted tokens follow
// the target distribution whatever the drafts. The last stage's own verification, over 20,000
// seeds, top_k 8 (an 8-token distribution): the first token's counts with a draft (the most
// likely token) fit p (chi-square, 7 degrees of freedom, p > 0.001) and equal those without a
// draft seed by seed (checked on the first 2,000); the draft is accepted at rate p(draft).
TEST(Speculative, SeededVerificationKeepsTheTargetDistribution) {
  const auto ck = Checkpoint::open(kTinyA);
  const auto& c = ck.config();
  LoopbackExpertExchange exchange;
  Transformer tf(ck, Numerics::Fast, exchange, ExpertRoutes::single(c.n_experts));
  StageExecutor ex(tf, 0, c.n_layers, true, true, nullptr);
  LastStage last(ex, 1 << 20);
  std::vector<float> X(std::size_t(2) * c.hc * c.dim);
  std::mt19937 g(5);
  std::normal_distribution<float> d;
  for (auto& v : X) v = d(g);
  SamplingParams params;
  params.temperature = 0.7f;
  params.top_k = 8;
  params.max_tokens = 8;
  params.has_seed = true;
  // p: softmax(logits / T) over the top 8 of the first row.
  const auto row = ex.logits(X, {0});
  std::vector<int32_t> order(c.vocab);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + 8, order.end(),
                    [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
  std::map<int32_t, double> prob;
  double z = 0;
  for (int i = 0; i < 8; ++i) z += prob[order[i]] = std::exp((double(row[order[i]]) - row[order[0]]) / params.temperature);
  for (auto& [id, v] : prob) v /= z;
  const int32_t draft = order[0];

  auto first_tokens = [&](int drafts, int seed) {
    AddRecord a;
    a.request = seed;
    a.params = params;
    a.params.seed = uint64_t(seed);
    a.prompt_len = 1;
    a.tokens = {7};
    last.add(a);
    ForwardMessage m;
    m.seqs = {{seed, 0, 1 + drafts, 1, drafts}};
    m.ids = drafts ? std::vector<int32_t>{7, draft} : std::vector<int32_t>{7};
    m.X.assign(X.begin(), X.begin() + std::ptrdiff_t(std::size_t(1 + drafts) * c.hc * c.dim));
    SampledMessage sampled;
    StreamMessage stream;
    last.finish_step(m, sampled, stream);
    last.release(seed);
    return sampled.entries.at(0).ids;
  };
  const int draws = 20000;
  std::map<int32_t, int> seen;
  int accepted = 0;
  for (int s = 0; s < draws; ++s) {
    const auto spec = first_tokens(1, s);
    if (s < 2000) {
      ASSERT_EQ(spec.at(0), first_tokens(0, s).at(0)) << "seed " << s;
    }
    ++seen[spec[0]];
    accepted += spec.size() == 2;
    ASSERT_EQ(spec.size() == 2, spec[0] == draft);
  }
  double chi2 = 0;
  for (const auto& [id, p] : prob) chi2 += std::pow(seen[id] - draws * p, 2) / (draws * p);
  EXPECT_LT(chi2, 24.32) << "chi-square with 7 degrees of freedom";
  EXPECT_NEAR(double(accepted) / draws, prob[draft], 0.015);
}

}  // namespace
}  // namespace flashline
