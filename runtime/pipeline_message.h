#pragma once
// The messages of the engine between ranks (byte layout and flow: docs/engine.md).
//  Control   rank 0 -> stage 0 of each lane, once per tick: new requests, aborts, shutdown.
//  Forward   stage s -> s+1 of one lane: a step (rows of several requests: their token ids and
//            hc stream, the requests that enter the lane, the states to free), a release-only
//            message, or the shutdown.
//  Sampled   last stage -> stage 0 of the lane, one per step: the ids it sampled (and, with
//            speculative decoding, the drafts for the next step).
//  Stream    last stage -> rank 0, one per step with tokens: every new token as it exists.
//  Report    every rank -> rank 0 at shutdown: its KV pool and step counters.
// Every decoder checks lengths and magic numbers: a truncated or corrupt message is an error.
#include <cstdint>
#include <vector>

#include "base/byte_codec.h"
#include "runtime/engine.h"
#include "runtime/sampling_params.h"

namespace flashline {

// A request entering a lane: at its arrival, or again after a preemption (then `tokens` holds
// the prompt and the ids generated so far, and the sampler continues where it stopped).
struct AddRecord {
  int64_t request = 0;
  SamplingParams params;  // seed always set
  int32_t prompt_len = 0;  // the original prompt's length: tokens past it are generated ones
  std::vector<int32_t> tokens;
  DebugOptions debug;
};

struct ControlMessage {
  bool shutdown = false;
  std::vector<AddRecord> adds;
  std::vector<int64_t> aborts;
  ByteBuffer encode() const;
  static ControlMessage decode(const ByteBuffer& b);
};

// Rows of one request in a step: positions start_pos .. start_pos + rows - 1. `sample`: the
// last stage samples the next token from the last row, or, when the last `drafts` rows are
// speculative drafts, verifies them from the row before them on (docs/speculative.md). A
// start_pos before a stage's next position for the request rolls back the drafts it rejected.
struct StepSeq {
  int64_t request = 0;
  int32_t start_pos = 0;
  int32_t rows = 0;
  int32_t sample = 0;
  int32_t drafts = 0;
};

struct ForwardMessage {
  enum class Kind : int32_t { Step = 1, Release = 2, Shutdown = 3 };
  Kind kind = Kind::Step;
  int32_t stage_rows = 0;              // rows of this step over all lanes of the stage
  int32_t stage_mtp_rows = 0;          // MTP rows (debug) of this step over all lanes
  std::vector<int64_t> releases;       // free these requests' states before the rows
  std::vector<AddRecord> adds;         // requests whose first rows are in this step
  std::vector<StepSeq> seqs;
  std::vector<int32_t> ids;            // one per row
  std::vector<float> stage_seconds;    // compute time of each stage so far
  std::vector<float> X;                // hc stream [rows, hc, dim] (empty on stage 0, or when sent apart)
  int rows() const { return int(ids.size()); }
  // `with_stream` false: X travels apart (a device link) and is not encoded.
  ByteBuffer encode(bool with_stream = true) const;
  static ForwardMessage decode(const ByteBuffer& b);
};

struct SampledEntry {
  int64_t request = 0;
  std::vector<int32_t> ids;     // the new tokens: one, or the accepted drafts then one more
  std::vector<int32_t> drafts;  // speculative drafts for the request's next step
  int32_t finished = 0;
};
struct SampledMessage {
  std::vector<SampledEntry> entries;
  ByteBuffer encode() const;
  static SampledMessage decode(const ByteBuffer& b);
};

struct StreamMessage {
  std::vector<float> stage_seconds;  // of the step that produced these tokens
  std::vector<TokenEvent> events;
  SpecDecodeStats spec;              // the drafts this step verified
  ByteBuffer encode() const;
  static StreamMessage decode(const ByteBuffer& b);
};

struct RankReport {
  int32_t rank = 0, stage = 0, lane = 0;
  int64_t pages_used = 0, pages_total = 0, live_states = 0, steps = 0, preemptions = 0;
  double busy_seconds = 0;
  ByteBuffer encode() const;
  static RankReport decode(const ByteBuffer& b);
};

}  // namespace flashline
