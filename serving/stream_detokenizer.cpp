#include "serving/stream_detokenizer.h"

#include "serving/utf8.h"

namespace flashline {

std::string StreamDetokenizer::push(int id) {
  pending_ += tokenizer_->token_bytes(id);
  std::string out;
  std::size_t pos = 0;
  while (pos < pending_.size()) {
    const utf8::Scan s = utf8::scan(std::string_view(pending_).substr(pos));
    if (s.kind == utf8::Scan::Incomplete) break;  // may still be completed by the next token
    if (s.kind == utf8::Scan::Valid)
      out.append(pending_, pos, s.length);
    else
      out.append(utf8::kReplacement);
    pos += s.length;
  }
  pending_.erase(0, pos);
  return out;
}

std::string StreamDetokenizer::finish() {
  std::string out = pending_.empty() ? std::string() : std::string(utf8::kReplacement);
  pending_.clear();
  return out;
}

}  // namespace flashline
