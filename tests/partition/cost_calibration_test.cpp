#include "base/input_error.h"
#include "partition/cost_calibration.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <fstream>

#include "cluster/device_catalog.h"

namespace flashline {
namespace {

const std::string kTinyA = std::string(FLASHLINE_TEST_DATA) + "/models/tiny-a";

struct Fixture {
  ModelConfig config = ModelConfig::load(kTinyA + "/config.json");
  CostModel cost{config};
  ClusterSpec machine = ClusterSpec::local_cpu(1);
  MeasuredRun run;
  Fixture() {
    run.model = kTinyA;
    run.prompt_tokens = 256;
    run.decode_steps = 32;
  }
};

// A directory of this test's own, removed with it: fixed names under the shared temp folder would
// collide with other runs and stay behind.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string("flashline-") + info->test_suite_name() + "-" + info->name() + "-XXXXXX";
    std::string tmpl = (std::filesystem::path(::testing::TempDir()) / name).string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed: " + tmpl);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::filesystem::path file(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

TEST(CostCalibration, FittedConstantsReproduceTheMeasuredRun) {
  Fixture f;
  StepPrediction start = predict_run(f.cost, f.machine, f.run);
  // A machine slower than the datasheet guess, decode (matrix-vector work) more so than prefill:
  // prefill 10x, decode 20x the default prediction.
  f.run.prefill_s = 10 * start.prefill_s;
  f.run.decode_step_s = 20 * start.decode_step_s;
  Calibration c = calibrate(f.cost, f.machine, f.run);
  EXPECT_TRUE(c.exact);
  EXPECT_DOUBLE_EQ(c.before.prefill_s, start.prefill_s);
  EXPECT_NEAR(c.after.prefill_s / f.run.prefill_s, 1.0, 0.01);
  EXPECT_NEAR(c.after.decode_step_s / f.run.decode_step_s, 1.0, 0.01);
  EXPECT_LT(c.constants.cpu_compute_efficiency, f.cost.constants().cpu_compute_efficiency);
  // Only the CPU efficiencies move.
  EXPECT_EQ(c.constants.compute_efficiency, f.cost.constants().compute_efficiency);
  EXPECT_EQ(c.constants.memory_efficiency, f.cost.constants().memory_efficiency);
  EXPECT_EQ(c.constants.cpu_layer_overhead_s, f.cost.constants().cpu_layer_overhead_s);

  // The file carries the constants: a planner reading it predicts the measured run again.
  TempDir dir;
  auto path = dir.file("calibration.yaml");
  c.save(path);
  CostModel reloaded(f.config, KvFormat::FP8, Calibration::load(path));
  StepPrediction again = predict_run(reloaded, f.machine, f.run);
  EXPECT_NEAR(again.prefill_s / f.run.prefill_s, 1.0, 0.01);
  EXPECT_NEAR(again.decode_step_s / f.run.decode_step_s, 1.0, 0.01);
}

TEST(CostCalibration, FasterMachineRaisesEfficiencies) {
  Fixture f;
  StepPrediction start = predict_run(f.cost, f.machine, f.run);
  double overhead = (f.config.total_layers() + 2) * f.cost.constants().cpu_layer_overhead_s;
  f.run.prefill_s = overhead + 0.5 * (start.prefill_s - overhead);
  f.run.decode_step_s = start.decode_step_s;
  Calibration c = calibrate(f.cost, f.machine, f.run);
  EXPECT_TRUE(c.exact);
  EXPECT_GT(c.constants.cpu_compute_efficiency, f.cost.constants().cpu_compute_efficiency);
  EXPECT_NEAR(c.after.prefill_s / f.run.prefill_s, 1.0, 0.01);
  EXPECT_NEAR(c.after.decode_step_s / f.run.decode_step_s, 1.0, 0.01);
}

TEST(CostCalibration, UnreachableTimeIsReportedNotFaked) {
  Fixture f;
  StepPrediction start = predict_run(f.cost, f.machine, f.run);
  // Faster than the per-layer overheads alone allow: no efficiency can predict it.
  f.run.prefill_s = start.prefill_s;
  f.run.decode_step_s = 1e-9;
  Calibration c = calibrate(f.cost, f.machine, f.run);
  EXPECT_FALSE(c.exact);
  EXPECT_LT(c.after.decode_step_s, c.before.decode_step_s);  // moved toward the measurement
}

TEST(CostCalibration, GpuTimesIgnoreCpuEfficiencies) {
  Fixture f;
  Work w;
  w.flops_fp8 = 1e12;
  w.bytes = 1e9;
  DeviceSpec gpu = *builtin_device("H100");
  double before = f.cost.time(w, gpu).seconds;
  CostConstants k;
  k.cpu_compute_efficiency = 0.01;
  k.cpu_memory_efficiency = 0.01;
  f.cost.set_constants(k);
  EXPECT_EQ(f.cost.time(w, gpu).seconds, before);
  EXPECT_GT(f.cost.time(w, *builtin_device("cpu")).seconds, 0.0);
}

TEST(CostCalibration, RejectsCpuClustersOfSeveralRanksAndGpus) {
  Fixture f;
  f.run.prefill_s = f.run.decode_step_s = 1;
  EXPECT_NO_THROW(calibrate(f.cost, ClusterSpec::local_cpu(1), f.run));
  EXPECT_THROW(calibrate(f.cost, ClusterSpec::local_cpu(2), f.run), InputError);
  ClusterSpec gpu = ClusterSpec::local_cpu(1);
  gpu.nodes[0].devices = {*builtin_device("H100")};
  ASSERT_EQ(gpu.rank_count(), 1);
  EXPECT_THROW(calibrate(f.cost, gpu, f.run), InputError);
}

// Loading `text` fails with a message holding each of `parts`.
void expect_load_error(const std::string& text, std::initializer_list<std::string> parts) {
  TempDir dir;
  auto path = dir.file("bad-calibration.yaml");
  std::ofstream(path) << text;
  try {
    Calibration::load(path);
    ADD_FAILURE() << "accepted:\n" << text;
  } catch (const InputError& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(CostCalibration, LoadNamesFileLineAndKey) {
  expect_load_error("format: 1\ncpu_compute_efficiency: 0.1\ncpu_memory_efficency: 0.2\n",
                    {"bad-calibration.yaml:3:", "cpu_memory_efficiency"});
  expect_load_error("format: 1\ncpu_compute_efficiency: 0\ncpu_memory_efficiency: 0.2\n",
                    {"bad-calibration.yaml:2:", "cpu_compute_efficiency"});
}

}  // namespace
}  // namespace flashline
