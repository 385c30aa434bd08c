// `flashline generate`: greedy generation from prompt ids, one request or several at once
// (--prompts), in one process or pipelined under mpirun (--plan; rank 0 prints).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "base/input_error.h"
#include "launch/commands.h"
#include "launch/prompt_list_arg.h"
#include "launch/request_runner.h"
#include "launch/token_ids_arg.h"

namespace flashline {
namespace {

struct GenerateOptions {
  std::string model, prompt_ids, prompts, numerics = "fast", plan;
  int max_new_tokens = 16, micro_batches = 0;
  bool stop_at_eos = false;
};

void run_generate(const GenerateOptions& o) {
  if (o.prompt_ids.empty() == o.prompts.empty()) throw InputError("give exactly one of --prompt-ids and --prompts");
  if (o.max_new_tokens < 1) throw InputError("--max-new-tokens: expected a number >= 1");
  const auto prompts = o.prompts.empty() ? std::vector<std::vector<int32_t>>{parse_token_ids(o.prompt_ids, "--prompt-ids")}
                                         : parse_prompt_list(o.prompts, "--prompts");
  std::vector<GenerationRequest> reqs;
  for (const auto& p : prompts) {
    GenerationRequest q;
    q.prompt = p;
    q.max_new_tokens = o.max_new_tokens;
    q.stop_at_eos = o.stop_at_eos;
    reqs.push_back(std::move(q));
  }
  auto runner = RequestRunner::create({o.model, o.plan, parse_numerics(o.numerics), o.micro_batches});
  check_requests(runner->config(), reqs, o.model);
  const auto results = runner->run(reqs);
  if (!runner->writes_output()) return;
  std::size_t prompt_tokens = 0, new_tokens = 0;
  double prefill_s = 0, end_s = 0;
  for (std::size_t i = 0; i < results.size(); ++i) {
    fmt::print("{}\n", fmt::join(results[i].ids, ","));
    prompt_tokens += reqs[i].prompt.size();
    new_tokens += results[i].ids.size() - 1;  // the first id comes from the prefill
    prefill_s = std::max(prefill_s, results[i].prefill_done_s);
    end_s = std::max(end_s, results[i].finished_s);
  }
  const double decode_s = end_s - prefill_s;
  fmt::print(stderr, "prefill {} tokens in {:.3f} s ({:.1f} tok/s); decode {} tokens in {:.3f} s ({:.1f} tok/s)\n",
             prompt_tokens, prefill_s, prompt_tokens / prefill_s, new_tokens, decode_s,
             new_tokens > 0 && decode_s > 0 ? new_tokens / decode_s : 0.0);
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  auto* cmd = app.add_subcommand("generate", "Greedy generation from prompt token ids (prints the new ids)");
  cmd->add_option("--model", o->model, "Model directory")->required();
  cmd->add_option("--prompt-ids", o->prompt_ids, "Prompt token ids: 1,2,3 or @ids.json");
  cmd->add_option("--prompts", o->prompts,
                  "Several prompts run concurrently: @prompts.json, a JSON list of id lists; prints one line of "
                  "ids per prompt, in order");
  cmd->add_option("--max-new-tokens", o->max_new_tokens, "Tokens to generate")->capture_default_str();
  cmd->add_flag("--stop-at-eos", o->stop_at_eos, "Stop after the end-of-sentence token");
  cmd->add_option("--numerics", o->numerics, "exact or fast")->capture_default_str();
  add_plan_options(*cmd, o->plan, o->micro_batches);
  cmd->callback([o] { run_generate(*o); });
}

}  // namespace flashline
