#include "launch/mpirun_command.h"

#include <gtest/gtest.h>

#include "model/model_config.h"

namespace flashline {
namespace {

const std::string kConfigs = FLASHLINE_CONFIGS;

LaunchOptions options(const std::string& plan) {
  LaunchOptions o;
  o.plan_path = plan;
  o.model_dir = "/models/dsv4";
  o.executable = "flashline";
  o.hostfile_path = "p.hostfile";
  o.rankfile_path = "p.rankfile";
  o.extra_args = {"--prompts", "@prompts.json", "--max-new-tokens", "8"};
  return o;
}

TEST(MpirunCommand, LocalhostOversubscribesCpuRanks) {
  Plan p = Plan::load(kConfigs + "/plans/localhost.plan.yaml");
  auto o = options("plan.yaml");
  o.as_root = true;
  auto m = build_mpirun_command(p, o);
  EXPECT_EQ(m.hostfile, "localhost slots=4\n");
  EXPECT_EQ(m.rankfile, "");
  EXPECT_EQ(m.shell_line(),
            "mpirun -np 4 --allow-run-as-root --hostfile p.hostfile --map-by slot --bind-to none --oversubscribe "
            "--mca btl self,vader -x FLASHLINE_PIPELINE_TRANSPORT=mpi -x FLASHLINE_EXPERT_TRANSPORT=mpi "
            "-x OMP_NUM_THREADS=1 flashline generate --plan plan.yaml --model /models/dsv4 --prompts @prompts.json "
            "--max-new-tokens 8");
}

TEST(MpirunCommand, MultiNodeGpuPlanGetsRankfileAndNccl) {
  Plan p = Plan::load(kConfigs + "/plans/2node-8xh200.plan.yaml");
  auto m = build_mpirun_command(p, options("plan.yaml"));
  EXPECT_EQ(m.hostfile, "10.0.0.10 slots=8\n10.0.0.11 slots=8\n");
  EXPECT_NE(m.rankfile.find("rank 0=10.0.0.10 slot=0-13\n"), std::string::npos) << m.rankfile;
  EXPECT_NE(m.rankfile.find("rank 9=10.0.0.11 slot=14-27\n"), std::string::npos) << m.rankfile;
  auto line = m.shell_line();
  EXPECT_EQ(line.rfind("mpirun -np 16 --hostfile p.hostfile --rankfile p.rankfile --bind-to core --mca pml ucx", 0), 0u)
      << line;
  EXPECT_NE(line.find("-x FLASHLINE_PIPELINE_TRANSPORT=nccl -x FLASHLINE_EXPERT_TRANSPORT=nccl -x OMP_NUM_THREADS=14"),
            std::string::npos)
      << line;
  EXPECT_EQ(line.find("--allow-run-as-root"), std::string::npos);
}

TEST(MpirunCommand, QuotesArgumentsForTheShell) {
  Plan p = Plan::load(kConfigs + "/plans/localhost.plan.yaml");
  auto o = options("my plan.yaml");
  o.extra_args = {"--prompt", "it's"};
  auto line = build_mpirun_command(p, o).shell_line();
  EXPECT_NE(line.find("--plan 'my plan.yaml'"), std::string::npos) << line;
  EXPECT_NE(line.find("--prompt 'it'\\''s'"), std::string::npos) << line;
}

TEST(MpirunCommand, OutOfOrderRanksNeedCpuCounts) {
  Plan p = Plan::load(kConfigs + "/plans/2node-8xh200.plan.yaml");
  for (auto& n : p.nodes) n.cpus = 0;
  std::swap(p.ranks[0].node, p.ranks[15].node);
  EXPECT_THROW(build_mpirun_command(p, options("plan.yaml")), InputError);
}

}  // namespace
}  // namespace flashline
