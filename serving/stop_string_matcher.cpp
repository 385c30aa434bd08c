#include "serving/stop_string_matcher.h"

#include <algorithm>

namespace flashline {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
  for (const auto& s : stops_) longest_ = std::max(longest_, s.size());
}

StopStringMatcher::Result StopStringMatcher::push(std::string_view text) {
  Result r;
  if (matched_) return r;
  if (stops_.empty()) {
    r.text = text;
    return r;
  }
  // Every earlier push left no complete stop string in held_, so a match must end in `text`.
  const std::size_t from = held_.size() >= longest_ - 1 ? held_.size() - (longest_ - 1) : 0;
  held_ += text;
  std::size_t first = std::string::npos;
  for (const auto& s : stops_) first = std::min(first, held_.find(s, from));
  if (first != std::string::npos) {
    r.text = held_.substr(0, first);
    r.matched = matched_ = true;
    held_.clear();
    return r;
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  std::size_t hold = 0;
  for (const auto& s : stops_)
    for (std::size_t k = std::min(s.size() - 1, held_.size()); k > hold; --k)
      if (std::string_view(held_).ends_with(std::string_view(s).substr(0, k))) {
        hold = k;
        break;
      }
  r.text = held_.substr(0, held_.size() - hold);
  held_.erase(0, held_.size() - hold);
  return r;
}

std::string StopStringMatcher::finish() {
  std::string out;
  out.swap(held_);
  return matched_ ? std::string() : out;
}

}  // namespace flashline
