#include "runtime/lane_scheduler.h"

#include <algorithm>
#include <stdexcept>

#include "stages/request_state.h"

namespace flashline {

LaneScheduler::LaneScheduler(const ModelConfig& config, SchedulerLimits limits, std::vector<StagePool> stages,
                             std::size_t page_bytes)
    : config_(config), limits_(limits), stages_(std::move(stages)), page_bytes_(page_bytes), used_(stages_.size(), 0) {
  if (limits_.max_batch_tokens < 1 || limits_.max_seqs < 1 || limits_.prefill_chunk < 0 || limits_.max_in_flight < 1)
    throw std::invalid_argument("scheduler: limits must be positive");
}

std::vector<int64_t> LaneScheduler::pages_needed(int tokens) const {
  std::vector<int64_t> need;
  for (const auto& s : stages_) {
    need.push_back(kv_pages_for(config_, s.layer_begin, s.layer_end, tokens, page_bytes_));
    if (s.mtp_layers > 0)
      need.back() += kv_pages_for(config_, config_.n_layers, config_.n_layers + s.mtp_layers, tokens, page_bytes_);
  }
  return need;
}

bool LaneScheduler::fits(const std::vector<int64_t>& need) const {
  for (std::size_t s = 0; s < stages_.size(); ++s)
    if (used_[s] + need[s] > stages_[s].pages) return false;
  return true;
}

void LaneScheduler::add(AddRecord request) {
  const int64_t id = request.request;
  if (requests_.count(id)) throw std::logic_error("scheduler: request added twice");
  Request r;
  r.add = std::move(request);
  r.pages.assign(stages_.size(), 0);
  requests_.emplace(id, std::move(r));
  waiting_.push_back(id);
}

void LaneScheduler::free_pages(Request& r) {
  for (std::size_t s = 0; s < stages_.size(); ++s) used_[s] -= r.pages[s], r.pages[s] = 0;
}

void LaneScheduler::finish(int64_t id) {
  auto& r = requests_.at(id);
  free_pages(r);
  releases_.push_back(id);
  running_.erase(std::remove(running_.begin(), running_.end(), id), running_.end());
  requests_.erase(id);
}

void LaneScheduler::preempt(int64_t id) {
  auto& r = requests_.at(id);
  free_pages(r);
  releases_.push_back(id);
  r.computed = 0;
  r.announced = false;
  r.drafts.clear();
  running_.erase(std::remove(running_.begin(), running_.end(), id), running_.end());
  waiting_.push_front(id);
  ++preemptions_;
}

void LaneScheduler::abort(int64_t id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  auto w = std::find(waiting_.begin(), waiting_.end(), id);
  if (w != waiting_.end()) {
    waiting_.erase(w);
    // A preempted request was released when it was preempted; a new one never reached a stage.
    requests_.erase(it);
  } else if (it->second.in_flight) {
    it->second.aborted = true;
  } else {
    finish(id);
  }
}

void LaneScheduler::on_sampled(const SampledMessage& m) {
  if (in_flight_ <= 0) throw std::runtime_error("scheduler: sampled ids for a step never sent");
  --in_flight_;
  for (const auto& e : m.entries) {
    auto it = requests_.find(e.request);
    if (it == requests_.end()) continue;
    auto& r = it->second;
    r.in_flight = false;
    r.drafted += r.sent_drafts;
    r.accepted += std::min<int64_t>(r.sent_drafts, std::max<int64_t>(0, int64_t(e.ids.size()) - 1));
    r.sent_drafts = 0;
    r.add.tokens.insert(r.add.tokens.end(), e.ids.begin(), e.ids.end());
    // Every stage keeps the rows up to the newest token's position (which is not yet fed):
    // the rows of rejected drafts are rolled back by the next step that starts there.
    if (!e.ids.empty()) r.computed = int(r.add.tokens.size()) - 1;
    r.drafts = e.drafts;
    if (r.aborted || e.finished) finish(e.request);
  }
}

std::vector<int64_t> LaneScheduler::take_releases() { return std::exchange(releases_, {}); }

bool LaneScheduler::has_ready() const {
  for (int64_t id : running_) {
    const auto& r = requests_.at(id);
    if (!r.in_flight && !r.aborted && r.computed < int(r.add.tokens.size())) return true;
  }
  return !waiting_.empty() && fits(pages_needed(int(requests_.at(waiting_.front()).add.tokens.size())));
}

// Accounts the pages `r` needs to hold `tokens` tokens; preempts newer requests that are not
// in the pipe and not part of this step while the lane lacks them. False: not now.
bool LaneScheduler::grow(Request& r, int tokens, const std::vector<int64_t>& scheduled) {
  auto total = pages_needed(tokens);
  std::vector<int64_t> need(stages_.size());
  for (std::size_t s = 0; s < stages_.size(); ++s) need[s] = std::max<int64_t>(0, total[s] - r.pages[s]);
  while (!fits(need)) {
    int64_t victim = -1, newest = r.order;
    for (int64_t id : running_) {
      const auto& v = requests_.at(id);
      if (v.order > newest && !v.in_flight && std::find(scheduled.begin(), scheduled.end(), id) == scheduled.end())
        victim = id, newest = v.order;
    }
    if (victim < 0) return false;
    preempt(victim);
  }
  for (std::size_t s = 0; s < stages_.size(); ++s) used_[s] += need[s], r.pages[s] += need[s];
  return true;
}

// Drafts a decode of `r` carries: what the last stage proposed, within the step's budget, and
// never past the request's max_tokens or the context limit (a draft at position p is verified
// by the token sampled at p + 1); none once the request's acceptance has proved too poor.
int LaneScheduler::drafts_for(const Request& r, int budget) const {
  if (r.drafted >= 16 && double(r.accepted) < limits_.speculative_min_acceptance * double(r.drafted)) return 0;
  const int generated = int(r.add.tokens.size()) - r.add.prompt_len;
  int n = std::min({int(r.drafts.size()), budget - 1, r.add.params.max_tokens - generated - 1});
  if (limits_.context_limit > 0) n = std::min(n, limits_.context_limit - 2 - r.computed);
  return std::max(n, 0);
}

void LaneScheduler::schedule(Request& r, int n, bool sample, int drafts, ScheduledStep& step) {
  if (!r.announced) step.adds.push_back(r.add), r.announced = true;
  step.seqs.push_back({r.add.request, r.computed, n + drafts, sample ? 1 : 0, drafts});
  if (r.add.debug.mtp_logits && r.computed + n == r.add.prompt_len && r.add.prompt_len >= 2)
    step.mtp_rows += r.add.prompt_len - 1;
  step.ids.insert(step.ids.end(), r.add.tokens.begin() + r.computed, r.add.tokens.begin() + r.computed + n);
  step.ids.insert(step.ids.end(), r.drafts.begin(), r.drafts.begin() + drafts);
  r.computed += n + drafts;
  r.drafts.clear();
  r.sent_drafts = drafts;
  r.in_flight = sample;
}

ScheduledStep LaneScheduler::next_step() {
  ScheduledStep step;
  int budget = limits_.max_batch_tokens, seqs = limits_.max_seqs;
  std::vector<int64_t> scheduled;
  const int64_t preempted_before = preemptions_;
  auto chunk_of = [&](const Request& r) {
    const int remaining = int(r.add.tokens.size()) - r.computed;
    return std::min({remaining, budget, limits_.prefill_chunk > 0 ? limits_.prefill_chunk : remaining});
  };
  // Running decodes first, then the prefill chunks of admitted requests, oldest first.
  for (bool decodes : {true, false}) {
    const auto order = running_;  // preemption edits running_
    for (int64_t id : order) {
      auto it = requests_.find(id);
      if (it == requests_.end() || std::find(running_.begin(), running_.end(), id) == running_.end()) continue;
      auto& r = it->second;
      const int remaining = int(r.add.tokens.size()) - r.computed;
      if (r.in_flight || r.aborted || remaining <= 0 || (remaining == 1) != decodes) continue;
      if (budget < 1 || seqs < 1) break;
      const int n = chunk_of(r);
      const int drafts = decodes ? drafts_for(r, budget) : 0;
      if (!grow(r, r.computed + n + drafts, scheduled)) continue;
      schedule(r, n, r.computed + n == int(r.add.tokens.size()), drafts, step);
      scheduled.push_back(id), budget -= n + drafts, --seqs;
    }
  }
  // Admissions, first come first served, while the whole sequence so far fits everywhere. Not
  // in a step that preempted: the freed pages were needed by the running requests.
  while (!waiting_.empty() && budget > 0 && seqs > 0 && preemptions_ == preempted_before) {
    auto& r = requests_.at(waiting_.front());
    if (!fits(pages_needed(int(r.add.tokens.size())))) break;
    waiting_.pop_front();
    r.order = next_order_++;
    running_.push_back(r.add.request);
    const int n = chunk_of(r);
    if (!grow(r, n, scheduled)) throw std::logic_error("scheduler: an admitted request does not fit");
    schedule(r, n, n == int(r.add.tokens.size()), 0, step);
    scheduled.push_back(r.add.request), budget -= n, --seqs;
  }
  step.releases = take_releases();
  return step;
}

}  // namespace flashline
