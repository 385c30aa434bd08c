// `flashline generate`: greedy generation from prompt ids in one process.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>

#include "comms/expert_exchange.h"
#include "launch/commands.h"
#include "launch/token_ids_arg.h"
#include "stages/transformer.h"

namespace flashline {
namespace {

struct GenerateOptions {
  std::string model, prompt_ids, numerics = "fast";
  int max_new_tokens = 16;
  bool stop_at_eos = false;
};

void run_generate(const GenerateOptions& o) {
  const auto prompt = parse_token_ids(o.prompt_ids, "--prompt-ids");
  if (o.max_new_tokens < 1) throw InputError("--max-new-tokens: expected a number >= 1");
  Checkpoint ck = Checkpoint::open(o.model);
  LoopbackExpertExchange exchange;
  Transformer tf(ck, parse_numerics(o.numerics), exchange, ExpertPlacement::single(ck.config().n_experts));
  const auto& c = tf.config();
  auto argmax = [&](const std::vector<float>& l) {
    return int32_t(std::max_element(l.begin(), l.end()) - l.begin());
  };
  using clock = std::chrono::steady_clock;
  RequestState state = tf.new_state();
  auto t0 = clock::now();
  StepBatch prefill;
  prefill.add(prompt, 0, &state);
  auto X = tf.embed(prefill);
  tf.run_layers(0, c.n_layers, prefill, X);
  std::vector<int32_t> out{argmax(tf.logits(X, {int(prompt.size()) - 1}))};
  auto t1 = clock::now();
  while (int(out.size()) < o.max_new_tokens && !(o.stop_at_eos && out.back() == c.eos_id)) {
    StepBatch step;
    step.add({out.back()}, int(prompt.size() + out.size()) - 1, &state);
    auto Xs = tf.embed(step);
    tf.run_layers(0, c.n_layers, step, Xs);
    out.push_back(argmax(tf.logits(Xs, {0})));
  }
  auto t2 = clock::now();
  const double pre_s = std::chrono::duration<double>(t1 - t0).count();
  const double dec_s = std::chrono::duration<double>(t2 - t1).count();
  fmt::print("{}\n", fmt::join(out, ","));
  fmt::print(stderr, "prefill {} tokens in {:.3f} s ({:.1f} tok/s); decode {} tokens in {:.3f} s ({:.1f} tok/s)\n",
             prompt.size(), pre_s, prompt.size() / pre_s, out.size() - 1, dec_s,
             out.size() > 1 ? (out.size() - 1) / dec_s : 0.0);
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  auto* cmd = app.add_subcommand("generate", "Greedy generation from prompt token ids (prints the new ids)");
  cmd->add_option("--model", o->model, "Model directory")->required();
  cmd->add_option("--prompt-ids", o->prompt_ids, "Prompt token ids: 1,2,3 or @ids.json")->required();
  cmd->add_option("--max-new-tokens", o->max_new_tokens, "Tokens to generate")->capture_default_str();
  cmd->add_flag("--stop-at-eos", o->stop_at_eos, "Stop after the end-of-sentence token");
  cmd->add_option("--numerics", o->numerics, "exact or fast")->capture_default_str();
  cmd->callback([o] { run_generate(*o); });
}

}  // namespace flashline
