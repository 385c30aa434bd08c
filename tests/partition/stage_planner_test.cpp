#include "base/input_error.h"
#include "partition/stage_planner.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace flashline {
namespace {

const std::string kData = FLASHLINE_TEST_DATA;
constexpr double kInf = std::numeric_limits<double>::infinity();

// Every way to cut n items into `parts` non-empty contiguous ranges.
double brute_force(int n, int parts, const std::function<double(int, int, int)>& cost, int part = 0, int begin = 0,
                   double worst = 0) {
  if (part == parts - 1) return std::max(worst, cost(part, begin, n));
  double best = kInf;
  for (int end = begin + 1; end <= n - (parts - part - 1); ++end)
    best = std::min(best, brute_force(n, parts, cost, part + 1, end, std::max(worst, cost(part, begin, end))));
  return best;
}

TEST(ContiguousSplit, EqualsBruteForceOnRandomCases) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 400; ++trial) {
    int n = 1 + int(rng() % 10), parts = 1 + int(rng() % n);
    std::vector<double> w(n);
    std::vector<std::vector<double>> part_fixed(parts, std::vector<double>(1));
    for (auto& x : w) x = double(rng() % 100);
    std::vector<double> fixed(parts), capacity(parts);
    for (int p = 0; p < parts; ++p) fixed[p] = double(rng() % 50), capacity[p] = double(60 + rng() % 400);
    // Stage-dependent fixed cost, additive layer cost, and a memory cap that makes ranges infeasible.
    auto cost = [&](int p, int a, int b) {
      double s = fixed[p];
      for (int i = a; i < b; ++i) s += w[i] * (1 + 0.25 * p);
      return s > capacity[p] ? kInf : s;
    };
    auto split = optimal_contiguous_split(n, parts, cost);
    double expect = brute_force(n, parts, cost);
    ASSERT_EQ(split.cost, expect) << "trial " << trial;
    if (expect == kInf) {
      EXPECT_TRUE(split.begin.empty());
      continue;
    }
    // The returned ranges achieve the optimum.
    ASSERT_EQ(int(split.begin.size()), parts);
    EXPECT_EQ(split.begin[0], 0);
    double worst = 0;
    for (int p = 0; p < parts; ++p) {
      int end = p + 1 < parts ? split.begin[p + 1] : n;
      ASSERT_LT(split.begin[p], end);
      worst = std::max(worst, cost(p, split.begin[p], end));
    }
    EXPECT_EQ(worst, expect);
  }
}

TEST(ExpertPlacement, UniformBlocks) {
  auto p = place_experts_uniform(10, 3);
  EXPECT_EQ(p.map.lanes[0], (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(p.map.lanes[2], (std::vector<int>{7, 8, 9}));
  EXPECT_DOUBLE_EQ(p.max_lane_load(), 0.4);
}

TEST(ExpertPlacement, HotExpertGetsReplicasAndLoadBalances) {
  std::vector<double> load(8, 1.0);
  load[3] = 9.0;  // one expert takes more than half the traffic
  auto uniform_max = 10.0 / 16;  // lane 0 of a contiguous 2-lane split holds experts 0-3
  auto p = place_experts_balanced(load, 2, 2);
  int copies = 0;
  for (const auto& lane : p.map.lanes) copies += std::count(lane.begin(), lane.end(), 3);
  EXPECT_EQ(copies, 2);  // on both lanes
  EXPECT_EQ(p.map.lanes[0].size(), 5u);
  EXPECT_EQ(p.map.lanes[1].size(), 5u);
  EXPECT_LT(p.max_lane_load(), uniform_max);
  EXPECT_NEAR(p.lane_load[0] + p.lane_load[1], 1.0, 1e-12);
}

CostModel real_model() { return CostModel(ModelConfig::load(kData + "/configs/deepseek-v4-flash.config.json")); }

ClusterSpec gpu_cluster(int nodes, const char* kind) {
  std::string y = "name: test\nnodes:\n";
  for (int i = 0; i < nodes; ++i) y += fmt::format("  - {{name: node{}, devices: [{{kind: {}, count: 8}}]}}\n", i, kind);
  return ClusterSpec::parse(y, "test.yaml");
}

TEST(StagePlanner, FourNodesOfH100) {
  auto m = real_model();
  auto c = gpu_cluster(4, "H100");
  PlannerOptions o;
  o.context = 65536;
  o.model_name = "deepseek-v4-flash";
  auto r = StagePlanner(m, c, o).plan();
  const auto& p = r.plan;
  EXPECT_EQ(int(p.stages.size()) * p.lanes, 32);
  EXPECT_GT(p.predicted.decode_tokens_per_s, 0);
  EXPECT_GT(p.kv.requests_per_lane, 0);
  for (const auto& s : p.stages) EXPECT_GT(s.estimate.free_bytes, 0);
  // Weights: replicated dense parts per lane + each routed expert once per stage.
  int64_t experts = 0;
  for (const auto& s : p.stages)
    for (const auto& lane : s.experts.lanes) experts += int64_t(lane.size());
  EXPECT_EQ(experts, int64_t(p.stages.size()) * 256);
  EXPECT_EQ(Plan::from_yaml(p.to_yaml(), "p.yaml"), p);
}

TEST(StagePlanner, ForcedShapeIsRespected) {
  auto m = real_model();
  auto c = gpu_cluster(2, "H200");
  PlannerOptions o;
  o.stages = 2;
  o.lanes = 8;
  auto r = StagePlanner(m, c, o).plan();
  EXPECT_EQ(r.plan.stages.size(), 2u);
  EXPECT_EQ(r.plan.lanes, 8);
  EXPECT_EQ(r.plan.stages[0].first_layer, 0);
  EXPECT_EQ(r.plan.stages[1].last_layer, 42);
  EXPECT_EQ(r.plan.ranks[9].node, "node1");
}

std::string plan_error(const ClusterSpec& c, PlannerOptions o) {
  auto m = real_model();
  try {
    StagePlanner(m, c, o).plan();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(StagePlanner, ExplainsWeightsThatDoNotFit) {
  auto c = ClusterSpec::parse("nodes:\n  - {name: node0, devices: [{kind: H100, count: 1}]}\n", "one.yaml");
  auto e = plan_error(c, {});
  EXPECT_NE(e.find("stage 0 (layers 0-42) needs"), std::string::npos) << e;
  EXPECT_NE(e.find("node0 (H100 cuda:0) has 80 GB"), std::string::npos) << e;
  EXPECT_NE(e.find("add a node"), std::string::npos) << e;
}

TEST(StagePlanner, ExplainsContextThatDoesNotFit) {
  auto c = gpu_cluster(1, "H100");
  PlannerOptions o;
  o.context = 1 << 30;  // a billion tokens of KV per request cannot fit anywhere
  auto e = plan_error(c, o);
  EXPECT_NE(e.find("KV for 1 request(s) of 1073741824 tokens"), std::string::npos) << e;
  EXPECT_NE(e.find("lower --context"), std::string::npos) << e;
}

TEST(StagePlanner, RejectsShapeLargerThanCluster) {
  PlannerOptions o;
  o.stages = 4;
  o.lanes = 8;
  auto e = plan_error(gpu_cluster(2, "H100"), o);
  EXPECT_NE(e.find("--stages 4 --lanes 8 needs 32 ranks, cluster \"test\" has 16"), std::string::npos) << e;
}

TEST(StagePlanner, BatchBeyondMemoryIsExplained) {
  PlannerOptions o;
  o.context = 1 << 20;
  o.batch = 100000;
  auto e = plan_error(gpu_cluster(1, "H100"), o);
  EXPECT_NE(e.find("lower --context or --batch"), std::string::npos) << e;
}

TEST(StagePlanner, TinyModelOnLocalhost) {
  CostModel m(ModelConfig::load(kData + "/models/tiny-a/config.json"));
  PlannerOptions o;
  o.stages = 2;
  o.lanes = 2;
  o.context = 256;
  auto r = StagePlanner(m, ClusterSpec::local_cpu(4), o).plan();
  EXPECT_TRUE(r.plan.localhost);
  EXPECT_EQ(r.plan.pipeline_transport, "mpi");
  EXPECT_EQ(r.plan.stages[0].experts.lanes[0], (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(r.plan.stages[1].last_layer, 4);
  EXPECT_TRUE(r.plan.stages[1].mtp);
}

TEST(StagePlanner, HistogramMakesPerLayerMapsWithReplicas) {
  CostModel m(ModelConfig::load(kData + "/models/tiny-a/config.json"));
  ExpertLoad load;
  load.by_layer[3] = std::vector<double>(16, 1.0);
  load.by_layer[3][5] = 20.0;
  PlannerOptions o;
  o.stages = 1;
  o.lanes = 4;
  o.context = 256;
  o.expert_load = &load;
  auto r = StagePlanner(m, ClusterSpec::local_cpu(4), o).plan();
  const auto& st = r.plan.stages[0];
  ASSERT_EQ(st.layer_experts.count(3), 1u);
  EXPECT_EQ(st.layer_experts.size(), 1u);
  int copies = 0;
  for (const auto& lane : st.experts_of(3).lanes) copies += std::count(lane.begin(), lane.end(), 5);
  EXPECT_GE(copies, 2);
  EXPECT_EQ(Plan::from_yaml(r.plan.to_yaml(), "p.yaml"), r.plan);
}

}  // namespace
}  // namespace flashline
