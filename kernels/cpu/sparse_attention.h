#pragma once
// Attention over an explicit index list per query (sliding window + compressed entries), one
// shared K=V vector per entry, a learned per-head sink in the softmax denominator. The list is
// walked in chunks of 64 with an online softmax, exactly like the GPU kernel:
//   s = fp32(q.k) * scale (index -1 -> -inf); m' = max(m, max s); a = exp(m - m');
//   p = exp(s - m'); l = l*a + sum(p); acc = acc*a + bf16(p) @ kv;
//   finally l += exp(sink - m), o = bf16(acc / l).
#include <cstdint>

#include "kernels/cpu/numerics.h"

namespace flashline {

struct SparseAttentionArgs {
  const float* q = nullptr;      // [S, H, D] bf16 values
  int S = 0, H = 0, D = 0;
  // The kv list is two row sources back to back (the window or new tokens, then the compressed
  // entries), so callers need not concatenate them: index r < N is kv[r], else kv2[r - N].
  const float* kv = nullptr;     // [N, D] bf16 values
  int N = 0;
  const float* kv2 = nullptr;    // [N2, D] bf16 values
  int N2 = 0;
  const float* sink = nullptr;   // [H]
  const int32_t* idx = nullptr;  // [S, T] row indices into kv, -1 = none
  int T = 0;
  float scale = 1.0f;
};

void sparse_attention(const SparseAttentionArgs& a, float* out /* [S, H, D] */, Numerics num);

}  // namespace flashline
