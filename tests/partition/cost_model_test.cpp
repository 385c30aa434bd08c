#include "partition/cost_model.h"

#include <gtest/gtest.h>

namespace flashline {
namespace {

const std::string kData = FLASHLINE_TEST_DATA;

CostModel real_model(KvFormat kv = KvFormat::FP8) {
  return CostModel(ModelConfig::load(kData + "/configs/deepseek-v4-flash.config.json"), kv);
}

// Every figure below is worked out by hand from the tensor table of the release
// (DEEPSEEK_V4_FLASH_CHECKPOINT.md): shape products times bytes per element.
TEST(CostModel, WeightBytesEqualReleaseInventoryPerKind) {
  auto m = real_model();
  auto g = m.bytes_by_group();
  const int64_t layers = 44, csa = 21, hca = 20, hash = 3, score = 41;
  const int64_t embed = 129280LL * 4096 * 2;
  EXPECT_EQ(g[TensorGroup::Embedding], embed);
  EXPECT_EQ(g[TensorGroup::Head], embed + 4096 * 2 + 4 * 16384 * 4 + 4 * 4 + 4);
  const int64_t attention = 64 * 4 + (1024LL * 4096 + 8 * 32) + 1024 * 2 + (32768LL * 1024 + 256 * 8) +
                            (512LL * 4096 + 4 * 32) + 512 * 2 + (8192LL * 4096 + 64 * 32) + (4096LL * 8192 + 32 * 64);
  EXPECT_EQ(g[TensorGroup::Attention], layers * attention);
  const int64_t comp4 = 4 * 1024 * 4 + 2 * (1024LL * 4096 * 2) + 512 * 2;
  const int64_t comp128 = 128 * 512 * 4 + 2 * (512LL * 4096 * 2) + 512 * 2;
  EXPECT_EQ(g[TensorGroup::Compressor], csa * comp4 + hca * comp128);
  const int64_t indexer = (8192LL * 1024 + 64 * 8) + 64 * 4096 * 2 + 4 * 256 * 4 + 2 * (256LL * 4096 * 2) + 128 * 2;
  EXPECT_EQ(g[TensorGroup::Indexer], csa * indexer);
  EXPECT_EQ(g[TensorGroup::BlockNorms], layers * 2 * 4096 * 2);
  EXPECT_EQ(g[TensorGroup::HyperConnect], layers * 2 * (24 * 16384 * 4 + 24 * 4 + 3 * 4));
  EXPECT_EQ(g[TensorGroup::Gate], layers * 256 * 4096 * 2 + hash * 129280LL * 6 * 8 + score * 256 * 4);
  const int64_t expert = 2 * (2048LL * 2048 + 2048 * 128) + (4096LL * 1024 + 4096 * 64);
  EXPECT_EQ(m.layers()[5].expert_bytes, expert);
  EXPECT_EQ(g[TensorGroup::RoutedExpert], layers * 256 * expert);
  EXPECT_EQ(g[TensorGroup::SharedExpert], layers * (2 * (2048LL * 4096 + 16 * 32) + (4096LL * 2048 + 32 * 16)));
  EXPECT_EQ(g[TensorGroup::MtpExtra], 2 * (4096LL * 4096 + 32 * 32) + 3 * 4096 * 2 + 4 * 16384 * 4 + 4 * 4 + 4);
  // The release's total (69,187 tensors, 148.65 GiB).
  EXPECT_EQ(m.total_weight_bytes(), 159609485896);
  // Routed experts of the 43 main layers (the MTP block's are extra): ~129 GiB packed FP4 + ~8 GiB
  // of scales, as the model reports them layer by layer.
  int64_t main_experts = 0;
  for (int l = 0; l < 43; ++l) main_experts += m.layers()[l].bytes_by_group.at(TensorGroup::RoutedExpert);
  EXPECT_EQ(main_experts, 43 * 256 * expert);
  EXPECT_EQ(main_experts, 138512695296 + 43 * 256 * 3 * (2048LL * 4096 / 32));
}

TEST(CostModel, DenseBytesExcludeRoutedExperts) {
  auto m = real_model();
  const auto& l = m.layers()[3];  // HCA, score-routed
  int64_t sum = 0;
  for (const auto& [g, b] : l.bytes_by_group) sum += g == TensorGroup::RoutedExpert ? 0 : b;
  EXPECT_EQ(l.dense_bytes, sum);
  EXPECT_EQ(l.bytes_by_group.at(TensorGroup::RoutedExpert), 256 * l.expert_bytes);
}

TEST(CostModel, KvBytesPerTokenPerLayerKindFp8) {
  auto m = real_model();
  // Entry: 448 nope dims as e4m3 + 7 UE8M0 scales (one per 64) + 64 rope dims in bf16.
  EXPECT_EQ(m.kv_entry_bytes(), 448 + 7 + 128);
  // Indexer key: 128 dims as e2m1 (64 bytes) + 4 UE8M0 scales (one per 32).
  EXPECT_EQ(m.index_key_bytes(), 68);
  const auto& window = m.layers()[0];
  const auto& csa = m.layers()[2];
  const auto& hca = m.layers()[3];
  const auto& mtp = m.layers()[43];
  EXPECT_EQ(window.attention, AttentionKind::Window);
  EXPECT_EQ(csa.attention, AttentionKind::CSA);
  EXPECT_EQ(hca.attention, AttentionKind::HCA);
  EXPECT_DOUBLE_EQ(window.kv_bytes_per_token, 0.0);
  EXPECT_DOUBLE_EQ(csa.kv_bytes_per_token, 583.0 / 4 + 68.0 / 4);
  EXPECT_DOUBLE_EQ(hca.kv_bytes_per_token, 583.0 / 128);
  EXPECT_DOUBLE_EQ(mtp.kv_bytes_per_token, 0.0);
  // Per request: 128-entry window ring, plus fp32 kv+score compressor state [coff*ratio, coff*dim].
  EXPECT_EQ(window.kv_bytes_per_request, 128 * 583);
  EXPECT_EQ(csa.kv_bytes_per_request, 128 * 583 + 2 * 4 * 8 * 1024 + 2 * 4 * 8 * 256);
  EXPECT_EQ(hca.kv_bytes_per_request, 128 * 583 + 2 * 4 * 128 * 512);
  // Whole model at 1M tokens: 21 CSA + 20 HCA layers.
  double per_token = 21 * (583.0 / 4 + 17) + 20 * (583.0 / 128);
  EXPECT_NEAR(m.kv_bytes(0, 43, 1 << 20) - double(3 * 128 * 583 + 21 * (128 * 583 + 81920) + 20 * (128 * 583 + 524288)),
              per_token * (1 << 20), 1e-3);
}

TEST(CostModel, KvBytesPerTokenBf16) {
  auto m = real_model(KvFormat::BF16);
  EXPECT_EQ(m.kv_entry_bytes(), 1024);
  EXPECT_EQ(m.index_key_bytes(), 256);
  EXPECT_DOUBLE_EQ(m.layers()[2].kv_bytes_per_token, 1024.0 / 4 + 256.0 / 4);
  EXPECT_DOUBLE_EQ(m.layers()[3].kv_bytes_per_token, 1024.0 / 128);
}

TEST(CostModel, FlopsPerDecodeToken) {
  auto m = real_model();
  const auto& c = m.config();
  // Window layer at position 1000: projections + 128 keys x 64 heads x 512 x 4.
  auto w = m.dense_work(0, 1, 1000, false);
  const double proj_fp8 = 1024.0 * 4096 + 32768.0 * 1024 + 512.0 * 4096 + 8192.0 * 4096 + 4096.0 * 8192 +
                          3 * 2048.0 * 4096;  // attention projections + shared expert
  EXPECT_DOUBLE_EQ(w.flops_fp8, 2 * proj_fp8);
  const double hc = 2 * 24.0 * 16384, gate = 256.0 * 4096;
  EXPECT_DOUBLE_EQ(w.flops_bf16, 2 * (hc + gate) + 4.0 * 64 * 512 * 128);
  // CSA at position 100000: 128 window + 512 top-k keys; indexer scores all 25000 blocks.
  auto csa = m.dense_work(2, 1, 100000, false);
  const double csa_bf16 = 2 * (hc + gate + 2 * 1024.0 * 4096 + 2 * 256.0 * 4096 + 64.0 * 4096);
  EXPECT_DOUBLE_EQ(csa.flops_bf16, csa_bf16 + 4.0 * 64 * 512 * (128 + 512));
  EXPECT_DOUBLE_EQ(csa.flops_fp8, 2 * (proj_fp8 + 8192.0 * 1024) + 2.0 * 64 * 128 * 25000);
  // One routed expert: 3 x 2048 x 4096 multiply-adds per token.
  EXPECT_EQ(m.layers()[5].expert_macs, 3LL * 2048 * 4096);
  EXPECT_EQ(c.topk_experts, 6);
  // Messages: pipeline carries the hc stream in bf16 (+32 bytes of metadata per token).
  EXPECT_DOUBLE_EQ(m.pipeline_bytes(10), 10 * (4 * 4096 * 2 + 32.0));
  EXPECT_DOUBLE_EQ(m.all_to_all_bytes(10, 1), 0.0);
  // 2 lanes: a token reaches the other lane unless all 6 experts are local (1/64).
  EXPECT_DOUBLE_EQ(m.all_to_all_bytes(1, 2), (1 - 1.0 / 64) * 4096 * 2 * 2);
}

}  // namespace
}  // namespace flashline
