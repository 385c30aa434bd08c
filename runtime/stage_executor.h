#pragma once
// One rank's part of the model in the pipeline: a layer range (plus the embedding on stage 0,
// the head and MTP block on the last stage) run on micro-batches, with the decode state of every
// request that has passed through this rank.
#include <map>
#include <vector>

#include "runtime/generation_request.h"
#include "runtime/pipeline_message.h"
#include "stages/transformer.h"

namespace flashline {

class StageExecutor {
 public:
  StageExecutor(Transformer& tf, int layer_begin, int layer_end, bool first, bool last);

  const ModelConfig& config() const { return tf_.config(); }
  bool first() const { return first_; }
  bool last() const { return last_; }

  // Runs this stage on the micro-batch in place (embedding it first on stage 0). Every lane
  // of the stage calls it for every micro-batch with rows on any lane (mb.stage_rows > 0),
  // with or without rows of its own: each MoE layer is a collective of the lanes.
  void run(ForwardMessage& mb);

  // Last stage: logits [n, vocab] of the rows the requests need (every prompt position where
  // prefill logits are kept, else each sequence's last row); row_of[i] = first logits row of
  // sequence i, n_rows[i] its count.
  std::vector<float> logits(const ForwardMessage& mb, const std::vector<GenerationRequest>& reqs,
                            std::vector<int>& row_of, std::vector<int>& n_rows) const;
  // Last stage: MTP logits of each prefill sequence whose request asks for them, [rows-1,
  // vocab] per sequence (empty vectors elsewhere). A collective of the last stage's lanes when
  // mb.stage_mtp_rows > 0.
  std::vector<std::vector<float>> mtp(const ForwardMessage& mb, const std::vector<GenerationRequest>& reqs);

 private:
  RequestState& state(int request, int start_pos);
  StepBatch batch_of(const ForwardMessage& mb);

  Transformer& tf_;
  int layer_begin_, layer_end_;
  bool first_, last_;
  std::map<int, RequestState> states_;
};

// Rows of the MTP block for a prefill of `rows` tokens (one fewer: the last has no next id).
inline int mtp_rows(const GenerationRequest& req, const ForwardSeq& s) {
  return req.mtp && s.start_pos == 0 && s.rows >= 2 ? s.rows - 1 : 0;
}

}  // namespace flashline
