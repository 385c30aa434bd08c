#pragma once
// Per-instruction-set bodies of the fast-mode GEMMs (gemm.cpp dispatches). Each takes the whole
// problem and parallelises over fixed tiles of output rows itself.
#include <cstdint>

#include "kernels/cpu/gemm.h"

namespace flashline::gemm_detail {

// Output rows per tile: a thread takes whole tiles, and no output element's arithmetic depends
// on the tile it falls in or on the thread count.
constexpr int kRowTile = 16;

// FP4/FP8: x rows must be finite (gemm.cpp hands rows with NaN or infinity to the exact path).
void fp4_avx512(const QuantizedRows& x, const Fp4Weight& w, float* y);
void fp8_avx512(const QuantizedRows& x, const Fp8Weight& w, float* y);
void bf16_avx512(const float* x, int m, int k, const uint16_t* w, int n, float* y);

void fp4_avx2(const QuantizedRows& x, const Fp4Weight& w, float* y);
void fp8_avx2(const QuantizedRows& x, const Fp8Weight& w, float* y);
void bf16_avx2(const float* x, int m, int k, const uint16_t* w, int n, float* y);

void fp4_portable(const QuantizedRows& x, const Fp4Weight& w, float* y);
void fp8_portable(const QuantizedRows& x, const Fp8Weight& w, float* y);
void bf16_portable(const float* x, int m, int k, const uint16_t* w, int n, float* y);

}  // namespace flashline::gemm_detail
