#pragma once
// Manifold-constrained hyper-connections: the residual is `hc` copies of the hidden vector.
// hc_pre collapses them to one input for a sub-block, hc_post expands the sub-block output back
// into the copies; hc_head collapses them before the final norm and head.
#include <vector>

#include "kernels/cpu/numerics.h"
#include "stages/model_weights.h"

namespace flashline {

struct HcWeights {
  int rows = 0, hc = 0;
  std::vector<float> pre, post, comb;  // [rows, hc], [rows, hc], [rows, hc, hc]
};

struct HcShape {
  int rows, hc, dim;
};

// y[r] = bf16(sum_j pre_j X[r, j]) with pre/post/comb from the Sinkhorn split of the
// RMS-scaled mixes.
void hc_pre(const float* X, HcShape s, const HcParams& p, const ModelConfig& c, float* y, HcWeights& w,
            Numerics num);
// out[r, k] = bf16(post_k * a[r] + sum_j comb[j][k] X[r, j]).
void hc_post(const float* a, const float* X, HcShape s, const HcWeights& w, float* out, Numerics num);
// y[r] = bf16(sum_j (sigmoid(mix_j * scale + base_j) + eps) X[r, j]) (no Sinkhorn).
void hc_head(const float* X, HcShape s, const HcParams& p, const ModelConfig& c, float* y, Numerics num);

}  // namespace flashline
