// A rank's compute thread count: --threads, else the plan (node cpus or the machine's cores over
// the plan's ranks on the host), else the machine, never above the CPUs the process is bound
// to; what the launcher passes on; and that applying a count reaches kernels called from any
// thread.
#include "launch/thread_count.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <stdexcept>
#include <thread>

#include "kernels/cpu/threads.h"
#include "launch/mpirun_command.h"

namespace flashline {
namespace {

// ranks_per_node[i] ranks on node i ("node<i>", host "host<i>" or "localhost"), cpus[i] each.
Plan make_plan(const std::vector<int>& ranks_per_node, const std::vector<int>& cpus, bool localhost = false) {
  Plan p;
  p.localhost = localhost;
  for (std::size_t i = 0; i < ranks_per_node.size(); ++i) {
    const std::string host = localhost ? "localhost" : "host" + std::to_string(i);
    p.nodes.push_back({"node" + std::to_string(i), host, ranks_per_node[i], cpus[i]});
    for (int j = 0; j < ranks_per_node[i]; ++j)
      p.ranks.push_back({p.world_size(), 0, p.world_size(), "node" + std::to_string(i), host, "cpu:0"});
  }
  return p;
}

TEST(ComputeThreads, FlagWins) {
  const Plan p = make_plan({4}, {8});
  EXPECT_EQ(compute_threads(3, &p, 0, {16, 16}), 3);
  EXPECT_EQ(compute_threads(64, nullptr, 0, {16, 2}), 64);  // the user's word, even above the cores
}

TEST(ComputeThreads, WithoutPlanTheMachine) {
  EXPECT_EQ(compute_threads(0, nullptr, 0, {16, 0}), 16);
  EXPECT_EQ(compute_threads(0, nullptr, 0, {16, 16}), 16);
  EXPECT_EQ(compute_threads(0, nullptr, 0, {16, 4}), 4);  // bound to 4 CPUs (taskset, mpirun binding)
}

TEST(ComputeThreads, PlanCpusOverRanksOnTheHost) {
  const Plan p = make_plan({8, 4, 3}, {112, 64, 0});
  for (int r = 0; r < 8; ++r) EXPECT_EQ(compute_threads(0, &p, r, {2, 0}), 14) << r;  // plan cpus, not this machine
  for (int r = 8; r < 12; ++r) EXPECT_EQ(compute_threads(0, &p, r, {2, 0}), 16) << r;
  // node2 has no cpus in the plan: this machine's cores over the 3 ranks on its host
  for (int r = 12; r < 15; ++r) EXPECT_EQ(compute_threads(0, &p, r, {32, 0}), 10) << r;
  EXPECT_EQ(compute_threads(0, &p, 0, {2, 7}), 7);  // never above the CPUs the rank is bound to
}

TEST(ComputeThreads, NeverOversubscribesAHost) {
  for (int ranks : {1, 2, 3, 4, 5, 8, 16, 40})
    for (int cores : {1, 2, 16, 64}) {
      const Plan p = make_plan({ranks}, {0}, /*localhost=*/true);
      int total = 0;
      for (int r = 0; r < ranks; ++r) {
        const int t = compute_threads(0, &p, r, {cores, 0});
        EXPECT_GE(t, 1);
        total += t;
      }
      EXPECT_LE(total, std::max(cores, ranks)) << ranks << " ranks on " << cores << " cores";
      if (ranks <= cores) {
        EXPECT_GE(total, cores - ranks + 1) << "cores left idle";
      }
    }
}

TEST(ComputeThreads, RankOutsideThePlanIsAnError) {
  const Plan p = make_plan({2}, {4});
  EXPECT_THROW(compute_threads(0, &p, 2, {4, 0}), std::invalid_argument);
  EXPECT_THROW(compute_threads(0, &p, -1, {4, 0}), std::invalid_argument);
  EXPECT_EQ(compute_threads(2, &p, 7, {4, 0}), 2);  // --threads needs no plan lookup
}

TEST(ComputeThreads, LauncherCountsAndEnvironment) {
  const Plan remote = make_plan({2, 2}, {0, 0});
  EXPECT_EQ(plan_threads_of_rank(remote, 0, 16), 0);  // another host, CPU count unknown
  const Plan local = make_plan({4}, {0}, true);
  EXPECT_EQ(plan_threads_of_rank(local, 3, 16), 4);
  const Plan known = make_plan({2, 4}, {16, 16});
  EXPECT_EQ(plan_threads_of_rank(known, 0, 2), 8);
  EXPECT_EQ(plan_threads_of_rank(known, 5, 2), 4);

  // A localhost plan without cpus: the launcher passes this machine's cores over the ranks, so
  // ranks that do not size their own pool do not each take every core.
  LaunchOptions o;
  o.plan_path = "p.yaml";
  o.model_dir = "/m";
  o.local_cores = 12;
  EXPECT_NE(build_mpirun_command(local, o).shell_line().find("-x OMP_NUM_THREADS=3 "), std::string::npos);
  // Heterogeneous nodes: the smallest count (the environment variable is the same for all ranks).
  const std::string line = build_mpirun_command(known, o).shell_line();
  EXPECT_NE(line.find("-x OMP_NUM_THREADS=4 "), std::string::npos) << line;
  // Nothing known: no variable; each rank counts its own host's cores.
  EXPECT_EQ(build_mpirun_command(remote, o).shell_line().find("OMP_NUM_THREADS"), std::string::npos);
}

TEST(ComputeThreads, ApplyReachesKernelsOnEveryThread) {
  const int before = omp_get_max_threads();
  apply_compute_threads(3);
  EXPECT_EQ(kernel_threads(), 3);
  EXPECT_EQ(omp_get_max_threads(), 3);
  int seen = 0;
  std::thread([&] { seen = kernel_threads(); }).join();  // a thread that never called apply
  EXPECT_EQ(seen, 3);
  int team = 0;
#pragma omp parallel num_threads(kernel_threads())
  {
#pragma omp single
    team = omp_get_num_threads();
  }
  EXPECT_EQ(team, 3);
  apply_compute_threads(0);  // clamped to one thread
  EXPECT_EQ(kernel_threads(), 1);
  set_kernel_threads(0);
  omp_set_num_threads(before);
  EXPECT_EQ(kernel_threads(), before);
}

// --threads wins; an OMP_NUM_THREADS the user set comes next (its first value); anything else
// leaves the choice to the plan or the machine, never to OpenMP's one-thread-per-core default.
TEST(ComputeThreads, RequestedThreads) {
  EXPECT_EQ(requested_threads(3, "8"), 3);
  EXPECT_EQ(requested_threads(0, "8"), 8);
  EXPECT_EQ(requested_threads(0, "4,2"), 4);
  EXPECT_EQ(requested_threads(0, nullptr), 0);
  EXPECT_EQ(requested_threads(0, ""), 0);
  EXPECT_EQ(requested_threads(0, "0"), 0);
  EXPECT_EQ(requested_threads(0, "-2"), 0);
  EXPECT_EQ(requested_threads(0, "many"), 0);
  EXPECT_EQ(requested_threads(0, "99999999999"), 0);
}

}  // namespace
}  // namespace flashline
