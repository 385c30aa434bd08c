#pragma once
// What a caller asks of one request (prompt, how many ids, what to keep) and what it gets back.
// The decision of each next id (teacher-forced or greedy) and of when a request is finished is
// made here and only here, so the single-process and the pipelined runs cannot drift apart.
#include <cstdint>
#include <vector>

#include "comms/expert_exchange.h"

namespace flashline {

struct GenerationRequest {
  std::vector<int32_t> prompt;
  int max_new_tokens = 1;          // ids to produce (the first comes from the prefill); 0 = prefill only
  std::vector<int32_t> teacher;    // fed instead of the argmax for the first teacher.size() ids
  bool stop_at_eos = false;
  bool keep_prefill_logits = false;  // logits of every prompt position
  bool keep_decode_logits = false;   // the logits row each id was chosen from
  bool mtp = false;                  // MTP logits over the prompt: positions 0..n-2, next-token ids
};

struct GenerationResult {
  std::vector<int32_t> ids;
  std::vector<float> prefill_logits;  // [prompt, vocab] when kept
  std::vector<float> decode_logits;   // [ids, vocab] when kept
  std::vector<float> mtp_logits;      // [prompt - 1, vocab] when asked
  double prefill_done_s = 0;          // seconds from the start of the run to the first id
  double finished_s = 0;              // ... to the last id

  // Takes the logits row of the request's newest position, appends the chosen id.
  void accept(const GenerationRequest& req, const float* row, int vocab);
  bool finished(const GenerationRequest& req, int eos_id) const;

  void serialize(ByteBuffer& out) const;
  static GenerationResult deserialize(const std::byte*& p, const std::byte* end);
};

int32_t argmax_id(const float* row, int n);

}  // namespace flashline
