#pragma once
// The gateway's Prometheus metrics (prometheus-cpp core: registry, families, text format). Names
// mirror vLLM's with a `flashline:` prefix so existing dashboards need only the prefix changed.
// Latencies are observed by the gateway as requests flow; engine figures (running, waiting, KV
// pages, token totals, preemptions, stage step times) are read from EngineStats at each scrape.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "runtime/engine.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace flashline {

class GatewayMetrics {
 public:
  explicit GatewayMetrics(const std::string& model_name);
  ~GatewayMetrics();

  // Seconds from the request's arrival to its submission to the engine (parsing, templating,
  // tokenizing, admission); the engine's own wait for KV pages is part of the time to first token.
  void observe_queue_time(double s);
  void observe_time_to_first_token(double s);
  void observe_inter_token_latency(double s);
  void observe_e2e_latency(double s);
  // One finished choice: "stop", "length", "abort", "error".
  void count_finished(std::string_view reason);
  // Requests answered with an error object, by HTTP status.
  void count_rejected(int status);

  // The text exposition format, engine figures refreshed from `stats`.
  std::string render(const EngineStats& stats);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::string model_;
  prometheus::Histogram *queue_time_, *ttft_, *itl_, *tpot_, *e2e_;
  prometheus::Family<prometheus::Counter>* finished_;
  prometheus::Family<prometheus::Counter>* rejected_;
  prometheus::Gauge *running_, *waiting_, *kv_usage_, *kv_used_, *kv_total_;
  prometheus::Counter *prompt_tokens_, *generation_tokens_, *preemptions_, *steps_;
  prometheus::Counter *spec_drafts_, *spec_draft_tokens_, *spec_accepted_;
  prometheus::Family<prometheus::Counter>* spec_accepted_at_;
  prometheus::Family<prometheus::Gauge>* stage_step_;
  std::mutex scrape_;          // counters from EngineStats advance by the difference since the last scrape
  EngineStats last_;
};

}  // namespace flashline
