#pragma once
// `flashline bench serve` and `bench sweep`: a serving benchmark against any OpenAI-compatible
// server (vLLM's `bench serve` workload, statistics, table and JSON), and a sweep over
// concurrencies or request rates with one JSON per point and SVG charts.
#include <string>

#include <CLI/CLI.hpp>

#include "bench/bench_dataset.h"

namespace flashline {

struct ServeBenchOptions {
  std::string base_url = "http://127.0.0.1:8000";
  std::string endpoint = "/v1/completions";
  std::string model;       // empty: the server's first model (GET /v1/models)
  std::string tokenizer;   // tokenizer.json: prompt lengths and the cross-check of the server's counts
  std::string api_key;
  DatasetOptions dataset;
  std::string request_rate = "inf";
  double burstiness = 1.0;
  int max_concurrency = 0;
  std::vector<std::string> goodput;
  std::string percentile_metrics = "ttft,tpot,itl";
  std::string metric_percentiles = "99";
  std::string save_result;
  std::string plot;
  std::string plan;        // print the planner's prediction next to the measured figures
  bool ignore_eos = false;
  double temperature = 0;
  bool warmup = true;      // one request before the run (checks the server, not measured)
  // sweep
  std::string concurrencies, request_rates;
  std::string out_dir;
};

void add_serve_bench_options(CLI::App& cmd, ServeBenchOptions& o);
// In the command's callback: what can only be known once the flags are parsed.
void finish_serve_bench_options(const CLI::App& cmd, ServeBenchOptions& o);
void add_sweep_options(CLI::App& cmd, ServeBenchOptions& o);
void run_serve_bench(const ServeBenchOptions& o);
void run_serve_sweep(const ServeBenchOptions& o);

}  // namespace flashline
