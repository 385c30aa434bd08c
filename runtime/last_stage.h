#pragma once
// The sampling end of a lane, on its last stage: each request's sampler state (parameters,
// seed, token counts for the penalties, debug outputs), and the turn of a step's final hc
// stream into new tokens: the Sampled message back to stage 0 of the lane and the Stream
// message to rank 0.
#include <cstdint>
#include <map>
#include <vector>

#include "runtime/pipeline_message.h"
#include "runtime/sampler.h"
#include "stages/stage_executor.h"

namespace flashline {

class LastStage {
 public:
  LastStage(StageExecutor& executor, int context_limit);
  void add(const AddRecord& r);
  void release(int64_t request);
  // After the stage ran `m` (X = its final stream): the sampled ids of its sampling rows.
  void finish_step(const ForwardMessage& m, SampledMessage& sampled, StreamMessage& stream);
  int live() const { return int(requests_.size()); }

 private:
  struct Request {
    AddRecord add;
    TokenCounts counts;
    int32_t generated = 0;             // tokens emitted so far
    std::vector<float> prompt_logits;  // gathered over the prompt's chunks (debug)
    std::vector<float> prompt_stream;  // final hc rows of the prompt, for the MTP logits (debug)
  };
  TokenEvent sample(Request& r, const float* row, int32_t position);

  StageExecutor& ex_;
  int context_limit_;
  Sampler sampler_;
  std::map<int64_t, Request> requests_;
};

}  // namespace flashline
