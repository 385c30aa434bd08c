#pragma once
// Matrix products y[m, n] = sum_k x[m, k] * W[n, k] for the weight formats of the release.
// Every output element is computed by one thread over the full K in a fixed order, so results
// do not depend on M (batch composition) or the thread count.
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/cpu/numerics.h"

namespace flashline {

// e4m3 weight [n, k] with UE8M0 scales per 128x128 block ([ceil(n/128), k/128]).
struct Fp8Weight {
  const uint8_t* codes = nullptr;
  const uint8_t* scales = nullptr;
  int n = 0, k = 0;
  // Optional map from fp8_table_blocks(): bit `block * n + row` is set where that row's 128 codes
  // of the block hold an e4m3 subnormal or NaN. The fast kernel decodes the other blocks with bit
  // moves that such codes would defeat, and these with a table. Without a map every block takes
  // the table (the same results, more instructions).
  std::shared_ptr<const std::vector<uint64_t>> table_blocks;

  Fp8Weight() = default;
  Fp8Weight(const uint8_t* codes_, const uint8_t* scales_, int n_, int k_,
            std::shared_ptr<const std::vector<uint64_t>> table_blocks_ = nullptr)
      : codes(codes_), scales(scales_), n(n_), k(k_), table_blocks(std::move(table_blocks_)) {}
};
// The table_blocks map of w's codes (one threaded pass over them; for weights used many times).
std::shared_ptr<const std::vector<uint64_t>> fp8_table_blocks(const Fp8Weight& w);

// e2m1 weight [n, k], two codes per byte (low nibble = even column), UE8M0 scale per 32
// inputs of a row ([n, k/32]).
struct Fp4Weight {
  const uint8_t* codes = nullptr;
  const uint8_t* scales = nullptr;
  int n = 0, k = 0;
};

// act_quant of a row-major [m, k] activation (k % 128 == 0): e4m3-grid values and one
// power-of-two scale per 128 inputs.
struct QuantizedRows {
  int m = 0, k = 0;
  std::vector<float> q;  // [m, k]
  std::vector<float> s;  // [m, k/128]
};
QuantizedRows quantize_rows(const float* x, int m, int k);

// FP8 GEMM: per 128-wide K block the block dot (exact) rounded to fp32, times s_x * s_w,
// added to an fp32 accumulator in K order; y = bf16(acc).
void gemm_fp8(const QuantizedRows& x, const Fp8Weight& w, float* y, Numerics num);
// FP4 GEMM: per 32-wide K block the block dot rounded to fp32, times s_x[b/4] then s_w[n, b],
// fp32 accumulation in K order; y = bf16(acc).
void gemm_fp4(const QuantizedRows& x, const Fp4Weight& w, float* y, Numerics num);
// fp32 GEMM with fp32 weights (hc mixes) or bf16 weights (gate, compressor, head, indexer
// weights_proj). The result is fp32; bf16 GEMMs round it afterwards.
void gemm_f32(const float* x, int m, int k, const float* w, int n, float* y, Numerics num);
void gemm_f32(const float* x, int m, int k, const uint16_t* w_bf16, int n, float* y, Numerics num);

// Dequantised rows of an FP8 weight (value x block scale), e.g. for wo_a which is used as a
// bf16 weight.
std::vector<float> dequantize_fp8(const Fp8Weight& w);

}  // namespace flashline
