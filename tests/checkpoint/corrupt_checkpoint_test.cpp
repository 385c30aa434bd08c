// Every defect of a checkpoint is rejected whole, by Checkpoint::open in process and by
// `flashline inspect --model` (non-zero exit), with an error naming the file, the tensor or
// field, and what was expected. Each case forges a copy of tiny-a.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "base/input_error.h"
#include "checkpoint_test_util.h"
#include "stages/checkpoint.h"

namespace flashline::test {
namespace {

class CorruptCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    scratch_ = std::make_unique<ScratchDir>(::testing::UnitTest::GetInstance()->current_test_info()->name());
    model_ = copy_tiny_a(scratch_->path());
  }
  fs::path shard1() const { return model_ / kShard1; }
  fs::path shard2() const { return model_ / kShard2; }

  // Both the loader and the command must fail, and both messages must contain every piece.
  void expect_rejected(const std::vector<std::string>& pieces) const {
    const std::string msg = input_error_message([&] { Checkpoint::open(model_); });
    for (const auto& p : pieces) EXPECT_NE(msg.find(p), std::string::npos) << "missing \"" << p << "\" in: " << msg;
    const CommandResult r = run_flashline({"inspect", "--model", model_.string()});
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.exit_code, 2) << r.output;  // InputError, not a crash or an internal error
    EXPECT_NE(r.output.find("flashline: error: "), std::string::npos) << r.output;
    for (const auto& p : pieces) EXPECT_NE(r.output.find(p), std::string::npos) << "missing \"" << p << "\" in: " << r.output;
  }

  std::unique_ptr<ScratchDir> scratch_;
  fs::path model_;
};

TEST_F(CorruptCheckpoint, IntactCopyLoads) {
  EXPECT_NO_THROW(Checkpoint::open(model_));
  const CommandResult r = run_flashline({"inspect", "--model", model_.string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("validation: ok: 792 tensors"), std::string::npos) << r.output;
}

TEST_F(CorruptCheckpoint, HeaderLengthPastEndOfFile) {
  std::string b = read_file(shard1());
  const uint64_t len = b.size();  // header length = the whole file: 8 bytes too many
  std::memcpy(b.data(), &len, 8);
  write_file(shard1(), b);
  expect_rejected({kShard1, fmt::format("header length {} runs past the end of the file", len)});
}

TEST_F(CorruptCheckpoint, DataOffsetsOutOfRange) {
  const uint64_t data_size = read_shard(shard1()).data.size();
  edit_header(shard1(), [&](nlohmann::json& h) {
    h["layers.0.attn_norm.weight"]["data_offsets"] = {data_size, data_size + 512};
  });
  expect_rejected({kShard1, "\"layers.0.attn_norm.weight\"",
                   fmt::format("data_offsets [{}, {}] out of range", data_size, data_size + 512)});
}

TEST_F(CorruptCheckpoint, OverlappingOffsets) {
  edit_header(shard1(), [](nlohmann::json& h) {  // two [256] BF16 tensors on the same bytes
    h["layers.0.ffn_norm.weight"]["data_offsets"] = h["layers.0.attn_norm.weight"]["data_offsets"];
  });
  expect_rejected({kShard1, "\"layers.0.attn_norm.weight\"", "\"layers.0.ffn_norm.weight\"", "overlap"});
}

TEST_F(CorruptCheckpoint, UnknownDtype) {
  edit_header(shard1(), [](nlohmann::json& h) { h["layers.0.attn.wq_a.weight"]["dtype"] = "F8_E5M2"; });
  expect_rejected({kShard1, "\"layers.0.attn.wq_a.weight\"", "unknown dtype \"F8_E5M2\""});
}

TEST_F(CorruptCheckpoint, SizeDisagreesWithShape) {
  edit_header(shard1(), [](nlohmann::json& h) { h["layers.0.attn_norm.weight"]["shape"] = {128}; });
  expect_rejected({kShard1, "\"layers.0.attn_norm.weight\"", "data_offsets cover 512 bytes", "needs 256"});
}

TEST_F(CorruptCheckpoint, MissingTensor) {
  edit_header(shard2(), [](nlohmann::json& h) { h.erase("layers.3.ffn.experts.7.w2.scale"); });
  expect_rejected({kShard2, "\"layers.3.ffn.experts.7.w2.scale\" missing", "expected F8_E8M0 [256, 4]"});
}

TEST_F(CorruptCheckpoint, MissingFromIndex) {
  auto index = nlohmann::json::parse(read_file(model_ / "model.safetensors.index.json"));
  index["weight_map"].erase("mtp.0.e_proj.weight");
  write_file(model_ / "model.safetensors.index.json", index.dump());
  expect_rejected({"model.safetensors.index.json", "\"mtp.0.e_proj.weight\" missing from the index",
                   "expected F8_E4M3 [256, 256]"});
}

TEST_F(CorruptCheckpoint, WrongShape) {
  edit_header(shard1(), [](nlohmann::json& h) { h["layers.0.attn.wq_a.weight"]["shape"] = {256, 128}; });
  expect_rejected(
      {kShard1, "\"layers.0.attn.wq_a.weight\"", "expected F8_E4M3 [128, 256], found F8_E4M3 [256, 128]"});
}

TEST_F(CorruptCheckpoint, WrongDtype) {
  edit_header(shard1(), [](nlohmann::json& h) { h["layers.0.attn_norm.weight"]["dtype"] = "F16"; });
  expect_rejected({kShard1, "\"layers.0.attn_norm.weight\"", "expected BF16 [256], found F16 [256]"});
}

TEST_F(CorruptCheckpoint, NaNInScale) {
  poke_tensor(shard1(), "layers.1.attn.wq_b.scale", 3, "\xFF");
  expect_rejected({kShard1, "\"layers.1.attn.wq_b.scale\"", "scale element 3 is NaN (byte 0xFF)"});
}

TEST_F(CorruptCheckpoint, NaNInExpertScale) {
  poke_tensor(shard2(), "layers.4.ffn.experts.15.w1.scale", 100, "\xFF");
  expect_rejected({kShard2, "\"layers.4.ffn.experts.15.w1.scale\"", "scale element 100 is NaN"});
}

TEST_F(CorruptCheckpoint, InfInF32Tensor) {
  const float inf = std::numeric_limits<float>::infinity();
  poke_tensor(shard2(), "hc_head_base", 2 * sizeof(float), std::string(reinterpret_cast<const char*>(&inf), 4));
  expect_rejected({kShard2, "\"hc_head_base\"", "element 2 is NaN or Inf"});
}

TEST_F(CorruptCheckpoint, NaNInF32Tensor) {
  const float nan = std::nanf("");
  poke_tensor(shard1(), "layers.0.attn.attn_sink", 0, std::string(reinterpret_cast<const char*>(&nan), 4));
  expect_rejected({kShard1, "\"layers.0.attn.attn_sink\"", "element 0 is NaN or Inf"});
}

TEST_F(CorruptCheckpoint, HashTableNamesAMissingExpert) {
  const int64_t bad = 16;  // the model has experts 0..15
  poke_tensor(shard1(), "layers.1.ffn.gate.tid2eid", 5 * 8, std::string(reinterpret_cast<const char*>(&bad), 8));
  expect_rejected({kShard1, "\"layers.1.ffn.gate.tid2eid\"", "element 5 is expert 16, expected 0..15"});
}

TEST_F(CorruptCheckpoint, ConfigHiddenSizeContradictsTensors) {
  auto cfg = nlohmann::json::parse(read_file(model_ / "config.json"));
  cfg["hidden_size"] = 384;
  write_file(model_ / "config.json", cfg.dump());
  expect_rejected({kShard1, "\"embed.weight\"", "expected BF16 [2048, 384], found BF16 [2048, 256]"});
}

TEST_F(CorruptCheckpoint, ConfigExpertCountContradictsTensors) {
  auto cfg = nlohmann::json::parse(read_file(model_ / "config.json"));
  cfg["n_routed_experts"] = 8;
  write_file(model_ / "config.json", cfg.dump());
  expect_rejected({"\"layers.0.ffn.gate.weight\"", "expected BF16 [8, 256], found BF16 [16, 256]"});
}

TEST_F(CorruptCheckpoint, ConfigInvalid) {
  auto cfg = nlohmann::json::parse(read_file(model_ / "config.json"));
  cfg["hidden_size"] = 300;
  write_file(model_ / "config.json", cfg.dump());
  expect_rejected({"config.json", "field \"hidden_size\"", "must be a multiple of 128 (FP8 blocks), found 300"});
}

TEST_F(CorruptCheckpoint, TruncatedFile) {
  std::string b = read_file(shard2());
  b.resize(b.size() - 1000);
  write_file(shard2(), b);
  // the last tensor in the data section runs past the end; which one depends on the layout
  expect_rejected({kShard2, "out of range: the data section has"});
}

TEST_F(CorruptCheckpoint, TruncatedInsideHeader) {
  std::string b = read_file(shard1());
  b.resize(4000);
  write_file(shard1(), b);
  expect_rejected({kShard1, "runs past the end of the file (4000 bytes)"});
}

TEST_F(CorruptCheckpoint, EmptyFile) {
  write_file(shard2(), "");
  expect_rejected({kShard2, "file is 0 bytes, too short for a safetensors header"});
}

TEST_F(CorruptCheckpoint, BadJsonHeader) {
  std::string b = read_file(shard1());
  b[8 + 20] = '\x01';  // a control character inside the first tensor name
  write_file(shard1(), b);
  expect_rejected({kShard1, "header is not valid JSON"});
}

TEST_F(CorruptCheckpoint, HeaderNotAnObject) {
  const auto data = read_shard(shard1()).data;
  SafetensorsWriter::write_raw(shard1(), "[1, 2, 3]", {reinterpret_cast<const std::byte*>(data.data()), data.size()});
  expect_rejected({kShard1, "header is not a JSON object"});
}

TEST_F(CorruptCheckpoint, MissingConfigJson) {
  fs::remove(model_ / "config.json");
  expect_rejected({"config.json", "cannot open config file"});
}

TEST_F(CorruptCheckpoint, BadIndexJson) {
  std::string idx = read_file(model_ / "model.safetensors.index.json");
  write_file(model_ / "model.safetensors.index.json", idx.substr(0, idx.size() / 2));
  expect_rejected({"model.safetensors.index.json", "invalid JSON"});
}

// A number beyond double (1e400) is nlohmann's out_of_range, not a parse_error: it was an
// internal error instead of the file's invalid JSON.
TEST_F(CorruptCheckpoint, NumberBeyondDoubleInIndex) {
  write_file(model_ / "model.safetensors.index.json", R"({"metadata": {"total_size": 1e400}, "weight_map": {}})");
  expect_rejected({"model.safetensors.index.json", "invalid JSON", "number overflow"});
}

TEST_F(CorruptCheckpoint, NumberBeyondDoubleInHeader) {
  const auto data = read_shard(shard1()).data;
  SafetensorsWriter::write_raw(shard1(), R"({"__metadata__": {"scale": 1e400}})",
                               {reinterpret_cast<const std::byte*>(data.data()), data.size()});
  expect_rejected({kShard1, "header is not valid JSON", "number overflow"});
}

TEST_F(CorruptCheckpoint, NumberBeyondDoubleInConfig) {
  std::string cfg = read_file(model_ / "config.json");
  cfg.insert(cfg.find('{') + 1, R"("rope_scale_unused": 1e400, )");
  write_file(model_ / "config.json", cfg);
  expect_rejected({"config.json", "invalid JSON", "number overflow"});
}

TEST_F(CorruptCheckpoint, IndexWithoutWeightMap) {
  write_file(model_ / "model.safetensors.index.json", R"({"metadata": {"total_size": 1}})");
  expect_rejected({"model.safetensors.index.json", "field \"weight_map\" missing or not an object"});
}

TEST_F(CorruptCheckpoint, IndexPointsOutsideTheDirectory) {
  auto index = nlohmann::json::parse(read_file(model_ / "model.safetensors.index.json"));
  index["weight_map"]["head.weight"] = "../model-00002-of-00002.safetensors";
  write_file(model_ / "model.safetensors.index.json", index.dump());
  expect_rejected({"model.safetensors.index.json", "field \"weight_map.head.weight\"",
                   "is not a file in the model directory"});
}

TEST_F(CorruptCheckpoint, IndexNamesAMissingShard) {
  auto index = nlohmann::json::parse(read_file(model_ / "model.safetensors.index.json"));
  index["weight_map"]["head.weight"] = "model-00003-of-00002.safetensors";
  write_file(model_ / "model.safetensors.index.json", index.dump());
  expect_rejected({"model-00003-of-00002.safetensors", "cannot open"});
}

TEST_F(CorruptCheckpoint, NoIndexAndNoSingleFile) {
  fs::remove(model_ / "model.safetensors.index.json");
  expect_rejected({"neither model.safetensors.index.json nor model.safetensors found"});
}

TEST_F(CorruptCheckpoint, HugeShapeEntry) {
  edit_header(shard1(), [](nlohmann::json& h) {
    h["layers.0.attn_norm.weight"]["shape"] = {uint64_t(1) << 63, 2};
  });
  expect_rejected({kShard1, "\"layers.0.attn_norm.weight\"", "is too large"});
}

}  // namespace
}  // namespace flashline::test
