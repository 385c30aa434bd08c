#pragma once
// What one rank runs: stage 0 of a lane ticks (schedules a step and runs it) once per control
// message from rank 0; every later stage serves the steps of its lane as they arrive; the last
// stage samples and streams. A single process is the same loop with one stage, one lane and
// loopback transports. Messages and their order: docs/engine.md.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "comms/expert_exchange.h"
#include "comms/pipeline_link.h"
#include "runtime/lane_scheduler.h"
#include "runtime/last_stage.h"
#include "runtime/pipeline_message.h"
#include "stages/stage_executor.h"

namespace flashline {

struct LaneTopology {
  std::vector<std::vector<int>> ranks;  // ranks[stage][lane] = world rank
  int stages() const { return int(ranks.size()); }
  int lanes() const { return ranks.empty() ? 0 : int(ranks[0].size()); }
  static LaneTopology single() { return {{{0}}}; }
};

struct RankLoopConfig {
  LaneTopology topology;
  int stage = 0, lane = 0;
  SchedulerLimits limits;
  std::vector<StagePool> stage_pools;  // layers and pool pages of every stage (same in every lane)
  std::size_t page_bytes = 0;
  int context_limit = 0;
  int speculative_tokens = 0;  // MTP drafts per request and step (docs/speculative.md); 0: off
  int64_t fault_step = -1;  // test switch: throw at this step (FLASHLINE_TEST_FAULT)
};

class RankLoop {
 public:
  // `data_link` (optional) carries the hc stream apart from the step's header (a device link
  // that cannot be polled); without it the stream travels inside the Forward message.
  RankLoop(StageExecutor& executor, PipelineLink& link, PipelineLink* data_link, ExpertExchange& exchange,
           RankLoopConfig config);

  // Stage 0: one tick with this lane's control message (new requests, aborts). All stage-0
  // ranks tick together (rank 0 sends every control message of a round). True when a step
  // with rows ran on some lane.
  bool tick(const ControlMessage& control);
  // Stage 0: takes the sampled ids that have come back (and sends the releases they cause)
  // without ticking; true if any came.
  bool poll() { return drain_sampled(); }
  // Stage 0: waits until every step in flight has come back.
  void drain_in_flight();
  // Stage 0: tells the later stages of the lane to stop.
  void shutdown_lane();
  // Every rank but rank 0: serves until the shutdown, then sends its report to rank 0.
  void serve();
  // Called while stage 0 waits for steps in flight (rank 0 drains the token stream there);
  // returns whether it found something.
  void set_wait_hook(std::function<bool()> hook) { wait_hook_ = std::move(hook); }

  RankReport report() const;
  const RankLoopConfig& config() const { return cfg_; }
  const LaneTopology& topology() const { return cfg_.topology; }
  const LaneScheduler* scheduler() const { return scheduler_.get(); }
  int64_t steps() const { return steps_; }

 private:
  bool drain_sampled();
  // One poll while stage 0 waits for steps in flight: sampled ids, else rank 0's hook.
  bool poll_waiting();
  void release(const std::vector<int64_t>& ids);
  void run_step(ForwardMessage& m);
  void send_forward(const ForwardMessage& m);
  std::optional<ForwardMessage> try_receive_forward();
  std::vector<int64_t> sum_over_lanes(const std::vector<int64_t>& mine);

  StageExecutor& ex_;
  PipelineLink& link_;
  PipelineLink* data_link_;
  ExpertExchange& exchange_;
  RankLoopConfig cfg_;
  std::unique_ptr<LaneScheduler> scheduler_;  // stage 0
  std::unique_ptr<LastStage> last_;           // last stage
  std::function<bool()> wait_hook_;
  int64_t steps_ = 0;
  double busy_ = 0;
};

}  // namespace flashline
