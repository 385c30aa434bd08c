#include "runtime/rank_loop.h"

#include <fmt/format.h>

#include <chrono>

#include "base/backoff.h"

namespace flashline {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

RankLoop::RankLoop(StageExecutor& executor, PipelineLink& link, PipelineLink* data_link, ExpertExchange& exchange,
                   RankLoopConfig config)
    : ex_(executor), link_(link), data_link_(data_link), exchange_(exchange), cfg_(std::move(config)) {
  if (exchange_.size() != cfg_.topology.lanes() || exchange_.rank() != cfg_.lane)
    throw std::logic_error(fmt::format("rank loop: stage exchange is lane {} of {}, expected lane {} of {}",
                                       exchange_.rank(), exchange_.size(), cfg_.lane, cfg_.topology.lanes()));
  if (cfg_.stage == 0) {
    SchedulerLimits limits = cfg_.limits;
    limits.context_limit = cfg_.context_limit;
    scheduler_ = std::make_unique<LaneScheduler>(ex_.config(), limits, cfg_.stage_pools, cfg_.page_bytes);
  }
  if (ex_.last()) last_ = std::make_unique<LastStage>(ex_, cfg_.context_limit, cfg_.speculative_tokens);
}

// Sums small counters over the stage's lanes with the exchange itself, so the agreement is
// ordered with the MoE collectives on the same channel and needs no extra interface.
std::vector<int64_t> RankLoop::sum_over_lanes(const std::vector<int64_t>& mine) {
  std::vector<ByteBuffer> send(exchange_.size());
  for (auto& b : send) put(b, mine.data(), mine.size());
  const auto recv = exchange_.all_to_all(std::move(send));
  std::vector<int64_t> total(mine.size(), 0);
  for (int r = 0; r < exchange_.size(); ++r) {
    if (recv[r].size() != mine.size() * sizeof(int64_t))
      throw std::runtime_error(fmt::format("pipeline: malformed lane agreement from lane {}", r));
    const std::byte* p = recv[r].data();
    for (auto& t : total) t += take<int64_t>(p, recv[r].data() + recv[r].size());
  }
  return total;
}

bool RankLoop::drain_sampled() {
  const int last = cfg_.topology.ranks.back()[cfg_.lane];
  bool any = false;
  while (auto b = link_.try_recv(last, LinkTag::Sampled)) {
    scheduler_->on_sampled(SampledMessage::decode(*b));
    any = true;
  }
  // Finished or aborted requests free their state down the lane now, not at the next step:
  // no step may come for a while.
  if (any) release(scheduler_->take_releases());
  return any;
}

bool RankLoop::poll_waiting() { return drain_sampled() || (wait_hook_ && wait_hook_()); }

void RankLoop::release(const std::vector<int64_t>& ids) {
  if (ids.empty()) return;
  ForwardMessage m;
  m.kind = ForwardMessage::Kind::Release;
  m.releases = ids;
  run_step(m);
}

bool RankLoop::tick(const ControlMessage& control) {
  for (const auto& a : control.adds) scheduler_->add(a);
  for (int64_t id : control.aborts) scheduler_->abort(id);
  release(scheduler_->take_releases());
  drain_sampled();
  // Wait for a step in the pipe while the pipe is full, or while nothing else can run.
  Backoff backoff;
  while (scheduler_->in_flight() >= cfg_.limits.max_in_flight ||
         (scheduler_->in_flight() > 0 && !scheduler_->has_ready())) {
    if (!poll_waiting()) backoff.idle();
  }
  auto step = scheduler_->next_step();
  const auto total = sum_over_lanes({int64_t(step.ids.size()), step.mtp_rows});
  if (total[0] == 0) {
    release(step.releases);
    return false;
  }
  ForwardMessage m;
  m.stage_rows = int32_t(total[0]);
  m.stage_mtp_rows = int32_t(total[1]);
  m.releases = std::move(step.releases);
  m.adds = std::move(step.adds);
  m.seqs = std::move(step.seqs);
  m.ids = std::move(step.ids);
  scheduler_->step_sent();
  run_step(m);
  return true;
}

void RankLoop::run_step(ForwardMessage& m) {
  const double t0 = now_s();
  for (int64_t id : m.releases) {
    ex_.release(id);
    if (last_) last_->release(id);
  }
  if (m.kind == ForwardMessage::Kind::Step) {
    if (cfg_.fault_step >= 0 && steps_ == cfg_.fault_step)
      throw std::runtime_error("injected fault (FLASHLINE_TEST_FAULT)");
    ++steps_;
    if (last_)
      for (const auto& a : m.adds) last_->add(a);
    std::vector<ExtendSeq> seqs;
    for (const auto& s : m.seqs) seqs.push_back({s.request, s.start_pos, s.rows, s.drafts > 0});
    ex_.extend(seqs, m.ids, m.X);
    m.stage_seconds.push_back(float(now_s() - t0));
    busy_ += now_s() - t0;
  }
  if (!ex_.last()) return send_forward(m);
  if (m.kind != ForwardMessage::Kind::Step) return;
  SampledMessage sampled;
  StreamMessage stream;
  last_->finish_step(m, sampled, stream);
  link_.send(cfg_.topology.ranks[0][cfg_.lane], LinkTag::Sampled, sampled.encode());
  if (!stream.events.empty()) {
    stream.stage_seconds = m.stage_seconds;
    link_.send(0, LinkTag::Stream, stream.encode());
  }
}

void RankLoop::send_forward(const ForwardMessage& m) {
  const int next = cfg_.topology.ranks[cfg_.stage + 1][cfg_.lane];
  const bool apart = data_link_ && m.rows() > 0;
  link_.send(next, LinkTag::Forward, m.encode(!apart));
  if (apart) {
    ByteBuffer x;
    put(x, m.X.data(), m.X.size());
    data_link_->send(next, LinkTag::Forward, std::move(x));
  }
}

std::optional<ForwardMessage> RankLoop::try_receive_forward() {
  const int prev = cfg_.topology.ranks[cfg_.stage - 1][cfg_.lane];
  auto b = link_.try_recv(prev, LinkTag::Forward);
  if (!b) return std::nullopt;
  auto m = ForwardMessage::decode(*b);
  if (data_link_ && m.rows() > 0) {
    const auto x = data_link_->recv(prev, LinkTag::Forward);
    m.X.resize(x.size() / sizeof(float));
    const std::byte* p = x.data();
    take(p, x.data() + x.size(), m.X.data(), m.X.size());
  }
  return m;
}

void RankLoop::drain_in_flight() {
  Backoff backoff;
  while (scheduler_->in_flight() > 0)
    if (!poll_waiting()) backoff.idle();
}

void RankLoop::shutdown_lane() {
  ForwardMessage m;
  m.kind = ForwardMessage::Kind::Shutdown;
  if (!ex_.last()) send_forward(m);
}

void RankLoop::serve() {
  Backoff backoff;
  if (cfg_.stage == 0) {
    for (;;) {
      if (auto b = link_.try_recv(0, LinkTag::Control)) {
        const auto control = ControlMessage::decode(*b);
        if (control.shutdown) {
          drain_in_flight();  // aborted requests release their pages before the lane stops
          break;
        }
        tick(control);
        backoff.reset();
      } else if (drain_sampled()) {
        backoff.reset();
      } else {
        backoff.idle();
      }
    }
    shutdown_lane();
  } else {
    for (;;) {
      auto m = try_receive_forward();
      if (!m) {
        backoff.idle();
        continue;
      }
      backoff.reset();
      if (m->kind == ForwardMessage::Kind::Shutdown) {
        if (!ex_.last()) send_forward(*m);
        break;
      }
      run_step(*m);
    }
  }
  link_.send(0, LinkTag::Report, report().encode());
  link_.flush();
}

RankReport RankLoop::report() const {
  RankReport r;
  r.rank = link_.rank();
  r.stage = cfg_.stage;
  r.lane = cfg_.lane;
  r.pages_used = ex_.pages_used();
  r.pages_total = ex_.pages_total();
  r.live_states = ex_.live_requests() + (last_ ? last_->live() : 0);
  r.steps = steps_;
  r.busy_seconds = busy_;
  r.preemptions = scheduler_ ? scheduler_->preemptions() : 0;
  return r;
}

}  // namespace flashline
