// The lane scheduler's policy on tiny-a's config: decodes before prefill chunks, chunks under
// the token budget, first come first served admission only when the pages fit, preemption of
// the newest request when growth runs out of pages, releases for finished and aborted requests,
// speculative drafts within the budget.
#include "runtime/lane_scheduler.h"

#include <gtest/gtest.h>

#include "stages/request_state.h"

namespace flashline {
namespace {

ModelConfig config() { return ModelConfig::load(std::string(FLASHLINE_TEST_DATA) + "/models/tiny-a/config.json"); }

AddRecord add(int64_t id, int prompt, int max_tokens = 4) {
  AddRecord a;
  a.request = id;
  a.prompt_len = prompt;
  a.tokens.assign(prompt, 7);
  a.params.max_tokens = max_tokens;
  return a;
}

SampledMessage sampled(std::vector<SampledEntry> e) { return {std::move(e)}; }

TEST(LaneScheduler, ChunksUnderTheBudgetThenDecodesFirst) {
  const auto c = config();
  SchedulerLimits l;
  l.max_batch_tokens = 10;
  l.prefill_chunk = 6;
  l.max_in_flight = 4;
  LaneScheduler s(c, l, {{0, c.n_layers, 100000}}, 16384);
  s.add(add(1, 9));
  s.add(add(2, 3));
  auto a = s.next_step();  // request 1: chunk of 6; request 2: the 4 tokens left of the budget hold its 3
  ASSERT_EQ(a.seqs.size(), 2u);
  EXPECT_EQ(a.seqs[0].request, 1);
  EXPECT_EQ(a.seqs[0].rows, 6);
  EXPECT_EQ(a.seqs[0].sample, 0);
  EXPECT_EQ(a.seqs[1].request, 2);
  EXPECT_EQ(a.seqs[1].rows, 3);
  EXPECT_EQ(a.seqs[1].sample, 1);
  EXPECT_EQ(a.adds.size(), 2u);
  s.step_sent();
  auto b = s.next_step();  // request 1's last chunk (request 2 is in flight)
  ASSERT_EQ(b.seqs.size(), 1u);
  EXPECT_EQ(b.seqs[0].start_pos, 6);
  EXPECT_EQ(b.seqs[0].rows, 3);
  EXPECT_EQ(b.seqs[0].sample, 1);
  EXPECT_TRUE(b.adds.empty());
  s.step_sent();
  s.on_sampled(sampled({{2, {11}, {}, 0}}));
  s.on_sampled(sampled({{1, {12}, {}, 0}}));
  auto d = s.next_step();  // both decode, oldest first
  ASSERT_EQ(d.seqs.size(), 2u);
  EXPECT_EQ(d.seqs[0].request, 1);
  EXPECT_EQ(d.ids, (std::vector<int32_t>{12, 11}));
  s.step_sent();
  s.on_sampled(sampled({{1, {13}, {}, 1}, {2, {14}, {}, 0}}));  // request 1 finished
  EXPECT_EQ(s.take_releases(), std::vector<int64_t>{1});
  s.abort(2);
  EXPECT_EQ(s.take_releases(), std::vector<int64_t>{2});
  EXPECT_EQ(s.pages_used(0), 0);
}

TEST(LaneScheduler, AdmitsOnlyWhatFitsAndPreemptsTheNewest) {
  const auto c = config();
  SchedulerLimits l;
  l.max_in_flight = 8;
  const std::size_t page = 1024;
  const int p40 = kv_pages_for(c, 0, c.n_layers, 40, page);
  int grown = 41;
  while (kv_pages_for(c, 0, c.n_layers, grown, page) == p40) ++grown;  // the first token count needing a page more
  LaneScheduler s(c, l, {{0, c.n_layers, 2 * p40}}, page);
  for (int id = 1; id <= 3; ++id) s.add(add(id, 40, 100));
  auto a = s.next_step();
  ASSERT_EQ(a.seqs.size(), 2u);  // the third waits for pages
  EXPECT_EQ(s.waiting(), 1);
  s.step_sent();
  // Feed both to the token count that needs one page more: the newest must give way.
  std::vector<int32_t> toks(grown - 40, 5);
  s.on_sampled(sampled({{1, {5}, {}, 0}, {2, {5}, {}, 0}}));
  for (int n = 41; n < grown; ++n) {
    auto step = s.next_step();
    s.step_sent();
    s.on_sampled(sampled({{1, {5}, {}, 0}, {2, {5}, {}, 0}}));
    ASSERT_EQ(step.seqs.size(), 2u);
  }
  auto p = s.next_step();
  EXPECT_EQ(s.preemptions(), 1);
  ASSERT_EQ(p.releases, std::vector<int64_t>{2});
  ASSERT_EQ(p.seqs.size(), 1u);
  EXPECT_EQ(p.seqs[0].request, 1);
  EXPECT_EQ(s.waiting(), 2);  // request 2 (front: preempted) and request 3
}

// Speculative drafts: a decode carries the drafts of the last step within the token budget and
// the request's max_tokens; the accepted ids move the request on, the rejected rows are
// recomputed from the newest token; poor acceptance stops the drafts when asked.
TEST(LaneScheduler, DraftsFitTheBudgetMaxTokensAndAcceptance) {
  const auto c = config();
  SchedulerLimits l;
  l.max_batch_tokens = 3;
  l.speculative_min_acceptance = 0.5;
  LaneScheduler s(c, l, {{0, c.n_layers, 100000}}, 16384);
  s.add(add(1, 2, 100));
  s.next_step();
  s.step_sent();
  s.on_sampled(sampled({{1, {10}, {11, 12, 13}, 0}}));
  auto b = s.next_step();  // budget 3: the token and 2 of the 3 drafts
  ASSERT_EQ(b.seqs.size(), 1u);
  EXPECT_EQ(b.seqs[0].start_pos, 2);
  EXPECT_EQ(b.seqs[0].rows, 3);
  EXPECT_EQ(b.seqs[0].drafts, 2);
  EXPECT_EQ(b.ids, (std::vector<int32_t>{10, 11, 12}));
  s.step_sent();
  s.on_sampled(sampled({{1, {11, 20}, {21, 22}, 0}}));  // draft 11 accepted, 12 rejected
  auto d = s.next_step();  // from the newest token's position: the rejected row is redone
  EXPECT_EQ(d.seqs[0].start_pos, 4);
  EXPECT_EQ(d.ids, (std::vector<int32_t>{20, 21, 22}));
  // Every draft rejected from here: after 16 drafts with 1 accepted, no more drafts.
  for (int i = 0; i < 7; ++i) {
    s.step_sent();
    s.on_sampled(sampled({{1, {30}, {31, 32}, 0}}));
    d = s.next_step();
  }
  EXPECT_EQ(d.seqs[0].drafts, 0);
  EXPECT_EQ(d.seqs[0].rows, 1);

  // max_tokens 3 with 1 generated: at most 1 draft (2 more tokens).
  LaneScheduler t(c, SchedulerLimits{}, {{0, c.n_layers, 100000}}, 16384);
  t.add(add(2, 2, 3));
  t.next_step();
  t.step_sent();
  t.on_sampled(sampled({{2, {10}, {11, 12, 13}, 0}}));
  EXPECT_EQ(t.next_step().seqs.at(0).drafts, 1);
}

}  // namespace
}  // namespace flashline
