#include "launch/thread_count.h"

#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "kernels/cpu/threads.h"

namespace flashline {
namespace {

const RankPlacement& placement(const Plan& plan, int world_rank) {
  if (world_rank < 0 || world_rank >= plan.world_size())
    throw std::invalid_argument("rank " + std::to_string(world_rank) + " is not in the plan (" +
                                std::to_string(plan.world_size()) + " ranks)");
  return plan.ranks[std::size_t(world_rank)];
}

int ranks_on_host(const Plan& plan, const std::string& host) {
  return int(std::count_if(plan.ranks.begin(), plan.ranks.end(), [&](const RankPlacement& r) { return r.host == host; }));
}

int node_cpus(const Plan& plan, const RankPlacement& r) {
  for (const auto& n : plan.nodes)
    if (n.name == r.node) return n.cpus;
  return 0;
}

bool is_local(const Plan& plan, const RankPlacement& r) {
  return plan.localhost || r.host == "localhost" || r.host == "127.0.0.1" || r.host == "::1";
}

}  // namespace

HostCpus this_host_cpus() {
  HostCpus h;
  h.cores = int(std::max(1u, std::thread::hardware_concurrency()));
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) h.allowed = CPU_COUNT(&set);
  return h;
}

int requested_threads(int flag_threads, const char* env) {
  if (flag_threads > 0) return flag_threads;
  if (!env) return 0;
  int n = 0;
  for (const char* c = env; *c >= '0' && *c <= '9'; ++c) {
    n = n * 10 + (*c - '0');
    if (n > 1 << 16) return 0;  // not a thread count
  }
  return n;
}

int compute_threads(int flag_threads, const Plan* plan, int world_rank) {
  return compute_threads(flag_threads, plan, world_rank, this_host_cpus());
}

int compute_threads(int flag_threads, const Plan* plan, int world_rank, const HostCpus& here) {
  if (flag_threads > 0) return flag_threads;
  int n = std::max(1, here.cores);
  if (plan) {
    const RankPlacement& r = placement(*plan, world_rank);
    const int cpus = node_cpus(*plan, r);
    n = std::max(1, (cpus > 0 ? cpus : here.cores) / std::max(1, ranks_on_host(*plan, r.host)));
  }
  if (here.allowed > 0) n = std::min(n, here.allowed);
  return n;
}

int plan_threads_of_rank(const Plan& plan, int world_rank, int local_cores) {
  const RankPlacement& r = placement(plan, world_rank);
  int cpus = node_cpus(plan, r);
  if (cpus <= 0 && is_local(plan, r)) cpus = local_cores;
  if (cpus <= 0) return 0;
  return std::max(1, cpus / std::max(1, ranks_on_host(plan, r.host)));
}

void apply_compute_threads(int n) {
  n = std::max(1, n);
  omp_set_dynamic(0);
  omp_set_max_active_levels(1);
  omp_set_num_threads(n);
  set_kernel_threads(n);
}

}  // namespace flashline
