#include "kernels/cpu/gemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/block_dot.h"
#include "kernels/cpu/gemm_kernels.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/simd.h"
#include "kernels/cpu/threads.h"

namespace flashline {
namespace {

// Float bits of a code placed so its exponent and mantissa land in the fp32 fields, times the
// power of two that re-biases the exponent: exact for every e2m1 value and vectorisable (no table
// lookups), as e4m3_value (numerics.h).
inline float e2m1_value(uint32_t nibble) {
  return bits_to_float(((nibble & 7u) << 22) | ((nibble & 8u) << 28)) * 0x1p126f;
}

// Whether no value is NaN or infinite (exponent field all ones), without an early exit so that
// the loop runs in vectors: a decode step asks it of every FP4 GEMM's activations.
FLASHLINE_ELEMENTWISE_CLONES bool all_finite(const float* v, int n) {
  uint32_t special = 0;
#pragma omp simd reduction(| : special)
  for (int i = 0; i < n; ++i) special |= uint32_t((float_to_bits(v[i]) & 0x7F800000u) == 0x7F800000u);
  return special == 0;
}

// exact mode, each body compiled for AVX2 and the baseline: per K block the exact block dot,
// scaled and added to an fp32 accumulator in K order, as the reference numerics define it.
// Output column j of an FP8 GEMM for all m rows. `row` is scratch of k floats.
FLASHLINE_SIMD_CLONES void fp8_column_exact(const QuantizedRows& x, const Fp8Weight& w, int j, float* row, float* y) {
  const int k = w.k, kb_count = k / 128, n = w.n;
  const uint8_t* c = w.codes + std::size_t(j) * k;
  for (int i = 0; i < k; ++i) row[i] = e4m3_value(c[i]);
  const uint8_t* ws = w.scales + std::size_t(j / 128) * kb_count;
  for (int i = 0; i < x.m; ++i) {
    const float* q = x.q.data() + std::size_t(i) * k;
    const float* sx = x.s.data() + std::size_t(i) * kb_count;
    float acc = 0.0f;
    for (int b = 0; b < kb_count; ++b) {
      const float part = block_dot_exact<128>(q + b * 128, row + b * 128);
      acc += part * (sx[b] * e8m0_decode(ws[b]));
    }
    y[std::size_t(i) * n + j] = bf16_round(acc);
  }
}

// Output column j of an FP4 GEMM for all m rows. `qp` holds the activations with each 32-wide
// block split into its even then its odd inputs, matching the packed bytes' low then high
// nibbles, so the weight row unpacks into contiguous halves. `row` is scratch of k floats.
FLASHLINE_SIMD_CLONES void fp4_column_exact(const QuantizedRows& x, const float* qp, const Fp4Weight& w, int j,
                                            float* row, float* y) {
  const int k = w.k, n = w.n, nb = k / 32;
  const uint8_t* c = w.codes + std::size_t(j) * (k / 2);
  const uint8_t* ws = w.scales + std::size_t(j) * nb;
  for (int b = 0; b < nb; ++b)
    for (int i = 0; i < 16; ++i) {
      const uint32_t byte = c[b * 16 + i];
      row[b * 32 + i] = e2m1_value(byte);
      row[b * 32 + 16 + i] = e2m1_value(byte >> 4);
    }
  for (int i = 0; i < x.m; ++i) {
    const float* q = qp + std::size_t(i) * k;
    const float* sx = x.s.data() + std::size_t(i) * (k / 128);
    float acc = 0.0f;
    for (int b = 0; b < nb; ++b) {
      const float part = block_dot_exact<32>(q + b * 32, row + b * 32);
      acc += (part * sx[b / 4]) * e8m0_decode(ws[b]);
    }
    y[std::size_t(i) * n + j] = bf16_round(acc);
  }
}

FLASHLINE_SIMD_CLONES
void bf16_row_to_float(const uint16_t* w, int k, float* row) {
  for (int i = 0; i < k; ++i) row[i] = bf16_to_float(w[i]);
}

// Fast-mode bodies by instruction-set level (gemm_kernels.h).
void fp4_fast(const QuantizedRows& x, const Fp4Weight& w, float* y) {
  switch (active_isa()) {
    case Isa::Avx512: return gemm_detail::fp4_avx512(x, w, y);
    case Isa::Avx2: return gemm_detail::fp4_avx2(x, w, y);
    case Isa::Portable: return gemm_detail::fp4_portable(x, w, y);
  }
}
void fp8_fast(const QuantizedRows& x, const Fp8Weight& w, float* y) {
  switch (active_isa()) {
    case Isa::Avx512: return gemm_detail::fp8_avx512(x, w, y);
    case Isa::Avx2: return gemm_detail::fp8_avx2(x, w, y);
    case Isa::Portable: return gemm_detail::fp8_portable(x, w, y);
  }
}
void bf16_fast(const float* x, int m, int k, const uint16_t* w, int n, float* y) {
  switch (active_isa()) {
    case Isa::Avx512: return gemm_detail::bf16_avx512(x, m, k, w, n, y);
    case Isa::Avx2: return gemm_detail::bf16_avx2(x, m, k, w, n, y);
    case Isa::Portable: return gemm_detail::bf16_portable(x, m, k, w, n, y);
  }
}

// Rows `rows` of x as their own QuantizedRows.
QuantizedRows take_rows(const QuantizedRows& x, const std::vector<int>& rows) {
  QuantizedRows r;
  r.m = int(rows.size());
  r.k = x.k;
  const int kb = x.k / 128;
  r.q.resize(std::size_t(r.m) * x.k);
  r.s.resize(std::size_t(r.m) * kb);
  for (int i = 0; i < r.m; ++i) {
    std::copy_n(x.q.begin() + std::size_t(rows[i]) * x.k, x.k, r.q.begin() + std::size_t(i) * x.k);
    std::copy_n(x.s.begin() + std::size_t(rows[i]) * kb, kb, r.s.begin() + std::size_t(i) * kb);
  }
  return r;
}

}  // namespace

void gemm_fp8(const QuantizedRows& x, const Fp8Weight& w, float* y, Numerics num) {
  if (num == Numerics::Fast) return fp8_fast(x, w, y);
#pragma omp parallel num_threads(kernel_threads())
  {
    std::vector<float> row(w.k);
#pragma omp for schedule(static)
    for (int j = 0; j < w.n; ++j) fp8_column_exact(x, w, j, row.data(), y);
  }
}

void gemm_fp4(const QuantizedRows& x, const Fp4Weight& w, float* y, Numerics num) {
  if (num == Numerics::Fast) {
    // The fast FP4 kernels compute block dots in integers, which a NaN activation (from a
    // non-finite input) cannot pass through; such rows take the exact path, whose result the fast
    // path equals bit for bit anyway.
    std::vector<int> finite, other;
    for (int i = 0; i < x.m; ++i) (all_finite(x.q.data() + std::size_t(i) * x.k, x.k) ? finite : other).push_back(i);
    if (other.empty()) return fp4_fast(x, w, y);
    std::vector<float> part;
    for (int pass = 0; pass < 2; ++pass) {
      const std::vector<int>& rows = pass ? other : finite;
      if (rows.empty()) continue;
      part.assign(rows.size() * std::size_t(w.n), 0.0f);
      const QuantizedRows sub = take_rows(x, rows);
      if (pass)
        gemm_fp4(sub, w, part.data(), Numerics::Exact);
      else
        fp4_fast(sub, w, part.data());
      for (std::size_t i = 0; i < rows.size(); ++i)
        std::copy_n(part.begin() + i * w.n, w.n, y + std::size_t(rows[i]) * w.n);
    }
    return;
  }
  std::vector<float> qp(x.q.size());
  for (std::size_t b = 0; b < qp.size(); b += 32)
    for (int i = 0; i < 16; ++i) {
      qp[b + i] = x.q[b + 2 * i];
      qp[b + 16 + i] = x.q[b + 2 * i + 1];
    }
#pragma omp parallel num_threads(kernel_threads())
  {
    std::vector<float> row(w.k);
#pragma omp for schedule(static)
    for (int j = 0; j < w.n; ++j) fp4_column_exact(x, qp.data(), w, j, row.data(), y);
  }
}

void gemm_f32(const float* x, int m, int k, const float* w, int n, float* y, Numerics num) {
  if (num == Numerics::Fast) {
    // Four weight rows per pass over an activation row; every element is dot()'s fast result.
    const int groups = (n + 3) / 4;
#pragma omp parallel for num_threads(kernel_threads(groups)) schedule(static)
    for (int g = 0; g < groups; ++g) {
      const int j0 = 4 * g, nr = std::min(4, n - j0);
      const float* wr[4];
      for (int r = 0; r < 4; ++r) wr[r] = w + std::size_t(j0 + std::min(r, nr - 1)) * k;
      float d[4];
      for (int i = 0; i < m; ++i) {
        dot4_fast(x + std::size_t(i) * k, wr[0], wr[1], wr[2], wr[3], k, d);
        for (int r = 0; r < nr; ++r) y[std::size_t(i) * n + j0 + r] = d[r];
      }
    }
    return;
  }
#pragma omp parallel for num_threads(kernel_threads()) schedule(static)
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) y[std::size_t(i) * n + j] = dot(x + std::size_t(i) * k, w + std::size_t(j) * k, k, num);
}

void gemm_f32(const float* x, int m, int k, const uint16_t* w, int n, float* y, Numerics num) {
  if (num == Numerics::Fast) return bf16_fast(x, m, k, w, n, y);
#pragma omp parallel num_threads(kernel_threads())
  {
    std::vector<float> row(k);
#pragma omp for schedule(static)
    for (int j = 0; j < n; ++j) {
      bf16_row_to_float(w + std::size_t(j) * k, k, row.data());
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
