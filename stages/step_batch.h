#pragma once
// One forward step over several requests: their tokens are the rows of every per-token
// matrix (concatenated request by request); attention and caches are per request.
#include <cstdint>
#include <map>
#include <vector>

#include "stages/request_state.h"

namespace flashline {

struct SequenceSlice {
  int row_begin = 0;
  int rows = 0;
  int start_pos = 0;  // position of the first row: the request is extended by `rows` tokens from here
  RequestState* state = nullptr;
};

struct StepBatch {
  std::vector<int32_t> ids;  // one per row
  std::vector<SequenceSlice> seqs;

  int rows() const { return int(ids.size()); }
  // Appends a request's next tokens at positions start_pos.. (a prefill, a chunk, a decode step).
  void add(const std::vector<int32_t>& tokens, int start_pos, RequestState* state);
  int position(int seq, int row_in_seq) const { return seqs[seq].start_pos + row_in_seq; }
};

// Intermediates of a single-request step, for golden comparison and debugging.
struct Trace {
  std::vector<float> embed;                            // [S, dim]
  std::map<int, std::vector<float>> hc_after_attn;     // layer -> [S, hc, dim]
  std::map<int, std::vector<float>> hc_after_block;    // layer -> [S, hc, dim]
  std::map<int, std::vector<int32_t>> router_idx;      // layer -> [S, k]
  std::map<int, std::vector<float>> router_w;          // layer -> [S, k]
  std::map<int, std::vector<int32_t>> index_topk;      // layer -> [S, k] block ids, -1 masked
  std::map<int, std::vector<float>> index_scores;      // layer -> [S, T]
  std::vector<float> final_norm_out;                   // [S, dim]
};

}  // namespace flashline
