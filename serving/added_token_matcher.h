#pragma once
// Finds added (special) tokens in raw text before any pre-tokenization: scanning left to
// right, at each position the longest added token that starts there wins.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace flashline {

class AddedTokenMatcher {
 public:
  void add(std::string_view content, int id);

  struct Match {
    std::size_t begin, end;
    int id;
  };
  // The first match at or after `from`, or a match with begin == text.size() when none.
  Match next(std::string_view text, std::size_t from) const;

  bool empty() const { return nodes_.size() <= 1; }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int>> children;  // few per node: linear search
    int id = -1;                                          // token ending here, if any
  };
  int child(int node, unsigned char byte) const;

  std::vector<Node> nodes_{1};
  std::array<bool, 256> first_byte_{};  // quick reject for positions no token starts at
};

}  // namespace flashline
