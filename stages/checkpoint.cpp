#include "stages/checkpoint.h"

#include "base/input_error.h"
#include "base/input_file.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

namespace flashline {
namespace {

namespace fs = std::filesystem;

// tensor name -> shard file name, from the index (or the one file of a single-file checkpoint)
std::map<std::string, std::string> weight_map(const fs::path& dir) {
  const fs::path index = dir / "model.safetensors.index.json";
  if (!fs::exists(index)) {
    if (!fs::exists(dir / "model.safetensors"))
      throw InputError(fmt::format("{}: neither model.safetensors.index.json nor model.safetensors found",
                                   dir.string()));
    return {};  // empty: single file, every tensor lives in model.safetensors
  }
  return parse_checkpoint_index(read_input_file(index, "checkpoint index"), index);
}

}  // namespace

std::map<std::string, std::string> parse_checkpoint_index(std::string_view text, const fs::path& index) {
  std::map<std::string, std::string> out;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range: a number beyond double
    throw InputError(fmt::format("{}: invalid JSON: {}", index.string(), e.what()));
  }
  if (!j.contains("weight_map") || !j["weight_map"].is_object())
    throw InputError(fmt::format("{}: field \"weight_map\" missing or not an object", index.string()));
  for (auto& [name, file] : j["weight_map"].items()) {
    if (!file.is_string())
      throw InputError(fmt::format("{}: field \"weight_map.{}\": expected a file name", index.string(), name));
    auto f = file.get<std::string>();
    if (f.find('/') != std::string::npos || f.empty() || f == "." || f == "..")
      throw InputError(fmt::format("{}: field \"weight_map.{}\": \"{}\" is not a file in the model directory",
                                   index.string(), name, f));
    out[name] = f;
  }
  return out;
}

namespace {

std::string shape_str(const std::vector<int64_t>& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

void check_scale_finite(const TensorView& v) {
  if (v.dtype != DType::F8_E8M0) return;
  const auto* p = reinterpret_cast<const uint8_t*>(v.data.data());
  for (std::size_t i = 0; i < v.data.size(); ++i)
    if (p[i] == 0xFF)  // the one NaN encoding of UE8M0
      throw InputError(fmt::format("{}: tensor \"{}\": scale element {} is NaN (byte 0xFF)", v.file.string(),
                                   v.name, i));
}

void check_f32_finite(const TensorView& v) {
  if (v.dtype != DType::F32) return;
  for (std::size_t i = 0; i < v.data.size() / 4; ++i) {
    uint32_t u;
    std::memcpy(&u, v.data.data() + 4 * i, 4);
    if ((u & 0x7F800000u) == 0x7F800000u)
      throw InputError(fmt::format("{}: tensor \"{}\": element {} is NaN or Inf", v.file.string(), v.name, i));
  }
}

// BF16 with an all-ones exponent is Inf or NaN.
void check_bf16_finite(const TensorView& v) {
  if (v.dtype != DType::BF16) return;
  const std::size_t n = v.data.size() / 2;
  const auto* p = reinterpret_cast<const unsigned char*>(v.data.data());
  auto bad = [p](std::size_t i) { return ((unsigned(p[2 * i + 1]) << 8 | p[2 * i]) & 0x7F80u) == 0x7F80u; };
  // Branch-free pass first (vectorises); the index is looked for only on failure.
  unsigned any = 0;
  for (std::size_t i = 0; i < n; ++i) any |= bad(i);
  if (!any) return;
  std::size_t i = 0;
  while (!bad(i)) ++i;
  throw InputError(fmt::format("{}: tensor \"{}\": element {} is NaN or Inf (BF16 0x{:02X}{:02X})", v.file.string(),
                               v.name, i, p[2 * i + 1], p[2 * i]));
}

// e4m3fn has no Inf; codes 0x7F and 0xFF are NaN.
void check_e4m3_finite(const TensorView& v) {
  if (v.dtype != DType::F8_E4M3) return;
  const auto* p = reinterpret_cast<const uint8_t*>(v.data.data());
  const std::size_t n = v.data.size();
  // Branch-free pass first (vectorises); the index is looked for only on failure.
  unsigned any = 0;
  for (std::size_t i = 0; i < n; ++i) any |= (p[i] & 0x7Fu) == 0x7Fu;
  if (!any) return;
  std::size_t i = 0;
  while ((p[i] & 0x7Fu) != 0x7Fu) ++i;
  throw InputError(fmt::format("{}: tensor \"{}\": element {} is NaN (FP8 e4m3 code 0x{:02X})", v.file.string(),
                               v.name, i, p[i]));
}

void check_tid2eid(const TensorView& v, const ModelConfig& c) {
  for (int64_t i = 0; i < v.elements(); ++i) {
    int64_t e;
    if (v.dtype == DType::I64) {
      std::memcpy(&e, v.data.data() + 8 * i, 8);
    } else {
      int32_t e32;
      std::memcpy(&e32, v.data.data() + 4 * i, 4);
      e = e32;
    }
    if (e < 0 || e >= c.n_experts)
      throw InputError(fmt::format("{}: tensor \"{}\": element {} is expert {}, expected 0..{}", v.file.string(),
                                   v.name, i, e, c.n_experts - 1));
  }
}

}  // namespace

bool CheckpointSelection::wants(const TensorSpec& t, const ModelConfig& c) const {
  if (t.group == TensorGroup::Embedding) return embedding || (mtp && c.n_mtp > 0);
  if (t.layer < 0) return head || (t.name == "head.weight" && mtp && c.n_mtp > 0);  // MTP uses the head
  if (t.layer >= c.n_layers) {
    if (!mtp) return false;
  } else {
    int end = layer_end < 0 ? c.n_layers : layer_end;
    if (t.layer < layer_begin || t.layer >= end) return false;
  }
  if (t.expert >= 0)
    if (auto it = layer_experts.find(t.layer); it != layer_experts.end()) return it->second.count(t.expert) != 0;
  if (t.expert >= 0 && experts) return experts->count(t.expert) != 0;
  return true;
}

Checkpoint Checkpoint::open(const fs::path& dir, const CheckpointSelection& sel) {
  std::error_code ec;
  if (!fs::exists(dir, ec))
    throw InputError(fmt::format("{}: model directory does not exist", dir.string()));
  if (!fs::is_directory(dir, ec))
    throw InputError(fmt::format("{}: is a file, expected a model directory (config.json + safetensors)",
                                 dir.string()));
  Checkpoint ck;
  ck.dir_ = dir;
  ck.config_ = ModelConfig::load(dir / "config.json");
  ck.selection_ = sel;
  const ModelConfig& c = ck.config_;
  const bool bad_end = sel.layer_end >= 0 && (sel.layer_end > c.n_layers || sel.layer_end < sel.layer_begin);
  if (sel.layer_begin < 0 || sel.layer_begin > c.n_layers || bad_end)
    throw InputError(fmt::format("{}: layer range {}..{} outside the model's {} layers", dir.string(),
                                 sel.layer_begin, sel.layer_end, c.n_layers));
  if (sel.experts)
    for (int e : *sel.experts)
      if (e < 0 || e >= c.n_experts)
        throw InputError(fmt::format("{}: expert {} requested, the model has {}", dir.string(), e, c.n_experts));
  for (const auto& [layer, set] : sel.layer_experts)
    for (int e : set)
      if (e < 0 || e >= c.n_experts)
        throw InputError(fmt::format("{}: layer {}: expert {} requested, the model has {}", dir.string(), layer, e,
                                     c.n_experts));

  const auto specs = release_tensors(c);
  const auto wmap = weight_map(dir);
  // Open only the shards that hold a selected tensor.
  std::map<std::string, std::shared_ptr<SafetensorsFile>> open_files;
  auto file_for = [&](const std::string& fname) {
    auto& f = open_files[fname];
    if (!f) {
      f = std::make_shared<SafetensorsFile>(dir / fname);
      ck.files_.push_back(f);
    }
    return f;
  };
  for (const auto& spec : specs) {
    if (!sel.wants(spec, c)) continue;
    std::string fname = "model.safetensors";
    if (!wmap.empty()) {
      auto it = wmap.find(spec.name);
      if (it == wmap.end())
        throw InputError(fmt::format("{}: tensor \"{}\" missing from the index (expected {} {})",
                                     (dir / "model.safetensors.index.json").string(), spec.name,
                                     dtype_name(spec.dtype), shape_str(spec.shape)));
      fname = it->second;
    }
    auto f = file_for(fname);
    auto it = f->tensors().find(spec.name);
    if (it == f->tensors().end())
      throw InputError(fmt::format("{}: tensor \"{}\" missing (expected {} {})", f->path().string(), spec.name,
                                   dtype_name(spec.dtype), shape_str(spec.shape)));
    const TensorView& v = it->second;
    bool dtype_ok = v.dtype == spec.dtype || (spec.name.ends_with("tid2eid") && v.dtype == DType::I32);
    if (!dtype_ok || v.shape != spec.shape)
      throw InputError(fmt::format("{}: tensor \"{}\": expected {} {}, found {} {}", f->path().string(), spec.name,
                                   dtype_name(spec.dtype), shape_str(spec.shape), dtype_name(v.dtype),
                                   shape_str(v.shape)));
    check_scale_finite(v);
    if (sel.check_values) {
      check_f32_finite(v);
      check_bf16_finite(v);
      check_e4m3_finite(v);
    }
    if (spec.name.ends_with("tid2eid")) check_tid2eid(v, c);
    ck.tensors_[spec.name] = &v;
  }
  {
    // An index naming a tensor the layout lacks belongs to another model or config: loading the
    // rest would silently ignore weights the checkpoint's author meant to be used. Checked after
    // the layout's own tensors, whose mismatches say more (a config with fewer experts than the
    // shards shows as a wrong gate shape first).
    std::set<std::string> layout;
    for (const auto& spec : specs) layout.insert(spec.name);
    for (const auto& [name, file] : wmap)
      if (!layout.count(name))
        throw InputError(fmt::format("{}: field \"weight_map.{}\": tensor \"{}\" (in {}) is not part of the release "
                                     "layout that config.json describes ({} tensors)",
                                     (dir / "model.safetensors.index.json").string(), name, name, file, specs.size()));
  }
  return ck;
}

const TensorView& Checkpoint::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end())
    throw InputError(fmt::format("{}: tensor \"{}\" is not loaded (absent or not selected)", dir_.string(), name));
  return *it->second;
}

std::vector<fs::path> Checkpoint::files() const {
  std::vector<fs::path> out;
  for (const auto& f : files_) out.push_back(f->path());
  return out;
}

}  // namespace flashline
