#include "cluster/cluster_spec.h"

#include <gtest/gtest.h>

#include "base/quantity.h"
#include "model/model_config.h"

namespace flashline {
namespace {

std::string error_of(const std::string& yaml) {
  try {
    ClusterSpec::parse(yaml, "c.yaml");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(ClusterSpec, BuiltinDevicesAndDefaults) {
  auto c = ClusterSpec::parse(
      "name: two\nnodes:\n  - {name: a, host: 10.0.0.1, devices: [{kind: H200, count: 8}]}\n"
      "  - name: b\n    devices:\n      - {kind: h100, count: 4, memory: 94GB}\n",
      "c.yaml");
  EXPECT_EQ(c.rank_count(), 12);
  EXPECT_EQ(c.nodes[1].host, "b");
  EXPECT_EQ(c.nodes[0].slots, 8);
  EXPECT_DOUBLE_EQ(c.nodes[0].devices[0].memory, 141e9);
  EXPECT_DOUBLE_EQ(c.nodes[1].devices[0].memory, 94e9);
  EXPECT_DOUBLE_EQ(c.nodes[1].devices[0].memory_bandwidth, 3.35e12);
  EXPECT_DOUBLE_EQ(c.intra_node.bandwidth, 450e9);
  EXPECT_DOUBLE_EQ(c.inter_node.bandwidth, 50e9);
  auto ranks = c.ranks();
  EXPECT_EQ(ranks[9].node, 1);
  EXPECT_EQ(ranks[9].device_name, "cuda:1");
}

TEST(ClusterSpec, CpuBoxAndLinks) {
  auto c = ClusterSpec::parse(
      "nodes:\n  - name: box\n    devices: [{kind: cpu, count: 2, cores: 48, memory: 384GB, memory_bandwidth: 300GB/s}]\n"
      "links:\n  intra_node: {bandwidth: 25GB/s, latency: 2us}\n",
      "c.yaml");
  const auto& d = c.nodes[0].devices[0];
  EXPECT_FALSE(d.gpu);
  EXPECT_DOUBLE_EQ(d.flops_bf16, 48 * 40e9);
  EXPECT_DOUBLE_EQ(c.intra_node.latency, 2e-6);
  EXPECT_EQ(c.ranks()[1].device_name, "cpu:1");
}

TEST(ClusterSpec, Localhost) {
  auto c = ClusterSpec::from_argument("localhost:3");
  EXPECT_TRUE(c.localhost);
  EXPECT_EQ(c.rank_count(), 3);
  EXPECT_EQ(c.nodes[0].host, "localhost");
  EXPECT_THROW(ClusterSpec::from_argument("localhost:x"), InputError);
  EXPECT_THROW(ClusterSpec::from_argument("localhost:0"), InputError);
}

TEST(ClusterSpec, SyntaxErrorHasFileLineColumn) {
  auto e = error_of("nodes:\n  - {name: a, devices: [{kind: H100}\n");
  EXPECT_EQ(e.rfind("c.yaml:", 0), 0u) << e;
  EXPECT_NE(e.find("YAML syntax error"), std::string::npos) << e;
}

TEST(ClusterSpec, UnknownKeySuggestsNearest) {
  auto e = error_of("nodes:\n  - name: a\n    devices:\n      - {kind: H100, cuont: 8}\n");
  EXPECT_NE(e.find("c.yaml:4:"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key \"nodes[0].devices[0].cuont\": did you mean \"count\"?"), std::string::npos) << e;
}

TEST(ClusterSpec, UnknownTopLevelKey) {
  auto e = error_of("nodse: []\n");
  EXPECT_NE(e.find("c.yaml:1:1: unknown key \"nodse\": did you mean \"nodes\"?"), std::string::npos) << e;
}

TEST(ClusterSpec, UnknownDeviceKindSuggestsBuiltin) {
  auto e = error_of("nodes:\n  - {name: a, devices: [{kind: H10, count: 8}]}\n");
  EXPECT_NE(e.find("unknown device kind \"H10\" (did you mean \"H100\"?)"), std::string::npos) << e;
}

TEST(ClusterSpec, RejectsZeroDevices) {
  auto e = error_of("nodes:\n  - {name: a, devices: [{kind: H100, count: 0}]}\n");
  EXPECT_NE(e.find("c.yaml:2:"), std::string::npos) << e;
  EXPECT_NE(e.find("zero devices"), std::string::npos) << e;
  e = error_of("nodes:\n  - {name: a, devices: []}\n");
  EXPECT_NE(e.find("zero devices: node \"a\" lists no device"), std::string::npos) << e;
  e = error_of("nodes: []\n");
  EXPECT_NE(e.find("no nodes"), std::string::npos) << e;
}

TEST(ClusterSpec, RejectsDuplicateNodeNames) {
  auto e = error_of(
      "nodes:\n  - {name: a, devices: [{kind: H100}]}\n  - {name: b, devices: [{kind: H100}]}\n"
      "  - {name: a, devices: [{kind: H100}]}\n");
  EXPECT_NE(e.find("c.yaml:4:"), std::string::npos) << e;
  EXPECT_NE(e.find("duplicate node name \"a\" (first defined at c.yaml:2:"), std::string::npos) << e;
}

TEST(ClusterSpec, RejectsImpossibleBandwidths) {
  auto e = error_of("nodes:\n  - {name: a, devices: [{kind: H100}]}\nlinks:\n  inter_node: {bandwidth: 0GB/s}\n");
  EXPECT_NE(e.find("c.yaml:4:"), std::string::npos) << e;
  EXPECT_NE(e.find("links.inter_node.bandwidth: impossible value"), std::string::npos) << e;
  e = error_of("nodes:\n  - {name: a, devices: [{kind: H100, memory_bandwidth: 3350TB/s}]}\n");
  EXPECT_NE(e.find("memory_bandwidth: impossible value 3.35 PB/s"), std::string::npos) << e;
  e = error_of("nodes:\n  - {name: a, devices: [{kind: H100}]}\nlinks:\n  intra_node: {bandwidth: -5GB/s}\n");
  EXPECT_NE(e.find("impossible value"), std::string::npos) << e;
  e = error_of("nodes:\n  - {name: a, devices: [{kind: H100}]}\nlinks:\n  intra_node: {bandwidth: fast}\n");
  EXPECT_NE(e.find("expected a bandwidth such as 450GB/s"), std::string::npos) << e;
  e = error_of("nodes:\n  - {name: a, devices: [{kind: H100}]}\nlinks:\n  intra_node: {latency: 2s}\n");
  EXPECT_NE(e.find("impossible latency"), std::string::npos) << e;
}

TEST(ClusterSpec, RejectsTooFewSlots) {
  auto e = error_of("nodes:\n  - {name: a, slots: 4, devices: [{kind: H100, count: 8}]}\n");
  EXPECT_NE(e.find("4 slots cannot hold the 8 ranks"), std::string::npos) << e;
}

TEST(Quantity, Units) {
  EXPECT_DOUBLE_EQ(*parse_quantity("80GB", QuantityKind::Bytes), 80e9);
  EXPECT_DOUBLE_EQ(*parse_quantity("1 GiB", QuantityKind::Bytes), 1073741824.0);
  EXPECT_DOUBLE_EQ(*parse_quantity("3.35TB/s", QuantityKind::Bandwidth), 3.35e12);
  EXPECT_DOUBLE_EQ(*parse_quantity("400Gbps", QuantityKind::Bandwidth), 50e9);
  EXPECT_DOUBLE_EQ(*parse_quantity("400Gb/s", QuantityKind::Bandwidth), 50e9);
  EXPECT_DOUBLE_EQ(*parse_quantity("989TFLOPS", QuantityKind::Flops), 989e12);
  EXPECT_DOUBLE_EQ(*parse_quantity("5us", QuantityKind::Seconds), 5e-6);
  EXPECT_FALSE(parse_quantity("80GB/s", QuantityKind::Bytes));
  EXPECT_EQ(format_bytes(171e9), "171 GB");
}

}  // namespace
}  // namespace flashline
