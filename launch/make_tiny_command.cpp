// `flashline make-tiny`: a small random checkpoint in the release layout (tests, demo, benchmarks).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <optional>

#include "base/input_error.h"
#include "launch/commands.h"
#include "launch/output_set.h"
#include "model/model_config.h"
#include "stages/tiny_model.h"

namespace flashline {
namespace {

struct MakeTinyOptions {
  std::string out;
  std::string preset = "tiny-a";
  std::string config;
  std::optional<uint64_t> seed;
  bool quiet = false;
};

void run_make_tiny(const MakeTinyOptions& o) {
  TinyModelSpec spec = o.config.empty() ? tiny_preset(o.preset) : tiny_preset_from_file(o.config);
  if (o.seed) spec.seed = *o.seed;
  auto progress = [&](const std::string& line) {
    if (!o.quiet) fmt::print(stderr, "make-tiny: {}\n", line);
  };
  // The whole model or nothing: a failure on the second shard must not leave the first one
  // without its config and index.
  OutputSet out(o.out, {"config.json", "model.safetensors.index.json", "model.safetensors", "model-*.safetensors"});
  TinyModelResult r;
  try {
    r = write_tiny_model(spec, out.staging(), progress);
  } catch (const InputError& e) {
    throw InputError(out.in_destination_terms(e.what()));
  }
  out.commit();
  fmt::print("wrote {} (seed {}) to {}: {} tensors, {} bytes\n", spec.name, spec.seed, o.out, r.tensors, r.bytes);
}

}  // namespace

void add_make_tiny_command(CLI::App& app) {
  auto o = std::make_shared<MakeTinyOptions>();
  auto* cmd = app.add_subcommand("make-tiny", "Write a small random model in the release checkpoint layout");
  cmd->add_option("--out", o->out, "Output directory: created, or replaced as a whole when it holds only an earlier model")->required();
  auto* p = cmd->add_option("--preset", o->preset,
                            fmt::format("Preset: {} (default tiny-a)", fmt::join(tiny_preset_names(), ", ")));
  auto* c = cmd->add_option("--config", o->config,
                            "Preset file: a JSON object of config.json keys (merged over the shared ones), "
                            "optional \"name\", \"seed\", \"init_gains\"");
  p->excludes(c);
  cmd->add_option("--seed", o->seed, "Random seed, 0 to 2^64-1 (default: the preset's); same seed, same bytes")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--quiet", o->quiet, "No progress lines on stderr");
  cmd->callback([o] { run_make_tiny(*o); });
}

}  // namespace flashline
