#pragma once
// Several prompts on the command line: "@prompts.json", a JSON list whose elements are either
// token id lists or objects {"ids": [...], "arrival_s": 0.5, "max_tokens": 8, "seed": 1,
// "temperature": 0.8, "top_p": 0.9, "top_k": 40, "min_p": 0.1, "abort_when": [j, n], "draft_ids":
// [...]} (every key
// but "ids" optional): per-request arrival offsets and sampling, for tests and benchmarks;
// "abort_when" aborts the request once request j has emitted n tokens; "draft_ids" forces the
// speculative drafts (DebugOptions::draft_ids, for tests and benchmarks).
#include <cstdint>
#include <optional>
#include <utility>
#include <string>
#include <vector>

namespace flashline {

struct PromptSpec {
  std::vector<int32_t> ids;
  double arrival_s = 0;
  std::optional<int> max_tokens;
  std::optional<uint64_t> seed;
  std::optional<float> temperature, top_p, min_p;
  std::optional<int> top_k;
  std::optional<std::pair<int, int>> abort_when;  // [request index, tokens]: abort after that many
  std::vector<int32_t> draft_ids;
};

std::vector<PromptSpec> parse_prompt_list(const std::string& arg, const std::string& option);

}  // namespace flashline
