// Duplicate keys in user YAML (cluster files, plan files) are an error naming both lines; before,
// yaml-cpp's first entry silently won.
#include <gtest/gtest.h>

#include <functional>

#include "base/input_error.h"
#include "base/yaml_reader.h"
#include "cluster/cluster_spec.h"

namespace flashline {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(YamlDuplicateKeys, ClusterFile) {
  const std::string text =
      "name: c\n"
      "nodes:\n"
      "  - name: n0\n"
      "    host: h0\n"
      "    devices:\n"
      "      - {kind: cpu, count: 2, memory: 8GB, memory_bandwidth: 10GB/s}\n"
      "    host: h1\n";
  const std::string e = error_of([&] { ClusterSpec::parse(text, "c.yaml"); });
  EXPECT_NE(e.find("c.yaml:7:5"), std::string::npos) << e;
  EXPECT_NE(e.find("duplicate key"), std::string::npos) << e;
  EXPECT_NE(e.find("first at line 4"), std::string::npos) << e;
  EXPECT_NE(e.find("host"), std::string::npos) << e;
}

TEST(YamlDuplicateKeys, TopLevel) {
  const std::string e = error_of([] { YamlReader r(parse_yaml_text("a: 1\nb: 2\na: 3\n", "x.yaml"), "x.yaml"); });
  EXPECT_NE(e.find("x.yaml:3:1: a: duplicate key (first at line 1"), std::string::npos) << e;
}

TEST(YamlText, ControlCharactersAndInvalidUtf8AreRefused) {
  // Found by plan_fuzzer: a device name with a NUL and invalid UTF-8 was accepted, and the plan
  // written back read back different.
  for (const std::string bad : {std::string("name: \"a\\0b\"\n"), std::string("name: a\x89b\n"),
                                std::string("name: \"a\\nb\"\n"), std::string("name: a\xED\xA0\x80\n")}) {
    const std::string e = error_of([&] { YamlReader(parse_yaml_text(bad, "x.yaml"), "x.yaml").string("name"); });
    EXPECT_NE(e.find("x.yaml:1:7: name: expected text, found byte"), std::string::npos) << e;
  }
  EXPECT_EQ(YamlReader(parse_yaml_text("name: \"gpu-nöde \\t 0\"\n", "x.yaml"), "x.yaml").string("name"),
            "gpu-n\xC3\xB6" "de \t 0");
}

TEST(YamlDuplicateKeys, DistinctKeysAreFine) {
  EXPECT_EQ(error_of([] { YamlReader r(parse_yaml_text("a: 1\nb: {a: 2}\n", "x.yaml"), "x.yaml"); }), "(accepted)");
}

}  // namespace
}  // namespace flashline
