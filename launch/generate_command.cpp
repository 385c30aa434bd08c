// `flashline generate`: generation from prompt ids on the serving engine, one request or
// several (--prompts, with per-request arrival offsets and sampling), in one process or as one
// rank of a pipeline under mpirun (--plan; rank 0 prints). One line of ids per prompt.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "base/input_error.h"
#include "launch/commands.h"
#include "launch/engine_bootstrap.h"
#include "launch/engine_run.h"
#include "launch/prompt_list_arg.h"
#include "launch/token_ids_arg.h"

namespace flashline {
namespace {

struct GenerateOptions {
  EngineOptions engine;
  std::string numerics = "fast", prompt_ids, prompts;
  int max_new_tokens = 16;
  bool stop_at_eos = false, stats = false, progress = false;
  SamplingParams sampling;
  std::optional<uint64_t> seed;
};

void run_generate(GenerateOptions o, bool has_prompt_ids, bool has_prompts) {
  finish_engine_flags(o.engine, o.numerics);
  if (has_prompt_ids == has_prompts) throw InputError("give exactly one of --prompt-ids and --prompts");
  if (o.max_new_tokens < 1) throw InputError("--max-new-tokens: expected a number >= 1");
  std::vector<PromptSpec> specs(1);
  if (has_prompts)
    specs = parse_prompt_list(o.prompts, "--prompts");
  else
    specs[0].ids = parse_token_ids(o.prompt_ids, "--prompt-ids");
  std::vector<TimedRequest> reqs;
  for (const auto& s : specs) {
    TimedRequest t;
    t.arrival_s = s.arrival_s;
    if (s.abort_when) t.abort_when_request = s.abort_when->first, t.abort_when_tokens = s.abort_when->second;
    t.request.prompt = s.ids;
    t.request.debug.draft_ids = s.draft_ids;
    auto& p = t.request.sampling;
    p = o.sampling;
    p.max_tokens = s.max_tokens.value_or(o.max_new_tokens);
    p.ignore_eos = !o.stop_at_eos;
    if (s.temperature) p.temperature = *s.temperature;
    if (s.top_p) p.top_p = *s.top_p;
    if (s.top_k) p.top_k = *s.top_k;
    if (s.min_p) p.min_p = *s.min_p;
    if (auto seed = s.seed ? s.seed : o.seed) p.seed = *seed, p.has_seed = true;
    reqs.push_back(std::move(t));
  }
  auto engine = start_engine(o.engine);
  if (!engine) return;  // another rank of the world: rank 0 prints
  std::size_t done = 0;
  const auto outcomes = run_requests(*engine, std::move(reqs), [&](std::size_t i, const TokenEvent& e) {
    if (o.progress && e.finish != FinishReason::None)
      fmt::print(stderr, "request {} finished ({}), {} of {}\n", i, to_string(e.finish), ++done, specs.size());
  });
  engine->shutdown(0);
  std::size_t prompt_tokens = 0, new_tokens = 0;
  double first = 1e300, last_first = 0, end = 0;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const auto& r = outcomes[i];
    if (r.finish == FinishReason::Error) throw std::runtime_error(fmt::format("request {}: {}", i, r.error));
    fmt::print("{}{}\n", fmt::join(r.ids, ","), r.finish == FinishReason::Abort ? " (aborted)" : "");
    prompt_tokens += specs[i].ids.size();
    new_tokens += r.ids.empty() ? 0 : r.ids.size() - 1;  // the first id comes from the prefill
    first = std::min(first, r.first_token_s);
    last_first = std::max(last_first, r.first_token_s);
    end = std::max(end, r.finished_s);
  }
  const double decode_s = end - last_first;
  fmt::print(stderr, "prefill {} tokens, first ids after {:.3f} s (last {:.3f} s); decode {} tokens in {:.3f} s ({:.1f} tok/s)\n",
             prompt_tokens, first, last_first, new_tokens, decode_s, decode_s > 0 ? new_tokens / decode_s : 0.0);
  if (o.stats) {
    const auto st = engine->stats();
    fmt::print(stderr, "engine: {} steps, {} preemptions, {} prompt tokens, {} generated\n", st.steps, st.preemptions,
               st.prompt_tokens, st.generation_tokens);
    if (const auto& sp = st.spec; sp.drafts > 0)
      fmt::print(stderr,
                 "speculative: {} steps with drafts, {} drafts, {} accepted ({:.1f} %), by position [{}], mean "
                 "acceptance length {:.2f}\n",
                 sp.drafts, sp.draft_tokens, sp.accepted_tokens, 100.0 * sp.accepted_tokens / sp.draft_tokens,
                 fmt::join(sp.accepted_at, ", "), 1.0 + double(sp.accepted_tokens) / sp.drafts);
    for (const auto& r : engine->rank_stats())
      fmt::print(stderr, "rank {} stage {} lane {}: kv pages used {} of {}, live states {}, steps {}, preemptions {}, busy {:.3f} s\n",
                 r.rank, r.stage, r.lane, r.pages_used, r.pages_total, r.live_states, r.steps, r.preemptions,
                 r.busy_seconds);
  }
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  auto* cmd = app.add_subcommand("generate", "Generate from prompt token ids on the serving engine (prints the new ids)");
  add_engine_flags(*cmd, o->engine, o->numerics);
  cmd->add_option("--prompt-ids", o->prompt_ids, "Prompt token ids: 1,2,3 or @ids.json");
  cmd->add_option("--prompts", o->prompts,
                  "Several prompts run concurrently: @prompts.json, a JSON list of id lists or of objects {\"ids\", "
                  "\"arrival_s\", \"max_tokens\", \"seed\", \"temperature\", \"top_p\", \"top_k\", \"min_p\"}; "
                  "prints one line of ids per prompt, in order");
  cmd->add_option("--max-new-tokens", o->max_new_tokens, "Tokens to generate per prompt")->capture_default_str();
  cmd->add_flag("--stop-at-eos", o->stop_at_eos, "Stop after the end-of-sentence token");
  cmd->add_option("--temperature", o->sampling.temperature, "0: greedy")->capture_default_str();
  cmd->add_option("--top-p", o->sampling.top_p, "Nucleus mass")->capture_default_str();
  cmd->add_option("--top-k", o->sampling.top_k, "Keep the k most likely tokens (0: off)")->capture_default_str();
  cmd->add_option("--min-p", o->sampling.min_p, "Keep tokens with p >= min_p * p_max")->capture_default_str();
  cmd->add_option("--presence-penalty", o->sampling.presence_penalty)->capture_default_str();
  cmd->add_option("--frequency-penalty", o->sampling.frequency_penalty)->capture_default_str();
  cmd->add_option("--repetition-penalty", o->sampling.repetition_penalty)->capture_default_str();
  cmd->add_option("--seed", o->seed, "Sampling seed (the same tokens whatever the batch, lane or placement)");
  cmd->add_flag("--stats", o->stats, "Print engine and per-rank KV statistics at the end (stderr)");
  cmd->add_flag("--progress", o->progress, "Print a line on stderr as each request finishes");
  cmd->callback([o, cmd] { run_generate(*o, cmd->count("--prompt-ids") > 0, cmd->count("--prompts") > 0); });
}

}  // namespace flashline
