#include "serving/gateway_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <string>

namespace flashline {

namespace {

using prometheus::Histogram;

// vLLM's buckets, so histograms from both servers can be compared.
const Histogram::BucketBoundaries kTtftBuckets{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
                                               1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
const Histogram::BucketBoundaries kTokenBuckets{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
                                                0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
const Histogram::BucketBoundaries kRequestBuckets{0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,    10.0,  15.0, 20.0,
                                                  30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};

}  // namespace

GatewayMetrics::GatewayMetrics(const std::string& model_name)
    : registry_(std::make_shared<prometheus::Registry>()), model_(model_name) {
  const prometheus::Labels model{{"model_name", model_name}};
  auto histogram = [&](const char* name, const char* help, const Histogram::BucketBoundaries& buckets) {
    return &prometheus::BuildHistogram().Name(name).Help(help).Register(*registry_).Add(model, buckets);
  };
  auto gauge = [&](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(*registry_).Add(model);
  };
  auto counter = [&](const char* name, const char* help) {
    return &prometheus::BuildCounter().Name(name).Help(help).Register(*registry_).Add(model);
  };
  queue_time_ = histogram("flashline:request_queue_time_seconds",
                          "Seconds from arrival to submission to the engine.", kRequestBuckets);
  ttft_ = histogram("flashline:time_to_first_token_seconds", "Seconds from arrival to the first token.", kTtftBuckets);
  itl_ = histogram("flashline:inter_token_latency_seconds", "Seconds between consecutive tokens of a request.",
                   kTokenBuckets);
  tpot_ = histogram("flashline:time_per_output_token_seconds",
                    "Seconds between consecutive tokens of a request (vLLM's older name).", kTokenBuckets);
  e2e_ = histogram("flashline:e2e_request_latency_seconds", "Seconds from arrival to the last token.",
                   kRequestBuckets);
  finished_ = &prometheus::BuildCounter()
                   .Name("flashline:request_success_total")
                   .Help("Finished choices by finish reason.")
                   .Register(*registry_);
  rejected_ = &prometheus::BuildCounter()
                   .Name("flashline:request_rejected_total")
                   .Help("Requests answered with an error object, by HTTP status.")
                   .Register(*registry_);
  running_ = gauge("flashline:num_requests_running", "Requests admitted and generating.");
  waiting_ = gauge("flashline:num_requests_waiting", "Requests queued in the engine for KV pages.");
  kv_usage_ = gauge("flashline:kv_cache_usage_perc", "Fraction of rank 0's KV pages in use (1 = full).");
  kv_used_ = gauge("flashline:kv_cache_pages_used", "KV pages in use on rank 0.");
  kv_total_ = gauge("flashline:kv_cache_pages_total", "KV pages on rank 0.");
  prompt_tokens_ = counter("flashline:prompt_tokens_total", "Prompt tokens processed.");
  generation_tokens_ = counter("flashline:generation_tokens_total", "Tokens generated.");
  preemptions_ = counter("flashline:num_preemptions_total", "Requests preempted (KV pages reclaimed).");
  steps_ = counter("flashline:engine_steps_total", "Steps run by stage 0 of lane 0 (every step passes every stage).");
  // Speculative decoding, vLLM's spec_decode names: acceptance rate = accepted / draft tokens,
  // mean acceptance length = 1 + accepted / drafts.
  spec_drafts_ = counter("flashline:spec_decode_num_drafts_total", "Verification steps that carried drafts.");
  spec_draft_tokens_ = counter("flashline:spec_decode_num_draft_tokens_total", "Draft tokens verified.");
  spec_accepted_ = counter("flashline:spec_decode_num_accepted_tokens_total", "Draft tokens accepted.");
  spec_accepted_at_ = &prometheus::BuildCounter()
                           .Name("flashline:spec_decode_num_accepted_tokens_per_pos_total")
                           .Help("Draft tokens accepted, by position in the draft (0: the first).")
                           .Register(*registry_);
  stage_step_ = &prometheus::BuildGauge()
                     .Name("flashline:stage_step_seconds")
                     .Help("Mean step time of each pipeline stage (this lane's view).")
                     .Register(*registry_);
  for (const char* reason : {"stop", "length", "abort", "error"}) finished_->Add({{"model_name", model_}, {"finished_reason", reason}});
}

GatewayMetrics::~GatewayMetrics() = default;

void GatewayMetrics::observe_queue_time(double s) { queue_time_->Observe(s); }
void GatewayMetrics::observe_time_to_first_token(double s) { ttft_->Observe(s); }
void GatewayMetrics::observe_inter_token_latency(double s) {
  itl_->Observe(s);
  tpot_->Observe(s);
}
void GatewayMetrics::observe_e2e_latency(double s) { e2e_->Observe(s); }

void GatewayMetrics::count_finished(std::string_view reason) {
  finished_->Add({{"model_name", model_}, {"finished_reason", std::string(reason)}}).Increment();
}

void GatewayMetrics::count_rejected(int status) {
  rejected_->Add({{"model_name", model_}, {"status", std::to_string(status)}}).Increment();
}

std::string GatewayMetrics::render(const EngineStats& s) {
  std::lock_guard lock(scrape_);
  running_->Set(static_cast<double>(s.running));
  waiting_->Set(static_cast<double>(s.waiting));
  kv_used_->Set(static_cast<double>(s.kv_pages_used));
  kv_total_->Set(static_cast<double>(s.kv_pages_total));
  kv_usage_->Set(s.kv_pages_total > 0 ? static_cast<double>(s.kv_pages_used) / static_cast<double>(s.kv_pages_total) : 0.0);
  auto advance = [](prometheus::Counter* c, int64_t now, int64_t before) {
    if (now > before) c->Increment(static_cast<double>(now - before));
  };
  advance(prompt_tokens_, s.prompt_tokens, last_.prompt_tokens);
  advance(generation_tokens_, s.generation_tokens, last_.generation_tokens);
  advance(preemptions_, s.preemptions, last_.preemptions);
  advance(steps_, s.steps, last_.steps);
  advance(spec_drafts_, s.spec.drafts, last_.spec.drafts);
  advance(spec_draft_tokens_, s.spec.draft_tokens, last_.spec.draft_tokens);
  advance(spec_accepted_, s.spec.accepted_tokens, last_.spec.accepted_tokens);
  for (std::size_t i = 0; i < s.spec.accepted_at.size(); ++i)
    advance(&spec_accepted_at_->Add({{"model_name", model_}, {"position", std::to_string(i)}}), s.spec.accepted_at[i],
            i < last_.spec.accepted_at.size() ? last_.spec.accepted_at[i] : 0);
  last_ = s;
  for (std::size_t i = 0; i < s.stage_step_seconds.size(); ++i)
    stage_step_->Add({{"model_name", model_}, {"stage", std::to_string(i)}}).Set(s.stage_step_seconds[i]);
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace flashline
