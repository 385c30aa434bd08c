#pragma once
// Attention of a group of 8 query heads over K=V rows. Scores: against one row, each the fast-mode
// dot(q_h, k, D) of reduce.h bit for bit (eight lanes, lane l taking inputs l, l + 8, ...; the
// zero-padded tail step; combine8's tree), two heads per 512-bit register.
#include <vector>

namespace flashline {

// The 8 heads' queries ([8][D], head-major) interleaved for the kernel: per head pair and 8-input
// step, 8 values of each head; the tail step zero-padded.
struct PackedHeads8 {
  int D = 0, steps = 0;
  std::vector<float> v;
};
PackedHeads8 pack_heads8(const float* q, int D);

// Whether head_scores8 runs here (the AVX-512 level is active).
bool head_scores8_available();
// out[h] = dot(q_h, k, D, Fast) for h = 0..7.
void head_scores8(const PackedHeads8& q, const float* k, float* out);

// The value side for the same 8 heads: pv_h = the sum over the n listed rows, in order, of
// p[h * pstride + b[i]] * rows[i] (from +0, one rounding per product and per sum), then
// acc_h = acc_h * alpha_h + pv_h for the heads marked active (acc is [8][D]).
void head_values8(const float* p, int pstride, const int* b, const float* const* rows, int n, int D, const float* alpha,
                  const bool* active, float* acc);

}  // namespace flashline
