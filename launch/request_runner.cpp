// The single-process runner: the whole model, loopback transports, one stage and one lane.
#include "base/input_error.h"
#include "comms/expert_exchange.h"
#include "comms/pipeline_link.h"
#include "launch/distributed_runner.h"
#include "launch/request_runner.h"
#include "runtime/pipeline_runner.h"

#include <fmt/format.h>

namespace flashline {
namespace {

class LocalRunner final : public RequestRunner {
 public:
  explicit LocalRunner(const RunnerOptions& o)
      : ck_(Checkpoint::open(o.model)),
        tf_(ck_, o.numerics, exchange_, ExpertRoutes::single(ck_.config().n_experts)),
        executor_(tf_, 0, ck_.config().n_layers, true, true),
        micro_batches_(o.micro_batches) {}

  const ModelConfig& config() const override { return tf_.config(); }
  bool writes_output() const override { return true; }
  std::vector<GenerationResult> run(const std::vector<GenerationRequest>& requests) override {
    PipelineRunner runner(executor_, PipelineTopology::single(), 0, 0, link_, exchange_, micro_batches_);
    return runner.run(requests);
  }

 private:
  LoopbackExpertExchange exchange_;
  LoopbackPipelineLink link_;
  Checkpoint ck_;
  Transformer tf_;
  StageExecutor executor_;
  int micro_batches_;
};

}  // namespace

std::unique_ptr<RequestRunner> RequestRunner::create(const RunnerOptions& options) {
  if (options.plan.empty()) return std::make_unique<LocalRunner>(options);
  return make_distributed_runner(options);
}

void check_requests(const ModelConfig& c, const std::vector<GenerationRequest>& requests, const std::string& model) {
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto& q = requests[i];
    const std::string which = requests.size() > 1 ? fmt::format("request {}: ", i) : "";
    if (q.prompt.empty()) throw InputError(fmt::format("{}empty prompt", which));
    for (auto ids : {&q.prompt, &q.teacher})
      for (std::size_t k = 0; k < ids->size(); ++k)
        if ((*ids)[k] < 0 || (*ids)[k] >= c.vocab)
          throw InputError(fmt::format("{}{} id [{}] = {} is outside the vocabulary 0..{} of {}", which,
                                       ids == &q.prompt ? "prompt" : "teacher-forced", k, (*ids)[k], c.vocab - 1,
                                       model));
    if (q.mtp && c.n_mtp == 0) throw InputError(fmt::format("--mtp: {} has no MTP block", model));
    if (q.mtp && q.prompt.size() < 2) throw InputError("--mtp: needs a prompt of at least 2 tokens");
  }
}

}  // namespace flashline
