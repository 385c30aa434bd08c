#include "serving/pre_tokenizer.h"

#include "base/input_error.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>


namespace flashline {

namespace {

// GPT-2's split pattern, used by ByteLevel when its use_regex flag is set.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string string_field(const nlohmann::json& obj, const char* key, const std::string& path,
                         std::string_view where) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string())
    throw InputError(fmt::format("{}: {}.{}: expected a string", where, path, key));
  return it->get<std::string>();
}

bool bool_field(const nlohmann::json& obj, const char* key, bool fallback) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

}  // namespace

PreTokenizer::PreTokenizer(const nlohmann::json& spec, std::string_view where) {
  if (!spec.is_null()) add(spec, "pre_tokenizer", where);
}

void PreTokenizer::add(const nlohmann::json& spec, const std::string& path, std::string_view where) {
  if (!spec.is_object()) throw InputError(fmt::format("{}: {}: expected an object", where, path));
  const std::string type = string_field(spec, "type", path, where);
  if (type == "Sequence") {
    auto it = spec.find("pretokenizers");
    if (it == spec.end() || !it->is_array())
      throw InputError(fmt::format("{}: {}.pretokenizers: expected an array", where, path));
    for (std::size_t i = 0; i < it->size(); ++i)
      add((*it)[i], fmt::format("{}.pretokenizers[{}]", path, i), where);
  } else if (type == "Split") {
    auto pat = spec.find("pattern");
    if (pat == spec.end() || !pat->is_object())
      throw InputError(fmt::format("{}: {}.pattern: expected an object", where, path));
    const bool literal = !pat->contains("Regex");
    const std::string text = string_field(*pat, literal ? "String" : "Regex", path + ".pattern", where);
    const std::string b = string_field(spec, "behavior", path, where);
    Behavior behavior;
    if (b == "Removed") behavior = Behavior::Removed;
    else if (b == "Isolated") behavior = Behavior::Isolated;
    else if (b == "MergedWithPrevious") behavior = Behavior::MergedWithPrevious;
    else if (b == "MergedWithNext") behavior = Behavior::MergedWithNext;
    else if (b == "Contiguous") behavior = Behavior::Contiguous;
    else throw InputError(fmt::format("{}: {}.behavior: unknown split behaviour '{}'", where, path, b));
    steps_.push_back({UnicodeRegex(text, fmt::format("{}: {}.pattern", where, path), literal), behavior,
                      bool_field(spec, "invert", false)});
  } else if (type == "ByteLevel") {
    // The byte-to-character mapping itself happens in the BPE stage; only the optional
    // GPT-2 regex split is a pre-tokenization step.
    if (bool_field(spec, "add_prefix_space", false))
      throw InputError(fmt::format("{}: {}.add_prefix_space: true is not supported", where, path));
    if (bool_field(spec, "use_regex", true))
      steps_.push_back({UnicodeRegex(kGpt2Pattern, "ByteLevel"), Behavior::Isolated, false});
  } else {
    throw InputError(fmt::format("{}: {}.type: pre-tokenizer '{}' is not supported", where, path, type));
  }
}

void PreTokenizer::split(std::string_view segment, std::vector<Piece>& out) const {
  out.clear();
  if (segment.empty()) return;
  out.push_back({0, segment.size()});
  std::vector<Piece> next;
  std::vector<RegexMatch> matches;
  for (const Step& step : steps_) {
    apply(step, segment, out, next, matches);
    out.swap(next);
  }
}

void PreTokenizer::apply(const Step& step, std::string_view segment, const std::vector<Piece>& in,
                         std::vector<Piece>& out, std::vector<RegexMatch>& matches) {
  out.clear();
  for (const Piece& piece : in) {
    matches.clear();
    step.regex.find_all(segment.substr(piece.begin, piece.end - piece.begin), matches);
    // The piece as alternating (range, is_match) parts, as Hugging Face's Split sees it.
    std::size_t pos = 0;
    const std::size_t len = piece.end - piece.begin;
    bool pending_next = false;  // MergedWithNext: a match waits for the part that follows
    std::size_t pending_begin = 0;
    bool last_was_match = false;
    const std::size_t first_out = out.size();
    std::size_t parts_in_piece = 0;
    auto emit = [&](std::size_t b, std::size_t e, bool is_match) {
      if (step.invert) is_match = !is_match;
      const std::size_t ab = piece.begin + b, ae = piece.begin + e;
      switch (step.behavior) {
        case Behavior::Removed:
          if (!is_match) out.push_back({ab, ae});
          break;
        case Behavior::Isolated:
          out.push_back({ab, ae});
          break;
        case Behavior::MergedWithPrevious:
          if (is_match && parts_in_piece > 0)
            out.back().end = ae;
          else
            out.push_back({ab, ae});
          break;
        case Behavior::MergedWithNext:
          if (is_match) {
            if (!pending_next) pending_begin = ab;
            pending_next = true;
          } else {
            out.push_back({pending_next ? pending_begin : ab, ae});
            pending_next = false;
          }
          break;
        case Behavior::Contiguous:
          if (is_match && last_was_match && parts_in_piece > 0)
            out.back().end = ae;
          else
            out.push_back({ab, ae});
          break;
      }
      last_was_match = is_match;
      parts_in_piece = out.size() - first_out;
    };
    for (const RegexMatch& m : matches) {
      if (m.begin > pos) emit(pos, m.begin, false);
      emit(m.begin, m.end, true);
      pos = m.end;
    }
    if (pos < len) emit(pos, len, false);
    if (pending_next) out.push_back({pending_begin, piece.begin + len});
  }
}

}  // namespace flashline
