#pragma once
// The OpenAI-compatible endpoints on rank 0: /v1/chat/completions, /v1/completions, /v1/models,
// /health, /version, /tokenize, /detokenize, /metrics. Requests become EngineRequests; tokens come
// back on the engine thread and are handed at once to the request's connection strand, where
// text, SSE chunks and the final JSON are made. The gateway never blocks the engine thread and
// never calls MPI.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>

#include "runtime/engine.h"
#include "serving/gateway_metrics.h"
#include "serving/http_server.h"
#include "serving/tokenizer.h"

namespace flashline {

struct GatewayOptions {
  std::string served_model_name = "deepseek-v4-flash";
  std::string model_path;      // shown as the model's root in /v1/models
  std::string api_key;         // empty: no authentication
  std::size_t max_queue = 1024;  // engine requests in flight at once (each choice counts); more: 429
  std::string numerics = "fast";
  int retry_after_s = 1;
};

class OpenAiGateway {
 public:
  OpenAiGateway(Engine& engine, const Tokenizer& tokenizer, GatewayOptions options);
  ~OpenAiGateway();

  // The HttpServer's handler.
  void handle(const std::shared_ptr<HttpExchange>& exchange);
  // Engine requests submitted and not yet finished by the engine.
  std::size_t in_flight() const;
  // Shutdown: new generation requests get 503 from now on (requests in flight go on).
  void stop_admitting() { draining_ = true; }
  // Aborts every request in flight (shutdown after the grace period).
  void abort_all();
  // Shutdown: stops admitting, waits up to `timeout_s` for requests in flight to finish, aborts
  // the rest and waits for their last events (so their clients get a finish). Returns how many
  // were aborted.
  std::size_t drain(double timeout_s);

  // {"error": {...}} for a status and message (also used for the HTTP layer's own errors).
  static std::string error_json(int status, const std::string& message);

  struct Job;  // one generation request (all its choices)

 private:
  friend struct Job;
  void handle_chat(const std::shared_ptr<HttpExchange>& ex);
  void handle_completion(const std::shared_ptr<HttpExchange>& ex);
  void handle_tokenize(const std::shared_ptr<HttpExchange>& ex);
  void handle_detokenize(const std::shared_ptr<HttpExchange>& ex);
  void check_model(const std::optional<std::string>& model) const;
  void check_engine() const;
  void reserve(std::size_t n);
  void release(std::int64_t engine_id);
  void reject(const std::shared_ptr<HttpExchange>& ex, const class ApiError& e);

  Engine& engine_;
  const Tokenizer& tokenizer_;
  GatewayOptions options_;
  GatewayMetrics metrics_;
  std::string fingerprint_;
  std::int64_t created_;
  std::atomic<std::size_t> admitted_{0};
  std::atomic<bool> draining_{false};
  mutable std::mutex live_mutex_;
  std::unordered_set<std::int64_t> live_;
};

// The version reported by /version and in the fingerprint.
inline constexpr const char* kFlashlineVersion = "0.1.0";

}  // namespace flashline
