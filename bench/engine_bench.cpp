// The serving engine on its own API (no HTTP): three tables.
//  1. Throughput and latency at each concurrency C: C requests of random prompts submitted at
//     once (greedy, ignore_eos, max_tokens --output-len): output tokens/s, the inter-token gap
//     of each stream (mean, p50, p99) and the time to first token.
//  2. Inter-token latency of running streams while a long prompt arrives: 4 streams decode,
//     after --itl-delay seconds one prompt of --itl-prompt-len tokens is submitted; once per
//     value of --itl-chunks (the engine's prefill chunk; 0: the whole prompt in one step). The
//     worst gap is what chunked prefill cuts.
//  3. KV bytes per token of a request: the paged state (kv_pages_for x page bytes, and the bare
//     records of docs/kv-cache.md) against the float vectors the state used to be.
// In one process each configuration gets its own engine. With --plan the bench is one rank of
// a world under mpirun (rank 0 prints), which holds one engine: --itl-chunks takes one value
// there, and that value is the engine's --prefill-chunk.
//   engine_bench --model DIR [--plan P] [--concurrency 1,4,16,64] [--prompt-len 64] [--output-len 32]
//                [--itl-chunks 0,64] [--tables throughput,itl,kv] [--json out.json]
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <set>
#include <sstream>

#include "base/input_error.h"
#include "launch/engine_bootstrap.h"
#include "launch/engine_run.h"
#include "model/model_config.h"
#include "stages/kv_record_codec.h"
#include "stages/paged_rows.h"
#include "stages/request_state.h"

namespace {

using namespace flashline;
using nlohmann::json;

struct Options {
  EngineOptions engine;
  std::string numerics = "fast", concurrency = "1,4,16,64", itl_chunks = "0,64", tables = "throughput,itl,kv", json_out;
  int prompt_len = 64, output_len = 32;
  int itl_streams = 4, itl_stream_len = 64, itl_prompt_len = 1000;
  double itl_delay = 0.2;
  int kv_tokens = 4096;
  std::vector<std::string> kv_configs;
  uint64_t seed = 1;
};

std::vector<int> parse_list(const std::string& s, const char* flag) {
  std::vector<int> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      std::size_t used = 0;
      const int v = std::stoi(item, &used);
      if (used != item.size() || v < 0) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      throw InputError(fmt::format("{}: expected a comma-separated list of numbers >= 0, got \"{}\"", flag, s));
    }
  }
  if (out.empty()) throw InputError(fmt::format("{}: expected at least one number", flag));
  return out;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double at = p / 100.0 * double(v.size() - 1);
  const auto lo = std::size_t(std::floor(at));
  const auto hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (at - double(lo));
}

double mean(const std::vector<double>& v) {
  return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
}

std::vector<int32_t> random_prompt(std::mt19937_64& rng, int len, int vocab) {
  // Ids 2.. avoid bos and eos of the tiny models; the content does not matter to the timing.
  std::uniform_int_distribution<int32_t> pick(std::min(2, vocab - 1), vocab - 1);
  std::vector<int32_t> p(static_cast<std::size_t>(len));
  for (auto& id : p) id = pick(rng);
  return p;
}

TimedRequest greedy(std::vector<int32_t> prompt, int max_tokens, double arrival_s) {
  TimedRequest t;
  t.arrival_s = arrival_s;
  t.request.prompt = std::move(prompt);
  t.request.sampling.temperature = 0;
  t.request.sampling.max_tokens = max_tokens;
  t.request.sampling.ignore_eos = true;
  return t;
}

std::vector<RequestOutcome> run_checked(Engine& engine, std::vector<TimedRequest> reqs) {
  auto out = run_requests(engine, std::move(reqs));
  for (std::size_t i = 0; i < out.size(); ++i)
    if (out[i].finish == FinishReason::Error) throw std::runtime_error(fmt::format("request {}: {}", i, out[i].error));
  return out;
}

std::vector<double> gaps_of(const RequestOutcome& r) {
  std::vector<double> g;
  for (std::size_t k = 1; k < r.token_s.size(); ++k) g.push_back(r.token_s[k] - r.token_s[k - 1]);
  return g;
}

// A short request first, so the first row of a table does not pay for cold caches and pages.
void warm_up(Engine& engine, std::mt19937_64& rng, int prompt_len) {
  std::vector<TimedRequest> reqs;
  reqs.push_back(greedy(random_prompt(rng, prompt_len, engine.vocab_size()), 4, 0));
  run_checked(engine, std::move(reqs));
}

json throughput_table(Engine& engine, const Options& o, std::mt19937_64& rng) {
  json rows = json::array();
  fmt::print("\nthroughput: prompt {} tokens, {} output tokens per request, greedy, ignore_eos\n", o.prompt_len,
             o.output_len);
  fmt::print("{:>5} {:>9} {:>10} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10}\n", "conc", "out tok", "out tok/s", "itl mean",
             "itl p50", "itl p99", "ttft mean", "ttft p50", "ttft p99");
  for (int c : parse_list(o.concurrency, "--concurrency")) {
    if (c < 1) throw InputError("--concurrency: expected numbers >= 1");
    std::vector<TimedRequest> reqs;
    for (int i = 0; i < c; ++i) reqs.push_back(greedy(random_prompt(rng, o.prompt_len, engine.vocab_size()), o.output_len, 0));
    const auto out = run_checked(engine, std::move(reqs));
    std::vector<double> gaps, ttft;
    double begin = 1e300, end = 0;
    int64_t tokens = 0;
    for (const auto& r : out) {
      const auto g = gaps_of(r);
      gaps.insert(gaps.end(), g.begin(), g.end());
      ttft.push_back(r.first_token_s - r.submitted_s);
      begin = std::min(begin, r.submitted_s);
      end = std::max(end, r.finished_s);
      tokens += int64_t(r.ids.size());
    }
    const double wall = end - begin, tps = wall > 0 ? double(tokens) / wall : 0;
    json row = {{"concurrency", c},          {"output_tokens", tokens},
                {"seconds", wall},           {"output_tokens_per_s", tps},
                {"itl_mean_s", mean(gaps)},  {"itl_p50_s", percentile(gaps, 50)},
                {"itl_p99_s", percentile(gaps, 99)}, {"ttft_mean_s", mean(ttft)},
                {"ttft_p50_s", percentile(ttft, 50)}, {"ttft_p99_s", percentile(ttft, 99)}};
    fmt::print("{:>5} {:>9} {:>10.1f} {:>7.2f}ms {:>7.2f}ms {:>7.2f}ms {:>8.2f}ms {:>8.2f}ms {:>8.2f}ms\n", c, tokens,
               tps, 1e3 * mean(gaps), 1e3 * percentile(gaps, 50), 1e3 * percentile(gaps, 99), 1e3 * mean(ttft),
               1e3 * percentile(ttft, 50), 1e3 * percentile(ttft, 99));
    rows.push_back(row);
  }
  return rows;
}

// One case of table 2 on an engine whose prefill chunk is `chunk`.
json itl_case(Engine& engine, const Options& o, int chunk, std::mt19937_64& rng) {
  std::vector<TimedRequest> reqs;
  for (int i = 0; i < o.itl_streams; ++i)
    reqs.push_back(greedy(random_prompt(rng, o.prompt_len, engine.vocab_size()), o.itl_stream_len, 0));
  reqs.push_back(greedy(random_prompt(rng, o.itl_prompt_len, engine.vocab_size()), 1, o.itl_delay));
  const auto out = run_checked(engine, std::move(reqs));
  const auto& big = out.back();
  std::vector<double> gaps, during;
  int after = 0;  // stream tokens that arrived after the long prompt was submitted
  for (int i = 0; i < o.itl_streams; ++i) {
    const auto& r = out[std::size_t(i)];
    for (std::size_t k = 1; k < r.token_s.size(); ++k) {
      const double g = r.token_s[k] - r.token_s[k - 1];
      gaps.push_back(g);
      // gaps that overlap the long prompt's prefill (its submission to its first token)
      if (r.token_s[k] >= big.submitted_s && r.token_s[k - 1] <= big.first_token_s) during.push_back(g);
    }
    for (double t : r.token_s) after += t >= big.submitted_s;
  }
  const double worst = gaps.empty() ? 0 : *std::max_element(gaps.begin(), gaps.end());
  json row = {{"prefill_chunk", chunk},
              {"itl_max_s", worst},
              {"itl_p99_s", percentile(gaps, 99)},
              {"itl_p50_s", percentile(gaps, 50)},
              {"gaps_during_prefill", during.size()},
              {"itl_max_during_prefill_s", during.empty() ? 0.0 : *std::max_element(during.begin(), during.end())},
              {"stream_tokens_after_arrival", after},
              {"long_prompt_ttft_s", big.first_token_s - big.submitted_s}};
  fmt::print("{:>6} {:>9.2f}ms {:>9.2f}ms {:>9.2f}ms {:>13} {:>12.2f}ms\n", chunk == 0 ? std::string("whole") : std::to_string(chunk),
             1e3 * worst, 1e3 * percentile(gaps, 99), 1e3 * percentile(gaps, 50), after,
             1e3 * (big.first_token_s - big.submitted_s));
  if (after == 0)
    fmt::print("       (no stream token arrived after the long prompt: raise --itl-stream-len or lower --itl-delay)\n");
  return row;
}

void itl_header(const Options& o) {
  fmt::print("\nITL of {} running streams (prompt {}, {} tokens each) while a {}-token prompt arrives after {} s\n",
             o.itl_streams, o.prompt_len, o.itl_stream_len, o.itl_prompt_len, o.itl_delay);
  fmt::print("{:>6} {:>11} {:>11} {:>11} {:>13} {:>14}\n", "chunk", "itl max", "itl p99", "itl p50", "tokens after",
             "long ttft");
}

// Table 3: bytes one request holds per token of context, for `tokens` tokens.
json kv_row(const ModelConfig& c, const std::string& name, int tokens, std::size_t page_bytes) {
  const Fp8KvRowCodec kv(c.head_dim, c.rope_dim);
  const std::size_t key = c.index_dim > 0 ? Fp4KeyRowCodec(c.index_dim).record_bytes() : 0;
  const double paged = double(kv_pages_for(c, 0, c.n_layers, tokens, page_bytes)) * double(page_bytes);
  double records = 0, compressor = 0, floats = 0, compressor_pages = 0;
  auto pages = [&](int n, std::size_t bytes) { return double(PagedRows::pages_for(n, bytes, page_bytes)); };
  for (int id = 0; id < c.n_layers; ++id) {
    const int ratio = c.ratio(id);
    records += double(c.window) * double(kv.record_bytes());
    floats += double(c.window) * c.head_dim * 4.0;
    if (ratio == 0) continue;
    records += double(tokens / ratio) * double(kv.record_bytes());
    floats += double(tokens / ratio) * 4.0 * c.head_dim;
    const int coff = ratio == 4 ? 2 : 1;
    compressor += 2.0 * coff * ratio * 4.0 * coff * c.head_dim;  // kv + score rows, fp32 (full block)
    compressor_pages += 2 * pages(coff * ratio, 4 * std::size_t(coff) * c.head_dim);
    if (ratio == 4) {
      records += double(tokens / 4) * double(key);
      floats += double(tokens / 4) * 4.0 * c.index_dim;
      compressor += 2.0 * 8 * 4.0 * 2 * c.index_dim;
      compressor_pages += 2 * pages(8, 4 * 2 * std::size_t(c.index_dim));
    }
  }
  const double t = tokens;
  // The same pages less the compressors' partial-block rows (fp32 in both forms, no saving).
  const double paged_kv = paged - compressor_pages * double(page_bytes);
  json row = {{"config", name},
              {"tokens", tokens},
              {"page_bytes", page_bytes},
              {"pages", kv_pages_for(c, 0, c.n_layers, tokens, page_bytes)},
              {"paged_bytes_per_token", paged / t},
              {"record_bytes_per_token", records / t},
              {"compressor_bytes_per_token", compressor / t},
              {"float_bytes_per_token", floats / t},
              {"paged_kv_bytes_per_token", paged_kv / t},
              {"ratio_float_to_paged", floats / paged},
              {"ratio_float_to_paged_kv", floats / paged_kv},
              {"ratio_float_to_records", floats / records}};
  fmt::print("{:<12} {:>7} {:>10.1f} {:>10.1f} {:>10.1f} {:>10.1f} {:>10.1f} {:>8.2f}x {:>8.2f}x {:>8.2f}x\n", name,
             tokens, paged / t, paged_kv / t, records / t, compressor / t, floats / t, floats / paged,
             floats / paged_kv, floats / records);
  return row;
}

// "tests/data/models/tiny-a" -> "tiny-a"; "configs/models/x.config.json" -> "x".
std::string config_name(std::string path) {
  while (!path.empty() && path.back() == '/') path.pop_back();
  auto name = path.substr(path.find_last_of('/') + 1);
  for (const char* suffix : {".config.json", ".json"})
    if (name.ends_with(suffix)) return name.substr(0, name.size() - std::string(suffix).size());
  return name;
}

json kv_table(const Options& o) {
  fmt::print("\nKV bytes per token of context ({} tokens, {}-byte pages; records: window + compressed entries + "
             "indexer keys in their stored form; floats: the same rows as fp32 vectors; compressor: partial-block rows, fp32 "
             "in both; paged kv: paged less the compressor pages; B per token)\n",
             o.kv_tokens, o.engine.kv_page_bytes);
  fmt::print("{:<12} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9}\n", "config", "tokens", "paged",
             "paged kv", "records", "compressor", "floats", "fl/paged", "fl/pg kv", "fl/recs");
  json rows = json::array();
  rows.push_back(kv_row(engine_model_config(o.engine), config_name(o.engine.model), o.kv_tokens, std::size_t(o.engine.kv_page_bytes)));
  for (const auto& path : o.kv_configs)
    rows.push_back(kv_row(ModelConfig::load(path), config_name(path), o.kv_tokens, std::size_t(o.engine.kv_page_bytes)));
  return rows;
}

void run(Options o) {
  finish_engine_flags(o.engine, o.numerics);
  std::set<std::string> tables;
  {
    std::stringstream in(o.tables);
    std::string t;
    while (std::getline(in, t, ',')) {
      if (t != "throughput" && t != "itl" && t != "kv")
        throw InputError(fmt::format("--tables: expected throughput, itl, kv, got \"{}\"", t));
      tables.insert(t);
    }
  }
  const auto chunks = parse_list(o.itl_chunks, "--itl-chunks");
  if (!o.engine.plan.empty() && tables.count("itl") && chunks.size() != 1)
    throw InputError("--itl-chunks: with --plan the world runs one engine, give one value (run the bench once per value)");
  if (o.prompt_len < 1 || o.output_len < 1 || o.itl_stream_len < 2 || o.itl_prompt_len < 1 || o.itl_streams < 1)
    throw InputError("--prompt-len, --output-len, --itl-prompt-len, --itl-streams: expected >= 1; --itl-stream-len >= 2");
  json result = {{"model", o.engine.model},       {"plan", o.engine.plan},
                 {"prompt_len", o.prompt_len},    {"output_len", o.output_len},
                 {"max_batch_tokens", o.engine.max_batch_tokens}, {"max_seqs", o.engine.max_seqs},
                 {"micro_batches", o.engine.micro_batches}};
  std::mt19937_64 rng(o.seed);

  if (!o.engine.plan.empty()) {
    // One engine for the world; its prefill chunk is the ITL case's.
    if (tables.count("itl")) o.engine.prefill_chunk = chunks[0];
    auto engine = start_engine(o.engine);
    if (!engine) return;  // another rank of the world
    result["prefill_chunk"] = o.engine.prefill_chunk;
    warm_up(*engine, rng, o.prompt_len);
    if (tables.count("throughput")) result["throughput"] = throughput_table(*engine, o, rng);
    if (tables.count("itl")) {
      itl_header(o);
      result["itl"] = json::array({itl_case(*engine, o, chunks[0], rng)});
    }
    engine->shutdown(0);
  } else {
    if (tables.count("throughput")) {
      auto engine = start_engine(o.engine);
      result["prefill_chunk"] = o.engine.prefill_chunk;
      warm_up(*engine, rng, o.prompt_len);
      result["throughput"] = throughput_table(*engine, o, rng);
      engine->shutdown(0);
    }
    if (tables.count("itl")) {
      itl_header(o);
      json rows = json::array();
      for (int chunk : chunks) {
        auto opts = o.engine;
        opts.prefill_chunk = chunk;
        opts.max_batch_tokens = std::max(opts.max_batch_tokens, chunk == 0 ? o.itl_prompt_len + o.itl_streams : 1);
        auto engine = start_engine(opts);
        warm_up(*engine, rng, o.prompt_len);
        rows.push_back(itl_case(*engine, o, chunk, rng));
        engine->shutdown(0);
      }
      result["itl"] = rows;
    }
  }
  if (tables.count("kv")) result["kv"] = kv_table(o);
  if (!o.json_out.empty()) {
    std::ofstream f(o.json_out);
    if (!f) throw InputError(fmt::format("--json: cannot write {}", o.json_out));
    f << result.dump(2) << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Serving engine benchmark: throughput and latency by concurrency, ITL under a long prefill, KV bytes "
               "per token"};
  Options o;
  add_engine_flags(app, o.engine, o.numerics);
  app.add_option("--concurrency", o.concurrency, "Concurrent requests, one row each")->capture_default_str();
  app.add_option("--prompt-len", o.prompt_len, "Prompt tokens (random ids)")->capture_default_str();
  app.add_option("--output-len", o.output_len, "Tokens generated per request")->capture_default_str();
  app.add_option("--tables", o.tables, "Tables to run: throughput, itl, kv")->capture_default_str();
  app.add_option("--itl-chunks", o.itl_chunks, "Prefill chunks of the ITL table (0: whole prompt)")->capture_default_str();
  app.add_option("--itl-streams", o.itl_streams, "Streams decoding in the ITL table")->capture_default_str();
  app.add_option("--itl-stream-len", o.itl_stream_len, "Tokens each stream generates")->capture_default_str();
  app.add_option("--itl-prompt-len", o.itl_prompt_len, "Tokens of the long prompt")->capture_default_str();
  app.add_option("--itl-delay", o.itl_delay, "Seconds before the long prompt arrives")->capture_default_str();
  app.add_option("--kv-tokens", o.kv_tokens, "Context tokens of the KV table")->capture_default_str();
  app.add_option("--kv-config", o.kv_configs, "More config.json files for the KV table (e.g. the release config)");
  app.add_option("--seed", o.seed, "Seed of the random prompts")->capture_default_str();
  app.add_option("--json", o.json_out, "Write the figures as JSON");
  try {
    app.parse(argc, argv);
    run(o);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const InputError& e) {
    fmt::print(stderr, "engine_bench: error: {}\n", e.what());
    return 2;
  }
  return 0;
}
