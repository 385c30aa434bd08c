#pragma once
// The Engine on world rank 0 (or the only process): takes requests from any thread, assigns
// each to a lane (least KV in use, then fewest requests), and runs the engine thread, which
// drives every tick (a control message to stage 0 of each lane, rank 0's own lane's step) and
// turns the token stream from the lanes' last stages into callbacks.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "runtime/engine.h"
#include "runtime/rank_loop.h"

namespace flashline {

class ServingEngine final : public Engine {
 public:
  // `loop` is rank 0's (stage 0 of lane 0). `on_fatal` (optional): called on the engine thread
  // with the cause when the engine fails (a world aborts every rank there); without it the
  // engine fails every open request and stops.
  ServingEngine(RankLoop& loop, PipelineLink& link, const ModelConfig& config, int context_limit,
                std::function<void(const std::string&)> on_fatal = {});
  ~ServingEngine() override;

  int64_t submit(EngineRequest request) override;
  void abort(int64_t request) override;
  EngineStats stats() const override;
  int context_limit() const override { return context_limit_; }
  int vocab_size() const override { return config_.vocab; }
  int eos_id() const override { return config_.eos_id; }
  bool healthy() const override { return healthy_; }
  void shutdown(double timeout_s) override;
  std::vector<RankStats> rank_stats() const override;

 private:
  struct Live {
    std::function<void(const TokenEvent&)> on_token;
    int lane = 0;
    int64_t tokens = 0;  // prompt + generated so far
    bool started = false;
  };
  void run();
  void tick_round();
  void refresh_stats();
  bool drain_stream();
  void deliver(const TokenEvent& e);
  void abort_live(int64_t id);
  void fail_all(const std::string& why);
  void finish_shutdown();

  RankLoop& loop_;
  PipelineLink& link_;
  const ModelConfig& config_;
  int context_limit_;
  std::function<void(const std::string&)> on_fatal_;
  LaneTopology topo_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<AddRecord, std::function<void(const TokenEvent&)>>> submits_;
  std::deque<int64_t> aborts_;
  bool stopping_ = false;
  double deadline_ = 0;
  int64_t next_id_ = 1;
  EngineStats stats_;
  std::vector<double> stage_time_;
  std::vector<int64_t> stage_samples_;
  std::vector<RankStats> reports_;

  // engine thread only
  std::map<int64_t, Live> live_;
  std::vector<ControlMessage> pending_;  // per lane
  std::atomic<bool> healthy_{true};
  std::thread thread_;
};

}  // namespace flashline
