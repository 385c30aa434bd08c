#pragma once
// The lightning indexer of ratio-4 layers: scores every completed compressed block for each
// query with low-precision (FP4-simulated, Hadamard-rotated) heads and keeps the top-k.
#include <vector>

#include "stages/layer_context.h"
#include "stages/model_weights.h"
#include "stages/request_state.h"

namespace flashline {

struct IndexerResult {
  int k = 0;                    // selections per query
  std::vector<int32_t> blocks;  // [S, k] compressed block ids, -1 = masked (a block after the query)
  std::vector<float> scores;    // [S, T] scores before top-k (-inf = masked)
};

// x [S, dim] (normed block input), qr [S, q_lora] (normed low-rank query) of one request.
IndexerResult run_indexer(const IndexerWeights& w, int layer_id, const float* x, const float* qr, int S,
                          int start_pos, LayerState& st, const LayerContext& ctx);

}  // namespace flashline
