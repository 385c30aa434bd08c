#include "stages/compressor.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/hadamard.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/rms_norm.h"

namespace flashline {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// One pooling window: `n` rows of kv and score (already with ape) for `d` channels.
struct Window {
  int n = 0, d = 0;
  std::vector<float> kv, score;  // [n, d]
  Window(int rows, int cols) : n(rows), d(cols), kv(std::size_t(rows) * cols, 0.0f), score(kv.size(), kNegInf) {}
  void set(int row, const float* k, const float* s) {
    std::copy(k, k + d, &kv[std::size_t(row) * d]);
    std::copy(s, s + d, &score[std::size_t(row) * d]);
  }
};

// Per channel: softmax of the scores over the rows, then sum of kv * weight (products rounded
// to fp32). Exact mode evaluates the softmax in double and rounds once, like the reference.
std::vector<float> pool(const Window& w, Numerics num) {
  std::vector<float> out(w.d), terms(w.n);
  std::vector<double> e(w.n);
  for (int ch = 0; ch < w.d; ++ch) {
    float mx = kNegInf;
    for (int r = 0; r < w.n; ++r) mx = std::max(mx, w.score[std::size_t(r) * w.d + ch]);
    if (num == Numerics::Exact) {
      double total = 0.0;
      for (int r = 0; r < w.n; ++r) {
        e[r] = std::exp(double(w.score[std::size_t(r) * w.d + ch]) - double(mx));
        total += e[r];
      }
      for (int r = 0; r < w.n; ++r) terms[r] = w.kv[std::size_t(r) * w.d + ch] * float(e[r] / total);
    } else {
      float total = 0.0f;
      for (int r = 0; r < w.n; ++r) {
        terms[r] = std::exp(w.score[std::size_t(r) * w.d + ch] - mx);
        total += terms[r];
      }
      for (int r = 0; r < w.n; ++r) terms[r] = w.kv[std::size_t(r) * w.d + ch] * (terms[r] / total);
    }
    out[ch] = sum(terms.data(), w.n, num);
  }
  return out;
}

// bf16 -> RMSNorm -> RoPE at `pos` -> (indexer keys) Hadamard + FP4 simulation, or (attention
// KV) FP8 simulation of the non-rotary dims.
void finish_entry(std::vector<float>& e, int pos, const CompressorWeights& w, const RopeTable& rope,
                  const ModelConfig& c, Numerics num) {
  const int d = w.head_dim, rd = c.rope_dim;
  bf16_round_inplace(e);
  rms_norm(e.data(), d, w.norm.data(), c.norm_eps, e.data(), num);
  std::vector<float> cs(rd / 2), sn(rd / 2);
  rope.angles(pos, cs.data(), sn.data());
  apply_rope(e.data() + d - rd, cs.data(), sn.data(), rd, false);
  if (w.rotate) {
    hadamard_bf16(e.data(), d, num);
    fp4_simulate(e, 32);
  } else {
    fp8_simulate({e.data(), std::size_t(d - rd)}, 64);
  }
}

}  // namespace

std::vector<float> run_compressor(const CompressorWeights& w, const float* x, int S, int start_pos,
                                  CompressorState& st, const RopeTable& rope, const ModelConfig& c, Numerics num) {
  const int ratio = w.ratio, d = w.head_dim, cols = (w.overlap ? 2 : 1) * d;
  std::vector<float> kv(std::size_t(S) * cols), sc(std::size_t(S) * cols);
  gemm_f32(x, S, c.dim, w.wkv.data, cols, kv.data(), num);
  gemm_f32(x, S, c.dim, w.wgate.data, cols, sc.data(), num);
  auto kv_row = [&](int t) { return &kv[std::size_t(t) * cols]; };
  auto sc_row = [&](int t) { return &sc[std::size_t(t) * cols]; };
  // score + ape of the token's offset inside its block
  for (int t = 0; t < S; ++t)
    for (int i = 0; i < cols; ++i) sc_row(t)[i] += w.ape[std::size_t((start_pos + t) % ratio) * cols + i];

  // Token by token, whatever the chunk: a token's rows go to the state at its block offset,
  // and the token that completes a block pools the block. A chunk that starts or ends anywhere
  // therefore leaves exactly the state (remainder rows, ratio-4 overlap half) that feeding its
  // tokens one at a time would, and emits the same entries.
  std::vector<float> out, rk(cols), rs(cols);
  const int half = w.overlap ? ratio : 0;
  for (int t = 0; t < S; ++t) {
    const int pos = start_pos + t;
    st.kv.set(half + pos % ratio, kv_row(t), pos);
    st.score.set(half + pos % ratio, sc_row(t), pos);
    if ((pos + 1) % ratio != 0) continue;
    Window win(w.overlap ? 2 * ratio : ratio, d);
    for (int r = 0; r < win.n; ++r) {
      st.kv.get(r, rk.data());
      st.score.get(r, rs.data());
      // ratio 4: rows of the previous block give channels [0, d), this block's [d, 2d)
      const int off = w.overlap && r >= ratio ? d : 0;
      win.set(r, rk.data() + off, rs.data() + off);
      // the completed block becomes the next entry's overlap half
      if (w.overlap && r >= ratio) {
        st.kv.set(r - ratio, rk.data(), pos);
        st.score.set(r - ratio, rs.data(), pos);
      }
    }
    auto e = pool(win, num);
    finish_entry(e, pos + 1 - ratio, w, rope, c, num);
    out.insert(out.end(), e.begin(), e.end());
  }
  return out;
}

}  // namespace flashline
