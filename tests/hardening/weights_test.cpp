// Non-finite weights are refused when the checkpoint is opened, naming the file, the tensor and
// the element; before, an Inf norm weight gave all-zero ids and NaN logits with exit 0, and an
// FP8 NaN code decoded like 448. Also: index entries outside the layout, reversed data offsets,
// a missing model directory.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "base/input_error.h"
#include "stages/checkpoint.h"
#include "tests/checkpoint/checkpoint_test_util.h"

namespace flashline::test {
namespace {

class Weights : public ::testing::Test {
 protected:
  void SetUp() override {
    scratch_ = std::make_unique<ScratchDir>(std::string("hardening-") +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    model_ = copy_tiny_a(scratch_->path());
  }
  // The shard the index puts `tensor` in.
  fs::path shard_of(const std::string& tensor) const {
    const auto index = nlohmann::json::parse(read_file(model_ / "model.safetensors.index.json"));
    return model_ / index.at("weight_map").at(tensor).get<std::string>();
  }
  void poke(const std::string& tensor, std::size_t offset, const std::string& bytes) const {
    poke_tensor(shard_of(tensor), tensor, offset, bytes);
  }
  void expect_rejected(const std::vector<std::string>& pieces) const {
    const std::string msg = input_error_message([&] { Checkpoint::open(model_); });
    for (const auto& p : pieces) EXPECT_NE(msg.find(p), std::string::npos) << "missing \"" << p << "\" in: " << msg;
    const CommandResult r = run_flashline({"inspect", "--model", model_.string()});
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_EQ(r.output.rfind("flashline: error: ", 0), 0u) << r.output;
    for (const auto& p : pieces) EXPECT_NE(r.output.find(p), std::string::npos) << "missing \"" << p << "\" in: " << r.output;
  }

  std::unique_ptr<ScratchDir> scratch_;
  fs::path model_;
};

TEST_F(Weights, InfInBf16NormWeight) {
  poke("norm.weight", 2 * 7, std::string("\x80\x7F", 2));  // BF16 +Inf, element 7
  expect_rejected({"\"norm.weight\"", "element 7 is NaN or Inf", "BF16 0x7F80"});
}

TEST_F(Weights, NaNInAttnNormWeight) {
  poke("layers.0.attn_norm.weight", 0, std::string("\xC0\x7F", 2));  // BF16 quiet NaN
  expect_rejected({"\"layers.0.attn_norm.weight\"", "element 0 is NaN or Inf"});
}

TEST_F(Weights, Fp8NaNCode) {
  poke("layers.0.attn.wq_a.weight", 1000, "\x7F");
  expect_rejected({"\"layers.0.attn.wq_a.weight\"", "element 1000 is NaN (FP8 e4m3 code 0x7F)"});
}

TEST_F(Weights, Fp8NegativeNaNCode) {
  poke("layers.2.ffn.shared_experts.w2.weight", 3, "\xFF");
  expect_rejected({"\"layers.2.ffn.shared_experts.w2.weight\"", "element 3 is NaN (FP8 e4m3 code 0xFF)"});
}

TEST_F(Weights, SkipWeightCheckLoadsAnyway) {
  poke("norm.weight", 0, std::string("\x80\x7F", 2));
  CheckpointSelection sel;
  sel.check_values = false;
  EXPECT_NO_THROW(Checkpoint::open(model_, sel));
  const CommandResult r = run_flashline({"inspect", "--model", model_.string(), "--skip-weight-check"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("weight values not checked"), std::string::npos) << r.output;
}

TEST_F(Weights, FiniteExtremesAreAccepted) {
  poke("norm.weight", 0, std::string("\x7F\x7F", 2));  // largest finite BF16
  poke("layers.0.attn.wq_a.weight", 0, "\x7E");        // 448, largest finite e4m3
  EXPECT_NO_THROW(Checkpoint::open(model_));
}

TEST_F(Weights, IndexNamesATensorOutsideTheLayout) {
  auto index = nlohmann::json::parse(read_file(model_ / "model.safetensors.index.json"));
  index["weight_map"]["layers.0.attn.wq_c.weight"] = kShard1;
  write_file(model_ / "model.safetensors.index.json", index.dump());
  expect_rejected({"model.safetensors.index.json", "\"weight_map.layers.0.attn.wq_c.weight\"",
                   "not part of the release layout"});
}

TEST_F(Weights, ReversedDataOffsets) {
  edit_header(model_ / kShard1, [](nlohmann::json& h) {
    auto& o = h["layers.0.attn_norm.weight"]["data_offsets"];
    o = {o[1], o[0]};
  });
  expect_rejected({"\"layers.0.attn_norm.weight\"", "are reversed"});
}

TEST(ModelDirectory, MissingOrAFile) {
  ScratchDir dir("hardening-model-dir");
  const fs::path missing = dir.path() / "nope";
  EXPECT_NE(input_error_message([&] { Checkpoint::open(missing); }).find("model directory does not exist"),
            std::string::npos);
  write_file(dir.path() / "file", "x");
  EXPECT_NE(input_error_message([&] { Checkpoint::open(dir.path() / "file"); }).find("is a file, expected a model "
                                                                                      "directory"),
            std::string::npos);
}

}  // namespace
}  // namespace flashline::test
