#pragma once
#include "kernels/cpu/numerics.h"

namespace flashline {

// Normalised Walsh-Hadamard transform of x[0..n) in place (n a power of two): the transform of
// the bf16 input (exact in double in exact mode, fp32 butterflies in fast mode), times
// fp32(n^-0.5), rounded once to bf16.
void hadamard_bf16(float* x, int n, Numerics num);

}  // namespace flashline
