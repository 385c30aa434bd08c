#pragma once
// The pre-tokenizer of a Hugging Face tokenizer.json: a sequence of Split steps (regex or
// literal, with their split behaviour) followed by ByteLevel. It cuts a text segment (valid
// UTF-8, without added tokens) into the pieces that BPE encodes one by one.
#include <cstddef>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "serving/unicode_regex.h"

namespace flashline {

struct Piece {
  std::size_t begin, end;  // byte offsets into the segment
};

class PreTokenizer {
 public:
  PreTokenizer() = default;
  // `spec` is the "pre_tokenizer" object; `where` names the file for error messages.
  PreTokenizer(const nlohmann::json& spec, std::string_view where);

  // Replaces `out` with the pieces of `segment`, in order; they cover the segment except
  // for what a Split with behaviour "Removed" drops.
  void split(std::string_view segment, std::vector<Piece>& out) const;

 private:
  enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
  struct Step {
    UnicodeRegex regex;
    Behavior behavior;
    bool invert;
  };
  void add(const nlohmann::json& spec, const std::string& path, std::string_view where);
  static void apply(const Step& step, std::string_view segment, const std::vector<Piece>& in,
                    std::vector<Piece>& out, std::vector<RegexMatch>& matches);

  std::vector<Step> steps_;
};

}  // namespace flashline
