#pragma once
// Small random checkpoints in the release layout (config.json with the Hugging Face keys,
// model.safetensors.index.json and two shards) for tests, the demo and benchmarks. The tensor
// list is release_tensors(config), so a generated model always matches what the loader expects.
// Values follow the distributions of the reference generator (shared/reference/make_tiny.py):
// normal weights scaled by 1/sqrt(fan_in) and per-kind gains, quantised exactly as the release
// stores them, so a forward pass over them gives non-degenerate logits.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/input_error.h"

namespace flashline {

struct TinyModelSpec {
  std::string name;
  uint64_t seed = 0;
  nlohmann::json config;  // the config.json keys (HF names), without seed / name / init_gains
  nlohmann::json gains;   // init gains, the reference defaults overridden by the preset
};

// "tiny-a", "tiny-b", "small".
std::vector<std::string> tiny_preset_names();
// The preset, or InputError listing the known ones.
TinyModelSpec tiny_preset(const std::string& name);
// A preset file: a JSON object of config keys (merged over the keys every preset shares), plus
// optional "name", "seed" and "init_gains". InputError names the file and the field.
TinyModelSpec tiny_preset_from_file(const std::filesystem::path& path);

struct TinyModelResult {
  int64_t tensors = 0;
  uint64_t bytes = 0;  // tensor data bytes, the index's total_size
};

// Writes the model into `out` (created if needed); the same spec gives the same bytes.
// `progress` (optional) receives one line per generated layer / shard.
TinyModelResult write_tiny_model(const TinyModelSpec& spec, const std::filesystem::path& out,
                                 const std::function<void(const std::string&)>& progress = {});

}  // namespace flashline
