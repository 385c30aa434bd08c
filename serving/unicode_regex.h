#pragma once
// A compiled PCRE2 pattern (UTF + UCP, JIT) with the semantics of the Oniguruma regexes
// that Hugging Face tokenizer files are written for.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace flashline {

struct RegexMatch {
  std::size_t begin, end;  // byte offsets into the subject
};

class UnicodeRegex {
 public:
  // `where` names the pattern's origin (file and JSON path) for error messages.
  // `literal` compiles the pattern as a plain string (the `String` pattern of a Split).
  UnicodeRegex(std::string_view pattern, std::string_view where, bool literal = false);

  // Appends every non-empty, non-overlapping match in `subject`, left to right. `subject` must
  // be valid UTF-8 (the tokenizer guarantees it), so PCRE2's own UTF check is skipped.
  void find_all(std::string_view subject, std::vector<RegexMatch>& out) const;

  // Oniguruma's \s is Unicode White_Space; PCRE2's (with UCP) also matches U+180E. And the
  // general categories L, M, N, P, S get the characters assigned since PCRE2's Unicode
  // version (serving/unicode_additions.h). The pattern is rewritten so the engines agree.
  static std::string translate_oniguruma(std::string_view pattern);

 private:
  struct Code;
  std::shared_ptr<const Code> code_;
};

}  // namespace flashline
