#pragma once
// One rank's part of the model: a layer range (plus the embedding on stage 0, the head and the
// MTP block on the last stage) and the decode state of every request that has passed through
// it, in the rank's KV pages. Its one forward primitive extends requests by any number of
// tokens at their next positions; a prefill, a prefill chunk and a decode step are all that.
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "stages/request_state.h"
#include "stages/transformer.h"

namespace flashline {

// Rows of one request in a step: positions start_pos .. start_pos + rows - 1.
// A start_pos before the request's next position rolls back the rows the previous step fed
// from start_pos on (that step must have been speculative). `speculative`: rows after the
// first are drafts that a later step may roll back, so the step keeps an undo journal.
struct ExtendSeq {
  int64_t request = 0;
  int32_t start_pos = 0;
  int32_t rows = 0;
  bool speculative = false;
};

class StageExecutor {
 public:
  // `storage` null: states in plain memory (tests).
  StageExecutor(Transformer& tf, int layer_begin, int layer_end, bool first, bool last,
                std::unique_ptr<KvStorage> storage);

  const ModelConfig& config() const { return tf_.config(); }
  bool first() const { return first_; }
  bool last() const { return last_; }
  int layer_begin() const { return layer_begin_; }
  int layer_end() const { return layer_end_; }

  // Extends each request by its rows (a request at position 0 starts from a fresh state; any
  // other position must be the request's next one). `ids` has one id per row (embedded on
  // stage 0); X is the hc stream [rows, hc, dim], produced on stage 0, transformed in place.
  // Each MoE layer is a collective of the stage's lanes: every lane calls extend for every
  // step with rows on any lane, with or without rows of its own.
  void extend(const std::vector<ExtendSeq>& seqs, const std::vector<int32_t>& ids, std::vector<float>& X);
  // Frees a request's state and pages (an unknown id is ignored).
  void release(int64_t request);

  // Last stage: fp32 logits [rows.size(), vocab] of the given rows of a final hc stream.
  std::vector<float> logits(const std::vector<float>& X, const std::vector<int>& rows) const;
  // Last stage: MTP logits over whole prompts, each job = (h: the final stream at positions
  // 0..n-1, the tokens at 1..n), a fresh MTP state each; [n, vocab] per job. A collective of
  // the last stage's lanes (the MTP block's MoE): every lane calls it, with or without jobs.
  using MtpJob = std::pair<std::vector<float>, std::vector<int32_t>>;
  std::vector<std::vector<float>> mtp_over_prompts(const std::vector<MtpJob>& jobs);

  // Last stage, speculative decoding: extends each request's own MTP state by its rows, row q
  // being the pair (final hc stream h_q of the main model, or the MTP's own output when
  // drafting further; the token at q + 1). `draft`: the rows are drafts on drafts, undone by
  // discard_mtp_drafts. A collective of the last stage's lanes, like extend.
  struct MtpOutput {
    std::vector<float> logits;  // [rows, vocab]
    std::vector<float> X;       // the MTP block's output hc stream [rows, hc, dim]
  };
  MtpOutput extend_mtp(const std::vector<ExtendSeq>& seqs, const std::vector<int32_t>& next_ids,
                       const std::vector<float>& h, bool draft);
  void discard_mtp_drafts(int64_t request);

  // A live request's state of its main layers / of its MTP block (nullptr if none), for tests
  // that compare states.
  const RequestState* state(int64_t request) const;
  const RequestState* mtp_state(int64_t request) const;

  int live_requests() const { return int(states_.size()); }
  int64_t pages_used() const { return storage_ ? storage_->pool.used() : 0; }
  int64_t pages_total() const { return storage_ ? storage_->pool.total() : 0; }
  std::size_t page_bytes() const { return storage_ ? storage_->pool.page_bytes() : 0; }

 private:
  struct Live {
    RequestState state;
    int32_t next_pos = 0;
    int32_t journal_from = -1;  // first position of the open undo journal; -1: none
  };
  using LiveMap = std::map<int64_t, Live>;
  // The state `s` extends, rolled back or started afresh as `s` says.
  Live& prepare(LiveMap& live, const ExtendSeq& s, int begin, int end);
  Transformer& tf_;
  int layer_begin_, layer_end_;
  bool first_, last_;
  std::unique_ptr<KvStorage> storage_;
  LiveMap states_;
  LiveMap mtp_states_;
};

}  // namespace flashline
