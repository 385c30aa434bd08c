#include "kernels/cpu/threads.h"

#include <omp.h>

#include <algorithm>
#include <atomic>

namespace flashline {
namespace {
std::atomic<int> g_threads{0};
}  // namespace

void set_kernel_threads(int n) { g_threads.store(n > 0 ? n : 0, std::memory_order_relaxed); }

int kernel_threads() {
  if (omp_in_parallel()) return 1;  // called from a region that already spreads work (experts)
  const int n = g_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : omp_get_max_threads();
}

int kernel_threads(int items) { return std::max(1, std::min(kernel_threads(), items)); }

}  // namespace flashline
