// Loading the checked-in tiny-a checkpoint: counts, selections for pipeline stages and expert
// shards (only the shards holding selected tensors are opened), and the writer round trip.
#include <gtest/gtest.h>

#include <algorithm>

#include "checkpoint_test_util.h"
#include "stages/checkpoint.h"

namespace flashline::test {
namespace {

std::vector<std::string> file_names(const Checkpoint& ck) {
  std::vector<std::string> out;
  for (const auto& f : ck.files()) out.push_back(f.filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

int count_prefix(const Checkpoint& ck, const std::string& prefix) {
  return int(std::count_if(ck.tensors().begin(), ck.tensors().end(),
                           [&](const auto& kv) { return kv.first.starts_with(prefix); }));
}

std::string message_of(const std::function<void()>& f) { return input_error_message(f); }

TEST(CheckpointLoad, TinyAWholeModel) {
  const Checkpoint ck = Checkpoint::open(kTinyA);
  const ModelConfig& c = ck.config();
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_mtp, 1);
  EXPECT_EQ(ck.tensors().size(), 792u);
  EXPECT_EQ(file_names(ck), (std::vector<std::string>{kShard1, kShard2}));
  // 6 blocks (5 layers + MTP) x 16 experts x (w1, w2, w3) x (weight, scale)
  EXPECT_EQ(count_prefix(ck, "layers.") + count_prefix(ck, "mtp."), 792 - 6);
  int expert_tensors = 0;
  for (const auto& [name, v] : ck.tensors()) expert_tensors += name.find(".ffn.experts.") != std::string::npos;
  EXPECT_EQ(expert_tensors, 6 * 16 * 6);
  int64_t bytes = 0;
  for (const auto& [name, v] : ck.tensors()) bytes += int64_t(v->data.size());
  EXPECT_EQ(bytes, 11941608);  // the index's total_size

  const TensorView& w = ck.tensor("layers.2.ffn.experts.3.w2.weight");
  EXPECT_EQ(w.dtype, DType::I8);
  EXPECT_EQ(w.shape, (std::vector<int64_t>{256, 64}));
  EXPECT_EQ(w.data.size(), 256u * 64u);
  EXPECT_EQ(ck.tensor("layers.0.ffn.gate.tid2eid").shape, (std::vector<int64_t>{2048, 4}));
  EXPECT_EQ(ck.tensor("layers.3.ffn.gate.bias").dtype, DType::F32);
  EXPECT_EQ(ck.tensor("layers.3.attn.compressor.ape").shape, (std::vector<int64_t>{128, 128}));
  EXPECT_EQ(ck.tensor("layers.2.attn.compressor.ape").shape, (std::vector<int64_t>{4, 256}));
}

TEST(CheckpointLoad, FirstStageOpensOnlyTheFirstShard) {
  CheckpointSelection sel;
  sel.layer_begin = 0;
  sel.layer_end = 2;
  sel.head = false;
  sel.mtp = false;
  const Checkpoint ck = Checkpoint::open(kTinyA, sel);
  EXPECT_EQ(file_names(ck), (std::vector<std::string>{kShard1}));
  EXPECT_TRUE(ck.has("embed.weight"));
  EXPECT_TRUE(ck.has("layers.1.attn.wq_a.weight"));
  EXPECT_FALSE(ck.has("layers.2.attn.wq_a.weight"));
  EXPECT_FALSE(ck.has("head.weight"));
  EXPECT_EQ(count_prefix(ck, "layers.0."), count_prefix(ck, "layers.1."));
  EXPECT_EQ(count_prefix(ck, "mtp."), 0);
  const std::string msg = message_of([&] { ck.tensor("layers.2.attn.wq_a.weight"); });
  EXPECT_NE(msg.find("\"layers.2.attn.wq_a.weight\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("not selected"), std::string::npos) << msg;
}

TEST(CheckpointLoad, LaterLayersWithoutEmbeddingHeadMtpOpenOnlyTheSecondShard) {
  CheckpointSelection sel;
  sel.layer_begin = 3;
  sel.layer_end = 5;
  sel.embedding = false;
  sel.head = false;
  sel.mtp = false;
  const Checkpoint ck = Checkpoint::open(kTinyA, sel);
  EXPECT_EQ(file_names(ck), (std::vector<std::string>{kShard2}));
  for (const char* absent : {"embed.weight", "head.weight", "norm.weight", "hc_head_fn", "mtp.0.e_proj.weight",
                             "layers.2.ffn_norm.weight"}) {
    EXPECT_FALSE(ck.has(absent)) << absent;
    const std::string msg = message_of([&] { ck.tensor(absent); });
    EXPECT_NE(msg.find(std::string("\"") + absent + "\""), std::string::npos) << msg;
  }
  EXPECT_GT(count_prefix(ck, "layers.3."), 0);
  EXPECT_EQ(count_prefix(ck, "layers.3.") + count_prefix(ck, "layers.4."), int(ck.tensors().size()));
}

TEST(CheckpointLoad, ExpertSubsetLoadsOnlyThoseExperts) {
  CheckpointSelection sel;
  sel.experts = std::set<int>{1, 14};
  const Checkpoint ck = Checkpoint::open(kTinyA, sel);
  int expert_tensors = 0;
  for (const auto& [name, v] : ck.tensors()) expert_tensors += name.find(".ffn.experts.") != std::string::npos;
  EXPECT_EQ(expert_tensors, 6 * 2 * 6);  // 6 blocks incl. MTP, 2 experts, 6 tensors each
  EXPECT_TRUE(ck.has("layers.0.ffn.experts.14.w3.scale"));
  EXPECT_TRUE(ck.has("mtp.0.ffn.experts.1.w1.weight"));
  EXPECT_TRUE(ck.has("layers.0.ffn.shared_experts.w1.weight"));  // shared expert: every rank
  const std::string msg = message_of([&] { ck.tensor("layers.4.ffn.experts.2.w1.weight"); });
  EXPECT_NE(msg.find("\"layers.4.ffn.experts.2.w1.weight\""), std::string::npos) << msg;
}

TEST(CheckpointLoad, NothingButOneLayersAttention) {
  CheckpointSelection sel;
  sel.layer_begin = 1;
  sel.layer_end = 2;
  sel.experts.emplace();  // no routed experts at all
  sel.embedding = sel.head = sel.mtp = false;
  const Checkpoint ck = Checkpoint::open(kTinyA, sel);
  EXPECT_EQ(file_names(ck), (std::vector<std::string>{kShard1}));
  EXPECT_EQ(count_prefix(ck, "layers.1."), int(ck.tensors().size()));
  EXPECT_EQ(count_prefix(ck, "layers.1.ffn.experts."), 0);
}

TEST(CheckpointLoad, SelectionOutsideTheModelIsRefused) {
  CheckpointSelection layers;
  layers.layer_begin = 2;
  layers.layer_end = 9;
  EXPECT_NE(message_of([&] { Checkpoint::open(kTinyA, layers); }).find("layer range 2..9"), std::string::npos);
  CheckpointSelection past_end;
  past_end.layer_begin = 7;
  EXPECT_NE(message_of([&] { Checkpoint::open(kTinyA, past_end); }).find("layer range 7..-1"), std::string::npos);
  CheckpointSelection experts;
  experts.experts = std::set<int>{16};
  EXPECT_NE(message_of([&] { Checkpoint::open(kTinyA, experts); }).find("expert 16 requested, the model has 16"),
            std::string::npos);
}

TEST(SafetensorsWriter, RoundTripsThroughTheReader) {
  ScratchDir dir("writer");
  SafetensorsWriter w;
  std::vector<std::byte> f32(12), bf16(6);
  for (std::size_t i = 0; i < f32.size(); ++i) f32[i] = std::byte(i);
  for (std::size_t i = 0; i < bf16.size(); ++i) bf16[i] = std::byte(100 + i);
  w.add("b.scale", DType::F32, {3}, f32);
  w.add("a.weight", DType::BF16, {1, 3}, bf16);
  EXPECT_THROW(w.add("c", DType::F32, {2}, f32), std::invalid_argument);  // 12 bytes for 8
  EXPECT_THROW(w.add("a.weight", DType::BF16, {1, 3}, bf16), std::invalid_argument);
  w.write(dir.path() / "x.safetensors");
  const std::string bytes = read_file(dir.path() / "x.safetensors");
  uint64_t hlen = 0;
  std::memcpy(&hlen, bytes.data(), 8);
  EXPECT_EQ(hlen % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + hlen + 18);
  const auto parts = read_shard(dir.path() / "x.safetensors");
  EXPECT_EQ(parts.header["__metadata__"], (nlohmann::json{{"format", "pt"}}));
  EXPECT_EQ(parts.header["a.weight"]["data_offsets"], (nlohmann::json{0, 6}));  // sorted by name
  EXPECT_EQ(parts.header["b.scale"]["data_offsets"], (nlohmann::json{6, 18}));

  SafetensorsFile f(dir.path() / "x.safetensors");
  ASSERT_EQ(f.tensors().size(), 2u);
  const TensorView& b = f.tensors().at("b.scale");
  EXPECT_EQ(b.dtype, DType::F32);
  EXPECT_EQ(b.shape, (std::vector<int64_t>{3}));
  EXPECT_TRUE(std::equal(b.data.begin(), b.data.end(), f32.begin(), f32.end()));
  EXPECT_EQ(f.metadata().at("format"), "pt");
}

}  // namespace
}  // namespace flashline::test
