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

  std::vector<float> out;
  auto emit = [&](const Window& win, int pos) {
    auto e = pool(win, num);
    finish_entry(e, pos, w, rope, c, num);
    out.insert(out.end(), e.begin(), e.end());
  };
  auto st_kv = [&](int r) { return &st.kv[std::size_t(r) * cols]; };
  auto st_sc = [&](int r) { return &st.score[std::size_t(r) * cols]; };

  if (start_pos == 0) {
    const int nb = S / ratio, cutoff = nb * ratio, rem = S - cutoff;
    for (int b = 0; b < nb; ++b) {
      Window win(w.overlap ? 2 * ratio : ratio, d);
      for (int i = 0; i < ratio; ++i) {
        const int t = b * ratio + i;
        if (w.overlap) {
          if (b > 0) win.set(i, kv_row(t - ratio), sc_row(t - ratio));  // previous block, first half
          win.set(ratio + i, kv_row(t) + d, sc_row(t) + d);             // this block, second half
        } else {
          win.set(i, kv_row(t), sc_row(t));
        }
      }
      emit(win, b * ratio);
    }
    // Keep the last complete block (overlap half) and the remainder for decode.
    if (w.overlap && cutoff >= ratio)
      for (int i = 0; i < ratio; ++i) {
        std::copy(kv_row(cutoff - ratio + i), kv_row(cutoff - ratio + i) + cols, st_kv(i));
        std::copy(sc_row(cutoff - ratio + i), sc_row(cutoff - ratio + i) + cols, st_sc(i));
      }
    const int off = w.overlap ? ratio : 0;
    for (int i = 0; i < rem; ++i) {
      std::copy(kv_row(cutoff + i), kv_row(cutoff + i) + cols, st_kv(off + i));
      std::copy(sc_row(cutoff + i), sc_row(cutoff + i) + cols, st_sc(off + i));
    }
    return out;
  }

  const int slot = start_pos % ratio;
  const int row = (w.overlap ? ratio : 0) + slot;
  std::copy(kv_row(0), kv_row(0) + cols, st_kv(row));
  std::copy(sc_row(0), sc_row(0) + cols, st_sc(row));
  if ((start_pos + 1) % ratio != 0) return out;
  Window win(w.overlap ? 2 * ratio : ratio, d);
  if (w.overlap) {
    for (int i = 0; i < ratio; ++i) {
      win.set(i, st_kv(i), st_sc(i));
      win.set(ratio + i, st_kv(ratio + i) + d, st_sc(ratio + i) + d);
    }
    // the completed block becomes the next entry's overlap half
    std::copy(st.kv.begin() + std::size_t(ratio) * cols, st.kv.end(), st.kv.begin());
    std::copy(st.score.begin() + std::size_t(ratio) * cols, st.score.end(), st.score.begin());
  } else {
    for (int i = 0; i < ratio; ++i) win.set(i, st_kv(i), st_sc(i));
  }
  emit(win, start_pos + 1 - ratio);
  return out;
}

}  // namespace flashline
