#pragma once
// Runs a list of requests through the pipeline from one rank's point of view. Stage 0 of each
// lane drives: every tick it feeds one micro-batch slot (prefill of new requests, one decode
// token of the others) once the ids of that slot's previous step are back; later stages
// receive, run their layers and pass on; the last stage samples, sends the ids back to stage 0
// of the lane, and at the end sends every result to rank 0. A single process is the same run
// with one stage, one lane and loopback transports.
#include <vector>

#include "comms/expert_exchange.h"
#include "comms/pipeline_link.h"
#include "runtime/generation_request.h"
#include "runtime/stage_executor.h"

namespace flashline {

struct PipelineTopology {
  std::vector<std::vector<int>> ranks;  // ranks[stage][lane] = world rank
  int stages() const { return int(ranks.size()); }
  int lanes() const { return ranks.empty() ? 0 : int(ranks[0].size()); }
  static PipelineTopology single() { return {{{0}}}; }
};

class PipelineRunner {
 public:
  // `exchange` spans this rank's stage (its lanes); `micro_batches` slots per lane (0: one per
  // stage, the fewest that keep every stage busy in decode).
  PipelineRunner(StageExecutor& executor, PipelineTopology topology, int stage, int lane, PipelineLink& link,
                 ExpertExchange& exchange, int micro_batches = 0);

  // Every rank calls it with the same requests. Returns the results (indexed like `requests`)
  // on world rank 0 and an empty vector elsewhere.
  std::vector<GenerationResult> run(const std::vector<GenerationRequest>& requests);

 private:
  void drive_first_stage(const std::vector<GenerationRequest>& reqs);
  void follow(const std::vector<GenerationRequest>& reqs);
  void pass_on(ForwardMessage& mb, const std::vector<GenerationRequest>& reqs);
  void finish_micro_batch(const ForwardMessage& mb, const std::vector<GenerationRequest>& reqs);
  void send_results(const std::vector<GenerationRequest>& reqs);
  std::vector<GenerationResult> collect(const std::vector<GenerationRequest>& reqs);
  double elapsed() const;

  StageExecutor& ex_;
  PipelineTopology topo_;
  int stage_, lane_;
  PipelineLink& link_;
  ExpertExchange& exchange_;
  int slots_;
  std::vector<GenerationResult> results_;  // last stage: the requests of this lane
  double start_ = 0;
};

}  // namespace flashline
