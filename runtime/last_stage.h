#pragma once
// The sampling end of a lane, on its last stage: each request's sampler state (parameters,
// seed, token counts for the penalties, debug outputs), and the turn of a step's final hc
// stream into new tokens: the Sampled message back to stage 0 of the lane and the Stream
// message to rank 0. With speculative decoding it also verifies the drafts a step carries and
// drafts the next ones with the MTP block (docs/speculative.md).
#include <cstdint>
#include <map>
#include <vector>

#include "runtime/pipeline_message.h"
#include "runtime/sampler.h"
#include "stages/stage_executor.h"

namespace flashline {

class LastStage {
 public:
  LastStage(StageExecutor& executor, int context_limit, int speculative_tokens = 0);
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
    // Speculation: the MTP block has taken the pairs (h_q, token q + 1) for q < mtp_next; when
    // the token after mtp_next is not known yet (a prefill chunk ended there), mtp_pending
    // holds h at mtp_next.
    int32_t mtp_next = 0;
    std::vector<float> mtp_pending;
  };
  // The pairs one request feeds the MTP block in a step, and what it drafts from them.
  struct MtpFeed {
    int64_t request = 0;
    int32_t start = 0;
    int32_t generated = 0;  // tokens the request had emitted before these drafts
    std::vector<float> h;
    std::vector<int32_t> next;
    bool draft = false;  // a sampled, unfinished request: drafts for its next step
    std::size_t entry = 0;  // its entry in the step's Sampled message (when drafting)
    std::vector<int32_t> drafts;
  };
  TokenEvent sample(Request& r, const float* row, int32_t position);
  void draft(std::vector<MtpFeed>& feeds);

  StageExecutor& ex_;
  int context_limit_;
  int speculative_tokens_;
  Sampler sampler_;
  std::map<int64_t, Request> requests_;
};

}  // namespace flashline
