// config.json values the loader does not implement are refused by name ("unsupported value"),
// with the key, the value found and what is supported; before, each was accepted and the model
// loaded as garbage or failed later.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "base/input_error.h"
#include "model/model_config.h"

namespace flashline {
namespace {

nlohmann::json tiny_a_config() {
  std::ifstream in(std::string(FLASHLINE_TEST_DATA) + "/models/tiny-a/config.json");
  return nlohmann::json::parse(in);
}

std::string error_of(const nlohmann::json& j) {
  try {
    ModelConfig::from_json(j, "config.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "(accepted)";
}

void expect_error(const nlohmann::json& j, const std::vector<std::string>& pieces) {
  const std::string e = error_of(j);
  for (const auto& p : pieces) EXPECT_NE(e.find(p), std::string::npos) << "missing \"" << p << "\" in: " << e;
}

TEST(ConfigValues, TinyAAndTheReleaseConfigLoad) {
  EXPECT_EQ(error_of(tiny_a_config()), "(accepted)");
  std::ifstream in(std::string(FLASHLINE_TEST_DATA) + "/configs/deepseek-v4-flash.config.json");
  const auto c = ModelConfig::from_json(nlohmann::json::parse(in), "release");
  EXPECT_EQ(c.max_positions, 1048576);
}

TEST(ConfigValues, WeightBlockSize) {
  auto j = tiny_a_config();
  j["quantization_config"]["weight_block_size"] = {64, 64};
  expect_error(j, {"config.json", "\"quantization_config.weight_block_size\"", "unsupported value [64,64]",
                   "supported: [128,128]"});
}

TEST(ConfigValues, ScaleFormat) {
  auto j = tiny_a_config();
  j["quantization_config"]["scale_fmt"] = "fp32";
  expect_error(j, {"\"quantization_config.scale_fmt\"", "unsupported value \"fp32\"", "supported: \"ue8m0\""});
}

TEST(ConfigValues, ExpertDtype) {
  auto j = tiny_a_config();
  j["quantization_config"]["expert_dtype"] = "fp8";
  expect_error(j, {"\"quantization_config.expert_dtype\"", "unsupported value \"fp8\"", "supported: \"fp4\""});
}

TEST(ConfigValues, NoQuantizationConfig) {
  auto j = tiny_a_config();
  j.erase("quantization_config");
  expect_error(j, {"\"quantization_config\"", "missing", "\"quant_method\": \"fp8\""});
}

TEST(ConfigValues, QuantMethod) {
  auto j = tiny_a_config();
  j["quantization_config"]["quant_method"] = "gptq";
  expect_error(j, {"\"quantization_config.quant_method\"", "unsupported value \"gptq\"", "supported: \"fp8\""});
}

TEST(ConfigValues, ModelType) {
  auto j = tiny_a_config();
  j["model_type"] = "llama";
  expect_error(j, {"\"model_type\"", "unsupported value \"llama\"", "supported: \"deepseek_v4\""});
}

TEST(ConfigValues, RopeScalingType) {
  auto j = tiny_a_config();
  j["rope_scaling"]["type"] = "linear";
  expect_error(j, {"\"rope_scaling.type\"", "unsupported value \"linear\"", "supported: \"yarn\""});
}

TEST(ConfigValues, EosPastTheVocabulary) {
  auto j = tiny_a_config();
  j["eos_token_id"] = 2048;
  expect_error(j, {"\"eos_token_id\"", "unsupported value 2048", "below vocab_size (2048)"});
  j = tiny_a_config();
  j["bos_token_id"] = 5000;
  expect_error(j, {"\"bos_token_id\"", "unsupported value 5000"});
}

TEST(ConfigValues, ExpertLayersAreBounded) {
  // Before: 2^24 experts x 2^24 layers passed the per-key bounds and the release inventory
  // (inspect --config, the planner) tried to list ~10^15 tensors.
  auto j = tiny_a_config();
  j["n_routed_experts"] = 1 << 20;
  j["num_experts_per_tok"] = 4;
  expect_error(j, {"\"n_routed_experts\"", "1048576 x 6 is more than 262144 expert layers"});
}

}  // namespace
}  // namespace flashline
