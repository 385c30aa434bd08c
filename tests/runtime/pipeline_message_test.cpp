// The engine's messages between ranks: every kind round-trips bit for bit, and a truncated,
// corrupted, wrong-kind or inconsistent message is rejected with an error, never read past
// its end.
#include "runtime/pipeline_message.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <functional>
#include <new>
#include <stdexcept>

// The largest single allocation while largest_allocation_rejecting runs a decoder (this test
// binary replaces the global operator new to see it).
namespace {
thread_local bool counting = false;
thread_local std::size_t largest = 0;
}  // namespace

// Not inlined: where they are, the compiler sees new paired with free() and warns.
[[gnu::noinline]] void* operator new(std::size_t n) {
  if (counting) largest = std::max(largest, n);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace flashline {
namespace {

// Runs `decode`, which must reject its message; the largest single allocation it made.
std::size_t largest_allocation_rejecting(const std::function<void()>& decode) {
  largest = 0;
  counting = true;
  bool rejected = false;
  try {
    decode();
  } catch (const std::runtime_error&) {
    rejected = true;
  }
  counting = false;
  EXPECT_TRUE(rejected);
  return largest;
}

AddRecord sample_add() {
  AddRecord a;
  a.request = 41;
  a.params.temperature = 0.8f, a.params.top_p = 0.9f, a.params.top_k = 5, a.params.min_p = 0.05f;
  a.params.presence_penalty = 0.5f, a.params.frequency_penalty = -0.25f, a.params.repetition_penalty = 1.1f;
  a.params.logit_bias = {{3, 2.5f}, {9, -100.0f}};
  a.params.stop_token_ids = {1, 2};
  a.params.ignore_eos = true, a.params.max_tokens = 17, a.params.logprobs = 3;
  a.params.seed = 0x123456789abcdefull, a.params.has_seed = true;
  a.prompt_len = 3;
  a.tokens = {5, 6, 7, 8};
  a.debug.prompt_logits = true, a.debug.mtp_logits = true, a.debug.forced = {4, 4};
  return a;
}

void expect_same(const AddRecord& a, const AddRecord& b) {
  EXPECT_EQ(a.request, b.request);
  EXPECT_EQ(a.params.temperature, b.params.temperature);
  EXPECT_EQ(a.params.top_k, b.params.top_k);
  EXPECT_EQ(a.params.repetition_penalty, b.params.repetition_penalty);
  EXPECT_EQ(a.params.logit_bias, b.params.logit_bias);
  EXPECT_EQ(a.params.stop_token_ids, b.params.stop_token_ids);
  EXPECT_EQ(a.params.ignore_eos, b.params.ignore_eos);
  EXPECT_EQ(a.params.max_tokens, b.params.max_tokens);
  EXPECT_EQ(a.params.logprobs, b.params.logprobs);
  EXPECT_EQ(a.params.seed, b.params.seed);
  EXPECT_EQ(a.params.has_seed, b.params.has_seed);
  EXPECT_EQ(a.prompt_len, b.prompt_len);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.debug.prompt_logits, b.debug.prompt_logits);
  EXPECT_EQ(a.debug.token_logits, b.debug.token_logits);
  EXPECT_EQ(a.debug.mtp_logits, b.debug.mtp_logits);
  EXPECT_EQ(a.debug.forced, b.debug.forced);
}

ForwardMessage sample_step() {
  ForwardMessage m;
  m.stage_rows = 6, m.stage_mtp_rows = 2;
  m.releases = {3, 99};
  m.adds = {sample_add()};
  m.seqs = {{41, 0, 3, 0}, {7, 19, 1, 1}};
  m.ids = {11, 12, 13, 14};
  m.stage_seconds = {0.25f};
  m.X = {1.5f, -2.25f, 0.0f, 3e-8f, -0.0f, 1e30f};
  return m;
}

std::vector<uint32_t> bits(const std::vector<float>& v) {
  std::vector<uint32_t> b;
  for (float f : v) b.push_back(std::bit_cast<uint32_t>(f));
  return b;
}

TEST(PipelineMessage, ForwardRoundTrips) {
  const auto m = sample_step();
  const auto d = ForwardMessage::decode(m.encode());
  EXPECT_EQ(d.kind, m.kind);
  EXPECT_EQ(d.stage_rows, m.stage_rows);
  EXPECT_EQ(d.stage_mtp_rows, m.stage_mtp_rows);
  EXPECT_EQ(d.releases, m.releases);
  ASSERT_EQ(d.adds.size(), 1u);
  expect_same(d.adds[0], m.adds[0]);
  ASSERT_EQ(d.seqs.size(), 2u);
  EXPECT_EQ(d.seqs[1].request, 7);
  EXPECT_EQ(d.seqs[1].start_pos, 19);
  EXPECT_EQ(d.seqs[1].sample, 1);
  EXPECT_EQ(d.ids, m.ids);
  EXPECT_EQ(d.stage_seconds, m.stage_seconds);
  EXPECT_EQ(bits(d.X), bits(m.X));
  EXPECT_TRUE(ForwardMessage::decode(m.encode(false)).X.empty());  // the stream travels apart
}

TEST(PipelineMessage, OtherKindsRoundTrip) {
  ControlMessage c;
  c.shutdown = true;
  c.adds = {sample_add()};
  c.aborts = {5, 6};
  const auto dc = ControlMessage::decode(c.encode());
  EXPECT_TRUE(dc.shutdown);
  expect_same(dc.adds.at(0), c.adds[0]);
  EXPECT_EQ(dc.aborts, c.aborts);

  SampledMessage s{{{41, {9}, {3, 4}, 0}, {7, {2, 8}, {}, 1}}};
  const auto ds = SampledMessage::decode(s.encode());
  ASSERT_EQ(ds.entries.size(), 2u);
  EXPECT_EQ(ds.entries[1].request, 7);
  EXPECT_EQ(ds.entries[1].finished, 1);
  EXPECT_EQ(ds.entries[0].drafts, (std::vector<int32_t>{3, 4}));
  EXPECT_EQ(ds.entries[1].ids, (std::vector<int32_t>{2, 8}));

  StreamMessage st;
  st.stage_seconds = {0.5f, 0.25f};
  TokenEvent e;
  e.request = 41, e.id = 9, e.position = 12, e.logprob = -0.75f;
  e.top = {{9, -0.75f}, {3, -1.5f}};
  e.finish = FinishReason::Error;
  e.error = "non-finite logit";
  e.logits = {1, 2};
  e.prompt_logits = {3};
  e.mtp_logits = {4, 5, 6};
  st.events = {e};
  const auto dst = StreamMessage::decode(st.encode());
  ASSERT_EQ(dst.events.size(), 1u);
  const auto& de = dst.events[0];
  EXPECT_EQ(de.request, 41);
  EXPECT_EQ(de.position, 12);
  EXPECT_EQ(de.top, e.top);
  EXPECT_EQ(de.finish, FinishReason::Error);
  EXPECT_EQ(de.error, e.error);
  EXPECT_EQ(de.mtp_logits, e.mtp_logits);
  EXPECT_EQ(dst.stage_seconds, st.stage_seconds);

  RankReport r;
  r.rank = 3, r.stage = 1, r.lane = 1, r.pages_used = 2, r.pages_total = 9, r.live_states = 1, r.steps = 70;
  r.preemptions = 4, r.busy_seconds = 1.5;
  const auto dr = RankReport::decode(r.encode());
  EXPECT_EQ(dr.rank, 3);
  EXPECT_EQ(dr.pages_total, 9);
  EXPECT_EQ(dr.preemptions, 4);
  EXPECT_EQ(dr.busy_seconds, 1.5);
}

// Every proper prefix of a message is an error (never a read past the end or a crash).
TEST(PipelineMessage, TruncatedMessagesAreRejected) {
  ControlMessage c;
  c.adds = {sample_add()};
  StreamMessage s;
  s.events.resize(1);
  s.events[0].error = "x";
  const std::vector<std::pair<ByteBuffer, std::function<void(const ByteBuffer&)>>> kinds{
      {sample_step().encode(), [](const ByteBuffer& b) { ForwardMessage::decode(b); }},
      {c.encode(), [](const ByteBuffer& b) { ControlMessage::decode(b); }},
      {SampledMessage{{{1, {2}, {}, 0}}}.encode(), [](const ByteBuffer& b) { SampledMessage::decode(b); }},
      {s.encode(), [](const ByteBuffer& b) { StreamMessage::decode(b); }},
      {RankReport{}.encode(), [](const ByteBuffer& b) { RankReport::decode(b); }}};
  for (const auto& [whole, decode] : kinds) {
    EXPECT_NO_THROW(decode(whole));
    for (std::size_t n = 0; n < whole.size(); ++n)
      EXPECT_THROW(decode(ByteBuffer(whole.begin(), whole.begin() + std::ptrdiff_t(n))), std::runtime_error)
          << "prefix of " << n << " of " << whole.size() << " bytes";
  }
}

TEST(PipelineMessage, WrongKindTrailingBytesAndInconsistentRowsAreRejected) {
  EXPECT_THROW(SampledMessage::decode(sample_step().encode()), std::runtime_error);
  auto trailing = SampledMessage{{{1, {2}, {}, 0}}}.encode();
  trailing.push_back(std::byte{0});
  EXPECT_THROW(SampledMessage::decode(trailing), std::runtime_error);
  auto rows = sample_step();
  rows.ids.pop_back();  // 3 ids for 4 rows
  EXPECT_THROW(ForwardMessage::decode(rows.encode()), std::runtime_error);
  auto stage = sample_step();
  stage.stage_rows = 2;  // fewer rows over the stage than this lane has
  EXPECT_THROW(ForwardMessage::decode(stage.encode()), std::runtime_error);
  auto prompt = sample_step();
  prompt.adds[0].prompt_len = 9;  // longer than its tokens
  EXPECT_THROW(ForwardMessage::decode(prompt.encode()), std::runtime_error);
  auto corrupt = sample_step().encode();
  corrupt[0] = std::byte{0x42};  // magic
  EXPECT_THROW(ForwardMessage::decode(corrupt), std::runtime_error);
}

// A count of requests (control, forward) or token events (stream) is only checked against the
// bytes left; each record takes far more memory than one byte, so a corrupt count must not size
// the vector up front: the decoder runs out of bytes first.
TEST(PipelineMessage, CorruptCountsAllocateNoMoreThanTheMessage) {
  const std::size_t filler = 1 << 16;  // zero bytes: the first record is rejected (prompt_len 0)
  ByteBuffer control;
  put(control, ControlMessage{}.encode().data(), 8);  // magic, shutdown flag
  put(control, uint64_t(filler));
  control.resize(control.size() + filler);
  ByteBuffer stream;
  put(stream, StreamMessage{}.encode().data(), 12);  // magic, no stage times
  put(stream, uint64_t(filler));
  stream.resize(stream.size() + filler, std::byte{0xff});  // the first event's arrays run past the end
  EXPECT_LT(largest_allocation_rejecting([&] { ControlMessage::decode(control); }), control.size());
  EXPECT_LT(largest_allocation_rejecting([&] { StreamMessage::decode(stream); }), stream.size());
}

}  // namespace
}  // namespace flashline
