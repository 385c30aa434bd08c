#include "kernels/cpu/gemm.h"

#include <algorithm>

#include "kernels/cpu/block_dot.h"
#include "kernels/cpu/reduce.h"

namespace flashline {

QuantizedRows quantize_rows(const float* x, int m, int k) {
  QuantizedRows r;
  r.m = m;
  r.k = k;
  r.q.resize(std::size_t(m) * k);
  r.s.resize(std::size_t(m) * (k / 128));
#pragma omp parallel for schedule(static)
  for (int i = 0; i < m; ++i)
    act_quant_fp8({x + std::size_t(i) * k, std::size_t(k)}, 128, {r.q.data() + std::size_t(i) * k, std::size_t(k)},
                  {r.s.data() + std::size_t(i) * (k / 128), std::size_t(k / 128)});
  return r;
}

namespace {

// Two e2m1 values per packed byte (low nibble first), for unpacking a byte at a time.
struct Fp4PairTable {
  float v[256][2];
  Fp4PairTable() {
    for (int b = 0; b < 256; ++b) {
      v[b][0] = kE2M1Table[b & 0xF];
      v[b][1] = kE2M1Table[b >> 4];
    }
  }
};
const Fp4PairTable kFp4Pairs;

template <bool Exact>
void gemm_fp8_impl(const QuantizedRows& x, const Fp8Weight& w, float* y) {
  const int k = w.k, kb_count = k / 128, n = w.n, m = x.m;
  const float* table = e4m3_table();
#pragma omp parallel
  {
    std::vector<float> row(k), ws(kb_count);
#pragma omp for schedule(static)
    for (int j = 0; j < n; ++j) {
      const uint8_t* c = w.codes + std::size_t(j) * k;
      for (int i = 0; i < k; ++i) row[i] = table[c[i]];
      for (int b = 0; b < kb_count; ++b) ws[b] = e8m0_decode(w.scales[std::size_t(j / 128) * kb_count + b]);
      for (int i = 0; i < m; ++i) {
        const float* q = x.q.data() + std::size_t(i) * k;
        const float* sx = x.s.data() + std::size_t(i) * kb_count;
        float acc = 0.0f;
        for (int b = 0; b < kb_count; ++b) {
          const float part = Exact ? block_dot_exact<128>(q + b * 128, row.data() + b * 128)
                                   : block_dot_fast<128>(q + b * 128, row.data() + b * 128);
          acc += part * (sx[b] * ws[b]);
        }
        y[std::size_t(i) * n + j] = bf16_round(acc);
      }
    }
  }
}

template <bool Exact>
void gemm_fp4_impl(const QuantizedRows& x, const Fp4Weight& w, float* y) {
  const int k = w.k, n = w.n, m = x.m, nb = k / 32;
#pragma omp parallel
  {
    std::vector<float> acc(m);
#pragma omp for schedule(static)
    for (int j = 0; j < n; ++j) {
      const uint8_t* c = w.codes + std::size_t(j) * (k / 2);
      const uint8_t* ws = w.scales + std::size_t(j) * nb;
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int b = 0; b < nb; ++b) {
        alignas(32) float blk[32];
        for (int i = 0; i < 16; ++i) {
          blk[2 * i] = kFp4Pairs.v[c[b * 16 + i]][0];
          blk[2 * i + 1] = kFp4Pairs.v[c[b * 16 + i]][1];
        }
        const float sw = e8m0_decode(ws[b]);
        for (int i = 0; i < m; ++i) {
          const float* q = x.q.data() + std::size_t(i) * k + b * 32;
          const float part = Exact ? block_dot_exact<32>(q, blk) : block_dot_fast<32>(q, blk);
          acc[i] += (part * x.s[std::size_t(i) * (k / 128) + b / 4]) * sw;
        }
      }
      for (int i = 0; i < m; ++i) y[std::size_t(i) * n + j] = bf16_round(acc[i]);
    }
  }
}

}  // namespace

void gemm_fp8(const QuantizedRows& x, const Fp8Weight& w, float* y, Numerics num) {
  num == Numerics::Exact ? gemm_fp8_impl<true>(x, w, y) : gemm_fp8_impl<false>(x, w, y);
}

void gemm_fp4(const QuantizedRows& x, const Fp4Weight& w, float* y, Numerics num) {
  num == Numerics::Exact ? gemm_fp4_impl<true>(x, w, y) : gemm_fp4_impl<false>(x, w, y);
}

void gemm_f32(const float* x, int m, int k, const float* w, int n, float* y, Numerics num) {
#pragma omp parallel for schedule(static)
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) y[std::size_t(i) * n + j] = dot(x + std::size_t(i) * k, w + std::size_t(j) * k, k, num);
}

void gemm_f32(const float* x, int m, int k, const uint16_t* w, int n, float* y, Numerics num) {
#pragma omp parallel
  {
    std::vector<float> row(k);
#pragma omp for schedule(static)
    for (int j = 0; j < n; ++j) {
      for (int i = 0; i < k; ++i) row[i] = bf16_to_float(w[std::size_t(j) * k + i]);
      for (int i = 0; i < m; ++i) y[std::size_t(i) * n + j] = dot(x + std::size_t(i) * k, row.data(), k, num);
    }
  }
}

std::vector<float> dequantize_fp8(const Fp8Weight& w) {
  std::vector<float> out(std::size_t(w.n) * w.k);
  const int kb_count = (w.k + 127) / 128;
  const float* table = e4m3_table();
  for (int j = 0; j < w.n; ++j)
    for (int i = 0; i < w.k; ++i)
      out[std::size_t(j) * w.k + i] =
          table[w.codes[std::size_t(j) * w.k + i]] * e8m0_decode(w.scales[std::size_t(j / 128) * kb_count + i / 128]);
  return out;
}

}  // namespace flashline
