#pragma once
// The scheduler of one lane, at its stage 0. Requests arrive at any time (add); each step it
// builds one micro-batch under a token budget and a sequence cap: running decodes first, then
// prefill chunks of admitted requests, then new admissions, first come first served. It owns
// the KV page accounting of every stage of its lane (each stage's pool is sized alike and every
// stage allocates exactly what kv_pages_for says), so it admits a request only when its pages
// are free everywhere and, when growth runs out of pages, preempts the newest request (frees
// its pages everywhere, queues it again with the ids it has, recomputes it later: its output
// does not change). Policy and diagram: docs/engine.md.
#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "model/model_config.h"
#include "runtime/pipeline_message.h"

namespace flashline {

struct SchedulerLimits {
  int max_batch_tokens = 2048;  // rows of one micro-batch of this lane
  int max_seqs = 256;           // requests in one micro-batch
  int prefill_chunk = 512;      // tokens of one prefill chunk; 0: the whole remaining prompt
  int max_in_flight = 1;        // steps sent and not yet sampled
  int context_limit = 0;        // positions a sequence may reach; 0: no limit (drafts stop short of it)
  // A request whose drafts were accepted below this rate (after 16 drafts) gets no more drafts.
  double speculative_min_acceptance = 0;
};

// One stage of the lane: its layers and its pool.
struct StagePool {
  int layer_begin = 0, layer_end = 0;
  int64_t pages = 0;
  int mtp_layers = 0;  // MTP blocks whose per-request state the stage keeps (speculative decoding)
};

struct ScheduledStep {
  std::vector<int64_t> releases;
  std::vector<AddRecord> adds;
  std::vector<StepSeq> seqs;
  std::vector<int32_t> ids;
  int32_t mtp_rows = 0;  // MTP rows (debug) the last stage computes for prompts completed here
};

class LaneScheduler {
 public:
  LaneScheduler(const ModelConfig& config, SchedulerLimits limits, std::vector<StagePool> stages, std::size_t page_bytes);

  void add(AddRecord request);
  void abort(int64_t request);
  // The ids sampled by one step (one message per step sent), with the drafts for the next.
  void on_sampled(const SampledMessage& m);
  ScheduledStep next_step();
  // Releases decided since the last step (finished, aborted requests): sent on their own when
  // no step follows.
  std::vector<int64_t> take_releases();

  // Some request could run now (ready, or waiting and its pages free).
  bool has_ready() const;
  int in_flight() const { return in_flight_; }
  void step_sent() { ++in_flight_; }
  int64_t running() const { return int64_t(running_.size()); }
  int64_t waiting() const { return int64_t(waiting_.size()); }
  int64_t preemptions() const { return preemptions_; }
  int64_t pages_used(int stage) const { return used_.at(stage); }
  // Pages a request of `tokens` tokens needs on each stage (admission check at submit).
  std::vector<int64_t> pages_needed(int tokens) const;

 private:
  struct Request {
    AddRecord add;
    int computed = 0;          // tokens whose KV is cached on every stage of the lane
    bool in_flight = false;    // its sampling step is in the pipe
    bool announced = false;    // the add record went down the lane since its (re)admission
    bool aborted = false;      // abort waits for the step in flight
    int64_t order = 0;         // admission order: preemption takes the newest
    std::vector<int64_t> pages;  // accounted per stage (grows only: rejected drafts hold pages
                                 // on the stages until the next step rolls them back)
    std::vector<int32_t> drafts;  // speculative drafts for the next decode step
    int sent_drafts = 0;          // drafts in the step in flight
    int64_t drafted = 0, accepted = 0;
  };
  int drafts_for(const Request& r, int budget) const;
  bool grow(Request& r, int tokens, const std::vector<int64_t>& scheduled);
  bool fits(const std::vector<int64_t>& need) const;
  void free_pages(Request& r);
  void finish(int64_t id);
  void preempt(int64_t id);
  void schedule(Request& r, int n, bool sample, int drafts, ScheduledStep& step);

  const ModelConfig& config_;
  SchedulerLimits limits_;
  std::vector<StagePool> stages_;
  std::size_t page_bytes_;
  std::vector<int64_t> used_;
  std::map<int64_t, Request> requests_;
  std::deque<int64_t> waiting_;
  std::vector<int64_t> running_;  // admission order
  std::vector<int64_t> releases_;
  int in_flight_ = 0;
  int64_t next_order_ = 0, preemptions_ = 0;
};

}  // namespace flashline
