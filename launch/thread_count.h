#pragma once
// How many compute threads a rank runs, and applying that count. Every rank owns one compute
// pool; its size comes from --threads, else from the plan (the cores of the rank's host divided
// by the plan's ranks on that host), else from the cores of the machine, so a plain mpirun of a
// plan never oversubscribes a host and no OpenMP default (one thread per core in every rank)
// applies.
#include <string>

#include "partition/plan.h"

namespace flashline {

// CPUs as seen by this process.
struct HostCpus {
  int cores = 1;    // logical CPUs of the machine
  int allowed = 0;  // CPUs this process may run on (its affinity mask, e.g. an mpirun binding); 0: unknown
};
HostCpus this_host_cpus();

// flag_threads > 0: that many (the user's word, even if it oversubscribes). Otherwise, with a
// plan: the rank's node's `cpus` when the plan gives it, else the machine's cores (the rank runs
// on that host), divided by the plan's ranks on the rank's host, at least 1. Without a plan: the
// machine's cores. Either way at most the CPUs the process is bound to. Throws
// std::invalid_argument when world_rank is not a rank of the plan.
int compute_threads(int flag_threads, const Plan* plan, int world_rank);
int compute_threads(int flag_threads, const Plan* plan, int world_rank, const HostCpus& here);

// The thread count the user asked for: --threads when given (> 0), else OMP_NUM_THREADS when the
// environment sets it to a positive number (its first value, as OpenMP reads a list), else 0
// (decide from the plan or the machine). OpenMP's own default, one thread per core in every
// process, is never used: under a plain mpirun it oversubscribes every host.
int requested_threads(int flag_threads, const char* omp_num_threads_env);

// Threads of one rank as the launcher sees it before any rank starts: the node's `cpus`, or
// `local_cores` where the rank's host is the launching machine (a localhost plan), divided by
// the plan's ranks on that host; 0 when unknown (another host whose CPU count the plan lacks).
int plan_threads_of_rank(const Plan& plan, int world_rank, int local_cores);

// Sizes the rank's compute pool: every kernel region (kernels/cpu/threads.h) uses n threads
// whichever thread calls it, and OpenMP regions elsewhere follow the calling thread's setting,
// set here too (call it on the thread that runs the model); dynamic adjustment and nested
// parallelism are off, so no region starts more than n threads.
//
// The wait policy (how long idle pool threads spin before they sleep) cannot be changed here:
// libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT from the environment once, when the process
// starts; set them in the rank's environment (mpirun -x) to change them. The default (spin a
// while, then sleep; libgomp shortens the spin by itself when a process has more threads than
// CPUs) suits one pool per set of cores, which is what the counts above give: where a plan puts
// more ranks on a host than it has cores, each rank gets one thread, so no pool thread spins.
void apply_compute_threads(int n);

}  // namespace flashline
