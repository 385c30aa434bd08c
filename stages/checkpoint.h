#pragma once
// A model directory in the release layout: config.json plus model.safetensors.index.json and
// its shards, or a single model.safetensors. Opening it validates every selected tensor against
// the layout the config implies (presence, dtype, shape, finite scales and weights) before anything is used;
// a checkpoint that fails is rejected whole. Data stays memory-mapped.
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "model/model_config.h"
#include "model/release_layout.h"
#include "stages/safetensors_file.h"

namespace flashline {

// Which part of the model a process needs (one pipeline stage, one expert shard).
struct CheckpointSelection {
  int layer_begin = 0;
  int layer_end = -1;                 // exclusive; -1 = all main layers
  std::optional<std::set<int>> experts;  // routed experts to load; nullopt = all
  std::map<int, std::set<int>> layer_experts;  // per-layer overrides of `experts` (layer id -> set)
  bool embedding = true;
  bool head = true;                   // norm, head, hc_head
  bool mtp = true;                    // the MTP blocks (and their experts per `experts`)
  // Reject NaN/Inf weight values (F32, BF16, FP8 e4m3) at open. This reads every selected byte
  // once (from disk on a cold page cache); off only for --skip-weight-check. Scales (UE8M0) are
  // always checked.
  bool check_values = true;

  bool wants(const TensorSpec& t, const ModelConfig& c) const;
};

// The weight_map of model.safetensors.index.json (tensor name -> shard file name in the model
// directory), from the JSON text; `index` names the file in errors. Checkpoint::open reads it so.
std::map<std::string, std::string> parse_checkpoint_index(std::string_view text, const std::filesystem::path& index);

class Checkpoint {
 public:
  static Checkpoint open(const std::filesystem::path& dir, const CheckpointSelection& sel = {});

  const ModelConfig& config() const { return config_; }
  const std::filesystem::path& dir() const { return dir_; }
  const CheckpointSelection& selection() const { return selection_; }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  // The tensor, or InputError naming it when it is absent (e.g. not selected).
  const TensorView& tensor(const std::string& name) const;
  const std::map<std::string, const TensorView*>& tensors() const { return tensors_; }
  // Shards actually opened (those holding a selected tensor).
  std::vector<std::filesystem::path> files() const;

 private:
  std::filesystem::path dir_;
  ModelConfig config_;
  CheckpointSelection selection_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> tensors_;
};

}  // namespace flashline
