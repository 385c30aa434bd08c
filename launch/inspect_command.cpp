// `flashline inspect`: what a model directory or a config holds, and whether it is valid.
#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>

#include "base/input_error.h"
#include "launch/commands.h"
#include "stages/checkpoint.h"

namespace flashline {
namespace {

struct InspectOptions {
  std::string model_dir;
  std::string config;
  bool json = false;
  bool skip_weight_check = false;
};

void run_inspect(const InspectOptions& o) {
  ModelConfig c;
  std::vector<TensorSpec> specs;
  std::string validation;
  if (!o.model_dir.empty()) {
    CheckpointSelection sel;
    sel.check_values = !o.skip_weight_check;
    Checkpoint ck = Checkpoint::open(o.model_dir, sel);  // throws InputError naming the defect
    c = ck.config();
    specs = release_tensors(c);
    validation = fmt::format("ok: {} tensors present with the expected dtypes and shapes in {} file(s){}",
                             ck.tensors().size(), ck.files().size(),
                             o.skip_weight_check ? " (weight values not checked: --skip-weight-check)"
                                                 : ", every weight finite");
  } else {
    c = ModelConfig::load(o.config);
    specs = release_tensors(c);
    validation = "not checked (config only: tensors are those the release format implies)";
  }
  struct Tally {
    int64_t count = 0, bytes = 0;
  };
  std::map<std::string, Tally> by_dtype, by_group;
  Tally total;
  for (const auto& t : specs) {
    for (Tally* y : {&by_dtype[std::string(dtype_name(t.dtype))], &by_group[tensor_group_name(t.group)], &total}) {
      y->count += 1;
      y->bytes += t.bytes();
    }
  }
  nlohmann::json layers = nlohmann::json::array();
  for (int id = 0; id < c.total_layers(); ++id)
    layers.push_back({{"layer", id},
                      {"name", c.layer_prefix(id).substr(0, c.layer_prefix(id).size() - 1)},
                      {"compress_ratio", c.ratio(id)},
                      {"attention", attention_kind_name(c.attention_kind(id))},
                      {"routing", c.hash_routed(id) ? "hash" : "score"}});
  if (o.json) {
    nlohmann::json j;
    j["tensor_count"] = total.count;
    j["tensor_bytes"] = total.bytes;
    for (const auto& [k, v] : by_dtype) j["by_dtype"][k] = {{"count", v.count}, {"bytes", v.bytes}};
    for (const auto& [k, v] : by_group) j["by_group"][k] = {{"count", v.count}, {"bytes", v.bytes}};
    j["layers"] = layers;
    j["config"] = {{"vocab_size", c.vocab},       {"hidden_size", c.dim},          {"num_hidden_layers", c.n_layers},
                   {"num_nextn_predict_layers", c.n_mtp}, {"num_attention_heads", c.n_heads}, {"head_dim", c.head_dim},
                   {"n_routed_experts", c.n_experts}, {"num_experts_per_tok", c.topk_experts},
                   {"hc_mult", c.hc},            {"sliding_window", c.window}};
    j["validation"] = validation;
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("model: vocab {}, hidden {}, {} layers + {} MTP, {} heads x {} (rope {}), q_lora {}, "
             "o_groups {} x {}\n",
             c.vocab, c.dim, c.n_layers, c.n_mtp, c.n_heads, c.head_dim, c.rope_dim, c.q_lora, c.o_groups, c.o_lora);
  fmt::print("moe: {} routed experts (top {}, inter {}), {} shared, {} hash layers, score {}\n", c.n_experts,
             c.topk_experts, c.moe_inter, c.n_shared, c.n_hash, c.score_func);
  fmt::print("residual: hc {} ; window {} ; indexer {} heads x {} top {}\n\n", c.hc, c.window, c.index_heads,
             c.index_dim, c.index_topk);
  fmt::print("{:<8} {:>6} {:<8} {:<7}\n", "layer", "ratio", "attn", "routing");
  for (const auto& l : layers)
    fmt::print("{:<8} {:>6} {:<8} {:<7}\n", l["name"].get<std::string>(), l["compress_ratio"].get<int>(),
               l["attention"].get<std::string>(), l["routing"].get<std::string>());
  auto gib = [](int64_t b) { return double(b) / (1024.0 * 1024.0 * 1024.0); };
  fmt::print("\n{:<18} {:>10} {:>18} {:>10}\n", "dtype", "tensors", "bytes", "GiB");
  for (const auto& [k, v] : by_dtype) fmt::print("{:<18} {:>10} {:>18} {:>10.2f}\n", k, v.count, v.bytes, gib(v.bytes));
  fmt::print("\n{:<18} {:>10} {:>18} {:>10}\n", "group", "tensors", "bytes", "GiB");
  for (const auto& [k, v] : by_group) fmt::print("{:<18} {:>10} {:>18} {:>10.2f}\n", k, v.count, v.bytes, gib(v.bytes));
  fmt::print("{:<18} {:>10} {:>18} {:>10.2f}\n\nvalidation: {}\n", "total", total.count, total.bytes, gib(total.bytes),
             validation);
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto o = std::make_shared<InspectOptions>();
  auto* cmd = app.add_subcommand("inspect", "Summarise and validate a model directory or a config.json");
  auto* m = cmd->add_option("--model", o->model_dir, "Model directory (config.json + safetensors)");
  auto* c = cmd->add_option("--config", o->config, "A config.json alone: list the tensors it implies");
  m->excludes(c);
  cmd->add_flag("--json", o->json, "Print a JSON object instead of tables");
  cmd->add_flag("--skip-weight-check", o->skip_weight_check,
                "Do not read every weight for NaN/Inf (faster on a full checkpoint; scales are still checked)");
  cmd->callback([o, m, c] {
    if (o->model_dir.empty() && o->config.empty()) throw InputError("inspect: give --model DIR or --config FILE");
    run_inspect(*o);
  });
}

}  // namespace flashline
