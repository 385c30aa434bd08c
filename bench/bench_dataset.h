#pragma once
// The prompts of a serving benchmark: random token text of chosen lengths, ShareGPT
// conversations (first human turn as the prompt, the reply's length as the output length), or a
// JSONL file of {"prompt", "output_len"} lines. Deterministic in the seed.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace flashline {

class Tokenizer;

struct BenchPrompt {
  std::string prompt;
  int64_t prompt_len = -1;  // tokens by the tokenizer; -1 without one (the server's usage tells)
  int64_t output_len = 0;   // max_tokens of the request
};

struct DatasetOptions {
  std::string name = "random";  // random | sharegpt | jsonl
  std::string path;             // sharegpt, jsonl
  int num_prompts = 1000;
  int input_len = 1024, output_len = 128;  // random; output_len also overrides sharegpt/jsonl when set
  bool output_len_given = false;
  double range_ratio = 0;  // random: lengths uniform in [len * (1 - r), len * (1 + r)]
  uint64_t seed = 0;
};

// InputError naming the option, the file and the line or JSON path for a bad dataset; a
// tokenizer is needed by random and sharegpt (nullptr: InputError saying so).
std::vector<BenchPrompt> load_dataset(const DatasetOptions& options, const Tokenizer* tokenizer);

// `count` lengths uniform in [floor(n (1 - ratio)), ceil(n (1 + ratio))], at least 1 (vLLM's random
// dataset; bench offline draws its lengths the same way).
std::vector<int64_t> spread_lengths(int64_t n, double ratio, int count, std::mt19937_64& rng);

// The pieces, for tests.
std::vector<BenchPrompt> random_prompts(const DatasetOptions& options, const Tokenizer& tokenizer);
std::vector<BenchPrompt> sharegpt_prompts(const DatasetOptions& options, const Tokenizer& tokenizer);
std::vector<BenchPrompt> jsonl_prompts(const DatasetOptions& options, const Tokenizer* tokenizer);

}  // namespace flashline
