#pragma once
// The mHC split of one token's mixes into pre (hc), post (hc) and comb (hc x hc) weights:
//   pre  = sigmoid(mixes[0:hc] * scale[0] + base[0:hc]) + eps
//   post = 2 * sigmoid(mixes[hc:2hc] * scale[1] + base[hc:2hc])
//   comb[j][k] = mixes[2hc + j*hc + k] * scale[2] + base[...]; softmax over k, + eps;
//   divide by (column sum over j + eps); then iters-1 times: row, then column normalisation,
//   each dividing by (sum + eps). All fp32, reductions per the numerics mode.
#include "kernels/cpu/numerics.h"

namespace flashline {

void hc_split_sinkhorn(const float* mixes, const float* scale, const float* base, int hc, int iters, float eps,
                       float* pre, float* post, float* comb, Numerics num);

}  // namespace flashline
