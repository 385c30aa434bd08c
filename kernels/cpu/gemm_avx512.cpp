// AVX-512 fast-mode GEMMs (F/BW/DQ/VL + BF16 dot products + VBMI byte permutes), compiled with
// function-level target attributes so the library itself needs no -march flag.
//
// Scheme (see docs/performance.md):
// - Weights are read as stored and decoded in registers to bf16 words: e2m1 nibbles with one
//   16-bit permute (vpermw), e4m3 bytes by moving their bits into place (two GF(2) affine byte
//   maps, gf2p8affineqb) or, for the rare blocks with subnormal or NaN codes, with two 128-entry
//   byte permutes (vpermi2b). Every e2m1 and e4m3 value is exact in bf16, and so is every
//   act_quant'ed activation (an e4m3 value).
// - FP4 (e2m1, UE8M0 per 32): the 32-wide block dot is computed exactly. Activations enter as
//   a = q * 2^9 (integers, |a| <= 448 * 512 = 229376) and weights as 2 * e2m1 (integers,
//   |w| <= 12), so a product is an integer below 2^21.4. vdpbf16ps adds two products per fp32
//   lane; two of them (4 products, < 1.2e7 < 2^24) are still exact, whatever the order or
//   intermediate rounding of the instruction. Lanes are then converted to int32 and summed
//   (|block| <= 32 * 229376 * 12 < 2^27), converted to fp32 once (the single rounding of the
//   exact block dot), and the reference's operations follow unchanged: times s_x * 2^-10 (exact
//   refolding of the 2^9 and 2 factors), times s_w, fp32 accumulation in K order. The result is
//   bit-identical to exact mode.
// - FP8 (e4m3, UE8M0 per 128x128): a product of two e4m3 values is exact in fp32 but a 128-wide
//   block dot is not (exponent span up to 2^36), so the block dot is an fp32 sum in a fixed
//   order: lane l of vdpbf16ps accumulates its pairs over the block's four 32-wide pieces, then
//   the 16 lanes are added in a fixed tree. The block's scale and the K-order fp32 accumulation
//   follow the reference.
// - BF16 weights: gemm_bf16_avx512.cpp.
// - Batch invariance: every output element's arithmetic depends on K alone, never on the token
//   count, the row tile, or the thread count. Weight rows are processed in tiles of 16; a row's
//   chunk is decoded once in registers for up to 8 (FP8) or 4 (FP4) tokens (row-lane kernels).
//   FP4 also has a tokens-in-lanes kernel for groups of 16 tokens that repeats the row-lane
//   arithmetic.
// GCC 12 reports its own _mm512_undefined_* helpers as uninitialised once inlined here.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/gemm_kernels.h"
#include "kernels/cpu/threads.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define FL_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,avx512vbmi,gfni,fma")))
#define FL_INLINE inline __attribute__((always_inline))

namespace flashline::gemm_detail {
namespace {

constexpr int T = kRowTile;
static_assert(T == 16, "the register transposes below assume 16-row tiles");

uint16_t bf16_bits(float v) { return uint16_t(float_to_bits(v) >> 16); }

// --- shared register helpers ---------------------------------------------------------------

FL_AVX512 FL_INLINE __m512 dp(__m512 acc, __m512i w, __m512i x) {
  return _mm512_dpbf16_ps(acc, (__m512bh)w, (__m512bh)x);
}

// bf16 rounding (nearest even, NaN -> quiet NaN), as bf16_round().
FL_AVX512 FL_INLINE __m512 bf16_round16(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), lsb);
  r = _mm512_and_si512(r, _mm512_set1_epi32(int(0xFFFF0000u)));
  r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_set1_epi32(0x7FC00000));
  return _mm512_castsi512_ps(r);
}

// 16 UE8M0 bytes -> their values (e8m0_decode per lane).
FL_AVX512 FL_INLINE __m512 e8m0_16(__m128i bytes) {
  const __m512i e = _mm512_cvtepu8_epi32(bytes);
  __m512i f = _mm512_slli_epi32(e, 23);
  f = _mm512_mask_mov_epi32(f, _mm512_cmpeq_epi32_mask(e, _mm512_setzero_si512()), _mm512_set1_epi32(0x00400000));
  f = _mm512_mask_mov_epi32(f, _mm512_cmpeq_epi32_mask(e, _mm512_set1_epi32(255)), _mm512_set1_epi32(0x7FC00000));
  return _mm512_castsi512_ps(f);
}

// r[c] <- column c of the 16x16 matrix whose rows are r[0..15].
FL_AVX512 FL_INLINE void transpose16(__m512* r) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    u[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int j = 0; j < 4; ++j) {
    const __m512 p = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x44), q = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xEE);
    const __m512 p2 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x44);
    const __m512 q2 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xEE);
    r[j] = _mm512_shuffle_f32x4(p, p2, 0x88);
    r[4 + j] = _mm512_shuffle_f32x4(p, p2, 0xDD);
    r[8 + j] = _mm512_shuffle_f32x4(q, q2, 0x88);
    r[12 + j] = _mm512_shuffle_f32x4(q, q2, 0xDD);
  }
}

// Lane r of the result = the sum of the 16 lanes of p[r], in the same fixed tree for every r:
// ((l0 + l2) + (l1 + l3)) within each 128-bit quarter, then (q0 + q1) + (q2 + q3).
FL_AVX512 FL_INLINE __m512 tree16(const __m512* p) {
  __m512 s[8], q[4];
  for (int a = 0; a < 8; ++a)
    s[a] = _mm512_add_ps(_mm512_unpacklo_ps(p[2 * a], p[2 * a + 1]), _mm512_unpackhi_ps(p[2 * a], p[2 * a + 1]));
  for (int b = 0; b < 4; ++b) {
    const __m512d x = _mm512_castps_pd(s[2 * b]), y = _mm512_castps_pd(s[2 * b + 1]);
    q[b] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
  }
  const __m512 v0 = _mm512_add_ps(_mm512_shuffle_f32x4(q[0], q[1], 0x88), _mm512_shuffle_f32x4(q[0], q[1], 0xDD));
  const __m512 v1 = _mm512_add_ps(_mm512_shuffle_f32x4(q[2], q[3], 0x88), _mm512_shuffle_f32x4(q[2], q[3], 0xDD));
  return _mm512_add_ps(_mm512_shuffle_f32x4(v0, v1, 0x88), _mm512_shuffle_f32x4(v0, v1, 0xDD));
}

// Weight rows are read as a tile's 16 short streams, which the hardware prefetcher learns too
// late; the kernels fetch the next tile into L2 in address order meanwhile, the same number of
// bytes per step as they read (prefetches never fault, so the last tile's reach past the end is
// harmless).
FL_INLINE void prefetch_l2(const void* p, int lines) {
  for (int j = 0; j < lines; ++j) _mm_prefetch(static_cast<const char*>(p) + 64 * j, _MM_HINT_T2);
}

FL_AVX512 FL_INLINE void store_rows(float* y, int nr, __m512 v) { _mm512_mask_storeu_ps(y, __mmask16((1u << nr) - 1), v); }

// --- FP4 -----------------------------------------------------------------------------------
// A 128-wide chunk of a weight row is 64 code bytes, read as 32 words j of four nibbles: inputs
// 4j, 4j+1, 4j+2, 4j+3. Plane r (r = 0..3) of the chunk holds input 4j+r in word j; dot-product
// lane L covers words 2L, 2L+1, so lanes 4b..4b+3 belong to the chunk's 32-wide block b (the
// block in the 128-bit quarter b). Activations are stored in the same plane order.
// Four chunks make a group of 16 blocks; after the in-quarter transpose-add, lane 4*(B%4)+B/4
// holds block B of the group.

FL_INLINE int fp4_lane_of_block(int b) { return 4 * (b & 3) + (b >> 2); }

// Whether one fp32 chain may add the products a * w of activations whose sum of |q| is `sum_q`
// exactly, in any order: a = q * 2^9 and |w| <= 12 are integers, so every partial sum is an
// integer of at most 12 * sum|a|, which fp32 holds exactly below 2^24. Six products always fit
// (6 * 448 * 2^9 * 12 < 2^24); longer chains where the activations allow.
constexpr float kFp4ChainScale = 12.0f * 512.0f, kFp4ChainLimit = 0x1p24f;
bool fp4_chain_exact(double sum_q) { return kFp4ChainScale * sum_q < kFp4ChainLimit; }

// Activation rows row0 .. m - 1 of a QuantizedRows (indices below are relative to row0).
struct Fp4Act {
  int row0 = 0, k = 0, nchunk = 0, ngroup = 0;
  std::vector<uint16_t> x;  // [m - row0][k] bf16 of q * 2^9, plane order
  std::vector<float> sxs;   // [m - row0][ngroup][16] s_x * 2^-10 in lane order (0 for missing blocks)
  std::vector<uint8_t> chain;  // [m - row0][nchunk] 1: one fp32 chain per lane stays exact (fp4_chunk_dot)
};

// Whether every lane L of a 128-wide chunk may chain its 8 products (fp4_chain_exact over inputs
// 8L..8L+7). The sums of |q| are exact in fp32 in any order (e4m3 values are multiples of 2^-9
// below 2^9, and 8 of them stay below 2^12), so each lane's 8 values are added by three
// permute-and-add steps, and 12 * 512 * sum < 2^24 is tested on the exact sum (the product is
// exact too: at most 23 significant bits).
FL_AVX512 bool fp4_chunk_chains(const float* q) {
  const __m512 scale = _mm512_set1_ps(kFp4ChainScale), limit = _mm512_set1_ps(kFp4ChainLimit);
  const __m512i swap_octets = _mm512_setr_epi32(4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
  __mmask16 ok = 0xFFFF;
  for (int v = 0; v < 8; ++v) {  // lanes 2v and 2v + 1
    __m512 a = _mm512_abs_ps(_mm512_loadu_ps(q + 16 * v));
    a = _mm512_add_ps(a, _mm512_permute_ps(a, 0xB1));  // pairs
    a = _mm512_add_ps(a, _mm512_permute_ps(a, 0x4E));  // quads
    a = _mm512_add_ps(a, _mm512_permutexvar_ps(swap_octets, a));  // the lane's 8
    ok &= _mm512_cmp_ps_mask(_mm512_mul_ps(a, scale), limit, _CMP_LT_OQ);
  }
  return ok == 0xFFFF;
}

// Rows row0 .. x.m - 1 (the rows before go to the token kernel).
FL_AVX512 Fp4Act fp4_prepare(const QuantizedRows& x, int row0) {
  Fp4Act a;
  a.row0 = row0;
  a.k = x.k;
  a.nchunk = x.k / 128;
  a.ngroup = (a.nchunk + 3) / 4;
  const std::size_t m = std::size_t(x.m - row0);
  a.x.resize(m * x.k);
  a.sxs.assign(m * a.ngroup * 16, 0.0f);
  a.chain.assign(m * a.nchunk, 0);
  const int nb = x.k / 32;
  for (std::size_t i = 0; i < m; ++i) {
    const float* q = x.q.data() + (row0 + i) * x.k;
    uint16_t* d = a.x.data() + i * x.k;
    for (int c = 0; c < a.nchunk; ++c)
      for (int r = 0; r < 4; ++r)
        for (int j = 0; j < 32; ++j) d[c * 128 + r * 32 + j] = bf16_bits(q[c * 128 + 4 * j + r] * 512.0f);
    float* s = a.sxs.data() + i * a.ngroup * 16;
    for (int b = 0; b < nb; ++b)
      s[(b / 16) * 16 + fp4_lane_of_block(b % 16)] = x.s[(row0 + i) * a.nchunk + b / 4] * 0x1p-10f;
    // Lane L of a chunk's dot products takes inputs 8L..8L+7 (two words of each plane).
    for (int c = 0; c < a.nchunk; ++c) a.chain[i * a.nchunk + c] = fp4_chunk_chains(q + c * 128);
  }
  return a;
}

const std::array<uint16_t, 32>& fp4_table() {
  static const std::array<uint16_t, 32> t = [] {
    std::array<uint16_t, 32> v{};
    for (int i = 0; i < 32; ++i) v[i] = bf16_bits(2.0f * kE2M1Table[i & 15]);
    return v;
  }();
  return t;
}

// Weight scales of one row for one group, in lane order.
FL_AVX512 FL_INLINE __m512 fp4_group_scales(const uint8_t* ws, int nblk) {
  const __m128i order = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m128i b = _mm_maskz_loadu_epi8(__mmask16((1u << nblk) - 1), ws);
  return e8m0_16(_mm_shuffle_epi8(b, order));
}

FL_AVX512 FL_INLINE void fp4_decode_chunk(const uint8_t* c64, __m512i tbl, __m512i* w) {
  const __m512i c = _mm512_loadu_si512(c64);
  w[0] = _mm512_permutexvar_epi16(c, tbl);
  w[1] = _mm512_permutexvar_epi16(_mm512_srli_epi16(c, 4), tbl);
  w[2] = _mm512_permutexvar_epi16(_mm512_srli_epi16(c, 8), tbl);
  w[3] = _mm512_permutexvar_epi16(_mm512_srli_epi16(c, 12), tbl);
}

// Exact block dots of one chunk: lanes 4b..4b+3 (int32) sum to block b's dot * 2^10. A lane adds
// 4 products per fp32 chain (exact for any activations), or all 8 in one chain when the chunk's
// activations keep every lane's sum of |products| below 2^24 (`chain`, fp4_prepare): the same
// integers, two instructions fewer.
FL_AVX512 FL_INLINE __m512i fp4_chunk_dot(const __m512i* w, const __m512i* x, bool chain) {
  const __m512 z = _mm512_setzero_ps();
  const __m512 a = dp(dp(z, w[0], x[0]), w[1], x[1]);
  if (chain) return _mm512_cvtps_epi32(dp(dp(a, w[2], x[2]), w[3], x[3]));
  const __m512 b = dp(dp(z, w[2], x[2]), w[3], x[3]);
  return _mm512_add_epi32(_mm512_cvtps_epi32(a), _mm512_cvtps_epi32(b));
}

// In-quarter transpose-add: lane 4b+q = sum of quarter b of r[q].
FL_AVX512 FL_INLINE __m512i fp4_tadd(const __m512i* r) {
  const __m512i s01 = _mm512_add_epi32(_mm512_unpacklo_epi32(r[0], r[1]), _mm512_unpackhi_epi32(r[0], r[1]));
  const __m512i s23 = _mm512_add_epi32(_mm512_unpacklo_epi32(r[2], r[3]), _mm512_unpackhi_epi32(r[2], r[3]));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23), _mm512_unpackhi_epi64(s01, s23));
}

// R rows x NT tokens, one group of nq chunks: out[t][j] = the 16 scaled block values part * s_x *
// s_w of row j for token t, in lane order. A chunk of a row is decoded once for all NT tokens,
// and the rows share each chunk's activation loads; every token's arithmetic is the one-token
// arithmetic. `src[j]` is row j's codes at the group start.
template <int R, int NT>
FL_AVX512 FL_INLINE void fp4_rows_group(const uint8_t* const* src, int nq, const uint16_t* const* xa,
                                        const uint8_t* const* chain, const __m512* sxs, const __m512* sw, __m512i tbl,
                                        __m512* const* out) {
  __m512i r[NT][R][4];
  // Fully unrolled, so that r stays in registers.
#pragma GCC unroll 4
  for (int q = 0; q < 4; ++q) {
    if (q >= nq) {
      for (int t = 0; t < NT; ++t)
        for (int j = 0; j < R; ++j) r[t][j][q] = _mm512_setzero_si512();
      continue;
    }
    __m512i w[R][4];
    for (int j = 0; j < R; ++j) fp4_decode_chunk(src[j] + q * 64, tbl, w[j]);
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
      __m512i x[4];
      for (int p = 0; p < 4; ++p) x[p] = _mm512_loadu_si512(xa[t] + q * 128 + 32 * p);
      for (int j = 0; j < R; ++j) r[t][j][q] = fp4_chunk_dot(w[j], x, chain[t][q]);
    }
  }
  for (int t = 0; t < NT; ++t)
    for (int j = 0; j < R; ++j)
      out[t][j] = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(fp4_tadd(r[t][j])), sxs[t]), sw[j]);
}

// Tokens i0 .. i0 + NT - 1 against one tile of rows, decoding the rows on the fly.
template <int NT>
FL_AVX512 void fp4_tile(const Fp4Weight& w, const Fp4Act& a, int i0, int n0, int nr, int lead, float* y) {
  constexpr int R = NT <= 2 ? 2 : 1;
  const __m512i tbl = _mm512_loadu_si512(fp4_table().data());
  const int k = a.k, nb = k / 32;
  const uint8_t* next = w.codes + std::size_t(n0 + lead * T) * (k / 2);  // the lead tile's rows, contiguous
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  for (int g = 0; g < a.ngroup; ++g) {
    const int nq = std::min(4, a.nchunk - 4 * g), nblk = 4 * nq;
    __m512 sxs[NT];
    const uint16_t* xa[NT];
    const uint8_t* chain[NT];
    for (int t = 0; t < NT; ++t) {
      const std::size_t i = std::size_t(i0 + t - a.row0);
      sxs[t] = _mm512_loadu_ps(a.sxs.data() + (i * a.ngroup + g) * 16);
      xa[t] = a.x.data() + i * k + g * 512;
      chain[t] = a.chain.data() + i * a.nchunk + 4 * g;
    }
    __m512 p[NT][T + R];
    for (int r0 = 0; r0 < nr; r0 += R) {
      const uint8_t* src[R];
      __m512 sw[R];
      for (int j = 0; j < R; ++j) {
        const std::size_t row = std::size_t(n0 + std::min(r0 + j, nr - 1));
        src[j] = w.codes + row * (k / 2) + g * 256;
        sw[j] = fp4_group_scales(w.scales + row * nb + g * 16, nblk);
        prefetch_l2(next + (std::size_t(g) * T + r0 + j) * 256, 4);
      }
      __m512* out[NT];
      for (int t = 0; t < NT; ++t) out[t] = p[t] + r0;
      if (nq == 4)
        fp4_rows_group<R, NT>(src, 4, xa, chain, sxs, sw, tbl, out);
      else
        fp4_rows_group<R, NT>(src, nq, xa, chain, sxs, sw, tbl, out);
    }
    for (int t = 0; t < NT; ++t) {
      for (int r = nr; r < T; ++r) p[t][r] = _mm512_setzero_ps();
      transpose16(p[t]);
      for (int b = 0; b < nblk; ++b) acc[t] = _mm512_add_ps(acc[t], p[t][fp4_lane_of_block(b)]);
    }
  }
  for (int t = 0; t < NT; ++t) store_rows(y + std::size_t(i0 + t) * w.n + n0, nr, bf16_round16(acc[t]));
}

// FP4 with tokens in the lanes (groups of 16 tokens): lane t of an accumulator is token t of the
// group, and each weight pair (inputs 2p, 2p+1 of a row, one code byte) is broadcast to all
// lanes. A lane adds 6 products (3 dot instructions, < 1.66e7 < 2^24), or 16 where the
// activations allow it, before it is converted to int32, so block dots stay exact and no
// per-block lane reduction is needed.

struct Fp4TokenAct {
  int groups = 0, nb = 0;
  std::vector<uint32_t> x;     // [group][k/2][16] bf16 pairs of q * 2^9
  std::vector<float> sxs;      // [group][nb][16] s_x * 2^-10
  std::vector<uint8_t> chain;  // [group][nb] 1: the block's even and odd pairs may each go in one chain
};

// Whether a 32-wide block's even pairs (inputs 4j, 4j+1) may go in one fp32 chain and its odd
// pairs (4j+2, 4j+3) in another (fp4_chain_exact; typical activations pass), else chains of 3
// pairs.
bool fp4_pair_chains_exact(const float* q) {
  double sum[2] = {0, 0};
  for (int t = 0; t < 32; ++t) sum[(t / 2) % 2] += std::abs(double(q[t]));
  return fp4_chain_exact(sum[0]) && fp4_chain_exact(sum[1]);
}

// Tokens 0 .. mt - 1 of x.
Fp4TokenAct fp4_token_prepare(const QuantizedRows& x, int mt) {
  Fp4TokenAct a;
  const int k = x.k, kp = k / 2;
  a.groups = (mt + 15) / 16;
  a.nb = k / 32;
  a.x.assign(std::size_t(a.groups) * kp * 16, 0);
  a.sxs.assign(std::size_t(a.groups) * a.nb * 16, 0.0f);
  a.chain.assign(std::size_t(a.groups) * a.nb, 1);  // padding lanes hold zeros
  for (int i = 0; i < mt; ++i) {
    const int g = i / 16, t = i % 16;
    const float* q = x.q.data() + std::size_t(i) * k;
    uint32_t* d = a.x.data() + std::size_t(g) * kp * 16 + t;
    for (int p = 0; p < kp; ++p)
      d[std::size_t(p) * 16] = uint32_t(bf16_bits(q[2 * p] * 512.0f)) | uint32_t(bf16_bits(q[2 * p + 1] * 512.0f)) << 16;
    float* s = a.sxs.data() + std::size_t(g) * a.nb * 16 + t;
    for (int b = 0; b < a.nb; ++b) s[b * 16] = x.s[std::size_t(i) * (k / 128) + b / 4] * 0x1p-10f;
    uint8_t* c = a.chain.data() + std::size_t(g) * a.nb;  // the group's lanes share the chains
    for (int b = 0; b < a.nb; ++b) c[b] = c[b] && fp4_pair_chains_exact(q + 32 * b);
  }
  return a;
}

const std::array<uint32_t, 32>& fp4_pair_tables() {
  static const std::array<uint32_t, 32> t = [] {
    std::array<uint32_t, 32> v{};
    for (int i = 0; i < 16; ++i) {
      v[i] = bf16_bits(2.0f * kE2M1Table[i]);
      v[16 + i] = v[i] << 16;
    }
    return v;
  }();
  return t;
}

// Rows of a tile as bf16 pairs (one dword per code byte) and their scales as floats.
FL_AVX512 void fp4_decode_pairs(const Fp4Weight& w, int n0, int nr, uint32_t* wd, float* sw) {
  const __m512i lo = _mm512_loadu_si512(fp4_pair_tables().data());
  const __m512i hi = _mm512_loadu_si512(fp4_pair_tables().data() + 16);
  const int kp = w.k / 2, nb = w.k / 32;
  for (int r = 0; r < nr; ++r) {
    const uint8_t* c = w.codes + std::size_t(n0 + r) * kp;
    for (int p = 0; p < kp; p += 16) {
      const __m512i x = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + p)));
      const __m512i v = _mm512_or_si512(_mm512_permutexvar_epi32(x, lo),
                                        _mm512_permutexvar_epi32(_mm512_srli_epi32(x, 4), hi));
      _mm512_storeu_si512(wd + std::size_t(r) * kp + p, v);
    }
    for (int b = 0; b < nb; ++b) sw[std::size_t(r) * nb + b] = e8m0_decode(w.scales[std::size_t(n0 + r) * nb + b]);
  }
}

// 4 rows x 16 tokens; out[r][t] = bf16 result. A block's 16 pairs go in fp32 chains, converted
// to int32 and summed: two chains of 8 pairs (even and odd) where `chain[b]` allows, else chains
// of 3 pairs; the same integers either way (fp4_pair_chains_exact).
FL_AVX512 void fp4_token_rows(const uint32_t* const* wd, const float* const* sw, int nb, const uint32_t* xt,
                              const float* sxs, const uint8_t* chain, float* out) {
  constexpr int R = 4;
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int b = 0; b < nb; ++b) {
    __m512i ia[R];
    if (chain[b]) {
      // Two chains per row (even and odd pairs) rather than one of 16: the rows' chains then keep
      // the dot unit busy.
      __m512 f[2][R];
      for (int h = 0; h < 2; ++h)
        for (int r = 0; r < R; ++r) f[h][r] = _mm512_setzero_ps();
#pragma GCC unroll 16
      for (int p = 0; p < 16; ++p) {
        const __m512i x = _mm512_loadu_si512(xt + (std::size_t(b) * 16 + p) * 16);
        for (int r = 0; r < R; ++r) f[p & 1][r] = dp(f[p & 1][r], x, _mm512_set1_epi32(int(wd[r][b * 16 + p])));
      }
      for (int r = 0; r < R; ++r) ia[r] = _mm512_add_epi32(_mm512_cvtps_epi32(f[0][r]), _mm512_cvtps_epi32(f[1][r]));
    } else {
      for (int p0 = 0; p0 < 16; p0 += 3) {
        __m512 f[R];
        for (int r = 0; r < R; ++r) f[r] = _mm512_setzero_ps();
        for (int p = p0; p < std::min(p0 + 3, 16); ++p) {
          const __m512i x = _mm512_loadu_si512(xt + (std::size_t(b) * 16 + p) * 16);
          for (int r = 0; r < R; ++r) f[r] = dp(f[r], x, _mm512_set1_epi32(int(wd[r][b * 16 + p])));
        }
        for (int r = 0; r < R; ++r) {
          const __m512i v = _mm512_cvtps_epi32(f[r]);
          ia[r] = p0 == 0 ? v : _mm512_add_epi32(ia[r], v);
        }
      }
    }
    const __m512 s = _mm512_loadu_ps(sxs + std::size_t(b) * 16);
    for (int r = 0; r < R; ++r)
      acc[r] = _mm512_add_ps(acc[r], _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(ia[r]), s), _mm512_set1_ps(sw[r][b])));
  }
  for (int r = 0; r < R; ++r) _mm512_storeu_ps(out + r * 16, bf16_round16(acc[r]));
}

// --- FP8 -----------------------------------------------------------------------------------
// 64 codes -> two bf16 vectors: unpacking the low/high bytes interleaves each 128-bit quarter
// q, so the first vector holds inputs 16q..16q+7 and the second 16q+8..16q+15 (word 8q+t).
// Activations are stored in that order, per 64-wide chunk: 32 "low" words then 32 "high" words.
//
// Two decoders give the same products up to a power of two:
// - bit moves (most blocks): an e4m3 code s.eeee.mmm placed as the bf16 pattern s.0000eeee.mmm0000
//   is the e4m3 value times 2^-120 for every normal code, so two GF(2) affine byte maps (the low
//   and the high byte of the pattern) and the unpack decode 64 codes. An e4m3 subnormal would
//   become a bf16 subnormal, which vdpbf16ps reads as zero, and NaN a finite value: blocks with
//   those codes (fp8_table_blocks) take
// - the table: the bf16 of the value times 2^-20, looked up per byte (normal for every code).
// Activations enter as q * 2^119 (exact in bf16: |q| <= 448). A product is then q * w * 2^-1
// (bit moves) or q * w * 2^99 (table), exact in fp32, and every partial sum stays a normal float
// (multiples of 2^-19, magnitudes below 2^120): scaling by a power of two commutes with each
// rounding, so the block sums are the unscaled order's sums times the same power of two. Table
// rows are brought to 2^-1 (times 2^-100, exact), and the tree of 16 lanes is doubled (exact):
// the bits of the unscaled computation.

constexpr float kFp8ActScale = 0x1p119f, kFp8TableScale = 0x1p-20f, kFp8TableToMoves = 0x1p-100f;

struct Fp8Tables {
  __m512i lo0, lo1, hi0, hi1;
};

const std::array<uint8_t, 256>& fp8_table_bytes() {
  static const std::array<uint8_t, 256> t = [] {
    std::array<uint8_t, 256> v{};
    for (int c = 0; c < 128; ++c) {
      const uint16_t b = bf16_bits(e4m3_table()[c] * kFp8TableScale);
      v[c] = uint8_t(b & 0xFF);
      v[128 + c] = uint8_t(b >> 8);
    }
    return v;
  }();
  return t;
}

FL_AVX512 FL_INLINE Fp8Tables fp8_tables() {
  const uint8_t* t = fp8_table_bytes().data();
  return {_mm512_loadu_si512(t), _mm512_loadu_si512(t + 64), _mm512_loadu_si512(t + 128),
          _mm512_loadu_si512(t + 192)};
}

FL_AVX512 FL_INLINE void fp8_decode64_table(const uint8_t* c64, const Fp8Tables& t, __m512i* w) {
  const __m512i c = _mm512_loadu_si512(c64);
  const __m512i lo = _mm512_permutex2var_epi8(t.lo0, c, t.lo1);
  __m512i hi = _mm512_permutex2var_epi8(t.hi0, c, t.hi1);
  hi = _mm512_ternarylogic_epi32(hi, c, _mm512_set1_epi8(char(0x80)), 0xF8);  // hi | (c & 0x80)
  w[0] = _mm512_unpacklo_epi8(lo, hi);
  w[1] = _mm512_unpackhi_epi8(lo, hi);
}

// gf2p8affineqb: output bit i is the parity of (input & byte 7 - i of the matrix). Low byte of the
// pattern: e0 m2 m1 m0 0 0 0 0 (inputs 3..0 to outputs 7..4); high byte: s 0 0 0 0 e3 e2 e1
// (input 7 to output 7, inputs 6..4 to outputs 2..0).
FL_AVX512 FL_INLINE void fp8_decode64_moves(const uint8_t* c64, __m512i* w) {
  const __m512i c = _mm512_loadu_si512(c64);
  const __m512i lo = _mm512_gf2p8affine_epi64_epi8(c, _mm512_set1_epi64(0x0000000001020408LL), 0);
  const __m512i hi = _mm512_gf2p8affine_epi64_epi8(c, _mm512_set1_epi64(0x1020400000000080LL), 0);
  w[0] = _mm512_unpacklo_epi8(lo, hi);
  w[1] = _mm512_unpackhi_epi8(lo, hi);
}

std::vector<uint16_t> fp8_prepare(const QuantizedRows& x) {
  std::vector<uint16_t> d(std::size_t(x.m) * x.k);
  for (int i = 0; i < x.m; ++i) {
    const float* q = x.q.data() + std::size_t(i) * x.k;
    uint16_t* o = d.data() + std::size_t(i) * x.k;
    for (int c = 0; c < x.k; c += 64)
      for (int qq = 0; qq < 4; ++qq)
        for (int t = 0; t < 8; ++t) {
          o[c + 8 * qq + t] = bf16_bits(q[c + 16 * qq + t] * kFp8ActScale);
          o[c + 32 + 8 * qq + t] = bf16_bits(q[c + 16 * qq + 8 + t] * kFp8ActScale);
        }
  }
  return d;
}

// fp32 partial sums (16 lanes) of one 128-wide block of one row.
FL_AVX512 FL_INLINE __m512 fp8_block(const __m512i* w, const __m512i* x) {
  __m512 a = dp(_mm512_setzero_ps(), w[0], x[0]);
  a = dp(a, w[1], x[1]);
  a = dp(a, w[2], x[2]);
  return dp(a, w[3], x[3]);
}

// Tokens i0 .. i0 + NT - 1 against one tile of rows: each row's block is decoded once for all NT
// tokens; every token's arithmetic is the one-token arithmetic.
template <int NT>
FL_AVX512 void fp8_tile(const Fp8Weight& w, const QuantizedRows& xq, const uint16_t* xa_all, int i0, int n0, int nr,
                        int lead, float* y) {
  const Fp8Tables tb = fp8_tables();
  const int k = w.k, nb = k / 128;
  const uint8_t* ws = w.scales + std::size_t(n0 / 128) * nb;
  const uint64_t* table_blocks = w.table_blocks ? w.table_blocks->data() : nullptr;
  const uint8_t* next = w.codes + std::size_t(n0 + lead * T) * k;  // the lead tile's rows, contiguous
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  for (int b = 0; b < nb; ++b) {
    __m512i x[NT][4];
    for (int t = 0; t < NT; ++t)
      for (int p = 0; p < 4; ++p) x[t][p] = _mm512_loadu_si512(xa_all + std::size_t(i0 + t) * k + b * 128 + 32 * p);
    // Bit r: row n0 + r of this block takes the table decoder (all rows without a map).
    uint32_t table_rows = 0xFFFF;
    if (table_blocks) {
      const std::size_t pos = std::size_t(b) * w.n + n0, i = pos / 64, sh = pos % 64;
      table_rows = uint32_t((table_blocks[i] >> sh | (sh ? table_blocks[i + 1] << (64 - sh) : 0)) & 0xFFFF);
    }
    __m512 p[NT][T];
    for (int r = 0; r < T; ++r) {
      if (r >= nr) {
        for (int t = 0; t < NT; ++t) p[t][r] = _mm512_setzero_ps();
        continue;
      }
      __m512i wv[4];
      const uint8_t* c = w.codes + std::size_t(n0 + r) * k + b * 128;
      prefetch_l2(next + (std::size_t(b) * T + r) * 128, 2);
      if (!(table_rows >> r & 1)) {
        fp8_decode64_moves(c, wv);
        fp8_decode64_moves(c + 64, wv + 2);
#pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) p[t][r] = fp8_block(wv, x[t]);
      } else {
        fp8_decode64_table(c, tb, wv);
        fp8_decode64_table(c + 64, tb, wv + 2);
#pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) p[t][r] = _mm512_mul_ps(fp8_block(wv, x[t]), _mm512_set1_ps(kFp8TableToMoves));
      }
    }
    const float sw = e8m0_decode(ws[b]);
    for (int t = 0; t < NT; ++t) {
      const float f = xq.s[std::size_t(i0 + t) * nb + b] * sw;
      const __m512 part = tree16(p[t]);
      acc[t] = _mm512_add_ps(acc[t], _mm512_mul_ps(_mm512_add_ps(part, part), _mm512_set1_ps(f)));
    }
  }
  for (int t = 0; t < NT; ++t) store_rows(y + std::size_t(i0 + t) * w.n + n0, nr, bf16_round16(acc[t]));
}

// How many tiles ahead the kernels prefetch: at least 8 KB. A tile of short rows (K = 256 in
// FP8: 4 KB) is read faster than memory answers, so the next tile is too close; two tiles ahead
// measured 15% faster from memory (4096 x 256, one token), while leads of 16 KB or more, and
// fetching a thread's first tiles up front, measured slower.
int lead_tiles(std::size_t row_bytes) { return int(std::max<std::size_t>(1, 8192 / (T * row_bytes))); }

template <typename F>
void for_each_tile(int n, F&& f) {
  const int tiles = (n + T - 1) / T;
#pragma omp parallel for num_threads(kernel_threads(tiles)) schedule(static)
  for (int t = 0; t < tiles; ++t) f(t * T, std::min(T, n - t * T));
}

// Tokens 0 .. mt - 1, in the lanes of the token kernel.
void fp4_token_lanes(const QuantizedRows& x, int mt, const Fp4Weight& w, float* y) {
  const Fp4TokenAct a = fp4_token_prepare(x, mt);
  const int kp = w.k / 2, nb = w.k / 32, tiles = (w.n + T - 1) / T;
#pragma omp parallel num_threads(kernel_threads(tiles))
  {
    std::vector<uint32_t> wd(std::size_t(T) * kp);
    std::vector<float> sw(std::size_t(T) * nb), out(T * 16);
#pragma omp for schedule(static)
    for (int t = 0; t < tiles; ++t) {
      const int n0 = t * T, nr = std::min(T, w.n - n0);
      fp4_decode_pairs(w, n0, nr, wd.data(), sw.data());
      for (int g = 0; g < a.groups; ++g) {
        const uint32_t* xt = a.x.data() + std::size_t(g) * kp * 16;
        const float* sxs = a.sxs.data() + std::size_t(g) * nb * 16;
        for (int r0 = 0; r0 < nr; r0 += 4) {
          const uint32_t* wr[4];
          const float* sr[4];
          for (int r = 0; r < 4; ++r) {
            const int row = r0 + r < nr ? r0 + r : r0;
            wr[r] = wd.data() + std::size_t(row) * kp;
            sr[r] = sw.data() + std::size_t(row) * nb;
          }
          fp4_token_rows(wr, sr, nb, xt, sxs, a.chain.data() + std::size_t(g) * nb, out.data() + r0 * 16);
        }
        const int tokens = std::min(16, mt - g * 16);
        for (int tk = 0; tk < tokens; ++tk)
          for (int r = 0; r < nr; ++r) y[std::size_t(g * 16 + tk) * w.n + n0 + r] = out[r * 16 + tk];
      }
    }
  }
}

// Tokens i0 .. x.m - 1, row-lane: up to 4 tokens share each decoded chunk, more take several
// passes over the rows.
void fp4_row_lanes(const QuantizedRows& x, int i0, const Fp4Weight& w, float* y) {
  const Fp4Act a = fp4_prepare(x, i0);
  const int lead = lead_tiles(w.k / 2);
  for_each_tile(w.n, [&](int n0, int nr) {
    for (int i = i0; i < x.m; i += 4) {
      switch (std::min(4, x.m - i)) {
        case 1: fp4_tile<1>(w, a, i, n0, nr, lead, y); break;
        case 2: fp4_tile<2>(w, a, i, n0, nr, lead, y); break;
        case 3: fp4_tile<3>(w, a, i, n0, nr, lead, y); break;
        default: fp4_tile<4>(w, a, i, n0, nr, lead, y); break;
      }
    }
  });
}

}  // namespace

// A pass of the token kernel costs the same for 1 to 16 tokens, about what 12 tokens cost in the
// row-lane kernel (measured at 512 x 1024 and 2048 x 4096): whole groups of 16 and a remainder
// of 12 or more go to the token kernel, a smaller remainder to the row-lane kernel. Both give a
// token the same result, so the split never changes an output.
void fp4_avx512(const QuantizedRows& x, const Fp4Weight& w, float* y) {
  const int rem = x.m % 16, mt = x.m - (rem >= 12 ? 0 : rem);
  if (mt > 0) fp4_token_lanes(x, mt, w, y);
  if (mt < x.m) fp4_row_lanes(x, mt, w, y);
}

void fp8_avx512(const QuantizedRows& x, const Fp8Weight& w, float* y) {
  // Row-lane for every batch size: a block decoded once serves up to 8 tokens, which measured
  // faster than a tokens-in-lanes kernel at 8, 16 and 512 tokens.
  const std::vector<uint16_t> xa = fp8_prepare(x);
  const int lead = lead_tiles(w.k);
  for_each_tile(w.n, [&](int n0, int nr) {
    for (int i0 = 0; i0 < x.m; i0 += 8) {
      switch (std::min(8, x.m - i0)) {
        case 1: fp8_tile<1>(w, x, xa.data(), i0, n0, nr, lead, y); break;
        case 2: fp8_tile<2>(w, x, xa.data(), i0, n0, nr, lead, y); break;
        case 3: fp8_tile<3>(w, x, xa.data(), i0, n0, nr, lead, y); break;
        case 4: fp8_tile<4>(w, x, xa.data(), i0, n0, nr, lead, y); break;
        case 5: fp8_tile<5>(w, x, xa.data(), i0, n0, nr, lead, y); break;
        case 6: fp8_tile<6>(w, x, xa.data(), i0, n0, nr, lead, y); break;
        case 7: fp8_tile<7>(w, x, xa.data(), i0, n0, nr, lead, y); break;
        default: fp8_tile<8>(w, x, xa.data(), i0, n0, nr, lead, y); break;
      }
    }
  });
}

}  // namespace flashline::gemm_detail

#else
// Not an x86-64 GCC/Clang build: the dispatcher never selects these.
namespace flashline::gemm_detail {
void fp4_avx512(const QuantizedRows& x, const Fp4Weight& w, float* y) { fp4_portable(x, w, y); }
void fp8_avx512(const QuantizedRows& x, const Fp8Weight& w, float* y) { fp8_portable(x, w, y); }
}  // namespace flashline::gemm_detail
#endif
