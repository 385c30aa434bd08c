// `flashline bench offline`: the serving engine without HTTP (like `vllm bench throughput`), in
// one process or under mpirun for a plan (`flashline launch --run "bench offline"`): random
// prompts of --input-len ids, --output-len tokens each (EOS ignored), the same statistics, table
// and JSON as `bench serve`, and with --plan the planner's predictions beside the measured step
// times and idle shares per stage.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <random>

#include "base/input_error.h"
#include "bench/arrival_process.h"
#include "bench/bench_dataset.h"
#include "bench/plan_comparison.h"
#include "bench/serve_result.h"
#include "launch/commands.h"
#include "launch/engine_bootstrap.h"
#include "launch/engine_run.h"

namespace flashline {
namespace {

struct OfflineOptions {
  EngineOptions engine;
  std::string numerics = "fast";
  int num_prompts = 64, input_len = 128, output_len = 32;
  double range_ratio = 0;
  std::string request_rate = "inf";
  double burstiness = 1;
  uint64_t seed = 0;
  std::string percentile_metrics = "ttft,tpot,itl,e2el", metric_percentiles = "50,90,99";
  std::string save_result;
  bool warmup = true;
};

// Busy seconds per stage so far: mean step time x steps (every step passes every stage).
std::vector<double> stage_busy_s(const EngineStats& s) {
  std::vector<double> busy;
  for (double step : s.stage_step_seconds) busy.push_back(step * static_cast<double>(s.steps));
  return busy;
}

RequestRecord record_of(const RequestOutcome& r, const TimedRequest& t) {
  RequestRecord rec;
  rec.success = r.finish == FinishReason::Stop || r.finish == FinishReason::Length;
  rec.error = rec.success ? "" : (r.error.empty() ? std::string(to_string(r.finish)) : r.error);
  rec.prompt_tokens = static_cast<int64_t>(t.request.prompt.size());
  rec.output_tokens = static_cast<int64_t>(r.ids.size());
  rec.server_usage = true;
  rec.start_s = r.submitted_s;
  if (!r.token_s.empty()) {
    rec.ttft_s = r.token_s.front() - r.submitted_s;
    rec.latency_s = r.token_s.back() - r.submitted_s;
    for (std::size_t i = 1; i < r.token_s.size(); ++i) rec.itl_s.push_back(r.token_s[i] - r.token_s[i - 1]);
  } else {
    rec.latency_s = r.finished_s - r.submitted_s;
  }
  return rec;
}

void run_offline(OfflineOptions o) {
  finish_engine_flags(o.engine, o.numerics);
  if (o.num_prompts < 1) throw InputError(fmt::format("--num-prompts {}: expected at least 1", o.num_prompts));
  if (o.input_len < 1) throw InputError(fmt::format("--input-len {}: expected at least 1", o.input_len));
  if (o.output_len < 1) throw InputError(fmt::format("--output-len {}: expected at least 1", o.output_len));
  if (!(o.range_ratio >= 0 && o.range_ratio < 1))
    throw InputError(fmt::format("--range-ratio {}: expected a value in [0, 1)", o.range_ratio));
  const double rate = parse_rate(o.request_rate, "--request-rate");
  const auto metrics = parse_percentile_metrics(o.percentile_metrics);
  const auto percentiles = parse_percentiles(o.metric_percentiles);
  const auto offsets = arrival_offsets(o.num_prompts, rate, o.burstiness, o.seed);
  const ModelConfig config = engine_model_config(o.engine);
  std::optional<Plan> plan;
  if (!o.engine.plan.empty()) plan = Plan::load(o.engine.plan);

  // Prompts: ids drawn uniformly from the vocabulary, lengths as the random dataset of `bench
  // serve` draws them (the same ids on every rank: only rank 0 submits, but all parse the flags).
  std::mt19937_64 rng(o.seed);
  const auto input_lens = spread_lengths(o.input_len, o.range_ratio, o.num_prompts, rng);
  const auto output_lens = spread_lengths(o.output_len, o.range_ratio, o.num_prompts, rng);
  std::uniform_int_distribution<int32_t> id(0, config.vocab - 1);
  auto make_request = [&](int64_t prompt_len, int64_t output_len, double at) {
    TimedRequest t;
    t.arrival_s = at;
    for (int64_t i = 0; i < prompt_len; ++i) t.request.prompt.push_back(id(rng));
    t.request.sampling.max_tokens = static_cast<int32_t>(output_len);
    t.request.sampling.ignore_eos = true;
    t.request.sampling.seed = o.seed, t.request.sampling.has_seed = true;
    return t;
  };
  std::vector<TimedRequest> requests;
  for (int i = 0; i < o.num_prompts; ++i) requests.push_back(make_request(input_lens[i], output_lens[i], offsets[i]));

  auto engine = start_engine(o.engine);
  if (!engine) return;  // another rank of the world: rank 0 reports
  if (o.warmup) run_requests(*engine, {make_request(std::min(o.input_len, 16), 2, 0)});
  const EngineStats before = engine->stats();
  const auto t0 = std::chrono::steady_clock::now();
  const auto outcomes = run_requests(*engine, requests);
  const double duration = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const EngineStats after = engine->stats();
  engine->shutdown(0);

  std::vector<RequestRecord> records;
  for (std::size_t i = 0; i < outcomes.size(); ++i) records.push_back(record_of(outcomes[i], requests[i]));
  ServeRunInfo info;
  info.backend = "flashline-engine";
  info.model_id = o.engine.model;
  info.tokenizer_id = "";
  info.dataset = "random-ids";
  info.date = now_stamp();
  info.num_prompts = o.num_prompts;
  info.request_rate = rate;
  info.burstiness = o.burstiness;
  info.percentile_metrics = metrics;
  info.percentiles = percentiles;
  const BenchMetrics m = calculate_metrics(records, duration, Slo{}, percentiles);
  nlohmann::json result = serve_result_json(info, records, m);
  // `vllm bench throughput`'s keys beside the serving ones.
  result["elapsed_time"] = duration;
  result["num_requests"] = m.completed;
  result["total_num_tokens"] = m.total_input + m.total_output;
  result["requests_per_second"] = m.request_throughput;
  result["tokens_per_second"] = m.total_token_throughput;
  fmt::print("{}", serve_summary_table(info, m));
  fmt::print("Throughput: {:.2f} requests/s, {:.2f} total tokens/s, {:.2f} output tokens/s\n", m.request_throughput,
             m.total_token_throughput, m.output_throughput);
  if (plan) {
    MeasuredStages stages;
    stages.step_s = after.stage_step_seconds;
    const auto busy0 = stage_busy_s(before), busy1 = stage_busy_s(after);
    for (std::size_t s = 0; s < busy1.size(); ++s) {
      const double busy = busy1[s] - (s < busy0.size() ? busy0[s] : 0.0);
      stages.idle_share.push_back(duration > 0 ? std::clamp(1 - busy / duration, 0.0, 1.0) : 0.0);
    }
    const PhaseThroughput phases = phase_throughput(records);
    fmt::print("{}", plan_comparison_table(*plan, phases, stages, o.num_prompts));
    result["plan_comparison"] = plan_comparison_json(*plan, phases, stages);
  }
  if (!o.save_result.empty()) {
    std::ofstream out(o.save_result, std::ios::trunc);
    if (!(out << result.dump(2) << "\n") || !out.flush())
      throw InputError(fmt::format("--save-result {}: cannot write the file", o.save_result));
  }
  if (m.failed > 0) throw std::runtime_error(fmt::format("{} of {} requests failed: {}", m.failed, o.num_prompts,
                                                         result["errors"].dump()));
}

}  // namespace

void add_bench_offline_command(CLI::App& bench) {
  auto o = std::make_shared<OfflineOptions>();
  auto* cmd = bench.add_subcommand(
      "offline",
      "The serving engine without HTTP (like `vllm bench throughput`): random prompts, the serving statistics and "
      "JSON; one process, or a plan's ranks under mpirun (`flashline launch --run \"bench offline\"`)");
  add_engine_flags(*cmd, o->engine, o->numerics);
  cmd->add_option("--num-prompts", o->num_prompts, "Requests")->capture_default_str();
  cmd->add_option("--input-len", o->input_len, "Prompt ids per request")->capture_default_str();
  cmd->add_option("--output-len", o->output_len, "New tokens per request (EOS ignored)")->capture_default_str();
  cmd->add_option("--range-ratio", o->range_ratio, "Lengths uniform in [len * (1 - R), len * (1 + R)]")
      ->capture_default_str();
  cmd->add_option("--request-rate", o->request_rate, "Requests per second (gamma arrivals), or inf: all at once")
      ->capture_default_str();
  cmd->add_option("--burstiness", o->burstiness, "Gamma shape of the arrivals (1: Poisson)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of the prompts, lengths, arrivals and sampling")->capture_default_str();
  cmd->add_option("--percentile-metrics", o->percentile_metrics, "ttft,tpot,itl,e2el")->capture_default_str();
  cmd->add_option("--metric-percentiles", o->metric_percentiles, "e.g. 50,90,99")->capture_default_str();
  cmd->add_option("--save-result", o->save_result, "Write the result JSON here");
  cmd->add_flag("!--no-warmup", o->warmup, "Skip the short unmeasured request before the run");
  cmd->callback([o] { run_offline(*o); });
}

}  // namespace flashline
