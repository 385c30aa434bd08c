#pragma once
// Stop strings on generated text that arrives in pieces (one token's text at a time). A stop
// string may span several tokens, so a tail of the text that could still become one is held back
// until it is decided; a matched stop string and everything after it is never released.
#include <string>
#include <string_view>
#include <vector>

namespace flashline {

class StopStringMatcher {
 public:
  explicit StopStringMatcher(std::vector<std::string> stops);

  struct Result {
    std::string text;      // what may be shown now
    bool matched = false;  // a stop string ended the text: push nothing more
  };
  // Text in valid UTF-8 pieces; the released text always ends on a character boundary.
  Result push(std::string_view text);
  // The end of the generation: the held-back tail can no longer become a stop string.
  std::string finish();
  bool matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::size_t longest_ = 0;
  std::string held_;
  bool matched_ = false;
};

}  // namespace flashline
