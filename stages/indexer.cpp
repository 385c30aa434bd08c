#include "stages/indexer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/hadamard.h"
#include "kernels/cpu/head_scores.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/threads.h"
#include "kernels/cpu/topk.h"
#include "stages/compressor.h"

namespace flashline {

IndexerResult run_indexer(const IndexerWeights& w, int layer_id, const float* x, const float* qr, int S,
                          int start_pos, LayerState& st, const LayerContext& ctx) {
  const ModelConfig& c = ctx.config;
  const Numerics num = ctx.numerics;
  const int IH = c.index_heads, Id = c.index_dim, rd = c.rope_dim, ratio = 4;
  const RopeTable& rope = ctx.rope_for(layer_id);

  // queries: wq_b(qr) -> RoPE -> Hadamard -> FP4 simulation
  std::vector<float> q(std::size_t(S) * IH * Id);
  gemm_fp8(quantize_rows(qr, S, c.q_lora), w.wq_b, q.data(), num);
  std::vector<float> cs(rd / 2), sn(rd / 2);
  for (int s = 0; s < S; ++s) {
    rope.angles(start_pos + s, cs.data(), sn.data());
    for (int h = 0; h < IH; ++h) {
      float* qh = &q[(std::size_t(s) * IH + h) * Id];
      apply_rope(qh + Id - rd, cs.data(), sn.data(), rd, false);
      hadamard_bf16(qh, Id, num);
      fp4_simulate({qh, std::size_t(Id)}, 32);
    }
  }
  const auto new_keys = run_compressor(w.compressor, x, S, start_pos, st.index_compressor, rope, c, num);
  for (std::size_t r = 0; r < new_keys.size() / Id; ++r)
    st.index_keys.append(&new_keys[r * Id], (st.index_keys.size() + 1) * ratio - 1);

  // per-head weights: bf16(bf16(x . weights_proj) * Id^-0.5 * IH^-0.5)
  std::vector<float> hw(std::size_t(S) * IH);
  gemm_f32(x, S, c.dim, w.weights_proj.data, IH, hw.data(), num);
  const float coef = float(std::pow(double(Id), -0.5) * std::pow(double(IH), -0.5));
  for (auto& v : hw) v = bf16_round(bf16_round(v) * coef);

  const int end_pos = start_pos + S;
  const int T = end_pos / ratio;
  IndexerResult res;
  res.k = std::min(c.index_topk, T);
  res.scores.assign(std::size_t(S) * T, 0.0f);
  res.blocks.assign(std::size_t(S) * res.k, -1);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  std::vector<float> keys(std::size_t(T) * Id);
  st.index_keys.get_all(keys.data());
  // Scores go in chunks of entries spread over the threads: a decode step has one query, and its
  // scores over a long context's keys are the work (each score is computed on its own, so the
  // split changes no bit).
  constexpr int kChunk = 64;
  const int chunks = (T + kChunk - 1) / kChunk;
  // Fast mode on AVX-512: the scores of 8 heads at a time, dot() bit for bit; each query's heads
  // are packed once, for all its chunks.
  const int groups8 = num == Numerics::Fast && IH % 8 == 0 && head_scores8_available() ? IH / 8 : 0;
  std::vector<PackedHeads8> packed(std::size_t(S) * groups8);
#pragma omp parallel for num_threads(kernel_threads(S)) schedule(static)
  for (int s = 0; s < S; ++s)
    for (int g = 0; g < groups8; ++g)
      packed[std::size_t(s) * groups8 + g] = pack_heads8(&q[(std::size_t(s) * IH + 8 * g) * Id], Id);
#pragma omp parallel for collapse(2) num_threads(kernel_threads(S * chunks)) schedule(static)
  for (int s = 0; s < S; ++s)
    for (int ch = 0; ch < chunks; ++ch) {
      // Blocks completed up to this query's position. A decode step sees every completed block;
      // inside a chunk of tokens, blocks completed by later tokens are masked, so each query
      // scores exactly what it would have scored had the tokens come one at a time.
      const int visible = (start_pos + s + 1) / ratio;
      const float* qs = &q[std::size_t(s) * IH * Id];
      const PackedHeads8* qp = packed.data() + std::size_t(s) * groups8;
      std::vector<float> d(IH), terms(IH);
      for (int t = ch * kChunk; t < std::min(T, (ch + 1) * kChunk); ++t) {
        const float* key = &keys[std::size_t(t) * Id];
        if (groups8)
          for (int g = 0; g < groups8; ++g) head_scores8(qp[g], key, &d[8 * g]);
        else
          for (int h = 0; h < IH; ++h) d[h] = dot(qs + std::size_t(h) * Id, key, Id, num);
        for (int h = 0; h < IH; ++h)
          terms[h] = bf16_round(std::max(bf16_round(d[h]), 0.0f) * hw[std::size_t(s) * IH + h]);
        res.scores[std::size_t(s) * T + t] = t < visible ? bf16_round(sum(terms.data(), IH, num)) : neg_inf;
      }
    }
#pragma omp parallel for num_threads(kernel_threads(S)) schedule(static)
  for (int s = 0; s < S; ++s) {
    const int visible = (start_pos + s + 1) / ratio;
    auto top = topk_desc(&res.scores[std::size_t(s) * T], T, res.k);
    for (int j = 0; j < res.k; ++j) res.blocks[std::size_t(s) * res.k + j] = top[j] < visible ? top[j] : -1;
  }
  return res;
}

}  // namespace flashline
