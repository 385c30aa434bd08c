#include "runtime/stage_executor.h"

#include <fmt/format.h>

namespace flashline {

StageExecutor::StageExecutor(Transformer& tf, int layer_begin, int layer_end, bool first, bool last)
    : tf_(tf), layer_begin_(layer_begin), layer_end_(layer_end), first_(first), last_(last) {}

RequestState& StageExecutor::state(int request, int start_pos) {
  if (start_pos == 0) return states_[request] = tf_.new_state();
  auto it = states_.find(request);
  if (it == states_.end())
    throw std::runtime_error(fmt::format("pipeline: decode step of request {} before its prefill", request));
  return it->second;
}

StepBatch StageExecutor::batch_of(const ForwardMessage& mb) {
  StepBatch b;
  int row = 0;
  for (const auto& s : mb.seqs) {
    b.add(std::vector<int32_t>(mb.ids.begin() + row, mb.ids.begin() + row + s.rows), s.start_pos,
          &state(s.request, s.start_pos));
    row += s.rows;
  }
  return b;
}

void StageExecutor::run(ForwardMessage& mb) {
  const StepBatch b = batch_of(mb);
  const std::size_t stride = std::size_t(config().hc) * config().dim;
  if (first_) mb.X = tf_.embed(b);
  if (mb.X.size() != std::size_t(mb.rows()) * stride)
    throw std::runtime_error(fmt::format("pipeline: hc stream of {} floats for {} rows", mb.X.size(), mb.rows()));
  tf_.run_layers(layer_begin_, layer_end_, b, mb.X);
}

std::vector<float> StageExecutor::logits(const ForwardMessage& mb, const std::vector<GenerationRequest>& reqs,
                                         std::vector<int>& row_of, std::vector<int>& n_rows) const {
  std::vector<int> rows;
  row_of.clear(), n_rows.clear();
  int row = 0;
  for (const auto& s : mb.seqs) {
    const bool all = s.start_pos == 0 && reqs.at(s.request).keep_prefill_logits;
    row_of.push_back(int(rows.size()));
    n_rows.push_back(all ? s.rows : 1);
    for (int i = all ? 0 : s.rows - 1; i < s.rows; ++i) rows.push_back(row + i);
    row += s.rows;
  }
  if (rows.empty()) return {};
  return tf_.logits(mb.X, rows);
}

std::vector<std::vector<float>> StageExecutor::mtp(const ForwardMessage& mb,
                                                   const std::vector<GenerationRequest>& reqs) {
  const auto& c = config();
  const std::size_t stride = std::size_t(c.hc) * c.dim;
  std::vector<float> h;
  std::vector<RequestState> states;
  states.reserve(mb.seqs.size());
  StepBatch b;
  std::vector<int> count;
  int row = 0;
  for (const auto& s : mb.seqs) {
    const int n = mtp_rows(reqs.at(s.request), s);
    count.push_back(n);
    if (n > 0) {
      // h: the final stream at positions 0..n-1, paired with the ids at positions 1..n.
      h.insert(h.end(), mb.X.begin() + std::ptrdiff_t(row * stride), mb.X.begin() + std::ptrdiff_t((row + n) * stride));
      states.push_back(tf_.new_mtp_state());
      b.add(std::vector<int32_t>(mb.ids.begin() + row + 1, mb.ids.begin() + row + 1 + n), 0, &states.back());
    }
    row += s.rows;
  }
  const auto all = tf_.mtp_logits(h, b);
  std::vector<std::vector<float>> out(mb.seqs.size());
  std::size_t at = 0;
  for (std::size_t i = 0; i < count.size(); ++i) {
    const std::size_t n = std::size_t(count[i]) * c.vocab;
    out[i].assign(all.begin() + std::ptrdiff_t(at), all.begin() + std::ptrdiff_t(at + n));
    at += n;
  }
  return out;
}

}  // namespace flashline
