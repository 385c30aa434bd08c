#include "partition/plan.h"

#include <gtest/gtest.h>

#include "model/model_config.h"

namespace flashline {
namespace {

// 2 stages x 2 lanes over a 5-layer, 8-expert model; stage 1 has a per-layer map with a replica.
Plan small_plan() {
  Plan p;
  p.model = {"tiny", 5, 1, 8};
  p.cluster = "test";
  p.nodes = {{"n0", "10.0.0.1", 2, 16}, {"n1", "10.0.0.2", 2, 16}};
  p.lanes = 2;
  StagePlan a;
  a.first_layer = 0;
  a.last_layer = 2;
  a.ranks = {0, 1};
  a.embedding = true;
  a.experts.lanes = {{0, 1, 2, 3}, {4, 5, 6, 7}};
  a.estimate = {1000, 200, 50, 0.001, 0.25, "memory"};
  StagePlan b = a;
  b.first_layer = 3;
  b.last_layer = 4;
  b.ranks = {2, 3};
  b.embedding = true;
  b.head = b.mtp = true;
  b.experts.lanes = {{0, 2, 4, 6}, {1, 3, 5, 7}};
  b.layer_experts[4].lanes = {{0, 1, 2, 3, 7}, {3, 4, 5, 6, 7}};
  p.stages = {a, b};
  p.ranks = {{0, 0, 0, "n0", "10.0.0.1", "cuda:0"},
             {1, 0, 1, "n0", "10.0.0.1", "cuda:1"},
             {2, 1, 0, "n1", "10.0.0.2", "cuda:0"},
             {3, 1, 1, "n1", "10.0.0.2", "cuda:1"}};
  p.pipeline_transport = "nccl";
  p.expert_transport = "nccl";
  p.kv = {"fp8", 65536, 12, 123456789};
  p.predicted = {24, 4096, 1234.5, 56789.25, 0.0123456789, 0.5};
  return p;
}

std::string error_of(const std::string& yaml) {
  try {
    Plan::from_yaml(yaml, "p.yaml");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

void replace(std::string& s, const std::string& from, const std::string& to) {
  auto pos = s.find(from);
  ASSERT_NE(pos, std::string::npos) << from;
  s.replace(pos, from.size(), to);
}

TEST(Plan, RoundTripsThroughYaml) {
  Plan p = small_plan();
  std::string text = p.to_yaml();
  Plan q = Plan::from_yaml(text, "p.yaml");
  EXPECT_EQ(p, q);
  EXPECT_EQ(q.stages[1].experts_of(4).lanes[1], (std::vector<int>{3, 4, 5, 6, 7}));
  EXPECT_EQ(q.stages[1].experts_of(3).lanes[1], (std::vector<int>{1, 3, 5, 7}));
  EXPECT_EQ(q.to_yaml(), text);
}

TEST(Plan, IdRanges) {
  EXPECT_EQ(format_id_ranges({0, 1, 2, 3, 7, 9, 10}), "0-3,7,9-10");
  EXPECT_EQ(parse_id_ranges("0-3,7,9-10"), (std::vector<int>{0, 1, 2, 3, 7, 9, 10}));
  EXPECT_EQ(parse_id_ranges(""), std::vector<int>{});
  EXPECT_THROW(parse_id_ranges("3-1"), std::invalid_argument);
  EXPECT_THROW(parse_id_ranges("1,1"), std::invalid_argument);
  EXPECT_THROW(parse_id_ranges("a"), std::invalid_argument);
}

TEST(Plan, RejectsLayerGap) {
  std::string y = small_plan().to_yaml();
  replace(y, "first_layer: 3", "first_layer: 4");
  auto e = error_of(y);
  EXPECT_NE(e.find("stages[1]"), std::string::npos) << e;
  EXPECT_NE(e.find("layer gap: layers 3-3 belong to no stage"), std::string::npos) << e;
}

TEST(Plan, RejectsLayerOverlap) {
  std::string y = small_plan().to_yaml();
  replace(y, "first_layer: 3", "first_layer: 2");
  auto e = error_of(y);
  EXPECT_NE(e.find("p.yaml:"), std::string::npos) << e;
  EXPECT_NE(e.find("stages[1]"), std::string::npos) << e;
  EXPECT_NE(e.find("overlap"), std::string::npos) << e;
}

TEST(Plan, RejectsMissingTailLayers) {
  std::string y = small_plan().to_yaml();
  replace(y, "last_layer: 4", "last_layer: 3");
  auto e = error_of(y);
  EXPECT_NE(e.find("layers 4-4 belong to no stage"), std::string::npos) << e;
}

TEST(Plan, RejectsOrphanExperts) {
  std::string y = small_plan().to_yaml();
  replace(y, "\"4-7\"", "\"4-5\"");
  auto e = error_of(y);
  EXPECT_NE(e.find("stages[0]"), std::string::npos) << e;
  EXPECT_NE(e.find("experts 6-7 are owned by no lane"), std::string::npos) << e;
}

TEST(Plan, RejectsOrphanExpertsInLayerMap) {
  std::string y = small_plan().to_yaml();
  replace(y, "\"0-3,7\"", "\"0-3\"");
  replace(y, "\"3-7\"", "\"3-6\"");
  auto e = error_of(y);
  EXPECT_NE(e.find("layer_experts (layer 4)"), std::string::npos) << e;
  EXPECT_NE(e.find("experts 7 are owned by no lane"), std::string::npos) << e;
}

TEST(Plan, RejectsLaneCountMismatch) {
  std::string y = small_plan().to_yaml();
  replace(y, "ranks: [2, 3]", "ranks: [2]");
  auto e = error_of(y);
  EXPECT_NE(e.find("stages[1]: invalid plan: lists 1 ranks, but the plan has 2 lanes"), std::string::npos) << e;
}

TEST(Plan, RejectsRankTableDisagreement) {
  std::string y = small_plan().to_yaml();
  replace(y, "ranks: [2, 3]", "ranks: [3, 2]");
  auto e = error_of(y);
  EXPECT_NE(e.find("ranks[3] says stage 1 lane 1, but stages[1].ranks[0] = 3"), std::string::npos) << e;
}

TEST(Plan, RejectsExpertOutOfRange) {
  std::string y = small_plan().to_yaml();
  replace(y, "\"4-7\"", "\"4-8\"");
  auto e = error_of(y);
  EXPECT_NE(e.find("expert 8 does not exist"), std::string::npos) << e;
}

TEST(Plan, UnknownKeySuggestsNearest) {
  std::string y = small_plan().to_yaml();
  replace(y, "first_layer: 3", "frist_layer: 3");
  auto e = error_of(y);
  EXPECT_NE(e.find("unknown key \"stages[1].frist_layer\": did you mean \"first_layer\"?"), std::string::npos) << e;
  EXPECT_NE(e.find("p.yaml:"), std::string::npos) << e;
}

TEST(Plan, SyntaxErrorHasLineAndColumn) {
  auto e = error_of("format: 1\nmodel: {name: x\n");
  EXPECT_NE(e.find("p.yaml:"), std::string::npos) << e;
  EXPECT_NE(e.find("YAML syntax error"), std::string::npos) << e;
}

TEST(Plan, HeadMustBeOnLastStage) {
  std::string y = small_plan().to_yaml();
  auto pos = y.find("head: false");
  y.replace(pos, 11, "head: true");
  auto e = error_of(y);
  EXPECT_NE(e.find("only the last stage may hold the head"), std::string::npos) << e;
}

}  // namespace
}  // namespace flashline
