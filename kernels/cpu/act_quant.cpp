// quantize_rows: act_quant per 128 inputs, vectorised and bit-identical to act_quant_fp8.
//
// The scalar definition (numerics.cpp) takes amax = max(max|x|, 1e-4), s = pow2_ceil(amax *
// fp32(1/448)), q = e4m3_round(clamp(x / s, -448, 448)) with frexp/nearbyint in double. Here the
// same values come from integer and fp32 operations that are exact or round the same way:
// - max|x| is the integer maximum of the sign-cleared bit patterns (non-negative finite floats
//   order like their bits); a block with a NaN or an infinity (bits >= 0x7F800000) takes the
//   scalar code, so its treatment of non-finite values is kept as it is;
// - pow2_ceil of the normal float p is p when its mantissa field is zero, otherwise the next
//   exponent; 1/s is then an exact power of two (s lies in [2^-22, 2^120]), so x * (1/s) is the
//   correctly rounded x / s, subnormal results included;
// - e4m3 rounding, nearest-even: for |v| >= 2^-6 (e4m3 normals) drop 20 mantissa bits with the
//   integer round-half-even add (a carry into the exponent is the correct next binade); below
//   2^-6 the grid is 2^-9, which fp32 addition of 2^14 (whose ulp is 2^-9) rounds to, and the
//   subtraction of 2^14 is exact. The sign is put back afterwards, so -0 and values that round
//   to zero keep their sign, as copysign does in the scalar code.
// One body written with 16-lane vector extensions, compiled for AVX-512, AVX2 and the baseline;
// every operation is an integer or IEEE operation, so the three paths give identical results.
#include <algorithm>
#include <cstring>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/threads.h"

namespace flashline {
namespace {

using F32x16 = float __attribute__((vector_size(64)));
using U32x16 = uint32_t __attribute__((vector_size(64)));

constexpr int kBlock = 128;

}  // namespace

#if defined(__x86_64__) && defined(__GNUC__)
namespace avx512_quant {
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl")
#include "kernels/cpu/act_quant_body.inc"
#pragma GCC pop_options
}  // namespace avx512_quant
namespace avx2_quant {
#pragma GCC push_options
#pragma GCC target("avx2")
#include "kernels/cpu/act_quant_body.inc"
#pragma GCC pop_options
}  // namespace avx2_quant
#endif
namespace portable_quant {
#include "kernels/cpu/act_quant_body.inc"
}  // namespace portable_quant

QuantizedRows quantize_rows(const float* x, int m, int k) {
  QuantizedRows r;
  r.m = m;
  r.k = k;
  r.q.resize(std::size_t(m) * k);
  r.s.resize(std::size_t(m) * (k / kBlock));
  void (*row)(const float*, int, float*, float*) = portable_quant::quantize_row;
#if defined(__x86_64__) && defined(__GNUC__)
  switch (active_isa()) {
    case Isa::Avx512: row = avx512_quant::quantize_row; break;
    case Isa::Avx2: row = avx2_quant::quantize_row; break;
    case Isa::Portable: break;
  }
#endif
  // A row is a few hundred nanoseconds of work: threads only pay off on large batches.
  const bool parallel = std::size_t(m) * k >= (std::size_t(1) << 16);
#pragma omp parallel for num_threads(kernel_threads()) schedule(static) if (parallel)
  for (int i = 0; i < m; ++i)
    row(x + std::size_t(i) * k, k, r.q.data() + std::size_t(i) * k, r.s.data() + std::size_t(i) * (k / kBlock));
  return r;
}

}  // namespace flashline
