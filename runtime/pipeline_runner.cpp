#include "runtime/pipeline_runner.h"

#include <fmt/format.h>

#include <chrono>

#include "base/byte_codec.h"
#include "runtime/micro_batch_schedule.h"

namespace flashline {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Sums small counters over the stage's lanes with the exchange itself, so the agreement is
// ordered with the MoE collectives on the same channel and needs no extra interface.
std::vector<int64_t> sum_over_lanes(ExpertExchange& ex, const std::vector<int64_t>& mine) {
  std::vector<ByteBuffer> send(ex.size());
  for (auto& b : send) put(b, mine.data(), mine.size());
  const auto recv = ex.all_to_all(std::move(send));
  std::vector<int64_t> total(mine.size(), 0);
  for (int r = 0; r < ex.size(); ++r) {
    if (recv[r].size() != mine.size() * sizeof(int64_t))
      throw std::runtime_error(fmt::format("pipeline: malformed lane agreement from lane {}", r));
    const std::byte* p = recv[r].data();
    for (auto& t : total) t += take<int64_t>(p, recv[r].data() + recv[r].size());
  }
  return total;
}

}  // namespace

PipelineRunner::PipelineRunner(StageExecutor& executor, PipelineTopology topology, int stage, int lane,
                               PipelineLink& link, ExpertExchange& exchange, int micro_batches)
    : ex_(executor),
      topo_(std::move(topology)),
      stage_(stage),
      lane_(lane),
      link_(link),
      exchange_(exchange),
      slots_(micro_batches > 0 ? micro_batches : topo_.stages()) {
  if (exchange_.size() != topo_.lanes() || exchange_.rank() != lane_)
    throw std::logic_error(fmt::format("pipeline: stage exchange is lane {} of {}, expected lane {} of {}",
                                       exchange_.rank(), exchange_.size(), lane_, topo_.lanes()));
}

double PipelineRunner::elapsed() const { return now_s() - start_; }

std::vector<GenerationResult> PipelineRunner::run(const std::vector<GenerationRequest>& requests) {
  start_ = now_s();
  results_.assign(requests.size(), {});
  if (stage_ == 0)
    drive_first_stage(requests);
  else
    follow(requests);
  if (ex_.last()) send_results(requests);
  auto out = link_.rank() == 0 ? collect(requests) : std::vector<GenerationResult>{};
  link_.flush();
  return out;
}

void PipelineRunner::drive_first_stage(const std::vector<GenerationRequest>& reqs) {
  const MicroBatchSchedule sched(int(reqs.size()), topo_.lanes(), slots_);
  const int eos = ex_.config().eos_id;
  struct Progress {
    std::vector<int32_t> ids;
    bool started = false, finished = false;
  };
  std::vector<Progress> prog(reqs.size());
  std::vector<bool> awaiting(slots_, false);  // the slot's previous step is still in the pipe
  std::vector<int> rounds(slots_, 0);
  const int last_rank = topo_.ranks.back()[lane_];
  for (int tick = 0;; ++tick) {
    const int slot = sched.slot_at_tick(tick);
    if (awaiting[slot]) {
      for (const auto& e : decode_sampled(link_.recv(last_rank, LinkTag::Sampled))) {
        auto& p = prog.at(e.request);
        if (e.id >= 0) p.ids.push_back(e.id);
        p.finished = e.finished != 0;
      }
      awaiting[slot] = false;
    }
    ForwardMessage mb;
    mb.slot = slot;
    mb.round = rounds[slot]++;
    int64_t mtp = 0, unfinished = 0;
    for (int r : sched.slot_requests(lane_, slot)) {
      auto& p = prog[r];
      const auto& q = reqs[r];
      if (p.finished) continue;
      if (!p.started) {
        mb.seqs.push_back({r, 0, int32_t(q.prompt.size())});
        mb.ids.insert(mb.ids.end(), q.prompt.begin(), q.prompt.end());
        mtp += mtp_rows(q, mb.seqs.back());
        p.started = true;
      } else {
        mb.seqs.push_back({r, int32_t(q.prompt.size() + p.ids.size()) - 1, 1});
        mb.ids.push_back(p.ids.back());
      }
    }
    for (int r : sched.lane_requests(lane_)) unfinished += !prog[r].finished;
    const auto total = sum_over_lanes(exchange_, {mb.rows(), mtp, unfinished});
    if (total[2] == 0) {
      ForwardMessage end;
      end.end = true;
      if (!ex_.last()) link_.send(topo_.ranks[1][lane_], LinkTag::Forward, end.encode());
      return;
    }
    mb.stage_rows = int32_t(total[0]);
    mb.stage_mtp_rows = int32_t(total[1]);
    if (mb.rows() > 0) awaiting[slot] = true;
    pass_on(mb, reqs);
  }
  (void)eos;
}

void PipelineRunner::follow(const std::vector<GenerationRequest>& reqs) {
  const int prev = topo_.ranks[stage_ - 1][lane_];
  for (;;) {
    ForwardMessage mb = ForwardMessage::decode(link_.recv(prev, LinkTag::Forward));
    if (mb.end) {
      if (!ex_.last()) link_.send(topo_.ranks[stage_ + 1][lane_], LinkTag::Forward, mb.encode());
      return;
    }
    pass_on(mb, reqs);
  }
}

void PipelineRunner::pass_on(ForwardMessage& mb, const std::vector<GenerationRequest>& reqs) {
  if (mb.stage_rows > 0) ex_.run(mb);
  if (ex_.last())
    finish_micro_batch(mb, reqs);
  else
    link_.send(topo_.ranks[stage_ + 1][lane_], LinkTag::Forward, mb.encode());
}

void PipelineRunner::finish_micro_batch(const ForwardMessage& mb, const std::vector<GenerationRequest>& reqs) {
  if (mb.stage_rows == 0) return;
  const int V = ex_.config().vocab, eos = ex_.config().eos_id;
  std::vector<std::vector<float>> mtp(mb.seqs.size());
  if (mb.stage_mtp_rows > 0) mtp = ex_.mtp(mb, reqs);  // collective even without rows here
  if (mb.rows() == 0) return;
  std::vector<int> row_of, n_rows;
  const auto logits = ex_.logits(mb, reqs, row_of, n_rows);
  std::vector<SampledEntry> sampled;
  for (std::size_t i = 0; i < mb.seqs.size(); ++i) {
    const auto& s = mb.seqs[i];
    const auto& q = reqs.at(s.request);
    auto& res = results_.at(s.request);
    const float* first = &logits[std::size_t(row_of[i]) * V];
    if (s.start_pos == 0) {
      if (q.keep_prefill_logits) res.prefill_logits.assign(first, first + std::size_t(n_rows[i]) * V);
      res.mtp_logits = std::move(mtp[i]);
      res.prefill_done_s = elapsed();
    }
    SampledEntry e{s.request, -1, 1};
    if (!res.finished(q, eos)) {
      res.accept(q, first + std::size_t(n_rows[i] - 1) * V, V);
      e.id = res.ids.back();
      e.finished = res.finished(q, eos);
    }
    if (e.finished) res.finished_s = elapsed();
    sampled.push_back(e);
  }
  link_.send(topo_.ranks[0][lane_], LinkTag::Sampled, encode_sampled(sampled));
}

void PipelineRunner::send_results(const std::vector<GenerationRequest>& reqs) {
  const MicroBatchSchedule sched(int(reqs.size()), topo_.lanes(), slots_);
  std::vector<std::pair<int32_t, const GenerationResult*>> mine;
  for (int r : sched.lane_requests(lane_)) mine.emplace_back(r, &results_[r]);
  link_.send(0, LinkTag::Results, encode_results(mine));
}

std::vector<GenerationResult> PipelineRunner::collect(const std::vector<GenerationRequest>& reqs) {
  std::vector<GenerationResult> out(reqs.size());
  for (int j = 0; j < topo_.lanes(); ++j)
    for (auto& [index, r] : decode_results(link_.recv(topo_.ranks.back()[j], LinkTag::Results)))
      out.at(index) = std::move(r);
  return out;
}

}  // namespace flashline
