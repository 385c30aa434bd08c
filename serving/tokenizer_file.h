#pragma once
// The contents of a Hugging Face tokenizer.json, read with a SAX pass.
//
// Building a full DOM of the 8 MB file (130k vocab members, 130k merges) takes ~0.4 s; the
// vocab and merges are streamed straight into flat vectors instead, and only the small rest
// of the file becomes a DOM.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/input_error.h"

namespace flashline {

struct TokenizerFile {
  nlohmann::json rest;  // everything except model.vocab and model.merges (left as empty {} / [])
  std::vector<std::pair<std::string, long long>> vocab;  // in file order
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  bool has_vocab = false, has_merges = false;

  // Throws InputError naming `source` and the JSON path or byte offset of a problem.
  static TokenizerFile parse(std::string_view text, std::string_view source);
};

}  // namespace flashline
