#include "base/yaml_reader.h"

#include "base/input_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <fstream>
#include <sstream>
#include <vector>

#include "base/input_error.h"
#include "base/quantity.h"

namespace flashline {
namespace {

std::string mark_text(const std::string& source, const YAML::Mark& m) {
  if (m.is_null()) return source;
  return fmt::format("{}:{}:{}", source, m.line + 1, m.column + 1);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

YAML::Node parse_yaml_text(const std::string& text, const std::string& source) {
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw InputError(fmt::format("{}: YAML syntax error: {}", mark_text(source, e.mark), e.msg));
  }
}

std::string read_text_file(const std::filesystem::path& path, const char* what) {
  return read_input_file(path, what);
}

YAML::Node load_yaml_file(const std::filesystem::path& path) {
  return parse_yaml_text(read_text_file(path, "file"), path.string());
}

std::string nearest_key(std::string_view key, std::span<const std::string_view> valid) {
  // Beyond about half the word the "suggestion" is noise.
  const std::size_t limit = std::max<std::size_t>(2, key.size() / 2);
  std::string best;
  std::size_t best_d = SIZE_MAX;
  for (auto v : valid) {
    // The distance is at least the length difference: a long key (pasted text, a fuzzed file)
    // skips the quadratic comparison with every short valid name.
    const std::size_t gap = key.size() > v.size() ? key.size() - v.size() : v.size() - key.size();
    if (gap > limit) continue;
    std::size_t d = edit_distance(key, v);
    if (d < best_d) best_d = d, best = std::string(v);
  }
  return best_d <= limit ? best : "";
}

YamlReader::YamlReader(YAML::Node node, std::string source, std::string path)
    : node_(std::move(node)), source_(std::move(source)), path_(std::move(path)) {
  if (!node_.IsMap()) {
    throw InputError(fmt::format("{}: {}expected a mapping (key: value lines)", where(node_),
                                 path_.empty() ? "" : path_ + ": "));
  }
  // yaml-cpp keeps both entries of a repeated key and lookups return the first: the second
  // (usually the edit meant to win) would be ignored without a word.
  std::map<std::string, YAML::Mark> seen;
  for (const auto& kv : node_) {
    if (!kv.first.IsScalar()) continue;
    const std::string key = kv.first.Scalar();
    auto [it, fresh] = seen.emplace(key, kv.first.Mark());
    if (!fresh)
      throw InputError(fmt::format("{}: {}: duplicate key (first at line {}; each key may appear once per mapping)",
                                   mark_text(source_, kv.first.Mark()), key_path(key), it->second.line + 1));
  }
}

std::string YamlReader::where(const YAML::Node& n) const { return mark_text(source_, n.Mark()); }

std::string YamlReader::key_path(std::string_view key) const {
  return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
}

void YamlReader::fail(const YAML::Node& at, std::string_view key, const std::string& what) const {
  throw InputError(fmt::format("{}: {}: {}", where(at), key_path(key), what));
}

void YamlReader::fail(const std::string& what) const {
  throw InputError(fmt::format("{}: {}{}", where(node_), path_.empty() ? "" : path_ + ": ", what));
}

void YamlReader::allow_only(std::span<const std::string_view> valid) const {
  for (const auto& kv : node_) {
    std::string k = kv.first.Scalar();
    if (std::find(valid.begin(), valid.end(), k) != valid.end()) continue;
    std::string near = nearest_key(k, valid);
    std::string all;
    for (auto v : valid) all += (all.empty() ? "" : ", ") + std::string(v);
    throw InputError(fmt::format("{}: unknown key \"{}\"{}{} (valid keys: {})", mark_text(source_, kv.first.Mark()),
                                 key_path(k), near.empty() ? "" : ": did you mean \"", near.empty() ? "" : near + "\"?",
                                 all));
  }
}

bool YamlReader::has(std::string_view key) const {
  auto n = node_[std::string(key)];
  return n.IsDefined() && !n.IsNull();
}

YAML::Node YamlReader::get(std::string_view key) const {
  if (!has(key)) fail(fmt::format("missing key \"{}\"", key));
  return node_[std::string(key)];
}

YamlReader YamlReader::map(std::string_view key) const {
  auto n = get(key);
  if (!n.IsMap()) fail(n, key, "expected a mapping");
  return YamlReader(n, source_, key_path(key));
}

YAML::Node YamlReader::sequence(std::string_view key) const {
  auto n = get(key);
  if (!n.IsSequence()) fail(n, key, "expected a list");
  return n;
}

YamlReader YamlReader::element(const YAML::Node& item, std::string_view key, std::size_t index) const {
  if (!item.IsMap()) fail(item, fmt::format("{}[{}]", key, index), "expected a mapping");
  return YamlReader(item, source_, fmt::format("{}[{}]", key_path(key), index));
}

YAML::Node YamlReader::scalar(std::string_view key) const {
  auto n = get(key);
  if (!n.IsScalar()) fail(n, key, "expected a single value");
  return n;
}

std::string YamlReader::string(std::string_view key, std::optional<std::string> def) const {
  if (!has(key) && def) return *def;
  const YAML::Node n = scalar(key);
  const std::string& v = n.Scalar();
  // Names end up in hostfiles, command lines and messages, and a plan must read back as written:
  // text only (valid UTF-8, no control characters).
  for (std::size_t i = 0; i < v.size();) {
    const auto c = static_cast<unsigned char>(v[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + len <= v.size() && !(len == 1 && (c < 0x20 && c != '\t')) && c != 0x7F;
    for (std::size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(v[i + k]) & 0xC0) == 0x80;
    if (ok && len > 1) {  // overlong forms, surrogates, past U+10FFFF, C1 controls
      const auto d = static_cast<unsigned char>(v[i + 1]);
      ok = !(c < 0xC2) && !(c == 0xC2 && d < 0xA0) && !(c == 0xE0 && d < 0xA0) && !(c == 0xED && d >= 0xA0) &&
           !(c == 0xF0 && d < 0x90) && !(c == 0xF4 && d >= 0x90) && c <= 0xF4;
    }
    if (!ok)
      fail(n, key, fmt::format("expected text, found byte 0x{:02X} at offset {} (control characters and invalid "
                               "UTF-8 are not allowed)",
                               c, i));
    i += len;
  }
  return v;
}

int64_t YamlReader::integer(std::string_view key, std::optional<int64_t> def, int64_t min, int64_t max) const {
  if (!has(key) && def) return *def;
  auto n = scalar(key);
  int64_t v = 0;
  if (!YAML::convert<int64_t>::decode(n, v)) fail(n, key, fmt::format("expected an integer, found \"{}\"", n.Scalar()));
  if (v < min || v > max)
    fail(n, key, max == INT64_MAX ? fmt::format("expected an integer >= {}, found {}", min, v)
                                  : fmt::format("expected an integer in [{}, {}], found {}", min, max, v));
  return v;
}

double YamlReader::number(std::string_view key, std::optional<double> def) const {
  if (!has(key) && def) return *def;
  auto n = scalar(key);
  double v = 0;
  if (!YAML::convert<double>::decode(n, v)) fail(n, key, fmt::format("expected a number, found \"{}\"", n.Scalar()));
  return v;
}

bool YamlReader::boolean(std::string_view key, std::optional<bool> def) const {
  if (!has(key) && def) return *def;
  auto n = scalar(key);
  bool v = false;
  if (!YAML::convert<bool>::decode(n, v)) fail(n, key, fmt::format("expected true or false, found \"{}\"", n.Scalar()));
  return v;
}

double YamlReader::quantity(std::string_view key, std::optional<double> def, QuantityKind kind) const {
  if (!has(key) && def) return *def;
  auto n = scalar(key);
  auto v = parse_quantity(n.Scalar(), kind);
  if (!v) fail(n, key, fmt::format("expected {}, found \"{}\"", quantity_units_hint(kind), n.Scalar()));
  return *v;
}

double YamlReader::bytes(std::string_view key, std::optional<double> def) const { return quantity(key, def, QuantityKind::Bytes); }
double YamlReader::bandwidth(std::string_view key, std::optional<double> def) const {
  return quantity(key, def, QuantityKind::Bandwidth);
}
double YamlReader::flops(std::string_view key, std::optional<double> def) const { return quantity(key, def, QuantityKind::Flops); }
double YamlReader::seconds(std::string_view key, std::optional<double> def) const {
  return quantity(key, def, QuantityKind::Seconds);
}

}  // namespace flashline
