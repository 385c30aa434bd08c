// `flashline logits`: the model's logits for a prompt (and optionally decode steps and the MTP
// block) written as .npy files. Outside checks compare these files; keep the interface stable.
// With --plan the same files come out of a pipelined run under mpirun (rank 0 writes them). It runs
// on the serving engine like every command (one request with its debug outputs).
#include <fmt/format.h>

#include <filesystem>

#include "base/input_error.h"
#include "launch/commands.h"
#include "launch/npy_file.h"
#include "launch/engine_bootstrap.h"
#include "launch/engine_run.h"
#include "launch/token_ids_arg.h"

namespace flashline {
namespace {

struct LogitsOptions {
  EngineOptions engine;
  std::string numerics = "fast", ids, out, teacher;
  int decode = 0;
  bool mtp = false;
};

void run_logits(LogitsOptions o) {
  finish_engine_flags(o.engine, o.numerics);
  if (o.decode < 0) throw InputError("--decode: expected a number >= 0");
  if (!o.teacher.empty() && o.decode == 0) throw InputError("--teacher-force: needs --decode N (the rows to write)");
  TimedRequest q;
  q.request.prompt = parse_token_ids(o.ids, "--ids");
  if (!o.teacher.empty()) q.request.debug.forced = parse_token_ids(o.teacher, "--teacher-force");
  // Row k of decode_logits is the logits the k-th id was chosen from: row 0 is the last
  // prefill position, row k the step that consumed decode_ids[k-1].
  q.request.sampling.max_tokens = std::max(o.decode, 1);
  q.request.sampling.ignore_eos = true;
  q.request.debug.prompt_logits = true;
  q.request.debug.token_logits = o.decode > 0;
  q.request.debug.mtp_logits = o.mtp;
  const int n = int(q.request.prompt.size());
  auto engine = start_engine(o.engine);
  if (!engine) return;  // another rank of the world: rank 0 writes
  const int V = engine->vocab_size();
  const auto r = run_requests(*engine, {std::move(q)}).at(0);
  engine->shutdown(0);
  if (r.finish == FinishReason::Error) throw std::runtime_error(r.error);
  const std::filesystem::path out(o.out);
  std::filesystem::create_directories(out);
  write_npy(out / "prefill_logits.npy", r.prompt_logits, {n, V});
  fmt::print(stderr, "prefill: {} tokens -> {}\n", n, (out / "prefill_logits.npy").string());
  if (o.mtp) {
    write_npy(out / "mtp_logits.npy", r.mtp_logits, {n - 1, V});
    fmt::print(stderr, "mtp: {} positions -> {}\n", n - 1, (out / "mtp_logits.npy").string());
  }
  if (o.decode > 0) {
    write_npy(out / "decode_ids.npy", r.ids, {o.decode});
    write_npy(out / "decode_logits.npy", r.token_logits, {o.decode, V});
    fmt::print(stderr, "decode: {} rows -> {}\n", o.decode, (out / "decode_logits.npy").string());
  }
}

}  // namespace

void add_logits_command(CLI::App& app) {
  auto o = std::make_shared<LogitsOptions>();
  auto* cmd = app.add_subcommand("logits", "Write prefill (and decode / MTP) logits of a prompt as .npy files");
  add_engine_flags(*cmd, o->engine, o->numerics);
  cmd->add_option("--ids", o->ids, "Prompt token ids: 1,2,3 or @ids.json")->required();
  cmd->add_option("--out", o->out, "Output directory")->required();
  cmd->add_option("--decode", o->decode,
                  "Decode rows to write: row 0 = last prefill position, row k = the step that consumed "
                  "decode_ids[k-1]");
  cmd->add_option("--teacher-force", o->teacher, "Ids to feed instead of the argmax (1,2,3 or @ids.json)");
  cmd->add_flag("--mtp", o->mtp, "Also write mtp_logits.npy (MTP block on the final stream, next-token ids)");
  cmd->callback([o] { run_logits(*o); });
}

}  // namespace flashline
