#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "model/model_config.h"
#include "model/release_layout.h"

namespace flashline {
namespace {

const std::string kData = FLASHLINE_TEST_DATA;

TEST(ReleaseLayout, RealConfigMatchesReleaseInventory) {
  auto c = ModelConfig::load(kData + "/configs/deepseek-v4-flash.config.json");
  auto specs = release_tensors(c);
  int64_t bytes = 0;
  for (const auto& t : specs) bytes += t.bytes();
  EXPECT_EQ(specs.size(), 69187u);
  EXPECT_EQ(bytes, 159609485896);
}

TEST(ModelConfig, ErrorNamesField) {
  auto j = nlohmann::json::parse(R"({"vocab_size": "big"})");
  try {
    ModelConfig::from_json(j, "x.json");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("x.json: field \"vocab_size\""), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace flashline
