// `flashline logits`: the model's logits for a prompt (and optionally decode steps and the MTP
// block) written as .npy files. Outside checks compare these files; keep the interface stable.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "comms/expert_exchange.h"
#include "launch/commands.h"
#include "launch/npy_file.h"
#include "launch/token_ids_arg.h"
#include "stages/transformer.h"

namespace flashline {
namespace {

struct LogitsOptions {
  std::string model, ids, out, teacher, numerics = "fast";
  int decode = 0;
  bool mtp = false;
};

int32_t argmax(const float* v, int n) { return int32_t(std::max_element(v, v + n) - v); }

void run_logits(const LogitsOptions& o) {
  const auto ids = parse_token_ids(o.ids, "--ids");
  const auto teacher = o.teacher.empty() ? std::vector<int32_t>{} : parse_token_ids(o.teacher, "--teacher-force");
  const Numerics num = parse_numerics(o.numerics);
  if (o.decode < 0) throw InputError("--decode: expected a number >= 0");
  Checkpoint ck = Checkpoint::open(o.model);
  LoopbackExpertExchange exchange;
  Transformer tf(ck, num, exchange, ExpertPlacement::single(ck.config().n_experts));
  const int V = tf.config().vocab, n = int(ids.size());
  std::filesystem::create_directories(o.out);

  RequestState state = tf.new_state();
  StepBatch prefill;
  prefill.add(ids, 0, &state);
  auto X = tf.embed(prefill);
  tf.run_layers(0, tf.config().n_layers, prefill, X);
  std::vector<int> rows(n);
  for (int i = 0; i < n; ++i) rows[i] = i;
  const auto logits = tf.logits(X, rows);
  write_npy(std::filesystem::path(o.out) / "prefill_logits.npy", logits, {n, V});
  fmt::print(stderr, "prefill: {} tokens -> {}/prefill_logits.npy\n", n, o.out);

  if (o.mtp) {
    if (tf.config().n_mtp == 0) throw InputError(fmt::format("--mtp: {} has no MTP block", o.model));
    if (n < 2) throw InputError("--mtp: needs a prompt of at least 2 tokens");
    const std::size_t stride = std::size_t(tf.config().hc) * tf.config().dim;
    std::vector<float> h(X.begin(), X.begin() + std::ptrdiff_t((n - 1) * stride));
    RequestState mtp_state = tf.new_mtp_state();
    StepBatch mb;
    mb.add(std::vector<int32_t>(ids.begin() + 1, ids.end()), 0, &mtp_state);
    write_npy(std::filesystem::path(o.out) / "mtp_logits.npy", tf.mtp_logits(h, mb), {n - 1, V});
    fmt::print(stderr, "mtp: {} positions -> {}/mtp_logits.npy\n", n - 1, o.out);
  }

  if (o.decode > 0) {
    std::vector<int32_t> dids;
    std::vector<float> drows(logits.end() - V, logits.end());
    for (int k = 0; k < o.decode; ++k) {
      const float* row = &drows[std::size_t(k) * V];
      dids.push_back(k < int(teacher.size()) ? teacher[k] : argmax(row, V));
      if (k + 1 == o.decode) break;
      StepBatch step;
      step.add({dids.back()}, n + k, &state);
      auto Xs = tf.embed(step);
      tf.run_layers(0, tf.config().n_layers, step, Xs);
      const auto l = tf.logits(Xs, {0});
      drows.insert(drows.end(), l.begin(), l.end());
      if ((k + 1) % 32 == 0) fmt::print(stderr, "decode: {}/{}\n", k + 1, o.decode);
    }
    write_npy(std::filesystem::path(o.out) / "decode_ids.npy", dids, {o.decode});
    write_npy(std::filesystem::path(o.out) / "decode_logits.npy", drows, {o.decode, V});
    fmt::print(stderr, "decode: {} rows -> {}/decode_logits.npy\n", o.decode, o.out);
  }
}

}  // namespace

void add_logits_command(CLI::App& app) {
  auto o = std::make_shared<LogitsOptions>();
  auto* cmd = app.add_subcommand("logits", "Write prefill (and decode / MTP) logits of a prompt as .npy files");
  cmd->add_option("--model", o->model, "Model directory")->required();
  cmd->add_option("--ids", o->ids, "Prompt token ids: 1,2,3 or @ids.json")->required();
  cmd->add_option("--out", o->out, "Output directory")->required();
  cmd->add_option("--decode", o->decode,
                  "Decode rows to write: row 0 = last prefill position, row k = the step that consumed "
                  "decode_ids[k-1]");
  cmd->add_option("--teacher-force", o->teacher, "Ids to feed instead of the argmax (1,2,3 or @ids.json)");
  cmd->add_flag("--mtp", o->mtp, "Also write mtp_logits.npy (MTP block on the final stream, next-token ids)");
  cmd->add_option("--numerics", o->numerics, "exact (reference-exact reductions) or fast")
      ->capture_default_str();
  cmd->callback([o] { run_logits(*o); });
}

}  // namespace flashline
