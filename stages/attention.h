#pragma once
// The attention sub-block: low-rank query with per-head RMS rescale, one shared KV vector per
// token, RoPE, sliding window plus compressed entries (all of them for ratio != 4, the
// indexer's top-k for ratio 4), sparse attention with sink, inverse RoPE, grouped wo_a, wo_b.
#include "stages/layer_context.h"
#include "stages/model_weights.h"
#include "stages/step_batch.h"

namespace flashline {

// x [rows, dim] (normed) -> out [rows, dim] for every request of the batch; updates their caches.
void attention_forward(const BlockWeights& bw, const StepBatch& batch, const float* x, float* out,
                       const LayerContext& ctx, Trace* trace);

}  // namespace flashline
