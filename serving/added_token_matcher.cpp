#include "serving/added_token_matcher.h"

namespace flashline {

int AddedTokenMatcher::child(int node, unsigned char byte) const {
  for (const auto& [b, n] : nodes_[node].children)
    if (b == byte) return n;
  return -1;
}

void AddedTokenMatcher::add(std::string_view content, int id) {
  if (content.empty()) return;
  int node = 0;
  for (char c : content) {
    const auto b = static_cast<unsigned char>(c);
    int n = child(node, b);
    if (n < 0) {
      n = static_cast<int>(nodes_.size());
      nodes_.emplace_back();
      nodes_[node].children.emplace_back(b, n);
    }
    node = n;
  }
  nodes_[node].id = id;
  first_byte_[static_cast<unsigned char>(content[0])] = true;
}

AddedTokenMatcher::Match AddedTokenMatcher::next(std::string_view text, std::size_t from) const {
  for (std::size_t i = from; i < text.size(); ++i) {
    if (!first_byte_[static_cast<unsigned char>(text[i])]) continue;
    int node = 0, best_id = -1;
    std::size_t best_end = 0;
    for (std::size_t j = i; j < text.size(); ++j) {
      node = child(node, static_cast<unsigned char>(text[j]));
      if (node < 0) break;
      if (nodes_[node].id >= 0) {
        best_id = nodes_[node].id;
        best_end = j + 1;
      }
    }
    if (best_id >= 0) return {i, best_end, best_id};
  }
  return {text.size(), text.size(), -1};
}

}  // namespace flashline
