// npy_equal A.npy B.npy [--rows FIRST:COUNT:BFIRST]: exit 0 when the arrays have the same dtype and
// every element is bit-identical (NaNs included), 1 otherwise with the first difference. --rows
// compares COUNT rows of A starting at FIRST with B's rows from BFIRST (e.g. a golden that
// starts one step later).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>

#include <cstring>
#include <string>

#include "launch/npy_file.h"

using flashline::NpyArray;

int main(int argc, char** argv) {
  if (argc != 3 && argc != 5) {
    fmt::print(stderr, "usage: npy_equal A.npy B.npy [--rows FIRST:COUNT:BFIRST]\n");
    return 2;
  }
  try {
    const NpyArray a = flashline::read_npy(argv[1]), b = flashline::read_npy(argv[2]);
    if (a.descr != b.descr) {
      fmt::print(stderr, "{} is {}, {} is {}\n", argv[1], a.descr, argv[2], b.descr);
      return 1;
    }
    const bool f = a.descr == "<f4";
    const std::size_t width = a.shape.size() > 1 ? std::size_t(a.elements() / a.shape[0]) : 1;
    std::size_t a0 = 0, b0 = 0, n = std::size_t(a.elements());
    if (argc == 5) {
      long first = 0, count = 0, bfirst = 0;
      if (std::sscanf(argv[4], "%ld:%ld:%ld", &first, &count, &bfirst) != 3) return 2;
      a0 = first * width, b0 = bfirst * width, n = count * width;
    } else if (a.shape != b.shape) {
      fmt::print(stderr, "shapes differ: [{}] vs [{}]\n", fmt::join(a.shape, ","), fmt::join(b.shape, ","));
      return 1;
    }
    const std::size_t asz = f ? a.f32.size() : a.i32.size(), bsz = f ? b.f32.size() : b.i32.size();
    if (a0 + n > asz || b0 + n > bsz) {
      fmt::print(stderr, "row range outside the arrays\n");
      return 1;
    }
    std::size_t diffs = 0, first_diff = 0;
    for (std::size_t i = 0; i < n; ++i) {
      uint32_t x, y;
      if (f) {
        std::memcpy(&x, &a.f32[a0 + i], 4), std::memcpy(&y, &b.f32[b0 + i], 4);
      } else {
        x = uint32_t(a.i32[a0 + i]), y = uint32_t(b.i32[b0 + i]);
      }
      if (x != y && diffs++ == 0) first_diff = i;
    }
    if (diffs == 0) return 0;
    fmt::print(stderr, "{} of {} elements differ; first at {} (row {}): {} vs {}\n", diffs, n, first_diff,
               first_diff / width, f ? a.f32[a0 + first_diff] : a.i32[a0 + first_diff],
               f ? b.f32[b0 + first_diff] : b.i32[b0 + first_diff]);
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "npy_equal: {}\n", e.what());
    return 2;
  }
}
