#include "runtime/serving_engine.h"

#include <fmt/format.h>

#include <chrono>
#include <random>
#include <utility>

#include "base/backoff.h"
#include "base/input_error.h"
#include "runtime/sampler.h"

namespace flashline {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

const char* to_string(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Abort: return "abort";
    case FinishReason::Error: return "error";
    case FinishReason::None: break;
  }
  return "";
}

void SpecDecodeStats::add(const SpecDecodeStats& o) {
  drafts += o.drafts, draft_tokens += o.draft_tokens, accepted_tokens += o.accepted_tokens;
  if (accepted_at.size() < o.accepted_at.size()) accepted_at.resize(o.accepted_at.size(), 0);
  for (std::size_t i = 0; i < o.accepted_at.size(); ++i) accepted_at[i] += o.accepted_at[i];
}

ServingEngine::ServingEngine(RankLoop& loop, PipelineLink& link, const ModelConfig& config, int context_limit,
                             std::function<void(const std::string&)> on_fatal)
    : loop_(loop), link_(link), config_(config), context_limit_(context_limit), on_fatal_(std::move(on_fatal)) {
  topo_ = loop_.topology();
  pending_.resize(topo_.lanes());
  stage_time_.assign(topo_.stages(), 0.0);
  stage_samples_.assign(topo_.stages(), 0);
  // Rank 0 drains the token stream while its own lane waits for steps in flight.
  loop_.set_wait_hook([this] { return drain_stream(); });
  thread_ = std::thread([this] { run(); });
}

ServingEngine::~ServingEngine() {
  if (thread_.joinable()) shutdown(0);
}

int64_t ServingEngine::submit(EngineRequest request) {
  if (request.prompt.empty()) throw InputError("prompt: expected at least one token id");
  for (std::size_t i = 0; i < request.prompt.size(); ++i)
    if (request.prompt[i] < 0 || request.prompt[i] >= config_.vocab)
      throw InputError(fmt::format("prompt[{}]: token id {} is outside the vocabulary 0..{}", i, request.prompt[i],
                                   config_.vocab - 1));
  for (const auto& [name, ids] : {std::pair{"forced", &request.debug.forced}, {"draft_ids", &request.debug.draft_ids}})
    for (std::size_t i = 0; i < ids->size(); ++i)
      if ((*ids)[i] < 0 || (*ids)[i] >= config_.vocab)
        throw InputError(fmt::format("{}[{}]: token id {} is outside the vocabulary 0..{}", name, i, (*ids)[i],
                                     config_.vocab - 1));
  check_sampling_params(request.sampling, config_.vocab);
  const int64_t total = int64_t(request.prompt.size()) + request.sampling.max_tokens;
  if (total > context_limit_)
    throw InputError(fmt::format("prompt of {} tokens + max_tokens {} = {} tokens is over the context limit of {}",
                                 request.prompt.size(), request.sampling.max_tokens, total, context_limit_));
  if (request.debug.mtp_logits && (config_.n_mtp == 0 || request.prompt.size() < 2))
    throw InputError(config_.n_mtp == 0 ? "mtp logits: the model has no MTP block"
                                        : "mtp logits: need a prompt of at least 2 tokens");
  // A request that could never fit one lane's KV pools is refused now, not left waiting.
  const auto need = loop_.scheduler()->pages_needed(int(total));
  const auto& pools = loop_.config().stage_pools;
  for (std::size_t s = 0; s < need.size(); ++s)
    if (need[s] > pools[s].pages)
      throw InputError(fmt::format("a request of {} tokens needs {} KV pages on stage {}, but each rank's pool has {} "
                                   "(raise --kv-cache-memory or lower max_tokens)",
                                   total, need[s], s, pools[s].pages));
  AddRecord a;
  a.params = request.sampling;
  if (!a.params.has_seed) a.params.seed = std::random_device{}() * 0x100000001ull ^ std::random_device{}();
  a.prompt_len = int32_t(request.prompt.size());
  a.tokens = std::move(request.prompt);
  a.debug = std::move(request.debug);
  std::lock_guard lock(mu_);
  if (stopping_ || !healthy_) throw std::runtime_error("the engine is shutting down");
  a.request = next_id_++;
  const int64_t id = a.request;
  submits_.emplace_back(std::move(a), std::move(request.on_token));
  cv_.notify_all();
  return id;
}

void ServingEngine::abort(int64_t request) {
  std::lock_guard lock(mu_);
  aborts_.push_back(request);
  cv_.notify_all();
}

EngineStats ServingEngine::stats() const {
  std::lock_guard lock(mu_);
  EngineStats s = stats_;
  s.stage_step_seconds.resize(stage_time_.size());
  for (std::size_t i = 0; i < stage_time_.size(); ++i)
    s.stage_step_seconds[i] = stage_samples_[i] ? stage_time_[i] / double(stage_samples_[i]) : 0.0;
  return s;
}

std::vector<RankStats> ServingEngine::rank_stats() const {
  std::lock_guard lock(mu_);
  return reports_;
}

void ServingEngine::shutdown(double timeout_s) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) deadline_ = now_s() + timeout_s;
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void ServingEngine::deliver(const TokenEvent& e) {
  auto it = live_.find(e.request);
  if (it == live_.end()) return;  // aborted meanwhile
  auto& l = it->second;
  if (e.id >= 0) ++l.tokens;
  {
    std::lock_guard lock(mu_);
    if (e.id >= 0) ++stats_.generation_tokens;
    if (e.finish != FinishReason::None) {
      ++stats_.finished;
      --(l.started ? stats_.running : stats_.waiting);
    } else if (!l.started) {
      --stats_.waiting, ++stats_.running;
    }
  }
  l.started = true;
  const auto callback = l.on_token;
  if (e.finish != FinishReason::None) live_.erase(it);
  if (callback) callback(e);
}

bool ServingEngine::drain_stream() {
  bool any = false;
  for (int j = 0; j < topo_.lanes(); ++j)
    while (auto b = link_.try_recv(topo_.ranks.back()[j], LinkTag::Stream)) {
      auto m = StreamMessage::decode(*b);
      {
        std::lock_guard lock(mu_);
        for (std::size_t s = 0; s < m.stage_seconds.size() && s < stage_time_.size(); ++s)
          stage_time_[s] += m.stage_seconds[s], ++stage_samples_[s];
        stats_.spec.add(m.spec);
      }
      for (const auto& e : m.events) deliver(e);
      any = true;
    }
  return any;
}

void ServingEngine::fail_all(const std::string& why) {
  for (auto& [id, l] : live_) {
    TokenEvent e;
    e.request = id;
    e.finish = FinishReason::Error;
    e.error = why;
    if (l.on_token) l.on_token(e);
  }
  live_.clear();
}

void ServingEngine::refresh_stats() {
  std::lock_guard lock(mu_);
  const auto* s = loop_.scheduler();
  stats_.steps = loop_.steps();
  stats_.kv_pages_used = s->pages_used(0);
  stats_.kv_pages_total = loop_.config().stage_pools.at(0).pages;
  stats_.preemptions = s->preemptions();
}

// Ends a live request with an Abort event; its lane frees it with the next round's control.
void ServingEngine::abort_live(int64_t id) {
  auto it = live_.find(id);
  if (it == live_.end()) return;  // finished meanwhile
  pending_[it->second.lane].aborts.push_back(id);
  {
    std::lock_guard lock(mu_);
    --(it->second.started ? stats_.running : stats_.waiting);
    ++stats_.aborted;
  }
  TokenEvent e;
  e.request = id;
  e.finish = FinishReason::Abort;
  const auto callback = std::move(it->second.on_token);
  live_.erase(it);
  if (callback) callback(e);
}

// One round: every lane's control message, then rank 0's own tick.
void ServingEngine::tick_round() {
  for (int j = 1; j < topo_.lanes(); ++j) {
    link_.send(topo_.ranks[0][j], LinkTag::Control, pending_[j].encode());
    pending_[j] = {};
  }
  const auto own = std::exchange(pending_[0], {});
  const bool ran = loop_.tick(own);
  refresh_stats();
  if (!ran) {
    // Nothing ran anywhere (every request waits for a token in transit): wait for the stream
    // or new work instead of spinning empty rounds.
    Backoff backoff;
    for (int i = 0; i < 64 && !drain_stream(); ++i) {
      std::unique_lock lock(mu_);
      if (!submits_.empty() || !aborts_.empty()) break;
      lock.unlock();
      backoff.idle();
    }
  }
}

void ServingEngine::run() {
  try {
    for (;;) {
      bool stop = false;
      std::deque<int64_t> aborts;
      {
        std::unique_lock lock(mu_);
        if (live_.empty() && submits_.empty() && aborts_.empty() && !stopping_)
          cv_.wait_for(lock, std::chrono::milliseconds(100));
        while (!submits_.empty()) {
          auto [a, cb] = std::move(submits_.front());
          submits_.pop_front();
          // least KV in use (tokens held), then fewest requests
          std::vector<std::pair<int64_t, int64_t>> load(topo_.lanes(), {0, 0});
          for (const auto& [id, l] : live_) load[l.lane].first += l.tokens, ++load[l.lane].second;
          const int lane = int(std::min_element(load.begin(), load.end()) - load.begin());
          live_[a.request] = Live{std::move(cb), lane, int64_t(a.tokens.size()), false};
          stats_.prompt_tokens += int64_t(a.tokens.size());
          ++stats_.waiting;
          pending_[lane].adds.push_back(std::move(a));
        }
        aborts = std::exchange(aborts_, {});
      }
      for (int64_t id : aborts) abort_live(id);
      {
        std::lock_guard lock(mu_);
        stop = stopping_ && (live_.empty() || now_s() >= deadline_);
      }
      if (stop) {
        // Abort what is left, let one more round carry the aborts, then stop every rank.
        std::vector<int64_t> left;
        for (const auto& [id, l] : live_) left.push_back(id);
        for (int64_t id : left) abort_live(id);
        tick_round();
        loop_.drain_in_flight();
        return finish_shutdown();
      }
      if (loop_.poll()) refresh_stats();
      drain_stream();
      bool work = !live_.empty();
      for (const auto& p : pending_) work = work || !p.adds.empty() || !p.aborts.empty();
      if (work) tick_round();
    }
  } catch (const std::exception& e) {
    healthy_ = false;
    if (on_fatal_) on_fatal_(e.what());
    fail_all(fmt::format("engine failed: {}", e.what()));
  }
}

void ServingEngine::finish_shutdown() {
  ControlMessage stop;
  stop.shutdown = true;
  for (int j = 1; j < topo_.lanes(); ++j) link_.send(topo_.ranks[0][j], LinkTag::Control, stop.encode());
  loop_.shutdown_lane();
  std::vector<RankStats> reports;
  auto add = [&](const RankReport& r) {
    reports.push_back({r.rank, r.stage, r.lane, r.pages_used, r.pages_total, r.live_states, r.steps, r.preemptions,
                       r.busy_seconds});
  };
  add(loop_.report());
  const int world = topo_.stages() * topo_.lanes();
  Backoff backoff;
  for (int r = 1; r < world; ++r) {
    std::optional<ByteBuffer> b;
    while (!(b = link_.try_recv(r, LinkTag::Report))) {
      drain_stream();
      backoff.idle();
    }
    add(RankReport::decode(*b));
  }
  drain_stream();
  link_.flush();
  std::lock_guard lock(mu_);
  reports_ = std::move(reports);
  healthy_ = false;
}

}  // namespace flashline
