#pragma once
// The per-request sampler at the last pipeline stage: one fp32 logits row in, one token id (and
// the logprobs the request asked for) out.
//
// Order of operations (each step sees the result of the previous one; the penalties are
// vLLM's, the truncations are applied top_k, top_p, min_p):
//   1. logit_bias: added to the raw logits, entry by entry.
//   2. repetition_penalty (HF/vLLM): for every id seen in the prompt or in the generated ids,
//      logit > 0 ? logit / penalty : logit * penalty (once per id, whatever its count).
//   3. frequency and presence penalties (OpenAI), generated ids only:
//      logit -= count * frequency_penalty + (count > 0) * presence_penalty.
//   These are the "processed logits". Logprobs (the chosen id's and the top N) are the
//   log-softmax of the processed logits: after bias and penalties, before temperature, top_k,
//   top_p and min_p, so they describe the model's distribution under the request's penalties,
//   not the truncated one it is sampled from, and they are the same for greedy and sampled
//   requests.
//   4. temperature < 1e-5: greedy, the argmax of the processed logits (ties: lower id). Stop.
//   5. p_i proportional to exp((logit_i - max) / temperature), in double.
//   6. top_k (> 0 and < vocab): keep the k largest logits (ties: lower id).
//   7. top_p (< 1): in the order below, keep the smallest prefix whose mass is >= top_p of the
//      mass left by top_k (so a token tied with the last one kept may be dropped: lower id wins).
//   8. min_p (> 0): keep tokens with p >= min_p * p_max.
//   Steps 6-8 always keep at least the most probable token.
//   9. Draw: u = CounterRng::uniform(seed, position, 0); walk the kept tokens in the fixed order
//      "descending probability, ties lower id", accumulating mass in double, and return the
//      first token whose running mass exceeds u * (kept mass) (the last kept one if rounding
//      leaves the walk short). Renormalisation is this scaling of u.
//
// Every sum has a fixed order (vocabulary index order for totals over the vocabulary, the
// order above for running masses), nothing depends on threads or on other requests in the
// batch, so the result is a function of (logits, params, history, seed, position) alone. The
// kept mass of step 9 is the running mass at the cut when top_k or top_p cut, else the total of
// the tokens min_p keeps in vocabulary order. Non-finite logits: NaN counts as -inf (never
// drawn), +inf as the largest float; a row with no finite logit left is taken as uniform.
//
// Cost at 129280 ids: one pass of copies and exps, no full sort. top_k selects k with
// nth_element; otherwise a counting sort groups ids by the top bits of their weight and steps
// 7 and 9 sort only the groups they walk through (a handful of tokens for a peaked row, most
// of the row only for a nearly flat one). The result is the one a full sort gives, bit for bit
// (tests/runtime compares against the full-sort definition).
#include <cstdint>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "runtime/sampling_params.h"

namespace flashline {

// What the penalties need of a request's history, kept per request and updated as tokens come:
// the set of prompt ids (a bitmap over the vocabulary: 16 KiB at 129280 ids, and penalties walk
// it word by word) and the count of each generated id (a hash map: at most max_tokens entries).
class TokenCounts {
 public:
  // Prompt ids may arrive in chunks (chunked prefill); repeated ids are fine.
  // InputError for a negative id.
  void add_prompt(std::span<const int32_t> ids);
  void add_generated(int32_t id);
  void clear();

  bool in_prompt(int32_t id) const;
  int32_t generated_count(int32_t id) const;
  int64_t generated_total() const { return generated_total_; }
  const std::unordered_map<int32_t, int32_t>& generated() const { return generated_; }
  const std::vector<uint64_t>& prompt_bits() const { return prompt_bits_; }

 private:
  std::vector<uint64_t> prompt_bits_;  // bit i: id i is in the prompt; grows to the largest id
  std::unordered_map<int32_t, int32_t> generated_;
  int64_t generated_total_ = 0;
};

struct SampleResult {
  int32_t id = -1;
  float logprob = 0.0f;                        // the chosen id's logprob (0 when logprobs < 0)
  std::vector<std::pair<int32_t, float>> top;  // the top N (N = logprobs) by logprob, descending,
                                               // ties lower id; empty when logprobs <= 0
};

// InputError naming the field and the accepted range when `params` cannot be sampled with a
// vocabulary of `vocab` ids (temperature < 0 or not finite, top_p outside (0, 1], top_k < -1,
// min_p outside [0, 1], repetition_penalty <= 0, a logit_bias id outside [0, vocab),
// logprobs < -1, penalties not finite). For request admission; sample() checks it too.
void check_sampling_params(const SamplingParams& params, int32_t vocab);

// The request finishes after emitting `id`: one of its stop_token_ids, or EOS unless ignore_eos.
bool is_stop_token(int32_t id, const SamplingParams& params, int32_t eos_id);

// Steps 1-3 above, in place on a logits row (ids of `history` outside the row are ignored).
void apply_penalties(std::span<float> logits, const SamplingParams& params,
                     const TokenCounts& history);

// Samples one row. Not thread-safe (scratch buffers are reused between calls): use one Sampler
// per thread; results do not depend on which Sampler or thread computes them.
class Sampler {
 public:
  // `seed`: params.seed when params.has_seed, else the seed the engine drew for the request
  // once. `position`: the sequence position of the token being sampled (the prompt length for
  // the first generated token), so the draw is CounterRng::uniform(seed, position, 0).
  SampleResult sample(std::span<const float> logits, const SamplingParams& params,
                      const TokenCounts& history, uint64_t seed, uint64_t position);

 private:
  static constexpr int kBinades = 64;  // weights below 2^-63 share the last bucket
  static constexpr int kBuckets = kBinades * 256;

  // Steps 5-9 on the processed logits z_, temperature > 0, uniform draw u.
  int32_t draw(const SamplingParams& params, double u);
  // Appends the next non-empty weight bucket, sorted, to order_ and cum_; false when none is left.
  bool extend_prefix();
  bool kept(int32_t id, double min_p) const;
  // Step 9 over the first n ids of order_, cut further by min_p.
  int32_t walk(size_t n, double u, double min_p) const;

  std::vector<float> z_;        // processed logits
  std::vector<double> w_;       // exp((z - max) / temperature) of the candidates
  std::vector<int32_t> order_;  // candidates in sampling order (descending weight, ties lower id)
  std::vector<double> cum_;     // running mass along order_
  std::vector<uint16_t> bucket_of_;    // weight bucket of each id (0: the largest weights)
  std::vector<int32_t> bucket_start_;  // [kBuckets + 1] offsets of the buckets in bucketed_
  std::vector<int32_t> bucketed_;      // ids grouped by bucket, ascending within one
  std::vector<int32_t> bucket_fill_;   // counting-sort cursors
  int next_bucket_ = 0;
};

}  // namespace flashline
