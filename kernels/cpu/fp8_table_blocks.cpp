#include <cstddef>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/threads.h"

namespace flashline {

// An e4m3 code the bit-move decoder cannot take: a subnormal (exponent 0, mantissa not 0) would
// become a bf16 subnormal, which the dot instruction reads as zero, and NaN (0x7F) a finite value.
static bool table_code(uint8_t c) {
  const int v = c & 0x7F;
  return (v >= 1 && v <= 7) || v == 0x7F;
}

std::shared_ptr<const std::vector<uint64_t>> fp8_table_blocks(const Fp8Weight& w) {
  const int nb = w.k / 128;
  // One byte per (block, row) from the threads, then packed; one spare word, so that a reader
  // may take 16 bits from any position with two word reads.
  std::vector<uint8_t> flag(std::size_t(nb) * w.n);
#pragma omp parallel for num_threads(kernel_threads(w.n)) schedule(static)
  for (int r = 0; r < w.n; ++r)
    for (int b = 0; b < nb; ++b) {
      const uint8_t* c = w.codes + std::size_t(r) * w.k + std::size_t(b) * 128;
      bool any = false;
#pragma omp simd reduction(| : any)
      for (int i = 0; i < 128; ++i) any |= table_code(c[i]);
      flag[std::size_t(b) * w.n + r] = any;
    }
  auto map = std::make_shared<std::vector<uint64_t>>(flag.size() / 64 + 2, 0);
  for (std::size_t i = 0; i < flag.size(); ++i) (*map)[i / 64] |= uint64_t(flag[i]) << (i % 64);
  return map;
}

}  // namespace flashline
