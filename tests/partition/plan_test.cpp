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

// Each validation branch of the plan reader: one edit of a valid plan, the message it must give.
struct PlanEdit {
  const char* name;
  const char* from;
  const char* to;
  const char* message;
};

// Failure messages name the edit, not the struct's bytes.
void PrintTo(const PlanEdit& e, std::ostream* os) { *os << e.name; }

class PlanValidation : public ::testing::TestWithParam<PlanEdit> {};

TEST_P(PlanValidation, NamesTheProblem) {
  const PlanEdit& e = GetParam();
  std::string y = small_plan().to_yaml();
  replace(y, e.from, e.to);
  const auto err = error_of(y);
  EXPECT_NE(err.find(e.message), std::string::npos) << "got: " << err;
}

const PlanEdit kPlanEdits[] = {
    {"format", "format: 1", "format: 2", "this flashline reads plan format 1, found 2"},
    {"transport", "pipeline: nccl", "pipeline: tcp", "expected mpi, nccl, ucx or loopback, found \"tcp\""},
    {"kv_format", "format: fp8", "format: fp16", "expected fp8 or bf16, found \"fp16\""},
    {"lanes", "lanes: 2", "lanes: 0", "lanes"},
    {"stage_order", "stage: 1", "stage: 3", "stage entries must be in order: expected 1"},
    {"last_before_first", "last_layer: 4", "last_layer: 2", "last_layer 2 is before first_layer 3"},
    {"layers_beyond_model", "last_layer: 4", "last_layer: 6", "layers 5-6 do not exist (the model has 5 layers)"},
    {"embedding_on_stage0", "embedding: true", "embedding: false", "stage 0 must hold the embedding"},
    {"head_on_last_stage", "head: true", "head: false", "the last stage must hold the head"},
    {"mtp_on_last_stage", "mtp: true", "mtp: false", "the last stage must hold the MTP block"},
    {"rank_number", "ranks: [0, 1]", "ranks: [0, -1]", "ranks[1]: expected a rank number >= 0"},
    {"rank_beyond_world", "ranks: [2, 3]", "ranks: [2, 7]", "ranks[1] = 7 is not a rank (world size 4)"},
    {"rank_twice", "ranks: [2, 3]", "ranks: [2, 1]", "rank 1 is already in stage 0"},
    {"rank_table_order", "{rank: 1,", "{rank: 5,", "ranks must be listed in order: expected 1"},
    {"rank_node", "node: n1", "node: n9", "node \"n9\" is not in cluster.nodes"},
    {"layer_experts_twice", "- layer: 4", "- layer: 4\n        experts: [\"0-7\", \"0-7\"]\n      - layer: 4",
     "layer 4 listed twice"},
    {"layer_experts_outside_stage", "- layer: 4", "- layer: 1", "layer_experts names layer 1, which is not in this stage"},
    {"expert_map_lanes", "- \"0-3\"\n      - \"4-7\"", "- \"0-7\"", "experts lists 1 lanes, but the plan has 2 lanes"},
    {"expert_ids", "\"0-3\"", "\"3-0\"", "descending range 3-0"},
};

INSTANTIATE_TEST_SUITE_P(Edits, PlanValidation, ::testing::ValuesIn(kPlanEdits),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace flashline
