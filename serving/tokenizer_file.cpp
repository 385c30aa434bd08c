#include "serving/tokenizer_file.h"

#include "base/input_error.h"

#include <fmt/format.h>


namespace flashline {

namespace {

using json = nlohmann::json;

class Handler : public nlohmann::json_sax<json> {
 public:
  Handler(TokenizerFile& out, std::string_view source) : out_(out), source_(source) {}

  bool null() override { return value(json()); }
  bool boolean(bool v) override { return value(v); }
  bool number_integer(number_integer_t v) override {
    if (mode_ == Mode::Vocab) return vocab_id(v);
    return value(v);
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (mode_ == Mode::Vocab) return vocab_id(v <= 1ull << 40 ? static_cast<long long>(v) : -1);
    return value(v);
  }
  bool number_float(number_float_t v, const string_t&) override {
    if (mode_ == Mode::Vocab) return vocab_id(-1);
    return value(v);
  }
  bool string(string_t& v) override {
    if (mode_ == Mode::Merges) {
      if (merge_depth_ == 1) {  // "left right"
        const auto sp = v.find(' ');
        if (sp == std::string::npos) return fail(fmt::format("model.merges[{}]: expected \"left right\"", out_.merges.size()));
        out_.merges.emplace_back(v.substr(0, sp), v.substr(sp + 1));
        return true;
      }
      if (merge_depth_ == 2 && pair_.size() < 2) {
        pair_.push_back(std::move(v));
        return true;
      }
      return fail(fmt::format("model.merges[{}]: expected a string or a pair of strings", out_.merges.size()));
    }
    if (mode_ == Mode::Vocab) return vocab_id(-1);
    return value(std::move(v));
  }
  bool binary(binary_t&) override { return fail("unexpected binary value"); }

  bool start_object(std::size_t) override {
    if (mode_ == Mode::Merges) return fail(fmt::format("model.merges[{}]: expected a string or a pair of strings", out_.merges.size()));
    if (mode_ == Mode::Vocab) return fail(fmt::format("model.vocab[\"{}\"]: expected a token id", key_));
    if (at_model_member("vocab")) {
      value(json::object());
      mode_ = Mode::Vocab;
      out_.has_vocab = true;
      return true;
    }
    json* node = place(json::object());
    stack_.push_back(node);
    return true;
  }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool end_object() override {
    if (mode_ == Mode::Vocab) {
      mode_ = Mode::Dom;
      return true;
    }
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    if (mode_ == Mode::Vocab) return fail(fmt::format("model.vocab[\"{}\"]: expected a token id", key_));
    if (mode_ == Mode::Merges) {
      if (++merge_depth_ > 2) return fail(fmt::format("model.merges[{}]: expected a string or a pair of strings", out_.merges.size()));
      pair_.clear();
      return true;
    }
    if (at_model_member("merges")) {
      value(json::array());
      mode_ = Mode::Merges;
      merge_depth_ = 1;
      out_.has_merges = true;
      return true;
    }
    json* node = place(json::array());
    stack_.push_back(node);
    return true;
  }
  bool end_array() override {
    if (mode_ == Mode::Merges) {
      if (--merge_depth_ == 0) {
        mode_ = Mode::Dom;
        return true;
      }
      if (pair_.size() != 2) return fail(fmt::format("model.merges[{}]: expected a pair of strings", out_.merges.size()));
      out_.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      return true;
    }
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    return fail(fmt::format("not valid JSON near byte {}: {}", position, e.what()));
  }

  const std::string& error() const { return error_; }

 private:
  enum class Mode { Dom, Vocab, Merges };

  // True when the value about to start is member `name` of the top-level "model" object.
  bool at_model_member(const char* name) const {
    return stack_.size() == 2 && key_ == name && stack_[1]->is_object() && stack_[0]->is_object() &&
           stack_[0]->contains("model") && &(*stack_[0])["model"] == stack_[1];
  }
  json* place(json v) {
    if (stack_.empty()) {
      out_.rest = std::move(v);
      return &out_.rest;
    }
    json& top = *stack_.back();
    if (top.is_array()) {
      top.push_back(std::move(v));
      return &top.back();
    }
    json& slot = top[key_];
    slot = std::move(v);
    return &slot;
  }
  bool value(json v) {
    place(std::move(v));
    return true;
  }
  bool vocab_id(long long id) {
    if (id < 0) return fail(fmt::format("model.vocab[\"{}\"]: expected a non-negative integer token id", key_));
    out_.vocab.emplace_back(std::move(key_), id);
    return true;
  }
  bool fail(std::string message) {
    error_ = std::move(message);
    return false;
  }

  TokenizerFile& out_;
  std::string_view source_;
  std::vector<json*> stack_;
  std::string key_;
  Mode mode_ = Mode::Dom;
  int merge_depth_ = 0;
  std::vector<std::string> pair_;
  std::string error_;
};

}  // namespace

TokenizerFile TokenizerFile::parse(std::string_view text, std::string_view source) {
  TokenizerFile out;
  out.vocab.reserve(140000);
  out.merges.reserve(140000);
  Handler handler(out, source);
  const bool ok = json::sax_parse(text.begin(), text.end(), &handler, json::input_format_t::json, true);
  if (!ok) throw InputError(fmt::format("{}: {}", source, handler.error().empty() ? "not valid JSON" : handler.error()));
  if (!out.rest.is_object()) throw InputError(fmt::format("{}: expected a JSON object", source));
  return out;
}

}  // namespace flashline
