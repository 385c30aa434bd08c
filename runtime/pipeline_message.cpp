#include "runtime/pipeline_message.h"

#include <fmt/format.h>

#include <stdexcept>

namespace flashline {
namespace {

// Message magics: a message of the wrong kind or from a mismatched build fails loudly.
constexpr uint32_t kControlMagic = 0x464c434f;  // "FLCO"
constexpr uint32_t kForwardMagic = 0x464c4657;  // "FLFW"
constexpr uint32_t kSampledMagic = 0x464c5341;  // "FLSA"
constexpr uint32_t kStreamMagic = 0x464c5354;   // "FLST"
constexpr uint32_t kReportMagic = 0x464c5250;   // "FLRP"

using Reader = const std::byte*;

void expect_magic(Reader& p, Reader end, uint32_t magic, const char* what) {
  const auto m = take<uint32_t>(p, end);
  if (m != magic) throw std::runtime_error(fmt::format("pipeline: expected a {} message, found magic {:#x}", what, m));
}

void expect_end(Reader p, Reader end, const char* what) {
  if (p != end) throw std::runtime_error(fmt::format("pipeline: {} bytes left over in a {} message", end - p, what));
}

// (id, value) pairs as two arrays: std::pair is not trivially copyable.
void put_pairs(ByteBuffer& b, const std::vector<std::pair<int32_t, float>>& v) {
  std::vector<int32_t> ids;
  std::vector<float> values;
  for (const auto& [i, x] : v) ids.push_back(i), values.push_back(x);
  put_vector(b, ids);
  put_vector(b, values);
}

std::vector<std::pair<int32_t, float>> take_pairs(Reader& p, Reader end) {
  const auto ids = take_vector<int32_t>(p, end);
  const auto values = take_vector<float>(p, end);
  if (ids.size() != values.size()) throw std::runtime_error("pipeline message: mismatched pair arrays");
  std::vector<std::pair<int32_t, float>> v;
  for (std::size_t i = 0; i < ids.size(); ++i) v.emplace_back(ids[i], values[i]);
  return v;
}

void put_params(ByteBuffer& b, const SamplingParams& s) {
  put(b, s.temperature), put(b, s.top_p), put(b, s.top_k), put(b, s.min_p);
  put(b, s.presence_penalty), put(b, s.frequency_penalty), put(b, s.repetition_penalty);
  put_pairs(b, s.logit_bias);
  put_vector(b, s.stop_token_ids);
  put(b, int32_t(s.ignore_eos)), put(b, s.max_tokens), put(b, s.logprobs), put(b, s.seed), put(b, int32_t(s.has_seed));
}

SamplingParams take_params(Reader& p, Reader end) {
  SamplingParams s;
  s.temperature = take<float>(p, end), s.top_p = take<float>(p, end), s.top_k = take<int32_t>(p, end);
  s.min_p = take<float>(p, end);
  s.presence_penalty = take<float>(p, end), s.frequency_penalty = take<float>(p, end);
  s.repetition_penalty = take<float>(p, end);
  s.logit_bias = take_pairs(p, end);
  s.stop_token_ids = take_vector<int32_t>(p, end);
  s.ignore_eos = take<int32_t>(p, end) != 0, s.max_tokens = take<int32_t>(p, end), s.logprobs = take<int32_t>(p, end);
  s.seed = take<uint64_t>(p, end), s.has_seed = take<int32_t>(p, end) != 0;
  return s;
}

void put_adds(ByteBuffer& b, const std::vector<AddRecord>& adds) {
  put(b, uint64_t(adds.size()));
  for (const auto& a : adds) {
    put(b, a.request);
    put_params(b, a.params);
    put(b, a.prompt_len);
    put_vector(b, a.tokens);
    put(b, int32_t(a.debug.prompt_logits)), put(b, int32_t(a.debug.token_logits)), put(b, int32_t(a.debug.mtp_logits));
    put_vector(b, a.debug.forced);
    put_vector(b, a.debug.draft_ids);
  }
}

std::vector<AddRecord> take_adds(Reader& p, Reader end) {
  const auto n = take<uint64_t>(p, end);
  if (n > uint64_t(end - p)) throw std::runtime_error("pipeline message: bad request count");
  // Appended as they are read, not sized from `n` up front: the check above allows one byte per
  // record, a record takes ~180 bytes in memory, so a corrupt count could ask for ~180x the
  // message (gigabytes for a forward message carrying its hc stream).
  std::vector<AddRecord> adds;
  while (adds.size() < n) {
    AddRecord& a = adds.emplace_back();
    a.request = take<int64_t>(p, end);
    a.params = take_params(p, end);
    a.prompt_len = take<int32_t>(p, end);
    a.tokens = take_vector<int32_t>(p, end);
    a.debug.prompt_logits = take<int32_t>(p, end) != 0;
    a.debug.token_logits = take<int32_t>(p, end) != 0;
    a.debug.mtp_logits = take<int32_t>(p, end) != 0;
    a.debug.forced = take_vector<int32_t>(p, end);
    a.debug.draft_ids = take_vector<int32_t>(p, end);
    if (a.prompt_len < 1 || a.prompt_len > int32_t(a.tokens.size()))
      throw std::runtime_error(fmt::format("pipeline message: request {} has a prompt of {} of {} tokens", a.request,
                                           a.prompt_len, a.tokens.size()));
  }
  return adds;
}

}  // namespace

ByteBuffer ControlMessage::encode() const {
  ByteBuffer b;
  put(b, kControlMagic);
  put(b, int32_t(shutdown));
  put_adds(b, adds);
  put_vector(b, aborts);
  return b;
}

ControlMessage ControlMessage::decode(const ByteBuffer& b) {
  Reader p = b.data(), end = b.data() + b.size();
  expect_magic(p, end, kControlMagic, "control");
  ControlMessage m;
  m.shutdown = take<int32_t>(p, end) != 0;
  m.adds = take_adds(p, end);
  m.aborts = take_vector<int64_t>(p, end);
  expect_end(p, end, "control");
  return m;
}

ByteBuffer ForwardMessage::encode(bool with_stream) const {
  ByteBuffer b;
  b.reserve(128 + seqs.size() * sizeof(StepSeq) + ids.size() * 4 + (with_stream ? X.size() * 4 : 0));
  put(b, kForwardMagic);
  put(b, int32_t(kind));
  put(b, stage_rows);
  put(b, stage_mtp_rows);
  put_vector(b, releases);
  put_adds(b, adds);
  put_vector(b, seqs);
  put_vector(b, ids);
  put_vector(b, stage_seconds);
  put_vector(b, with_stream ? X : std::vector<float>{});
  return b;
}

ForwardMessage ForwardMessage::decode(const ByteBuffer& b) {
  Reader p = b.data(), end = b.data() + b.size();
  expect_magic(p, end, kForwardMagic, "forward");
  ForwardMessage m;
  const auto kind = take<int32_t>(p, end);
  if (kind < 1 || kind > 3) throw std::runtime_error(fmt::format("pipeline: forward message of unknown kind {}", kind));
  m.kind = Kind(kind);
  m.stage_rows = take<int32_t>(p, end);
  m.stage_mtp_rows = take<int32_t>(p, end);
  m.releases = take_vector<int64_t>(p, end);
  m.adds = take_adds(p, end);
  m.seqs = take_vector<StepSeq>(p, end);
  m.ids = take_vector<int32_t>(p, end);
  m.stage_seconds = take_vector<float>(p, end);
  m.X = take_vector<float>(p, end);
  expect_end(p, end, "forward");
  int64_t rows = 0;
  for (const auto& s : m.seqs) {
    if (s.rows < 1 || s.start_pos < 0)
      throw std::runtime_error(fmt::format("pipeline: request {} has {} rows at position {}", s.request, s.rows, s.start_pos));
    if (s.drafts < 0 || s.drafts >= s.rows || (s.drafts > 0 && !s.sample))
      throw std::runtime_error(fmt::format("pipeline: request {} has {} drafts in {} rows", s.request, s.drafts, s.rows));
    rows += s.rows;
  }
  if (rows != m.rows() || m.stage_rows < m.rows())
    throw std::runtime_error(fmt::format("pipeline: forward message with {} ids for {} rows ({} over the stage)", m.rows(),
                                         rows, m.stage_rows));
  return m;
}

ByteBuffer SampledMessage::encode() const {
  ByteBuffer b;
  put(b, kSampledMagic);
  put(b, uint64_t(entries.size()));
  for (const auto& e : entries) put(b, e.request), put_vector(b, e.ids), put_vector(b, e.drafts), put(b, e.finished);
  return b;
}

SampledMessage SampledMessage::decode(const ByteBuffer& b) {
  Reader p = b.data(), end = b.data() + b.size();
  expect_magic(p, end, kSampledMagic, "sampled");
  SampledMessage m;
  const auto n = take<uint64_t>(p, end);
  if (n > uint64_t(end - p)) throw std::runtime_error("pipeline message: bad sampled count");
  while (m.entries.size() < n) {  // appended as read: never sized from the count alone
    SampledEntry& e = m.entries.emplace_back();
    e.request = take<int64_t>(p, end);
    e.ids = take_vector<int32_t>(p, end);
    e.drafts = take_vector<int32_t>(p, end);
    e.finished = take<int32_t>(p, end);
  }
  expect_end(p, end, "sampled");
  return m;
}

ByteBuffer StreamMessage::encode() const {
  ByteBuffer b;
  put(b, kStreamMagic);
  put_vector(b, stage_seconds);
  put(b, uint64_t(events.size()));
  for (const auto& e : events) {
    put(b, e.request), put(b, e.id), put(b, e.position), put(b, e.logprob);
    put_pairs(b, e.top);
    put(b, int32_t(e.finish));
    put_vector(b, std::vector<char>(e.error.begin(), e.error.end()));
    put_vector(b, e.logits), put_vector(b, e.prompt_logits), put_vector(b, e.mtp_logits);
  }
  put(b, spec.drafts), put(b, spec.draft_tokens), put(b, spec.accepted_tokens);
  put_vector(b, spec.accepted_at);
  return b;
}

StreamMessage StreamMessage::decode(const ByteBuffer& b) {
  Reader p = b.data(), end = b.data() + b.size();
  expect_magic(p, end, kStreamMagic, "stream");
  StreamMessage m;
  m.stage_seconds = take_vector<float>(p, end);
  const auto n = take<uint64_t>(p, end);
  if (n > uint64_t(end - p)) throw std::runtime_error("pipeline message: bad event count");
  while (m.events.size() < n) {  // as the requests above: never sized from the count alone
    TokenEvent& e = m.events.emplace_back();
    e.request = take<int64_t>(p, end), e.id = take<int32_t>(p, end), e.position = take<int32_t>(p, end);
    e.logprob = take<float>(p, end);
    e.top = take_pairs(p, end);
    const auto f = take<int32_t>(p, end);
    if (f < 0 || f > int32_t(FinishReason::Error)) throw std::runtime_error("pipeline: bad finish reason");
    e.finish = FinishReason(f);
    const auto err = take_vector<char>(p, end);
    e.error.assign(err.begin(), err.end());
    e.logits = take_vector<float>(p, end), e.prompt_logits = take_vector<float>(p, end);
    e.mtp_logits = take_vector<float>(p, end);
  }
  m.spec.drafts = take<int64_t>(p, end), m.spec.draft_tokens = take<int64_t>(p, end);
  m.spec.accepted_tokens = take<int64_t>(p, end);
  m.spec.accepted_at = take_vector<int64_t>(p, end);
  expect_end(p, end, "stream");
  return m;
}

ByteBuffer RankReport::encode() const {
  ByteBuffer b;
  put(b, kReportMagic);
  put(b, rank), put(b, stage), put(b, lane);
  put(b, pages_used), put(b, pages_total), put(b, live_states), put(b, steps), put(b, preemptions);
  put(b, busy_seconds);
  return b;
}

RankReport RankReport::decode(const ByteBuffer& b) {
  Reader p = b.data(), end = b.data() + b.size();
  expect_magic(p, end, kReportMagic, "report");
  RankReport r;
  r.rank = take<int32_t>(p, end), r.stage = take<int32_t>(p, end), r.lane = take<int32_t>(p, end);
  r.pages_used = take<int64_t>(p, end), r.pages_total = take<int64_t>(p, end), r.live_states = take<int64_t>(p, end);
  r.steps = take<int64_t>(p, end), r.preemptions = take<int64_t>(p, end), r.busy_seconds = take<double>(p, end);
  expect_end(p, end, "report");
  return r;
}

}  // namespace flashline
