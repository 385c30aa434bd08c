#include "stages/attention.h"

#include <cmath>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/rms_norm.h"
#include "kernels/cpu/sparse_attention.h"
#include "stages/compressor.h"
#include "stages/indexer.h"

namespace flashline {
namespace {

// q = bf16(q * bf16(rsqrt(bf16(bf16(mean(bf16(q*q))) + eps)))) per head, in bf16 arithmetic.
void rescale_heads(float* q, int rows, int heads, int hd, float eps, Numerics num) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows * heads; ++r) {
    float* qh = q + std::size_t(r) * hd;
    std::vector<float> sq(hd);
    for (int i = 0; i < hd; ++i) sq[i] = bf16_round(qh[i] * qh[i]);
    float ms = bf16_round(mean(sq.data(), hd, num));
    float rs = bf16_round(rsqrt_f(bf16_round(ms + eps), num));
    for (int i = 0; i < hd; ++i) qh[i] = bf16_round(qh[i] * rs);
  }
}

// Applies RoPE (or its inverse) to the last rd dims of each of `heads` vectors of each row.
void rope_rows(float* v, const StepBatch& batch, int heads, int hd, const RopeTable& rope, bool inverse) {
  const int rd = rope.dim();
  std::vector<float> cs(rd / 2), sn(rd / 2);
  for (std::size_t si = 0; si < batch.seqs.size(); ++si) {
    const auto& seq = batch.seqs[si];
    for (int s = 0; s < seq.rows; ++s) {
      rope.angles(seq.start_pos + s, cs.data(), sn.data());
      for (int h = 0; h < heads; ++h)
        apply_rope(v + (std::size_t(seq.row_begin + s) * heads + h) * hd + hd - rd, cs.data(), sn.data(), rd, inverse);
    }
  }
}

// Attention of one request: builds its index lists (window, then compressed) over its kv list
// and runs the sparse attention. q [S, H, hd], kv [S, hd] of its new tokens; out [S, H, hd].
void attend_request(const BlockWeights& bw, const SequenceSlice& seq, const float* x, const float* qr,
                    const float* q, const float* kv, float* out, const LayerContext& ctx, Trace* trace) {
  const ModelConfig& c = ctx.config;
  const int S = seq.rows, hd = c.head_dim, win = c.window, id = bw.id, ratio = c.ratio(id);
  const int pos0 = seq.start_pos;
  LayerState& st = seq.state->layer(id);
  const bool prefill = pos0 == 0;

  // window part
  const int wlen = prefill ? std::min(S, win) : win;
  std::vector<int32_t> widx(std::size_t(S) * wlen, -1);
  if (prefill) {
    for (int i = 0; i < S; ++i)
      for (int j = 0; j < wlen; ++j) {
        int p = std::max(0, i - win + 1) + j;
        widx[std::size_t(i) * wlen + j] = p > i ? -1 : p;
      }
    for (int t = S - wlen; t < S; ++t) std::copy(kv + std::size_t(t) * hd, kv + std::size_t(t + 1) * hd, &st.window[std::size_t(t % win) * hd]);
  } else {
    std::copy(kv, kv + hd, &st.window[std::size_t(pos0 % win) * hd]);
    for (int j = 0; j < win; ++j)
      widx[j] = pos0 >= win - 1 ? (pos0 + 1 + j) % win : (j <= pos0 ? j : -1);
  }

  // compressed part
  std::vector<int32_t> cidx;
  int clen = 0;
  const int offset = prefill ? S : win;
  if (ratio > 0) {
    if (bw.attn.indexer) {
      auto ir = run_indexer(*bw.attn.indexer, id, x, qr, S, pos0, st, ctx);
      clen = ir.k;
      cidx = ir.blocks;
      for (auto& v : cidx)
        if (v >= 0) v += offset;
      if (trace) {
        trace->index_topk[id] = ir.blocks;
        trace->index_scores[id] = ir.scores;
      }
    } else if (prefill) {
      clen = S / ratio;
      cidx.resize(std::size_t(S) * clen);
      for (int i = 0; i < S; ++i)
        for (int b = 0; b < clen; ++b) cidx[std::size_t(i) * clen + b] = b < (i + 1) / ratio ? b + offset : -1;
    } else {
      clen = (pos0 + 1) / ratio;
      for (int b = 0; b < clen; ++b) cidx.push_back(b + offset);
    }
    auto entries = run_compressor(*bw.attn.compressor, x, S, pos0, st.compressor, ctx.rope_for(id), c, ctx.numerics);
    st.compressed.insert(st.compressed.end(), entries.begin(), entries.end());
  }


  const int T = wlen + clen;
  std::vector<int32_t> idx(std::size_t(S) * T);
  for (int i = 0; i < S; ++i) {
    std::copy(&widx[std::size_t(i) * wlen], &widx[std::size_t(i) * wlen] + wlen, &idx[std::size_t(i) * T]);
    if (clen) std::copy(&cidx[std::size_t(i) * clen], &cidx[std::size_t(i) * clen] + clen, &idx[std::size_t(i) * T + wlen]);
  }
  SparseAttentionArgs a;
  a.q = q;
  a.S = S;
  a.H = c.n_heads;
  a.D = hd;
  // kv list: prefill = [new tokens | compressed], decode = [ring | compressed]
  a.kv = prefill ? kv : st.window.data();
  a.N = prefill ? S : win;
  a.kv2 = st.compressed.data();
  a.N2 = int(st.compressed.size() / hd);
  a.sink = bw.attn.sink.data();
  a.idx = idx.data();
  a.T = T;
  a.scale = float(std::pow(double(hd), -0.5));
  sparse_attention(a, out, ctx.numerics);
}

}  // namespace

void attention_forward(const BlockWeights& bw, const StepBatch& batch, const float* x, float* out,
                       const LayerContext& ctx, Trace* trace) {
  const ModelConfig& c = ctx.config;
  const Numerics num = ctx.numerics;
  const AttentionWeights& w = bw.attn;
  const int R = batch.rows(), H = c.n_heads, hd = c.head_dim, rd = c.rope_dim;
  const RopeTable& rope = ctx.rope_for(bw.id);

  const QuantizedRows xq = quantize_rows(x, R, c.dim);
  std::vector<float> qr(std::size_t(R) * c.q_lora);
  gemm_fp8(xq, w.wq_a, qr.data(), num);
  rms_norm_rows(qr.data(), R, c.q_lora, w.q_norm.data(), c.norm_eps, qr.data(), num);
  std::vector<float> q(std::size_t(R) * H * hd);
  gemm_fp8(quantize_rows(qr.data(), R, c.q_lora), w.wq_b, q.data(), num);
  rescale_heads(q.data(), R, H, hd, c.norm_eps, num);
  rope_rows(q.data(), batch, H, hd, rope, false);

  std::vector<float> kv(std::size_t(R) * hd);
  gemm_fp8(xq, w.wkv, kv.data(), num);
  rms_norm_rows(kv.data(), R, hd, w.kv_norm.data(), c.norm_eps, kv.data(), num);
  rope_rows(kv.data(), batch, 1, hd, rope, false);
  for (int r = 0; r < R; ++r) fp8_simulate({&kv[std::size_t(r) * hd], std::size_t(hd - rd)}, 64);

  std::vector<float> o(std::size_t(R) * H * hd);
  for (const auto& seq : batch.seqs) {
    const std::size_t r0 = seq.row_begin;
    attend_request(bw, seq, x + r0 * c.dim, &qr[r0 * c.q_lora], &q[r0 * H * hd], &kv[r0 * hd], &o[r0 * H * hd],
                   ctx, trace);
  }
  rope_rows(o.data(), batch, H, hd, rope, true);

  // grouped wo_a: z[r, g] = bf16(o[r, heads of g] . wo_a[g]^T), then wo_b
  const int G = c.o_groups, gk = H * hd / G, L = c.o_lora;
  std::vector<float> z(std::size_t(R) * G * L), og(std::size_t(R) * gk), zg(std::size_t(R) * L);
  for (int g = 0; g < G; ++g) {
    for (int r = 0; r < R; ++r)
      std::copy(&o[std::size_t(r) * H * hd + std::size_t(g) * gk], &o[std::size_t(r) * H * hd + std::size_t(g + 1) * gk],
                &og[std::size_t(r) * gk]);
    gemm_f32(og.data(), R, gk, &w.wo_a[std::size_t(g) * L * gk], L, zg.data(), num);
    for (int r = 0; r < R; ++r)
      for (int i = 0; i < L; ++i) z[std::size_t(r) * G * L + std::size_t(g) * L + i] = bf16_round(zg[std::size_t(r) * L + i]);
  }
  gemm_fp8(quantize_rows(z.data(), R, G * L), w.wo_b, out, num);
}

}  // namespace flashline
