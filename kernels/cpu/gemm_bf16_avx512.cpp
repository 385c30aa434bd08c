// AVX-512 fast-mode GEMM with bf16 weights and fp32 activations (fp32 result): the AVX2 body's
// arithmetic (gemm_generic_body.inc) operation for operation, four times the work per instruction.
//
// Why the same arithmetic and not a wider order: every fp32 order of these dot products is within
// the fp32 bound, but their outputs feed bf16 roundings and FP8/FP4 simulations (compressor
// entries, indexer keys) that turn a one-ulp difference at a rounding boundary into a 1/16..1/4
// change of a value. A 16-lane order measured 11x the golden error of tiny-a's ratio-4 layer 2;
// keeping one order on every path keeps one set of results (and one golden error) everywhere.
//
// The AVX2 body: lane l (of 8) of an output element adds x[t + l] * w[t + l] for t = 0, 8, 16, ...
// (one fp32 rounding per product and per addition), a zero-padded tail step for K % 8, then
// combine8's fixed tree. Here one vdpbf16ps does two such steps of two weight rows: dot-product
// lane L (0..15) serves row 2p + L / 8, AVX2 lane l = L % 8, and holds the pair (odd word = input
// 16s + l, even word = input 16s + 8 + l). vdpbf16ps adds the odd product, rounds, adds the even
// product, rounds — checked on this CPU before the body is used (`dp_order_ok`) — so a lane
// performs exactly the AVX2 lane's additions in its order. The products are exact in both (bf16
// times a bf16-valued activation); rows whose activations are not bf16 values take the AVX2 body.
// vdpbf16ps treats inputs and results below 2^-126 as zero, the AVX2 body does not: results can
// differ only where such values reach an output.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/block_dot.h"
#include "kernels/cpu/gemm_kernels.h"
#include "kernels/cpu/threads.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define FL_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))
#define FL_INLINE inline __attribute__((always_inline))

namespace flashline::gemm_detail {
namespace {

constexpr int T = kRowTile;

uint16_t bf16_bits(float v) { return uint16_t(float_to_bits(v) >> 16); }

FL_AVX512 FL_INLINE __m512 dp(__m512 acc, __m512i w, __m512i x) {
  return _mm512_dpbf16_ps(acc, (__m512bh)w, (__m512bh)x);
}

// (1 + 1.5 * 2^-24) rounds to 1 + 2^-23, minus 1 leaves 2^-23; the even-first order, or one
// rounding of the whole sum, gives 1.5 * 2^-24.
FL_AVX512 bool dp_order_ok() {
  const uint32_t w = uint32_t(bf16_bits(-1.0f)) | uint32_t(bf16_bits(1.5f * 0x1p-12f)) << 16;
  const uint32_t x = uint32_t(bf16_bits(1.0f)) | uint32_t(bf16_bits(0x1p-12f)) << 16;
  const __m512 r = dp(_mm512_set1_ps(1.0f), _mm512_set1_epi32(int(w)), _mm512_set1_epi32(int(x)));
  return _mm512_cvtss_f32(r) == 0x1p-23f;
}

// Word order of one dot step for two rows: a 512-bit register holding 16 words of row a then 16
// of row b becomes the 16 pairs (odd = input l, even = input 8 + l) of each.
FL_AVX512 FL_INLINE __m512i pair_index() {
  alignas(64) uint16_t idx[32];
  for (int L = 0; L < 16; ++L) {
    const int base = (L / 8) * 16, l = L % 8;
    idx[2 * L] = uint16_t(base + 8 + l);
    idx[2 * L + 1] = uint16_t(base + l);
  }
  return _mm512_load_si512(idx);
}

// The same for two steps at once: from 32 words of row a (steps s, s + 1) and 32 of row b, the
// pairs of step s + h (vpermt2w: indices 32.. select row b).
FL_AVX512 FL_INLINE __m512i pair_index2(int h) {
  alignas(64) uint16_t idx[32];
  for (int L = 0; L < 16; ++L) {
    const int base = (L / 8) * 32 + 16 * h, l = L % 8;
    idx[2 * L] = uint16_t(base + 8 + l);
    idx[2 * L + 1] = uint16_t(base + l);
  }
  return _mm512_load_si512(idx);
}

// The bf16-valued activation rows in dot order: per 16-input step the 16 pairs of both row halves
// (the same pairs twice), step-major ([step][row][32 words]), so that the rows a pass reads at one
// step sit side by side rather than a page apart in the same cache sets.
std::vector<uint16_t> prepare_rows(const float* x, int m, int k, const std::vector<int>& rows) {
  const int steps = k / 16;
  std::vector<uint16_t> v(std::size_t(steps) * m * 32);
  for (int i : rows)
    for (int s = 0; s < steps; ++s)
      for (int L = 0; L < 16; ++L) {
        const int l = L % 8;
        uint16_t* d = v.data() + (std::size_t(s) * m + i) * 32;
        d[2 * L] = bf16_bits(x[std::size_t(i) * k + 16 * s + 8 + l]);
        d[2 * L + 1] = bf16_bits(x[std::size_t(i) * k + 16 * s + l]);
      }
  return v;
}

// Inputs [t, t + n) (n <= 8) of rows a and b against x, as one AVX2 step: lanes 0-7 row a,
// 8-15 row b, zero-padded.
FL_AVX512 FL_INLINE __m512 tail_step(__m512 acc, const uint16_t* wa, const uint16_t* wb, const float* x, int t,
                                     int n) {
  const __mmask8 m = __mmask8((1u << n) - 1);
  const __m128i a = _mm_maskz_loadu_epi16(m, wa + t), b = _mm_maskz_loadu_epi16(m, wb + t);
  const __m512i w16 = _mm512_cvtepu16_epi32(_mm256_inserti128_si256(_mm256_castsi128_si256(a), b, 1));
  const __m512 wf = _mm512_castsi512_ps(_mm512_slli_epi32(w16, 16));
  const __m256 xv = _mm256_maskz_loadu_ps(m, x + t);
  const __m512 xf = _mm512_insertf32x8(_mm512_castps256_ps512(xv), xv, 1);
  return _mm512_add_ps(acc, _mm512_mul_ps(xf, wf));
}

// Row pairs of a strip (8 rows), the rows a pass over the weights reads together.
constexpr int kStripPairs = 4;

// One strip (NP row pairs) x NT tokens; out[t * T + 2p + h] = the element of row 2p + h, token t.
// `stream`: the strip is read by this pass alone (a batch of up to 4 tokens: decode, whose
// weights come from memory). Then each row is read 64 bytes at a time (two steps) and a
// two-source permute forms each step's pairs: the 64 MB head of `small` at one token 3-23%
// faster, a decode step 7-15% (one thread); a matrix already in cache is slower this way (1024 x
// 1024 at one token 38 -> 52 us). When several passes share a strip it is in cache for all but
// the first, and the one-source permute of 32-byte halves is kept (512 tokens on 4096 x 1024: 51
// against 56 ms). Both form the same pairs.
template <int NT>
FL_AVX512 void pairs_block(const uint16_t* const* wrow, int k, const uint16_t* const* xt, std::size_t xstep,
                           const float* const* xf, bool stream, float* out) {
  constexpr int NP = kStripPairs;
  const __m512i idx = pair_index();
  __m512 acc[NP][NT];
  for (int p = 0; p < NP; ++p)
    for (int t = 0; t < NT; ++t) acc[p][t] = _mm512_setzero_ps();
  auto dots = [&](int s, const __m512i* wv) FL_AVX512 {
    for (int t = 0; t < NT; ++t) {
      const __m512i xv = _mm512_loadu_si512(xt[t] + std::size_t(s) * xstep);
      for (int p = 0; p < NP; ++p) acc[p][t] = dp(acc[p][t], wv[p], xv);
    }
  };
  // The 2 * NP rows of a pass are short streams (a few KB) that the hardware prefetcher learns
  // too late; the rows of the next pass (contiguous: the tile's rows, then the next tile's) are
  // fetched into L2 in address order meanwhile, the same bytes per step as this pass reads.
  // Measured 32768 x 1024 at one token: 24 GB/s instead of 15-17.
  const char* next = reinterpret_cast<const char*>(wrow[0] + std::size_t(2 * NP) * k);
  auto prefetch_next = [&](int s, int lines) {
    for (int j = 0; j < lines; ++j) _mm_prefetch(next + std::size_t(s) * 64 * NP + 64 * j, _MM_HINT_T2);
  };
  const int steps = k / 16;
  int s = 0;
  if (stream) {
    const __m512i idx0 = pair_index2(0), idx1 = pair_index2(1);
    for (; s + 2 <= steps; s += 2) {
      prefetch_next(s, 2 * NP);
      __m512i w0[NP], w1[NP];
      for (int p = 0; p < NP; ++p) {
        const __m512i a = _mm512_loadu_si512(wrow[2 * p] + 16 * s), b = _mm512_loadu_si512(wrow[2 * p + 1] + 16 * s);
        w0[p] = _mm512_permutex2var_epi16(a, idx0, b);
        w1[p] = _mm512_permutex2var_epi16(a, idx1, b);
      }
      dots(s, w0);
      dots(s + 1, w1);
    }
  }
  for (; s < steps; ++s) {
    prefetch_next(s, NP);
    __m512i wv[NP];
    for (int p = 0; p < NP; ++p) {
      const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wrow[2 * p] + 16 * s));
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wrow[2 * p + 1] + 16 * s));
      wv[p] = _mm512_permutexvar_epi16(idx, _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1));
    }
    dots(s, wv);
  }
  // What the AVX2 body does after the last pair of steps: one more full step, then the tail.
  for (int t0 = steps * 16; t0 < k; t0 += 8)
    for (int p = 0; p < NP; ++p)
      for (int t = 0; t < NT; ++t)
        acc[p][t] = tail_step(acc[p][t], wrow[2 * p], wrow[2 * p + 1], xf[t], t0, std::min(8, k - t0));
  for (int p = 0; p < NP; ++p)
    for (int t = 0; t < NT; ++t) {
      alignas(64) float lanes[16];
      _mm512_store_ps(lanes, acc[p][t]);
      for (int h = 0; h < 2; ++h) {
        Lanes8 v;
        for (int l = 0; l < 8; ++l) v[l] = lanes[8 * h + l];
        out[t * T + 2 * p + h] = combine8(v);
      }
    }
}

// NT tokens against one strip of 8 rows (rows r0 .. r0 + nr - 1, nr <= 8).
template <int NT>
FL_AVX512 void strip(const uint16_t* w, int k, int r0, int nr, const uint16_t* xa, int m, const float* x,
                     const int* tok, bool stream, float* y, int n) {
  constexpr int NP = kStripPairs;
  float res[NT * T];
  const uint16_t* xt[NT];
  const float* xf[NT];
  for (int t = 0; t < NT; ++t) {
    xt[t] = xa + std::size_t(tok[t]) * 32;
    xf[t] = x + std::size_t(tok[t]) * k;
  }
  const uint16_t* wrow[2 * NP];
  for (int r = 0; r < 2 * NP; ++r) wrow[r] = w + std::size_t(r0 + (r < nr ? r : 0)) * k;
  pairs_block<NT>(wrow, k, xt, std::size_t(m) * 32, xf, stream, res);
  for (int t = 0; t < NT; ++t) std::copy_n(res + t * T, nr, y + std::size_t(tok[t]) * n + r0);
}

bool bf16_valued(const float* x, int k) {
  for (int t = 0; t < k; ++t)
    if ((float_to_bits(x[t]) & 0xFFFFu) != 0) return false;
  return true;
}

}  // namespace

void bf16_avx512(const float* x, int m, int k, const uint16_t* w, int n, float* y) {
  static const bool order_ok = dp_order_ok();
  std::vector<int> toks, other;
  for (int i = 0; i < m; ++i) (order_ok && bf16_valued(x + std::size_t(i) * k, k) ? toks : other).push_back(i);
  if (!other.empty()) {
    // Rows the dot instruction cannot take (or every row, on a CPU whose vdpbf16ps adds in
    // another order): the AVX2 body, whose results these are anyway.
    std::vector<float> xs(other.size() * std::size_t(k)), ys(other.size() * std::size_t(n));
    for (std::size_t i = 0; i < other.size(); ++i)
      std::copy_n(x + std::size_t(other[i]) * k, k, xs.begin() + i * k);
    bf16_avx2(xs.data(), int(other.size()), k, w, n, ys.data());
    for (std::size_t i = 0; i < other.size(); ++i)
      std::copy_n(ys.begin() + i * n, n, y + std::size_t(other[i]) * n);
  }
  if (toks.empty()) return;
  const std::vector<uint16_t> xs = prepare_rows(x, m, k, toks);
  const uint16_t* xa = xs.data();
  const int tiles = (n + T - 1) / T;
  const bool stream = toks.size() <= 4;  // one pass per strip (pairs_block)
#pragma omp parallel for num_threads(kernel_threads(tiles)) schedule(static)
  for (int ti = 0; ti < tiles; ++ti) {
    const int n0 = ti * T, nr = std::min(T, n - n0);
    // A tile is read as strips of 8 rows; every group of up to 4 tokens takes a strip while it
    // is in cache, so the weights come from memory once whatever the batch. (8 tokens on 4 rows
    // per pass measured slower per token, in cache and from memory.)
    for (int r0 = n0; r0 < n0 + nr; r0 += 2 * kStripPairs) {
      const int sr = std::min(2 * kStripPairs, n0 + nr - r0);
      for (std::size_t t = 0; t < toks.size(); t += 4) {
        const int* tk = &toks[t];
        switch (std::min<std::size_t>(4, toks.size() - t)) {
          case 1: strip<1>(w, k, r0, sr, xa, m, x, tk, stream, y, n); break;
          case 2: strip<2>(w, k, r0, sr, xa, m, x, tk, stream, y, n); break;
          case 3: strip<3>(w, k, r0, sr, xa, m, x, tk, stream, y, n); break;
          default: strip<4>(w, k, r0, sr, xa, m, x, tk, stream, y, n); break;
        }
      }
    }
  }
}

}  // namespace flashline::gemm_detail

#else
// Not an x86-64 GCC/Clang build: the dispatcher never selects this.
namespace flashline::gemm_detail {
void bf16_avx512(const float* x, int m, int k, const uint16_t* w, int n, float* y) { bf16_portable(x, m, k, w, n, y); }
}  // namespace flashline::gemm_detail
#endif
