// `flashline tokenize` and `flashline detokenize`: the tokenizer alone, on stdin/stdout, for
// checks against other implementations.
#include <fmt/format.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "launch/commands.h"
#include "serving/tokenizer.h"
#include "model/model_config.h"

namespace flashline {
namespace {

std::string read_stdin() {
  std::cin >> std::noskipws;
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

void run_tokenize(const std::string& tokenizer_file) {
  const Tokenizer tok = Tokenizer::from_file(tokenizer_file);
  const std::vector<int> ids = tok.encode(read_stdin());
  fmt::print("{}\n", nlohmann::json(ids).dump());
}

void run_detokenize(const std::string& tokenizer_file) {
  nlohmann::json ids;
  const std::string input = read_stdin();
  // Empty input is the empty list, as `tokenize` prints [] for empty text: the two compose.
  try {
    ids = input.find_first_not_of(" \t\r\n") == std::string::npos ? nlohmann::json::array()
                                                                   : nlohmann::json::parse(input);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(fmt::format("stdin: not valid JSON: {}", e.what()));
  }
  if (!ids.is_array()) throw InputError("stdin: expected a JSON array of token ids");
  std::vector<int> values;
  values.reserve(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const auto& v = ids[i];
    if (!v.is_number_integer() || v.get<long long>() < 0 || v.get<long long>() > INT32_MAX)
      throw InputError(fmt::format("stdin: [{}]: expected a token id, got {}", i, v.dump()));
    values.push_back(v.get<int>());
  }
  const Tokenizer tok = Tokenizer::from_file(tokenizer_file);
  const std::string text = tok.decode(values);
  std::fwrite(text.data(), 1, text.size(), stdout);
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto file = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(
      "tokenize",
      "UTF-8 text on stdin -> JSON array of token ids on stdout (nothing added; invalid UTF-8 "
      "is replaced by U+FFFD first)");
  cmd->add_option("--tokenizer", *file, "tokenizer.json (Hugging Face format)")->required();
  cmd->callback([file] { run_tokenize(*file); });
}

void add_detokenize_command(CLI::App& app) {
  auto file = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(
      "detokenize", "JSON array of token ids on stdin (empty input: no ids) -> the decoded text on stdout, byte-exact, no "
      "newline");
  cmd->add_option("--tokenizer", *file, "tokenizer.json (Hugging Face format)")->required();
  cmd->callback([file] { run_detokenize(*file); });
}

}  // namespace flashline
