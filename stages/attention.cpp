#include "stages/attention.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/rms_norm.h"
#include "kernels/cpu/sparse_attention.h"
#include "kernels/cpu/threads.h"
#include "stages/compressor.h"
#include "stages/indexer.h"

namespace flashline {
namespace {

// q = bf16(q * bf16(rsqrt(bf16(bf16(mean(bf16(q*q))) + eps)))) per head, in bf16 arithmetic.
void rescale_heads(float* q, int rows, int heads, int hd, float eps, Numerics num) {
#pragma omp parallel for num_threads(kernel_threads(rows * heads)) schedule(static)
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

// Attention of one request's chunk: tokens at positions pos0 .. pos0+S-1, q [S, H, hd] and kv
// [S, hd] of those tokens; out [S, H, hd]. Each query's index list (window oldest to newest,
// always `window` entries, padded with -1 before the first wrap; then the compressed entries)
// is exactly the list of a one-token decode at its position, and the online softmax walks it
// in chunks of 64: so a chunk of any size and start, a prefill included, gives the result of
// feeding its tokens one by one.
void attend_request(const BlockWeights& bw, const SequenceSlice& seq, const float* x, const float* qr,
                    const float* q, const float* kv, float* out, const LayerContext& ctx, Trace* trace) {
  const ModelConfig& c = ctx.config;
  const int S = seq.rows, hd = c.head_dim, win = c.window, id = bw.id, ratio = c.ratio(id);
  const int pos0 = seq.start_pos;
  LayerState& st = seq.state->layer(id);

  // The kv rows the window part reads: the ring as it was before this chunk, then the chunk's
  // rows (position p < pos0 is ring slot p % win, position p >= pos0 is row win + p - pos0).
  const int n_local = win + S;
  std::vector<float> local(std::size_t(n_local) * hd);
  if (pos0 > 0) st.window.get_all(local.data());
  std::copy(kv, kv + std::size_t(S) * hd, &local[std::size_t(win) * hd]);
  std::vector<int32_t> widx(std::size_t(S) * win, -1);
  for (int i = 0; i < S; ++i) {
    const int pos = pos0 + i;
    for (int j = 0; j < win; ++j) {
      const int p = pos >= win - 1 ? pos - win + 1 + j : j;
      if (p <= pos) widx[std::size_t(i) * win + j] = p < pos0 ? p % win : win + p - pos0;
    }
  }
  for (int t = std::max(0, S - win); t < S; ++t) st.window.set((pos0 + t) % win, kv + std::size_t(t) * hd, pos0 + t);

  // compressed part: entry c is visible to the query at position p iff c < (p + 1) / ratio
  std::vector<int32_t> cidx;
  int clen = 0;
  if (ratio > 0) {
    if (bw.attn.indexer) {
      auto ir = run_indexer(*bw.attn.indexer, id, x, qr, S, pos0, st, ctx);
      clen = ir.k;
      cidx = ir.blocks;
      if (trace) {
        trace->index_topk[id] = ir.blocks;
        trace->index_scores[id] = ir.scores;
      }
    } else {
      clen = (pos0 + S) / ratio;
      cidx.assign(std::size_t(S) * clen, -1);
      for (int i = 0; i < S; ++i)
        for (int b = 0; b < (pos0 + i + 1) / ratio; ++b) cidx[std::size_t(i) * clen + b] = b;
    }
    const auto entries = run_compressor(*bw.attn.compressor, x, S, pos0, st.compressor, ctx.rope_for(id), c, ctx.numerics);
    // entry e is completed by the token at position (e + 1) * ratio - 1
    for (std::size_t r = 0; r < entries.size() / hd; ++r)
      st.compressed.append(&entries[r * hd], (st.compressed.size() + 1) * ratio - 1);
  }
  // Only the compressed entries some query selects are read, renumbered in order of first use
  // (the lists keep their order, so results do not change).
  std::vector<int32_t> compact_of(st.compressed.size(), -1), used;
  for (auto& v : cidx) {
    if (v < 0) continue;
    if (compact_of[v] < 0) {
      compact_of[v] = int32_t(used.size());
      used.push_back(v);
    }
    v = compact_of[v] + n_local;
  }
  std::vector<float> compact(used.size() * hd);
  st.compressed.get_rows(used, compact.data());

  const int T = win + clen;
  std::vector<int32_t> idx(std::size_t(S) * T);
  for (int i = 0; i < S; ++i) {
    std::copy(&widx[std::size_t(i) * win], &widx[std::size_t(i) * win] + win, &idx[std::size_t(i) * T]);
    if (clen) std::copy(&cidx[std::size_t(i) * clen], &cidx[std::size_t(i) * clen] + clen, &idx[std::size_t(i) * T + win]);
  }
  SparseAttentionArgs a;
  a.q = q;
  a.S = S;
  a.H = c.n_heads;
  a.D = hd;
  a.kv = local.data();
  a.N = n_local;
  a.kv2 = compact.data();
  a.N2 = int(compact.size() / hd);
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
