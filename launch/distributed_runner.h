#pragma once
// The runner of one rank under mpirun: finds its (stage, lane) in the plan, checks the plan
// against the model and the world before any weight is read, loads only its layers and
// experts, and runs the pipeline over MPI. A rank that fails aborts the whole job after
// printing its rank, host and the cause, so no peer waits for it.
#include <memory>

#include "base/input_error.h"
#include "launch/request_runner.h"
#include "partition/plan.h"
#include "stages/checkpoint.h"

namespace flashline {

std::unique_ptr<RequestRunner> make_distributed_runner(const RunnerOptions& options);

// Plan against the model and the world size: InputError naming the plan entry.
void check_plan_against_model(const Plan& plan, const ModelConfig& config, int world_size, const std::string& source);

// The parts of the checkpoint (stage, lane) needs: its layers, its experts per layer, and the
// embedding / head / MTP copies its stage holds.
CheckpointSelection selection_for(const Plan& plan, int stage, int lane, const ModelConfig& config);

}  // namespace flashline
