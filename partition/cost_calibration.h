#pragma once
// Fitting the cost model to this machine: the planner predicts a measured single-process run
// (one request: prefill of its prompt, then single-token decode steps) as one rank of
// `localhost:1`, and the CPU compute and memory efficiencies are solved for so that both
// predicted step times equal the measured ones. The result is a calibration file that later
// `flashline plan --calibration FILE` runs apply to every CPU rank.
#include <filesystem>
#include <string>

#include "base/input_error.h"
#include "cluster/cluster_spec.h"
#include "partition/cost_model.h"

namespace flashline {

struct MeasuredRun {
  std::string model;      // what ran (informational)
  std::string host;       // where it ran (informational)
  int prompt_tokens = 0;  // one request: its prefill ...
  int decode_steps = 0;   // ... then this many one-token decode steps
  double prefill_s = 0;
  double decode_step_s = 0;  // mean over the decode steps
};

struct StepPrediction {
  double prefill_s = 0;
  double decode_step_s = 0;
};

// The planner's step times for `run` on `machine` (a one-rank cluster): one stage, one lane,
// batch 1, context and prefill chunk = the prompt.
StepPrediction predict_run(const CostModel& cost, const ClusterSpec& machine, const MeasuredRun& run);

struct Calibration {
  CostConstants constants;  // the input constants with the CPU efficiencies fitted
  MeasuredRun measured;
  StepPrediction before, after;  // predictions with the input and the fitted constants
  bool exact = true;             // false when an efficiency hit its bound before matching

  void save(const std::filesystem::path& path) const;
  // `base` with the CPU efficiencies of the file; InputError naming file, line and key.
  static CostConstants load(const std::filesystem::path& path, CostConstants base = {});
};

// Fits cpu_compute_efficiency and cpu_memory_efficiency (each within [1e-6, 100]) so that
// predict_run reproduces the measured prefill and decode step times. The overheads and GPU
// constants are kept. `machine` must be a one-rank CPU cluster.
Calibration calibrate(const CostModel& cost, const ClusterSpec& machine, const MeasuredRun& run);

}  // namespace flashline
