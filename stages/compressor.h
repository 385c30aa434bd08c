#pragma once
// KV compression: gated pooling of `ratio` consecutive tokens into one entry (ratio 4 pools
// overlapping windows of 2 blocks: the previous block's first-half channels with the current
// block's second-half channels). Entry c covers tokens c*ratio .. c*ratio+ratio-1 and is RoPE'd
// at position c*ratio.
#include <vector>

#include "kernels/cpu/rope.h"
#include "stages/model_weights.h"
#include "stages/request_state.h"

namespace flashline {

// Feeds a request's rows x [S, dim] at positions start_pos .. start_pos+S-1 (any chunk) and
// returns the entries completed by them, [n, head_dim] bf16 (n may be 0).
std::vector<float> run_compressor(const CompressorWeights& w, const float* x, int S, int start_pos,
                                  CompressorState& st, const RopeTable& rope, const ModelConfig& c, Numerics num);

}  // namespace flashline
