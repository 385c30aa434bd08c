// `flashline logits`: the model's logits for a prompt (and optionally decode steps and the MTP
// block) written as .npy files. Outside checks compare these files; keep the interface stable.
// With --plan the same files come out of a pipelined run under mpirun (rank 0 writes them).
#include <fmt/format.h>

#include <filesystem>

#include "base/input_error.h"
#include "launch/commands.h"
#include "launch/npy_file.h"
#include "launch/prompt_list_arg.h"
#include "launch/request_runner.h"
#include "launch/token_ids_arg.h"

namespace flashline {
namespace {

struct LogitsOptions {
  std::string model, ids, out, teacher, numerics = "fast", plan;
  int decode = 0, micro_batches = 0;
  bool mtp = false;
};

void run_logits(const LogitsOptions& o) {
  GenerationRequest q;
  q.prompt = parse_token_ids(o.ids, "--ids");
  if (!o.teacher.empty()) q.teacher = parse_token_ids(o.teacher, "--teacher-force");
  if (o.decode < 0) throw InputError("--decode: expected a number >= 0");
  // Row k of decode_logits is the logits the k-th id was chosen from: row 0 is the last
  // prefill position, row k the step that consumed decode_ids[k-1].
  q.max_new_tokens = o.decode;
  q.keep_prefill_logits = true;
  q.keep_decode_logits = true;
  q.mtp = o.mtp;
  auto runner = RequestRunner::create({o.model, o.plan, parse_numerics(o.numerics), o.micro_batches});
  const int V = runner->config().vocab, n = int(q.prompt.size());
  check_requests(runner->config(), {q}, o.model);
  const auto results = runner->run({q});
  if (!runner->writes_output()) return;
  const auto& r = results.at(0);
  const std::filesystem::path out(o.out);
  std::filesystem::create_directories(out);
  write_npy(out / "prefill_logits.npy", r.prefill_logits, {n, V});
  fmt::print(stderr, "prefill: {} tokens -> {}\n", n, (out / "prefill_logits.npy").string());
  if (o.mtp) {
    write_npy(out / "mtp_logits.npy", r.mtp_logits, {n - 1, V});
    fmt::print(stderr, "mtp: {} positions -> {}\n", n - 1, (out / "mtp_logits.npy").string());
  }
  if (o.decode > 0) {
    write_npy(out / "decode_ids.npy", r.ids, {o.decode});
    write_npy(out / "decode_logits.npy", r.decode_logits, {o.decode, V});
    fmt::print(stderr, "decode: {} rows -> {}\n", o.decode, (out / "decode_logits.npy").string());
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
  add_plan_options(*cmd, o->plan, o->micro_batches);
  cmd->callback([o] { run_logits(*o); });
}

}  // namespace flashline
