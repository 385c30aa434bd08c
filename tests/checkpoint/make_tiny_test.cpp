// make-tiny: every preset round-trips through Checkpoint::open, the output depends only on the
// seed, tiny-a has the hyper-parameters of the checked-in model, and the values are sane.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "checkpoint_test_util.h"
#include "kernels/cpu/numerics.h"
#include "stages/checkpoint.h"
#include "stages/tiny_model.h"

namespace flashline::test {
namespace {

nlohmann::json without_generator(nlohmann::json j) {
  j.erase("generator");
  return j;
}

void expect_same_files(const fs::path& a, const fs::path& b, bool same) {
  bool all_equal = true;
  for (const char* f : {"config.json", "model.safetensors.index.json", kShard1, kShard2})
    all_equal &= read_file(a / f) == read_file(b / f);
  EXPECT_EQ(all_equal, same) << a << " vs " << b;
}

class MakeTinyPreset : public ::testing::TestWithParam<std::string> {};

// The loader accepts the output (it checks every tensor against the release inventory), and the
// reported counts are what was written. Names, dtypes, shapes and bytes against the independent
// reference generator: make_tiny_reference_test.sh.
TEST_P(MakeTinyPreset, RoundTripsThroughTheLoader) {
  ScratchDir dir("make-tiny-" + GetParam());
  const TinyModelSpec spec = tiny_preset(GetParam());
  const auto r = write_tiny_model(spec, dir.path());
  const Checkpoint ck = Checkpoint::open(dir.path());
  EXPECT_EQ(r.tensors, int64_t(ck.tensors().size()));
  uint64_t loaded_bytes = 0;
  for (const auto& [name, t] : ck.tensors()) loaded_bytes += t->data.size();
  EXPECT_EQ(r.bytes, loaded_bytes);
  EXPECT_EQ(ck.files().size(), 2u);
  const auto index = nlohmann::json::parse(read_file(dir.path() / "model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), loaded_bytes);
  EXPECT_EQ(index["weight_map"].size(), ck.tensors().size());
  EXPECT_EQ(index["weight_map"]["embed.weight"], kShard1);
  EXPECT_EQ(index["weight_map"]["head.weight"], kShard2);
  EXPECT_EQ(index["weight_map"]["mtp.0.e_proj.weight"], kShard2);
  const auto cfg = nlohmann::json::parse(read_file(dir.path() / "config.json"));
  EXPECT_EQ(cfg["generator"]["seed"].get<uint64_t>(), spec.seed);
  EXPECT_EQ(cfg["generator"]["name"], GetParam());
}

// "tiny-a" -> "tiny_a": gtest names take letters, digits and underscores.
std::string preset_test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}
INSTANTIATE_TEST_SUITE_P(Presets, MakeTinyPreset, ::testing::Values("tiny-a", "tiny-b", "small"), preset_test_name);

TEST(MakeTiny, TinyAHasTheCheckedInHyperParameters) {
  const auto checked_in = nlohmann::json::parse(read_file(kTinyA / "config.json"));
  EXPECT_EQ(tiny_preset("tiny-a").config, without_generator(checked_in));
  EXPECT_EQ(tiny_preset("tiny-a").seed, checked_in["generator"]["seed"].get<uint64_t>());
}

TEST(MakeTiny, TinyBExercisesOtherValues) {
  const ModelConfig c = ModelConfig::from_json(tiny_preset("tiny-b").config, "tiny-b");
  EXPECT_EQ(c.hc, 2);
  EXPECT_EQ(c.window, 32);
  EXPECT_NE(std::find(c.ratios.begin(), c.ratios.end(), 16), c.ratios.end());
  EXPECT_NE(std::find(c.ratios.begin(), c.ratios.end(), 4), c.ratios.end());
  EXPECT_NE(std::find(c.ratios.begin(), c.ratios.end(), 128), c.ratios.end());
  const ModelConfig a = ModelConfig::from_json(tiny_preset("tiny-a").config, "tiny-a");
  EXPECT_NE(c.n_heads, a.n_heads);
  EXPECT_NE(c.n_experts, a.n_experts);
  EXPECT_NE(c.head_dim, a.head_dim);
  EXPECT_EQ(c.index_dim & (c.index_dim - 1), 0);
}

TEST(MakeTiny, SmallIsTheBenchmarkShape) {
  const ModelConfig c = ModelConfig::from_json(tiny_preset("small").config, "small");
  EXPECT_EQ(c.dim, 1024);
  EXPECT_EQ(c.n_layers, 8);
  EXPECT_EQ(c.n_experts, 64);
}

TEST(MakeTiny, DeterministicInTheSeed) {
  ScratchDir dir("make-tiny-seed");
  TinyModelSpec spec = tiny_preset("tiny-b");
  spec.seed = 7;
  write_tiny_model(spec, dir.path() / "a");
  write_tiny_model(spec, dir.path() / "b");
  spec.seed = 8;
  write_tiny_model(spec, dir.path() / "c");
  expect_same_files(dir.path() / "a", dir.path() / "b", true);
  const std::string s1 = read_file(dir.path() / "a" / kShard1), s2 = read_file(dir.path() / "c" / kShard1);
  ASSERT_EQ(s1.size(), s2.size());  // same layout, other values
  EXPECT_NE(s1, s2);
}

TEST(MakeTiny, ValuesFollowTheReferenceDistributions) {
  ScratchDir dir("make-tiny-values");
  write_tiny_model(tiny_preset("tiny-a"), dir.path());
  const Checkpoint ck = Checkpoint::open(dir.path());
  auto bf16_stats = [&](const std::string& name) {
    const auto& v = ck.tensor(name);
    double s = 0, s2 = 0;
    const std::size_t n = v.data.size() / 2;
    for (std::size_t i = 0; i < n; ++i) {
      uint16_t b;
      std::memcpy(&b, v.data.data() + 2 * i, 2);
      double x = bf16_to_float(b);
      s += x, s2 += x * x;
    }
    const double mean = s / double(n);
    return std::pair{mean, std::sqrt(s2 / double(n) - mean * mean)};
  };
  auto [em, es] = bf16_stats("embed.weight");
  EXPECT_NEAR(em, 0.0, 0.01);
  EXPECT_NEAR(es, 1.0, 0.02);
  auto [nm, ns] = bf16_stats("layers.2.attn_norm.weight");
  EXPECT_NEAR(nm, 1.0, 0.03);
  EXPECT_NEAR(ns, 0.1, 0.03);
  auto [hm, hs] = bf16_stats("head.weight");
  EXPECT_NEAR(hs, 2.5 / 16.0, 0.01);  // gain 2.5 / sqrt(256)

  // FP8 block scales: amax of 128x128 normals of std 1/16 is ~0.3, /448 -> 2^-10 or 2^-11
  const auto& sc = ck.tensor("layers.0.attn.wq_a.scale");
  for (auto b : sc.data) EXPECT_NEAR(int(b), 127 - 10, 1);
  // e2m1 codes of routed experts use the whole grid, both signs
  const auto& w = ck.tensor("layers.3.ffn.experts.5.w1.weight");
  int hist[16] = {};
  for (auto b : w.data) {
    ++hist[uint8_t(b) & 15];
    ++hist[uint8_t(b) >> 4];
  }
  for (int code = 1; code < 16; ++code) {
    if (code != 8) {
      EXPECT_GT(hist[code], 0) << "e2m1 code " << code;
    }
  }
  // tid2eid: each row holds distinct experts
  const auto& tid = ck.tensor("layers.0.ffn.gate.tid2eid");
  for (int64_t r = 0; r < tid.shape[0]; ++r) {
    std::set<int64_t> row;
    for (int64_t k = 0; k < tid.shape[1]; ++k) {
      int64_t e;
      std::memcpy(&e, tid.data.data() + 8 * (r * tid.shape[1] + k), 8);
      row.insert(e);
    }
    ASSERT_EQ(int64_t(row.size()), tid.shape[1]) << "row " << r;
  }
  // hc comb base: a strong diagonal (gain 2) over N(0, 0.5) noise
  const auto& base = ck.tensor("layers.1.hc_ffn_base");
  std::vector<float> b(base.data.size() / 4);
  std::memcpy(b.data(), base.data.data(), base.data.size());
  double diag = 0, off = 0;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) (i == j ? diag : off) += b[8 + i * 4 + j];
  EXPECT_GT(diag / 4 - off / 12, 1.0);
}

TEST(MakeTiny, PresetFileMergesOverTheSharedKeys) {
  ScratchDir dir("make-tiny-file");
  auto keys = tiny_preset("tiny-b").config;
  keys["name"] = "mine";
  keys["seed"] = 99;
  keys["init_gains"] = {{"head", 1.0}};
  keys.erase("rope_theta");  // a shared key: comes from the defaults
  write_file(dir.path() / "p.json", keys.dump());
  const TinyModelSpec s = tiny_preset_from_file(dir.path() / "p.json");
  EXPECT_EQ(s.name, "mine");
  EXPECT_EQ(s.seed, 99u);
  EXPECT_EQ(s.gains["head"], 1.0);
  EXPECT_EQ(s.gains["expert_in"], 3.0);
  EXPECT_EQ(s.config, tiny_preset("tiny-b").config);
}

TEST(MakeTiny, BadPresetsNameTheProblem) {
  ScratchDir dir("make-tiny-bad");
  const auto msg = input_error_message;
  EXPECT_NE(msg([] { tiny_preset("huge"); }).find("unknown preset \"huge\" (known: tiny-a, tiny-b, small)"),
            std::string::npos);
  write_file(dir.path() / "a.json", R"({"hidden_size": 100})");
  EXPECT_NE(msg([&] { tiny_preset_from_file(dir.path() / "a.json"); }).find("a.json: field \"vocab_size\": missing"),
            std::string::npos);
  auto keys = tiny_preset("tiny-a").config;
  keys["init_gains"] = {{"heads", 1.0}};
  write_file(dir.path() / "b.json", keys.dump());
  EXPECT_NE(msg([&] { tiny_preset_from_file(dir.path() / "b.json"); }).find("field \"init_gains.heads\": unknown gain"),
            std::string::npos);
  write_file(dir.path() / "c.json", "{");
  EXPECT_NE(msg([&] { tiny_preset_from_file(dir.path() / "c.json"); }).find("c.json: invalid JSON"), std::string::npos);
}

// The command: writes a model that inspect validates; errors exit non-zero.
TEST(MakeTinyCommand, WritesAModelInspectAccepts) {
  ScratchDir dir("make-tiny-cmd");
  const auto out = (dir.path() / "m").string();
  auto r = run_flashline({"make-tiny", "--out", out, "--preset", "tiny-b", "--seed", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("wrote tiny-b (seed 3)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("make-tiny: wrote model-00002-of-00002.safetensors"), std::string::npos) << r.output;
  r = run_flashline({"inspect", "--model", out, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["tensor_count"], 431);
  EXPECT_EQ(j["config"]["hc_mult"], 2);
  EXPECT_NE(j["validation"].get<std::string>().find("ok: 431 tensors"), std::string::npos);

  r = run_flashline({"make-tiny", "--out", out, "--preset", "nope"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("unknown preset \"nope\""), std::string::npos) << r.output;
  r = run_flashline({"make-tiny", "--preset", "tiny-a"});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("--out"), std::string::npos) << r.output;
  r = run_flashline({"make-tiny", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* opt : {"--out", "--seed", "--preset", "--config", "tiny-a, tiny-b, small"})
    EXPECT_NE(r.output.find(opt), std::string::npos) << opt;
}

TEST(InspectCommand, ReleaseConfigInventory) {
  const auto r = run_flashline(
      {"inspect", "--config", (fs::path(FLASHLINE_TEST_DATA) / "configs" / "deepseek-v4-flash.config.json").string(),
       "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["tensor_count"].get<int64_t>(), 69187);
  EXPECT_EQ(j["tensor_bytes"].get<int64_t>(), 159609485896);
  EXPECT_EQ(j["layers"].size(), 44u);
}

}  // namespace
}  // namespace flashline::test
