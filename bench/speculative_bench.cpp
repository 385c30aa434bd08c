// Speculative decoding (docs/speculative.md): decode tokens/s and per-token latency with k MTP
// drafts per step at a forced acceptance rate, against the same requests without drafts, in
// one run. The drafts are forced from the non-speculative run's ids, each kept with
// probability --acceptance % and otherwise made wrong, so the mechanism is measured at any
// rate on random-weight models (whose own MTP head drafts almost nothing right; that rate is
// measured too: the "own" rows). Every speculative run must give the baseline's ids.
// With --plan it runs under mpirun as one rank of the world (rank 0 prints); every
// configuration starts its own engine in the same world.
//   speculative_bench --model DIR [--plan P] [--batch 1,16] [--k 1,2,3] [--acceptance 0,50,100]
//                     [--prompt-len 32] [--output-len 48] [--repeat 3] [--numerics fast] [--json out.json]
#include <fmt/format.h>
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "base/input_error.h"
#include "launch/engine_bootstrap.h"
#include "launch/engine_run.h"

namespace {

using namespace flashline;
using nlohmann::json;

struct Options {
  EngineOptions engine;
  std::string numerics = "fast", batch = "1,16", ks = "1,2,3", acceptance = "0,50,100", json_out;
  int prompt_len = 32, output_len = 48, repeat = 3;
};

std::vector<int> parse_list(const std::string& s, const char* flag, int lo, int hi) {
  std::vector<int> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::size_t used = 0;
    int v = -1;
    try {
      v = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < lo || v > hi)
      throw InputError(fmt::format("{}: expected a comma-separated list of numbers {}..{}, got \"{}\"", flag, lo, hi, s));
    out.push_back(v);
  }
  if (out.empty()) throw InputError(fmt::format("{}: empty list", flag));
  return out;
}

struct Measure {
  std::vector<std::vector<int32_t>> ids;
  double decode_tok_s = 0, token_ms = 0, acceptance = 0, mean_accepted_length = 1;
  int64_t steps = 0;
};

// One engine, `batch` requests at once. Empty on ranks other than 0 (they serve and return).
std::optional<Measure> measure_once(const Options& o, int k, int batch, const std::vector<std::vector<int32_t>>* drafts) {
  EngineOptions eo = o.engine;
  eo.speculative_tokens = k;
  auto engine = start_engine(eo);
  if (!engine) return std::nullopt;
  const int vocab = engine->vocab_size();
  std::mt19937 rng(7);
  std::vector<TimedRequest> reqs(batch);
  for (int i = 0; i < batch; ++i) {
    auto& r = reqs[i].request;
    r.prompt.resize(o.prompt_len);
    for (auto& id : r.prompt) id = int32_t(rng() % vocab);
    r.sampling.max_tokens = o.output_len;
    r.sampling.ignore_eos = true;
    if (drafts) r.debug.draft_ids = drafts->at(i);
  }
  const auto out = run_requests(*engine, reqs);
  Measure m;
  double last_first = 0, end = 0, per_token = 0;
  int64_t decoded = 0;
  for (const auto& r : out) {
    if (r.finish == FinishReason::Error) throw std::runtime_error(r.error);
    m.ids.push_back(r.ids);
    last_first = std::max(last_first, r.first_token_s);
    end = std::max(end, r.finished_s);
    decoded += int64_t(r.ids.size()) - 1;
    per_token += (r.finished_s - r.first_token_s) / double(r.ids.size() - 1);
  }
  m.decode_tok_s = decoded / std::max(end - last_first, 1e-9);
  m.token_ms = 1e3 * per_token / batch;
  const auto st = engine->stats();
  m.steps = st.steps;
  if (st.spec.draft_tokens > 0) {
    m.acceptance = double(st.spec.accepted_tokens) / double(st.spec.draft_tokens);
    m.mean_accepted_length = 1.0 + double(st.spec.accepted_tokens) / double(st.spec.drafts);
  }
  engine->shutdown(0);
  return m;
}

// The fastest of --repeat runs: on a shared machine the other runs measure the interference.
std::optional<Measure> measure(const Options& o, int k, int batch, const std::vector<std::vector<int32_t>>* drafts) {
  std::optional<Measure> best;
  for (int i = 0; i < o.repeat; ++i) {
    auto m = measure_once(o, k, batch, drafts);
    if (m && (!best || m->decode_tok_s > best->decode_tok_s)) best = std::move(m);
  }
  return best;
}

// The baseline's ids, each kept with probability `percent` % and otherwise made wrong.
std::vector<std::vector<int32_t>> forced(const std::vector<std::vector<int32_t>>& ids, int percent, int vocab) {
  std::mt19937 rng(uint32_t(percent) * 7919u + 1);
  auto out = ids;
  for (auto& row : out)
    for (auto& id : row)
      if (int(rng() % 100) >= percent) id = (id + 1) % vocab;
  return out;
}

void run(Options o) {
  finish_engine_flags(o.engine, o.numerics);
  const auto batches = parse_list(o.batch, "--batch", 1, 4096);
  const auto ks = parse_list(o.ks, "--k", 1, 3);
  const auto rates = parse_list(o.acceptance, "--acceptance", 0, 100);
  if (o.prompt_len < 1 || o.output_len < 2 || o.repeat < 1)
    throw InputError("--prompt-len >= 1, --output-len >= 2 and --repeat >= 1 expected");
  const int vocab = engine_model_config(o.engine).vocab;
  json rows = json::array();
  bool rank0 = true;
  measure_once(o, 0, 1, nullptr);  // warm-up: the first engine faults the weights into memory
  for (int batch : batches) {
    const auto base = measure(o, 0, batch, nullptr);
    rank0 = base.has_value();
    auto row = [&](int k, const std::string& drafts, const std::optional<Measure>& m) {
      if (!m) return;
      if (m->ids != base->ids) throw std::runtime_error(fmt::format("k {} ({} drafts) changed the ids", k, drafts));
      const double ratio = m->decode_tok_s / base->decode_tok_s;
      fmt::print("{:>5} {:>2} {:>10} {:>10.1f} {:>9.2f} {:>7.2f}x {:>10.1f} % {:>8.2f} {:>6}\n", batch, k, drafts,
                 m->decode_tok_s, m->token_ms, ratio, 100 * m->acceptance, m->mean_accepted_length, m->steps);
      rows.push_back({{"batch", batch}, {"k", k}, {"drafts", drafts}, {"decode_tokens_per_s", m->decode_tok_s},
                      {"ms_per_token", m->token_ms}, {"speedup", ratio}, {"acceptance", m->acceptance},
                      {"mean_acceptance_length", m->mean_accepted_length}, {"steps", m->steps}});
    };
    if (rank0) {
      fmt::print("{:>5} {:>2} {:>10} {:>10} {:>9} {:>8} {:>12} {:>8} {:>6}\n", "batch", "k", "drafts", "decode t/s",
                 "ms/token", "vs k=0", "acceptance", "accepted", "steps");
      row(0, "none", base);
    }
    for (int k : ks) {
      row(k, "own MTP", measure(o, k, batch, nullptr));
      for (int a : rates) {
        const auto drafts = rank0 ? forced(base->ids, a, vocab) : std::vector<std::vector<int32_t>>{};
        row(k, fmt::format("{} %", a), measure(o, k, batch, rank0 ? &drafts : nullptr));
      }
    }
  }
  if (rank0 && !o.json_out.empty()) {
    json doc{{"model", o.engine.model}, {"plan", o.engine.plan}, {"numerics", o.numerics}, {"prompt_len", o.prompt_len},
             {"output_len", o.output_len}, {"repeat", o.repeat}, {"rows", rows}};
    std::ofstream(o.json_out) << doc.dump(2) << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Speculative decoding: decode speed at forced acceptance rates against no drafts"};
  Options o;
  add_engine_flags(app, o.engine, o.numerics);
  app.add_option("--batch", o.batch, "Concurrent requests, a list")->capture_default_str();
  app.add_option("--k", o.ks, "Drafts per step, a list of 1..3")->capture_default_str();
  app.add_option("--acceptance", o.acceptance, "Forced acceptance rates in %, a list")->capture_default_str();
  app.add_option("--prompt-len", o.prompt_len, "Prompt tokens per request")->capture_default_str();
  app.add_option("--output-len", o.output_len, "New tokens per request")->capture_default_str();
  app.add_option("--repeat", o.repeat, "Runs per configuration; the fastest counts")->capture_default_str();
  app.add_option("--json", o.json_out, "Write the rows as JSON");
  CLI11_PARSE(app, argc, argv);
  // Under mpirun every configuration's engine joins the same world: initialise it once here.
  int provided = 0;
  if (!o.engine.plan.empty()) MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
  int code = 0;
  try {
    run(o);
  } catch (const InputError& e) {
    fmt::print(stderr, "speculative_bench: error: {}\n", e.what());
    code = 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "speculative_bench: {}\n", e.what());
    code = 1;
  }
  if (!o.engine.plan.empty()) MPI_Finalize();
  return code;
}
