#pragma once
// An Engine for gateway tests that replies with scripted text instead of running a model, so
// tool calls, reasoning and stop strings (which a random tiny model never writes) can be tested
// through HTTP. The reply is chosen by a keyword in the prompt text:
//   SCRIPT:tool   a DSML tool call of get_weather(city="Paris")
//   SCRIPT:think  "Let me add 2 and 2.</think>The answer is 4."
//   SCRIPT:long   "word word word ..." until max_tokens
//   anything else "Hello! This is a scripted reply. Stop here, please."
// then EOS. One token per `interval` per request, on the engine's own thread, as the real engine
// does; abort, max_tokens, stop_token_ids, ignore_eos and logprobs behave as documented in
// runtime/engine.h. Each request holds one "KV page" until it finishes.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "runtime/engine.h"
#include "serving/tokenizer.h"

namespace flashline::test {

class ScriptedEngine : public Engine {
 public:
  ScriptedEngine(const Tokenizer& tokenizer, int context_limit, std::chrono::microseconds interval);
  ~ScriptedEngine() override;

  int64_t submit(EngineRequest request) override;
  void abort(int64_t request) override;
  EngineStats stats() const override;
  int context_limit() const override { return context_limit_; }
  int vocab_size() const override { return tokenizer_.vocab_size(); }
  int eos_id() const override { return 1; }
  bool healthy() const override { return healthy_; }
  void shutdown(double timeout_s) override;
  std::vector<RankStats> rank_stats() const override { return {}; }

  void set_healthy(bool h) { healthy_ = h; }
  static constexpr int64_t kPages = 1024;

 private:
  struct Active {
    EngineRequest request;
    std::vector<int32_t> reply;  // scripted ids, EOS last (or empty: "word" forever)
    std::size_t next = 0;
    int32_t generated = 0;
    bool abort = false;
  };
  void loop();

  const Tokenizer& tokenizer_;
  int context_limit_;
  std::chrono::microseconds interval_;
  std::atomic<bool> healthy_{true};
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::map<int64_t, Active> active_;
  int64_t next_id_ = 1;
  int64_t prompt_tokens_ = 0, generation_tokens_ = 0, finished_ = 0, aborted_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace flashline::test
