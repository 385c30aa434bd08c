#pragma once
// Shared fixtures of the serving tests: the tokenizer and the vector files, loaded once
// per test process from tests/data/tokenizer/.
#include <filesystem>
#include <algorithm>
#include <fstream>
#include <vector>
#include <iterator>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "serving/py_json.h"
#include "serving/tokenizer.h"

namespace flashline::test_data {

inline std::filesystem::path path(const std::string& relative) {
  return std::filesystem::path(FLASHLINE_TEST_DATA) / relative;
}

inline nlohmann::json load_json(const std::string& relative) {
  std::ifstream in(path(relative));
  if (!in) throw std::runtime_error("cannot open " + path(relative).string());
  return nlohmann::json::parse(in);
}

inline const nlohmann::json& tokenizer_vectors() {
  static const nlohmann::json v = load_json("tokenizer/vectors.json");
  return v;
}

inline const nlohmann::json& chat_vectors() {
  static const nlohmann::json v = load_json("tokenizer/chat_vectors.json");
  return v;
}

// The chat vectors with member order kept (tool schemas are rendered in input order).
inline const OrderedJson& ordered_chat_vectors() {
  static const OrderedJson v = [] {
    std::ifstream in(path("tokenizer/chat_vectors.json"), std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return parse_ordered_json(text, "chat_vectors.json");
  }();
  return v;
}

// The distinct values of `key` over `cases`, in first-seen order (test parameters).
template <class Json>
std::vector<std::string> distinct(const Json& cases, const char* key) {
  std::vector<std::string> out;
  for (const auto& c : cases) {
    const auto v = c[key].template get<std::string>();
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
  return out;
}

inline const Tokenizer& tokenizer() {
  static const Tokenizer t = Tokenizer::from_file(path("tokenizer/tokenizer.json"));
  return t;
}

}  // namespace flashline::test_data
