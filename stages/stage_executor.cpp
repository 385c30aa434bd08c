#include "stages/stage_executor.h"

#include <fmt/format.h>

namespace flashline {

StageExecutor::StageExecutor(Transformer& tf, int layer_begin, int layer_end, bool first, bool last,
                             std::unique_ptr<KvStorage> storage)
    : tf_(tf), layer_begin_(layer_begin), layer_end_(layer_end), first_(first), last_(last), storage_(std::move(storage)) {}

StageExecutor::Live& StageExecutor::prepare(LiveMap& live, const ExtendSeq& s, int begin, int end) {
  auto it = live.find(s.request);
  if (s.start_pos == 0) {
    if (it != live.end()) live.erase(it);  // a preempted request starts over
    it = live.emplace(s.request, Live{RequestState::fresh(config(), begin, end, storage_.get())}).first;
  } else if (it == live.end()) {
    throw std::runtime_error(fmt::format("stage: request {} extended at position {} has no state", s.request, s.start_pos));
  }
  Live& l = it->second;
  if (s.start_pos < l.next_pos && l.journal_from >= 0 && s.start_pos >= l.journal_from) {
    l.state.rollback(s.start_pos);  // the previous step's rejected drafts
    l.next_pos = s.start_pos;
  }
  if (s.start_pos != l.next_pos)
    throw std::runtime_error(fmt::format("stage: request {} extended at position {}, but its next position is {}",
                                         s.request, s.start_pos, l.next_pos));
  if (l.journal_from >= 0) l.state.close_journal(), l.journal_from = -1;
  if (s.speculative) l.state.open_journal(), l.journal_from = s.start_pos;
  l.next_pos = s.start_pos + s.rows;
  return l;
}

void StageExecutor::extend(const std::vector<ExtendSeq>& seqs, const std::vector<int32_t>& ids, std::vector<float>& X) {
  StepBatch b;
  std::size_t row = 0;
  for (const auto& s : seqs) {
    if (row + s.rows > ids.size()) throw std::runtime_error("stage: step rows exceed its ids");
    Live& l = prepare(states_, s, layer_begin_, layer_end_);
    b.add(std::vector<int32_t>(ids.begin() + std::ptrdiff_t(row), ids.begin() + std::ptrdiff_t(row + s.rows)), s.start_pos,
          &l.state);
    row += s.rows;
  }
  const std::size_t stride = std::size_t(config().hc) * config().dim;
  if (first_) X = tf_.embed(b);
  if (X.size() != std::size_t(b.rows()) * stride)
    throw std::runtime_error(fmt::format("stage: hc stream of {} floats for {} rows", X.size(), b.rows()));
  tf_.run_layers(layer_begin_, layer_end_, b, X);
}

const RequestState* StageExecutor::state(int64_t request) const {
  auto it = states_.find(request);
  return it == states_.end() ? nullptr : &it->second.state;
}

const RequestState* StageExecutor::mtp_state(int64_t request) const {
  auto it = mtp_states_.find(request);
  return it == mtp_states_.end() ? nullptr : &it->second.state;
}

void StageExecutor::release(int64_t request) {
  states_.erase(request);
  mtp_states_.erase(request);
}

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

StageExecutor::MtpOutput StageExecutor::extend_mtp(const std::vector<ExtendSeq>& seqs,
                                                  const std::vector<int32_t>& next_ids, const std::vector<float>& h,
                                                  bool draft) {
  const auto& c = config();
  StepBatch b;
  std::size_t row = 0;
  for (const auto& s : seqs) {
    if (row + s.rows > next_ids.size()) throw std::runtime_error("stage: MTP rows exceed their ids");
    Live* l = nullptr;
    if (draft) {
      // Drafts on drafts extend the committed state under an open journal (one per run of
      // drafts); discard_mtp_drafts undoes them.
      auto it = mtp_states_.find(s.request);
      if (it == mtp_states_.end() || it->second.next_pos != s.start_pos)
        throw std::runtime_error(fmt::format("stage: MTP draft of request {} at position {} is not its next", s.request,
                                             s.start_pos));
      l = &it->second;
      if (l->journal_from < 0) l->state.open_journal(), l->journal_from = s.start_pos;
      l->next_pos += s.rows;
    } else {
      auto it = mtp_states_.find(s.request);
      if (it != mtp_states_.end() && it->second.journal_from >= 0)
        throw std::logic_error("stage: MTP state extended before its drafts were discarded");
      l = &prepare(mtp_states_, s, c.n_layers, c.n_layers + c.n_mtp);
    }
    b.add(std::vector<int32_t>(next_ids.begin() + std::ptrdiff_t(row), next_ids.begin() + std::ptrdiff_t(row + s.rows)),
          s.start_pos, &l->state);
    row += s.rows;
  }
  if (h.size() != std::size_t(b.rows()) * c.hc * c.dim)
    throw std::runtime_error(fmt::format("stage: MTP input of {} floats for {} rows", h.size(), b.rows()));
  MtpOutput out;
  out.logits = tf_.mtp_logits(h, b, 0, &out.X);
  return out;
}

void StageExecutor::discard_mtp_drafts(int64_t request) {
  auto it = mtp_states_.find(request);
  if (it == mtp_states_.end() || it->second.journal_from < 0) return;
  Live& l = it->second;
  l.state.rollback(l.journal_from);
  l.state.close_journal();
  l.next_pos = l.journal_from;
  l.journal_from = -1;
}

}  // namespace flashline
