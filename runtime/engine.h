#pragma once
// The serving engine's API on the process that owns it (the only process, or world rank 0 of a
// pipeline): requests come and go at any time, each new token is delivered as soon as the last
// stage has sampled it. Thread-safe: submit, abort and stats may be called from any thread; the
// callbacks run on the engine thread (the only thread that runs the model and calls MPI) and
// must return quickly (hand the event to another thread, never block).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/sampling_params.h"

namespace flashline {

enum class FinishReason { None, Stop, Length, Abort, Error };
const char* to_string(FinishReason r);  // "stop", "length", "abort", "error" ("" for None)

struct TokenEvent {
  int64_t request = 0;
  int32_t id = -1;            // the new token (-1 on an event that only finishes: abort, error)
  int32_t position = 0;       // its position in the sequence (prompt length for the first)
  float logprob = 0.0f;       // log-softmax of the chosen id (when logprobs >= 0)
  std::vector<std::pair<int32_t, float>> top;  // the top-N ids and logprobs (when logprobs > 0)
  FinishReason finish = FinishReason::None;    // set on the request's last event
  std::string error;                           // FinishReason::Error: what went wrong
  // Debug outputs (EngineRequest::debug): the row this id was chosen from; in the first event,
  // the rows of every prompt position and the MTP rows over the prompt.
  std::vector<float> logits, prompt_logits, mtp_logits;
};

// Test and debug outputs of a request (the `logits` command, bit-exactness tests).
struct DebugOptions {
  bool prompt_logits = false;    // logits of every prompt position, in the first token event
  bool token_logits = false;     // the logits row each new id was chosen from, with its event
  bool mtp_logits = false;       // MTP logits over the prompt (positions 0..n-2), in the first event
  std::vector<int32_t> forced;   // ids emitted instead of sampled ones, for the first forced.size() tokens
  // Speculative decoding (tests and benches): the draft for generated token g is draft_ids[g]
  // instead of the MTP block's, while g < draft_ids.size(); a previous run's ids give 100 %
  // acceptance, altered ids any lower rate.
  std::vector<int32_t> draft_ids;
};

// Speculative decoding counters (vLLM's spec_decode metrics): verification steps that carried
// drafts, drafts verified, drafts accepted, and accepted drafts by position in the draft.
struct SpecDecodeStats {
  int64_t drafts = 0, draft_tokens = 0, accepted_tokens = 0;
  std::vector<int64_t> accepted_at;
  void add(const SpecDecodeStats& o);
};

struct EngineRequest {
  std::vector<int32_t> prompt;  // token ids, at least one
  SamplingParams sampling;
  std::function<void(const TokenEvent&)> on_token;  // every new token, then the finish
  DebugOptions debug;
};

struct EngineStats {
  int64_t running = 0, waiting = 0;      // admitted and generating / queued for KV pages
  int64_t kv_pages_used = 0, kv_pages_total = 0;  // rank 0's pool (pages are per rank)
  int64_t prompt_tokens = 0, generation_tokens = 0;  // totals since start
  int64_t preemptions = 0, finished = 0, aborted = 0;
  std::vector<double> stage_step_seconds;  // mean compute time of a step, per stage
  int64_t steps = 0;                       // steps run by stage 0 of lane 0
  SpecDecodeStats spec;                    // speculative decoding, all lanes
};

// What one rank reports when the engine shuts down (KV pool back to empty, step counters).
struct RankStats {
  int rank = 0, stage = 0, lane = 0;
  int64_t pages_used = 0, pages_total = 0, live_states = 0, steps = 0, preemptions = 0;
  double busy_seconds = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;
  // Queues a request; returns its id. InputError for a bad prompt (empty, id out of the
  // vocabulary, prompt + max_tokens over the context limit: both numbers in the message).
  virtual int64_t submit(EngineRequest request) = 0;
  // Stops a request at once: its pages are freed on every rank, its callback gets a last event
  // with FinishReason::Abort. Unknown or finished ids are ignored.
  virtual void abort(int64_t request) = 0;
  virtual EngineStats stats() const = 0;
  // Context limit (max_position_embeddings) and vocabulary, for request validation.
  virtual int context_limit() const = 0;
  virtual int vocab_size() const = 0;
  virtual int eos_id() const = 0;
  // Every rank is up and the engine thread is running.
  virtual bool healthy() const = 0;
  // Stops taking requests, aborts what is still running after `timeout_s`, stops every rank.
  virtual void shutdown(double timeout_s) = 0;
  // After shutdown: every rank's report, by world rank.
  virtual std::vector<RankStats> rank_stats() const = 0;
};

}  // namespace flashline
