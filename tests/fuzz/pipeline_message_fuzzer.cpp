// libFuzzer target: bytes through every pipeline message decoder (control, forward, sampled,
// stream, rank report; the magic decides which one may accept). Properties: a decoder rejects
// bad bytes only with std::runtime_error (what the per-rank loop reports), never by reading
// past the end or allocating from an unchecked length; an accepted message encodes back to as
// many bytes, and that encoding is a fixed point (decode and encode again give the same bytes).
//
// The seeds are real messages of each kind, made by the encoders below. When the format
// changes, refresh them with
//   FLASHLINE_FUZZ_WRITE_SEEDS=tests/fuzz/corpus_pipeline_message_fuzzer build/tests/fuzz/bin/pipeline_message_fuzzer
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "runtime/pipeline_message.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace flashline;

AddRecord seed_add(int64_t request, int32_t prompt_len, int32_t generated) {
  AddRecord a;
  a.request = request;
  a.params.temperature = 0.7f, a.params.top_p = 0.95f, a.params.top_k = 40, a.params.min_p = 0.05f;
  a.params.presence_penalty = 0.5f, a.params.frequency_penalty = -0.5f, a.params.repetition_penalty = 1.1f;
  a.params.logit_bias = {{7, 5.0f}, {100, -100.0f}};
  a.params.stop_token_ids = {1};
  a.params.max_tokens = 32, a.params.logprobs = 2, a.params.seed = 1234, a.params.has_seed = true;
  a.prompt_len = prompt_len;
  for (int32_t i = 0; i < prompt_len + generated; ++i) a.tokens.push_back(100 + i);
  a.debug.token_logits = true;
  a.debug.forced = {9};
  a.debug.draft_ids = {9, 10};
  return a;
}

// StepSeq is copied as bytes: rows made by resize() are zeroed whole (any padding included), so
// the seeds come out the same on every run.
std::vector<StepSeq> seed_seqs(const std::vector<std::pair<int64_t, int32_t>>& requests_rows) {
  std::vector<StepSeq> seqs(requests_rows.size());
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    seqs[i].request = requests_rows[i].first;
    seqs[i].start_pos = int32_t(i) * 3;
    seqs[i].rows = requests_rows[i].second;
    seqs[i].sample = 1;
  }
  return seqs;
}

std::vector<std::pair<std::string, ByteBuffer>> seeds() {
  std::vector<std::pair<std::string, ByteBuffer>> out;
  ControlMessage idle;
  out.emplace_back("control_idle", idle.encode());
  ControlMessage control;
  control.adds = {seed_add(1, 3, 0), seed_add(2, 2, 2)};  // a new request and a preempted one
  control.aborts = {5};
  out.emplace_back("control_adds_aborts", control.encode());
  ControlMessage stop;
  stop.shutdown = true;
  out.emplace_back("control_shutdown", stop.encode());

  ForwardMessage step;
  step.stage_rows = 5, step.stage_mtp_rows = 1;
  step.releases = {4};
  step.adds = {seed_add(1, 3, 0)};
  step.seqs = seed_seqs({{1, 3}, {2, 1}});
  step.seqs[0].drafts = 2;  // a decode with two speculative drafts
  step.ids = {100, 101, 102, 103};
  step.stage_seconds = {0.002f};
  step.X = {0.5f, -1.0f, 2.0f, 0.0f, -0.0f, 1e-30f, 3.0f, 4.0f};
  out.emplace_back("forward_step", step.encode());
  out.emplace_back("forward_step_stream_apart", step.encode(false));
  ForwardMessage release;
  release.kind = ForwardMessage::Kind::Release;
  release.releases = {1, 2};
  out.emplace_back("forward_release", release.encode());
  ForwardMessage shutdown;
  shutdown.kind = ForwardMessage::Kind::Shutdown;
  out.emplace_back("forward_shutdown", shutdown.encode());

  SampledMessage sampled;
  sampled.entries = {{1, {103, 104}, {105, 106}, 0}, {2, {7}, {}, 1}};  // accepted drafts, new drafts
  out.emplace_back("sampled", sampled.encode());

  StreamMessage stream;
  stream.stage_seconds = {0.002f, 0.003f};
  TokenEvent token;
  token.request = 1, token.id = 103, token.position = 3, token.logprob = -0.25f;
  token.top = {{103, -0.25f}, {7, -1.5f}};
  token.logits = {1.0f, 2.0f};
  token.prompt_logits = {0.5f};
  token.mtp_logits = {0.25f};
  TokenEvent error;
  error.request = 2, error.finish = FinishReason::Error, error.error = "non-finite logits";
  stream.events = {token, error};
  stream.spec = {1, 2, 1, {1, 0}};
  out.emplace_back("stream", stream.encode());

  RankReport report;
  report.rank = 1, report.stage = 1, report.pages_used = 3, report.pages_total = 64, report.steps = 12;
  report.busy_seconds = 0.125;
  out.emplace_back("rank_report", report.encode());
  return out;
}

// decode(x), then checks the encoding of what it gave; false when the decoder rejected x.
template <class Message>
bool round_trips(const ByteBuffer& x) {
  Message m;
  if (!fuzz::accepts<std::runtime_error>([&] { m = Message::decode(x); })) return false;
  const ByteBuffer y = m.encode();
  // Every field is fixed-size or length-prefixed: only the values of flags may change.
  if (y.size() != x.size()) fuzz::fail("an accepted message encodes to a different size");
  Message again;
  if (!fuzz::accepts<std::runtime_error>([&] { again = Message::decode(y); }))
    fuzz::fail("the encoding of an accepted message is rejected");
  if (again.encode() != y) fuzz::fail("decode(encode(m)) encodes differently from m");
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("FLASHLINE_FUZZ_WRITE_SEEDS")) {
    for (const auto& [name, bytes] : seeds()) {
      std::ofstream f(std::string(dir) + "/" + name, std::ios::binary | std::ios::trunc);
      f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
      if (!f) {
        std::fprintf(stderr, "cannot write %s/%s\n", dir, name.c_str());
        std::exit(1);
      }
    }
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  const ByteBuffer x(bytes, bytes + size);
  const int accepted = round_trips<ControlMessage>(x) + round_trips<ForwardMessage>(x) +
                       round_trips<SampledMessage>(x) + round_trips<StreamMessage>(x) + round_trips<RankReport>(x);
  if (accepted > 1) fuzz::fail("bytes accepted as two kinds of message");
  return 0;
}
