#pragma once
// What a request asks of the sampler at the last stage (OpenAI / vLLM semantics). Travels with
// the request's add message down its lane.
#include <cstdint>
#include <utility>
#include <vector>

namespace flashline {

struct SamplingParams {
  float temperature = 0.0f;         // 0: greedy (argmax, ties to the lower id)
  float top_p = 1.0f;               // nucleus mass in (0, 1]
  int32_t top_k = 0;                // 0 or -1: off
  float min_p = 0.0f;               // keep tokens with p >= min_p * p_max
  float presence_penalty = 0.0f;    // OpenAI: logit -= presence * (count > 0)
  float frequency_penalty = 0.0f;   // OpenAI: logit -= frequency * count (generated tokens)
  float repetition_penalty = 1.0f;  // vLLM/HF: prompt and generated tokens, logit / or * penalty
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the logit before everything else
  std::vector<int32_t> stop_token_ids;                // finish (reason stop) after emitting one
  bool ignore_eos = false;                            // EOS does not finish the request
  int32_t max_tokens = 16;                            // new tokens at most (>= 1)
  int32_t logprobs = -1;                              // -1: none; N >= 0: the chosen id's logprob + top N
  uint64_t seed = 0;                                  // RNG key; the engine draws one when !has_seed
  bool has_seed = false;
};

}  // namespace flashline
