// Planner and plan checks in process: negative shapes name their own flag (before, --lanes -1
// was reported as "--stages 0 --lanes -1"), and a plan made for another model is refused with
// both numbers.
#include <gtest/gtest.h>

#include <functional>

#include "base/input_error.h"
#include "partition/plan.h"
#include "partition/stage_planner.h"

namespace flashline {
namespace {

const std::string kData = FLASHLINE_TEST_DATA;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(PlannerLimits, NegativeShapeNamesItsFlag) {
  CostModel m(ModelConfig::load(kData + "/models/tiny-a/config.json"));
  PlannerOptions o;
  o.context = 256;
  o.lanes = -1;
  EXPECT_EQ(error_of([&] { StagePlanner(m, ClusterSpec::local_cpu(4), o); }), "--lanes must be >= 1, found -1");
  o.lanes = 0;
  o.stages = -2;
  EXPECT_EQ(error_of([&] { StagePlanner(m, ClusterSpec::local_cpu(4), o); }), "--stages must be >= 1, found -2");
}

TEST(PlanMatchesModel, CountsMustAgree) {
  const ModelConfig tiny = ModelConfig::load(kData + "/models/tiny-a/config.json");
  const Plan p = Plan::load(std::string(FLASHLINE_CONFIGS) + "/plans/localhost.plan.yaml");
  EXPECT_EQ(error_of([&] { check_plan_matches_model(p, tiny, "p.yaml"); }), "(accepted)");
  ModelConfig other = tiny;
  other.n_experts = 32;
  const std::string e = error_of([&] { check_plan_matches_model(p, other, "p.yaml"); });
  EXPECT_NE(e.find("p.yaml: model.routed_experts = 16 (made for tests/data/models/tiny-a), but the model has 32 "
                   "routed experts"),
            std::string::npos)
      << e;
}

}  // namespace
}  // namespace flashline
