#include "serving/unicode_regex.h"


#define PCRE2_CODE_UNIT_WIDTH 8
#include <fmt/format.h>
#include <pcre2.h>

#include <stdexcept>

#include "base/input_error.h"
#include "serving/unicode_additions.h"

namespace flashline {

struct UnicodeRegex::Code {
  pcre2_code* re = nullptr;
  ~Code() { pcre2_code_free(re); }
};

namespace {

// Per-thread match state: one ovector pair is all find_all needs, and a JIT stack larger than
// PCRE2's 32 KiB default so very long runs (megabytes of spaces) never hit its limit.
struct MatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  MatchState() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~MatchState() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(data);
  }
};

MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

std::string_view unicode_additions_for(char category) {
  switch (category) {
    case 'L': return unicode_additions::kL;
    case 'M': return unicode_additions::kM;
    case 'N': return unicode_additions::kN;
    case 'P': return unicode_additions::kP;
    case 'S': return unicode_additions::kS;
    default: return {};
  }
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

std::string UnicodeRegex::translate_oniguruma(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 32);
  bool in_class = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[i + 1];
      if (next == 's' || next == 'S') {
        out += next == 's' ? "\\p{White_Space}" : "\\P{White_Space}";
        ++i;
        continue;
      }
      // \p{X} for a general category: add what newer Unicode assigned to it.
      if ((next == 'p' || next == 'P') && i + 4 < pattern.size() && pattern[i + 2] == '{' && pattern[i + 4] == '}') {
        const std::string_view extra = unicode_additions_for(pattern[i + 3]);
        const std::string_view prop = pattern.substr(i, 5);
        if (!extra.empty() && next == 'p') {
          if (in_class) {
            out.append(prop).append(extra);
          } else {
            out.append("[").append(prop).append(extra).append("]");
          }
          i += 4;
          continue;
        }
        if (!extra.empty() && !in_class) {
          out.append("[^\\p{").append(1, pattern[i + 3]).append("}").append(extra).append("]");
          i += 4;
          continue;
        }
      }
      out.append(pattern.substr(i, 2));
      ++i;  // an escaped character is never the start of another escape
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

UnicodeRegex::UnicodeRegex(std::string_view pattern, std::string_view where, bool literal) {
  const std::string translated = literal ? std::string(pattern) : translate_oniguruma(pattern);
  int err = 0;
  PCRE2_SIZE offset = 0;
  const uint32_t options = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0);
  pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                 options, &err, &offset, nullptr);
  if (!re)
    throw InputError(fmt::format("{}: regex does not compile at offset {}: {}", where, offset,
                                 pcre2_message(err)));
  auto code = std::make_shared<Code>();
  code->re = re;
  // JIT is a speed-up only: where it is unavailable the interpreter gives the same matches.
  pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
  code_ = std::move(code);
}

void UnicodeRegex::find_all(std::string_view subject, std::vector<RegexMatch>& out) const {
  MatchState& st = match_state();
  const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
  std::size_t start = 0;
  while (start <= subject.size()) {
    const int rc = pcre2_match(code_->re, s, subject.size(), start, PCRE2_NO_UTF_CHECK, st.data,
                               st.context);
    if (rc == PCRE2_ERROR_NOMATCH) return;
    if (rc < 0) throw std::runtime_error("regex match failed: " + pcre2_message(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
    const std::size_t b = ov[0], e = ov[1];
    if (e > b) {
      out.push_back({b, e});
      start = e;
    } else {
      // An empty match produces no piece; step over one whole character.
      if (b >= subject.size()) return;
      std::size_t next = b + 1;
      while (next < subject.size() && (static_cast<unsigned char>(subject[next]) & 0xC0) == 0x80) ++next;
      start = next;
    }
  }
}

}  // namespace flashline
