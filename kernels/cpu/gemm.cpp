#include "kernels/cpu/gemm.h"

#include <algorithm>
#include <cstring>

#include "kernels/cpu/block_dot.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/simd.h"

namespace flashline {
namespace {

// Float bits of a code placed so its exponent and mantissa land in the fp32 fields, times the
// power of two that re-biases the exponent: exact for every e4m3 / e2m1 value, subnormals
// included, and vectorisable (no table lookups).
inline float e4m3_value(uint8_t c) {
  return bits_to_float((uint32_t(c & 0x7F) << 20) | (uint32_t(c & 0x80) << 24)) * 0x1p120f;
}
inline float e2m1_value(uint32_t nibble) {
  return bits_to_float(((nibble & 7u) << 22) | ((nibble & 8u) << 28)) * 0x1p126f;
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

// fast mode: the power-of-two block scales are folded into the values (activation rows once
// per call, weight rows as they are unpacked), so a column is one fp32 dot product over the whole
// K in eight lanes; four activation rows share each weight load.
[[gnu::always_inline]] inline void dot_rows(const float* xs, int m, int k, const float* row, float* y, int n, int j) {
  int i = 0;
  for (; i + 4 <= m; i += 4) {
    const float* a = xs + std::size_t(i) * k;
    Lanes8 p0 = {}, p1 = {}, p2 = {}, p3 = {};
    for (int t = 0; t < k; t += 8) {
      const Lanes8 w = load8(row + t);
      p0 += load8(a + t) * w;
      p1 += load8(a + k + t) * w;
      p2 += load8(a + 2 * std::size_t(k) + t) * w;
      p3 += load8(a + 3 * std::size_t(k) + t) * w;
    }
    y[std::size_t(i) * n + j] = bf16_round(combine8(p0));
    y[std::size_t(i + 1) * n + j] = bf16_round(combine8(p1));
    y[std::size_t(i + 2) * n + j] = bf16_round(combine8(p2));
    y[std::size_t(i + 3) * n + j] = bf16_round(combine8(p3));
  }
  for (; i < m; ++i) {
    const float* a = xs + std::size_t(i) * k;
    Lanes8 p = {};
    for (int t = 0; t < k; t += 8) p += load8(a + t) * load8(row + t);
    y[std::size_t(i) * n + j] = bf16_round(combine8(p));
  }
}

// fast mode, each body compiled for AVX2 and the baseline.
// The weight row is unpacked (scales applied) into `row`, written so the compiler vectorises it,
// then consumed by every activation row.
FLASHLINE_SIMD_CLONES void fp8_column_fast(const float* xs, int m, const Fp8Weight& w, int j, float* row, float* y) {
  const int k = w.k, kb_count = k / 128;
  const uint8_t* c = w.codes + std::size_t(j) * k;
  const uint8_t* ws = w.scales + std::size_t(j / 128) * kb_count;
  for (int b = 0; b < kb_count; ++b) {
    const float sw = e8m0_decode(ws[b]);
    for (int i = 0; i < 128; ++i) row[b * 128 + i] = e4m3_value(c[b * 128 + i]) * sw;
  }
  dot_rows(xs, m, k, row, y, w.n, j);
}
// A 32-wide block is 16 bytes: their low nibbles are inputs 0..15 of the (reordered) block,
// their high nibbles inputs 16..31.
FLASHLINE_SIMD_CLONES void fp4_column_fast(const float* xs, int m, const Fp4Weight& w, int j, float* row, float* y) {
  const int k = w.k, nb = k / 32;
  const uint8_t* c = w.codes + std::size_t(j) * (k / 2);
  const uint8_t* ws = w.scales + std::size_t(j) * nb;
  for (int b = 0; b < nb; ++b) {
    const float sw = e8m0_decode(ws[b]);
    for (int i = 0; i < 16; ++i) {
      const uint32_t byte = c[b * 16 + i];
      row[b * 32 + i] = e2m1_value(byte) * sw;
      row[b * 32 + 16 + i] = e2m1_value(byte >> 4) * sw;
    }
  }
  dot_rows(xs, m, k, row, y, w.n, j);
}

// q * s per element (exact: s is a power of two), optionally with every 32-wide block split
// into its even then odd inputs to match the FP4 nibble order.
std::vector<float> scaled_rows(const QuantizedRows& x, bool fp4_order) {
  std::vector<float> out(x.q.size());
  const int kb = x.k / 128;
  for (int i = 0; i < x.m; ++i)
    for (int t = 0; t < x.k; ++t) {
      const std::size_t src = std::size_t(i) * x.k + t;
      std::size_t dst = src;
      if (fp4_order) {
        const int in_block = t % 32;
        dst = std::size_t(i) * x.k + (t - in_block) + (in_block % 2) * 16 + in_block / 2;
      }
      out[dst] = x.q[src] * x.s[std::size_t(i) * kb + t / 128];
    }
  return out;
}

FLASHLINE_SIMD_CLONES
void bf16_row_to_float(const uint16_t* w, int k, float* row) {
  for (int i = 0; i < k; ++i) row[i] = bf16_to_float(w[i]);
}

// fp32 GEMM column with a bf16 weight row, the same lane order as reduce.h's dot (k % 8 == 0).
FLASHLINE_SIMD_CLONES void bf16_column_fast(const float* x, int m, int k, const uint16_t* w, float* y, int n, int j) {
  for (int i = 0; i < m; ++i) {
    const float* a = x + std::size_t(i) * k;
    Lanes8 p = {};
    for (int t = 0; t < k; t += 8) p += load8(a + t) * bf16_lanes(load_u16x8(w + t));
    y[std::size_t(i) * n + j] = combine8(p);
  }
}

}  // namespace

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

void gemm_fp8(const QuantizedRows& x, const Fp8Weight& w, float* y, Numerics num) {
  const bool exact = num == Numerics::Exact;
  const std::vector<float> xs = exact ? std::vector<float>{} : scaled_rows(x, false);
#pragma omp parallel
  {
    std::vector<float> row(w.k);
#pragma omp for schedule(static)
    for (int j = 0; j < w.n; ++j) {
      if (exact)
        fp8_column_exact(x, w, j, row.data(), y);
      else
        fp8_column_fast(xs.data(), x.m, w, j, row.data(), y);
    }
  }
}

void gemm_fp4(const QuantizedRows& x, const Fp4Weight& w, float* y, Numerics num) {
  const bool exact = num == Numerics::Exact;
  std::vector<float> qp;
  if (exact) {
    qp.resize(x.q.size());
    for (std::size_t b = 0; b < qp.size(); b += 32)
      for (int i = 0; i < 16; ++i) {
        qp[b + i] = x.q[b + 2 * i];
        qp[b + 16 + i] = x.q[b + 2 * i + 1];
      }
  } else {
    qp = scaled_rows(x, true);
  }
#pragma omp parallel
  {
    std::vector<float> row(w.k);
#pragma omp for schedule(static)
    for (int j = 0; j < w.n; ++j) {
      if (exact)
        fp4_column_exact(x, qp.data(), w, j, row.data(), y);
      else
        fp4_column_fast(qp.data(), x.m, w, j, row.data(), y);
    }
  }
}

void gemm_f32(const float* x, int m, int k, const float* w, int n, float* y, Numerics num) {
#pragma omp parallel for schedule(static)
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) y[std::size_t(i) * n + j] = dot(x + std::size_t(i) * k, w + std::size_t(j) * k, k, num);
}

void gemm_f32(const float* x, int m, int k, const uint16_t* w, int n, float* y, Numerics num) {
  if (num == Numerics::Fast && k % 8 == 0) {
#pragma omp parallel for schedule(static)
    for (int j = 0; j < n; ++j) bf16_column_fast(x, m, k, w + std::size_t(j) * k, y, n, j);
    return;
  }
#pragma omp parallel
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
