#pragma once
// Reading user YAML (cluster descriptions, plan files) with errors that point at the input:
// every failure names the file, line and column, and an unknown key suggests the nearest
// valid one, so a typo in a 40-node cluster file is found without reading the source.
#include <yaml-cpp/yaml.h>

#include "base/input_error.h"
#include "base/quantity.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace flashline {

// The whole file as text; `what` names it in the error ("cluster file", "plan file").
std::string read_text_file(const std::filesystem::path& path, const char* what);

// Parses a whole YAML file or text; syntax errors become InputError "source:line:column: ...".
YAML::Node load_yaml_file(const std::filesystem::path& path);
YAML::Node parse_yaml_text(const std::string& text, const std::string& source);

// The valid key closest to `key` by edit distance, or "" when none is plausibly meant.
std::string nearest_key(std::string_view key, std::span<const std::string_view> valid);

// A view of one YAML mapping inside a named source. Accessors throw InputError naming
// "source:line:column: <path>: what was expected".
class YamlReader {
 public:
  YamlReader(YAML::Node node, std::string source, std::string path = "");

  const YAML::Node& node() const { return node_; }
  const std::string& source() const { return source_; }
  std::string where(const YAML::Node& n) const;  // "source:line:column"
  std::string key_path(std::string_view key) const;
  [[noreturn]] void fail(const YAML::Node& at, std::string_view key, const std::string& what) const;
  [[noreturn]] void fail(const std::string& what) const;

  // Rejects keys outside `valid`, naming the nearest valid key.
  void allow_only(std::span<const std::string_view> valid) const;
  void allow_only(std::initializer_list<std::string_view> valid) const {
    allow_only(std::span<const std::string_view>(valid.begin(), valid.size()));
  }

  bool has(std::string_view key) const;
  YAML::Node get(std::string_view key) const;  // required, any kind
  YamlReader map(std::string_view key) const;  // required mapping
  YAML::Node sequence(std::string_view key) const;  // required sequence
  YamlReader element(const YAML::Node& item, std::string_view key, std::size_t index) const;  // mapping item

  std::string string(std::string_view key, std::optional<std::string> def = std::nullopt) const;
  int64_t integer(std::string_view key, std::optional<int64_t> def = std::nullopt, int64_t min = 0,
                  int64_t max = INT64_MAX) const;
  double number(std::string_view key, std::optional<double> def = std::nullopt) const;
  bool boolean(std::string_view key, std::optional<bool> def = std::nullopt) const;
  // Quantities with units ("80GB", "3.35TB/s", "989TFLOPS", "5us"); plain numbers are base units.
  double bytes(std::string_view key, std::optional<double> def = std::nullopt) const;
  double bandwidth(std::string_view key, std::optional<double> def = std::nullopt) const;
  double flops(std::string_view key, std::optional<double> def = std::nullopt) const;
  double seconds(std::string_view key, std::optional<double> def = std::nullopt) const;

 private:
  YAML::Node scalar(std::string_view key) const;
  double quantity(std::string_view key, std::optional<double> def, QuantityKind kind) const;

  YAML::Node node_;
  std::string source_;
  std::string path_;  // dotted path of node_ inside the document, "" at the top
};

}  // namespace flashline
