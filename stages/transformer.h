#pragma once
// The DeepSeek-V4 model over the layers this process holds: embedding, blocks (mHC around
// attention and MoE), head, MTP. A pipeline stage runs a layer range on a batch's hc stream.
#include <memory>
#include <vector>

#include "comms/expert_exchange.h"
#include "kernels/cpu/rope.h"
#include "stages/checkpoint.h"
#include "stages/layer_context.h"
#include "stages/model_weights.h"
#include "stages/moe.h"
#include "stages/step_batch.h"

namespace flashline {

class Transformer {
 public:
  Transformer(const Checkpoint& ck, Numerics numerics, ExpertExchange& exchange, ExpertRoutes placement);

  const ModelConfig& config() const { return config_; }
  Numerics numerics() const { return ctx_.numerics; }
  const ModelWeights& weights() const { return weights_; }

  // Fresh decode state for the main layers this process holds / for the MTP blocks.
  RequestState new_state() const;
  RequestState new_mtp_state() const;

  // hc stream [rows, hc, dim]: every copy is the token's embedding row.
  std::vector<float> embed(const StepBatch& batch, Trace* trace = nullptr) const;
  // Runs layer ids [begin, end) (all held by this process) on the stream in place.
  void run_layers(int begin, int end, const StepBatch& batch, std::vector<float>& X, Trace* trace = nullptr);
  // fp32 logits [rows.size(), vocab] of the given rows of a final hc stream.
  std::vector<float> logits(const std::vector<float>& X, const std::vector<int>& rows, Trace* trace = nullptr) const;
  // MTP block `k`: h = main final hc stream rows, batch.ids = the next tokens, batch states =
  // MTP states. Returns logits [batch.rows(), vocab]; `out_stream`: the block's output hc stream.
  std::vector<float> mtp_logits(const std::vector<float>& h, const StepBatch& batch, int k = 0,
                                std::vector<float>* out_stream = nullptr);

 private:
  void run_block(const BlockWeights& bw, const StepBatch& batch, std::vector<float>& X, Trace* trace);
  std::vector<float> head_logits(const std::vector<float>& X, const std::vector<int>& rows, const HcParams& hc,
                                 const std::vector<float>& norm, Trace* trace) const;

  ModelConfig config_;
  ModelWeights weights_;
  RopeTable rope_plain_, rope_compressed_;
  LayerContext ctx_;
  ExpertExchange& exchange_;
  ExpertRoutes placement_;
};

}  // namespace flashline
