#pragma once
// Runs a list of requests on an Engine and waits for all of them: what the batch commands
// (generate, logits, plan --calibrate, bench offline) do with the serving engine. Requests are
// submitted at their arrival offsets, so tests and benchmarks can replay an arrival pattern.
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/engine.h"

namespace flashline {

struct TimedRequest {
  EngineRequest request;  // on_token is set by run_requests
  double arrival_s = 0;   // offset from the start of the run
  // Abort this request once request `abort_when_request` (an index into the list) has emitted
  // `abort_when_tokens` tokens (tests: an abort in the middle of a prefill or a decode).
  int abort_when_request = -1;
  int abort_when_tokens = 0;
};

struct RequestOutcome {
  std::vector<int32_t> ids;
  std::vector<float> logprobs;
  std::vector<float> token_logits, prompt_logits, mtp_logits;  // debug outputs
  FinishReason finish = FinishReason::None;
  std::string error;
  double submitted_s = 0, first_token_s = 0, finished_s = 0;  // from the start of the run
  std::vector<double> token_s;  // arrival of each token
};

// `on_token` (optional) sees every event as it arrives (index of the request, event): progress
// output and streaming. Throws InputError from submit.
std::vector<RequestOutcome> run_requests(Engine& engine, std::vector<TimedRequest> requests,
                                         const std::function<void(std::size_t, const TokenEvent&)>& on_token = {});

}  // namespace flashline
