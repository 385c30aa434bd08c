#pragma once
// Runs generation requests for the commands: in this process (no plan), or as one rank of a
// pipeline described by a plan file (under mpirun). Both go through the same PipelineRunner,
// so the decode loop exists once.
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/numerics.h"
#include "runtime/generation_request.h"
#include "model/model_config.h"

namespace flashline {

struct RunnerOptions {
  std::string model;
  std::string plan;  // empty: one process holds the whole model
  Numerics numerics = Numerics::Fast;
  int micro_batches = 0;  // slots per lane; 0: one per stage
};

class RequestRunner {
 public:
  virtual ~RequestRunner() = default;
  // Checks and loads this process's part of the model.
  static std::unique_ptr<RequestRunner> create(const RunnerOptions& options);

  virtual const ModelConfig& config() const = 0;
  // Results indexed like `requests` where writes_output(), empty elsewhere.
  virtual std::vector<GenerationResult> run(const std::vector<GenerationRequest>& requests) = 0;
  // This process writes the outputs (the only one, or world rank 0).
  virtual bool writes_output() const = 0;
};

// InputError naming the request when a token id is outside the vocabulary or the MTP block is
// asked of a model without one; checked before any work starts.
void check_requests(const ModelConfig& config, const std::vector<GenerationRequest>& requests,
                    const std::string& model);

}  // namespace flashline
