#pragma once
// Threads of the kernels' parallel regions. A rank sizes its compute pool once
// (launch/thread_count.h: --threads, else the plan, else the machine) and every kernel region
// uses that many threads, whichever thread calls the kernel. Until a count is set, regions
// follow OpenMP's setting for the calling thread (tests and benchmarks use omp_set_num_threads).
// The pool itself is OpenMP's: its threads persist between regions, so a region costs a wake-up,
// not a thread start.
namespace flashline {

// n > 0: every kernel region uses n threads; n <= 0: back to OpenMP's setting.
void set_kernel_threads(int n);
// The thread count of the next kernel region (always >= 1); 1 inside a parallel region, where the
// caller already spreads its work (independent experts) over the pool.
int kernel_threads();
// The same, for a region of `items` independent pieces of work: no more threads than pieces, so a
// decode step's one-row regions run inline instead of waking the pool for nothing.
int kernel_threads(int items);

}  // namespace flashline
