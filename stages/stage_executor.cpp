#include "stages/stage_executor.h"

#include <fmt/format.h>

namespace flashline {

StageExecutor::StageExecutor(Transformer& tf, int layer_begin, int layer_end, bool first, bool last,
                             std::unique_ptr<KvStorage> storage)
    : tf_(tf), layer_begin_(layer_begin), layer_end_(layer_end), first_(first), last_(last), storage_(std::move(storage)) {}

void StageExecutor::extend(const std::vector<ExtendSeq>& seqs, const std::vector<int32_t>& ids, std::vector<float>& X) {
  StepBatch b;
  std::size_t row = 0;
  for (const auto& s : seqs) {
    auto it = states_.find(s.request);
    if (s.start_pos == 0) {
      if (it != states_.end()) states_.erase(it);  // a preempted request starts over
      it = states_.emplace(s.request, Live{RequestState::fresh(config(), layer_begin_, layer_end_, storage_.get()), 0})
               .first;
    } else if (it == states_.end() || it->second.next_pos != s.start_pos) {
      throw std::runtime_error(fmt::format("stage: request {} extended at position {}, but its next position is {}",
                                           s.request, s.start_pos, it == states_.end() ? 0 : it->second.next_pos));
    }
    if (row + s.rows > ids.size()) throw std::runtime_error("stage: step rows exceed its ids");
    b.add(std::vector<int32_t>(ids.begin() + std::ptrdiff_t(row), ids.begin() + std::ptrdiff_t(row + s.rows)), s.start_pos,
          &it->second.state);
    it->second.next_pos = s.start_pos + s.rows;
    row += s.rows;
  }
  const std::size_t stride = std::size_t(config().hc) * config().dim;
  if (first_) X = tf_.embed(b);
  if (X.size() != std::size_t(b.rows()) * stride)
    throw std::runtime_error(fmt::format("stage: hc stream of {} floats for {} rows", X.size(), b.rows()));
  tf_.run_layers(layer_begin_, layer_end_, b, X);
}

void StageExecutor::release(int64_t request) { states_.erase(request); }

std::vector<float> StageExecutor::logits(const std::vector<float>& X, const std::vector<int>& rows) const {
  if (rows.empty()) return {};
  return tf_.logits(X, rows);
}

std::vector<std::vector<float>> StageExecutor::mtp_over_prompts(const std::vector<MtpJob>& jobs) {
  std::vector<RequestState> states;
  states.reserve(jobs.size());
  std::vector<float> h;
  StepBatch b;
  for (const auto& [rows, next] : jobs) {
    states.push_back(tf_.new_mtp_state());
    h.insert(h.end(), rows.begin(), rows.end());
    b.add(next, 0, &states.back());
  }
  const auto all = tf_.mtp_logits(h, b);
  std::vector<std::vector<float>> out;
  std::size_t at = 0;
  for (const auto& job : jobs) {
    const std::size_t n = job.second.size() * std::size_t(config().vocab);
    out.emplace_back(all.begin() + std::ptrdiff_t(at), all.begin() + std::ptrdiff_t(at + n));
    at += n;
  }
  return out;
}

}  // namespace flashline
