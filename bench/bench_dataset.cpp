#include "bench/bench_dataset.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "base/input_error.h"
#include "base/input_file.h"
#include "serving/tokenizer.h"

namespace flashline {
namespace {

using nlohmann::json;

int64_t token_count(const Tokenizer& t, const std::string& text) { return static_cast<int64_t>(t.encode(text).size()); }

}  // namespace

std::vector<int64_t> spread_lengths(int64_t n, double ratio, int count, std::mt19937_64& rng) {
  const auto lo = std::max<int64_t>(1, static_cast<int64_t>(std::floor(static_cast<double>(n) * (1 - ratio))));
  const auto hi = std::max(lo, static_cast<int64_t>(std::ceil(static_cast<double>(n) * (1 + ratio))));
  std::uniform_int_distribution<int64_t> pick(lo, hi);
  std::vector<int64_t> out;
  for (int i = 0; i < count; ++i) out.push_back(pick(rng));
  return out;
}

std::vector<BenchPrompt> random_prompts(const DatasetOptions& o, const Tokenizer& tokenizer) {
  if (o.input_len < 1) throw InputError(fmt::format("--input-len {}: expected at least 1 token", o.input_len));
  if (o.output_len < 1) throw InputError(fmt::format("--output-len {}: expected at least 1 token", o.output_len));
  if (!(o.range_ratio >= 0 && o.range_ratio < 1))
    throw InputError(fmt::format("--range-ratio {}: expected a value in [0, 1)", o.range_ratio));
  // Ordinary tokens only: an added (special) token in the text would be read back as markup.
  std::vector<int> ordinary;
  for (int id = 0; id < tokenizer.vocab_size(); ++id)
    if (!tokenizer.is_added(id)) try {
        if (!tokenizer.token_bytes(id).empty()) ordinary.push_back(id);
      } catch (const InputError&) {  // a gap in the vocabulary
      }
  if (ordinary.empty()) throw InputError("--tokenizer: the vocabulary has no ordinary tokens for random prompts");
  std::mt19937_64 rng(o.seed);
  const auto input_lens = spread_lengths(o.input_len, o.range_ratio, o.num_prompts, rng);
  const auto output_lens = spread_lengths(o.output_len, o.range_ratio, o.num_prompts, rng);
  std::uniform_int_distribution<std::size_t> pick(0, ordinary.size() - 1);
  std::vector<BenchPrompt> prompts;
  for (int i = 0; i < o.num_prompts; ++i) {
    // Text from random ids re-tokenizes differently (merges across token boundaries): draw,
    // decode, re-encode and top up or cut until the text is the wanted number of tokens, or
    // close to it after a few rounds.
    std::vector<int> ids;
    std::string text;
    for (int round = 0; round < 8; ++round) {
      while (static_cast<int64_t>(ids.size()) < input_lens[i]) ids.push_back(ordinary[pick(rng)]);
      text = tokenizer.decode(ids);
      ids = tokenizer.encode(text);
      if (static_cast<int64_t>(ids.size()) > input_lens[i]) {
        ids.resize(static_cast<std::size_t>(input_lens[i]));
        text = tokenizer.decode(ids);
        ids = tokenizer.encode(text);
      }
      if (static_cast<int64_t>(ids.size()) == input_lens[i]) break;
    }
    prompts.push_back({text, static_cast<int64_t>(ids.size()), output_lens[i]});
  }
  return prompts;
}

std::vector<BenchPrompt> sharegpt_prompts(const DatasetOptions& o, const Tokenizer& tokenizer) {
  const std::string text = read_input_file(o.path, "--dataset-path file (ShareGPT JSON)");
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    throw InputError(fmt::format("{}: not valid JSON near byte {} (expected a ShareGPT list of conversations)", o.path,
                                 e.byte));
  }
  if (!doc.is_array()) throw InputError(fmt::format("{}: expected a JSON list of conversations", o.path));
  struct Pair {
    std::string prompt, reply;
  };
  std::vector<Pair> pairs;
  for (std::size_t i = 0; i < doc.size(); ++i) {
    const auto& entry = doc[i];
    if (!entry.is_object() || !entry.contains("conversations") || !entry["conversations"].is_array())
      throw InputError(fmt::format("{}: [{}].conversations: expected a list of turns", o.path, i));
    const auto& turns = entry["conversations"];
    if (turns.size() < 2) continue;  // nothing to answer
    for (std::size_t t = 0; t < 2; ++t)
      if (!turns[t].is_object() || !turns[t].contains("value") || !turns[t]["value"].is_string())
        throw InputError(fmt::format("{}: [{}].conversations[{}].value: expected a string", o.path, i, t));
    pairs.push_back({turns[0]["value"].get<std::string>(), turns[1]["value"].get<std::string>()});
  }
  std::mt19937_64 rng(o.seed);
  std::shuffle(pairs.begin(), pairs.end(), rng);
  std::vector<BenchPrompt> prompts;
  for (const auto& p : pairs) {
    if (static_cast<int>(prompts.size()) == o.num_prompts) break;
    const int64_t prompt_len = token_count(tokenizer, p.prompt);
    const int64_t output_len = o.output_len_given ? o.output_len : token_count(tokenizer, p.reply);
    // As vLLM: too short to time, or longer than the benchmark's usual context.
    if (prompt_len < 4 || (!o.output_len_given && output_len < 4)) continue;
    if (prompt_len > 1024 || prompt_len + output_len > 2048) continue;
    prompts.push_back({p.prompt, prompt_len, output_len});
  }
  if (prompts.empty())
    throw InputError(fmt::format("{}: no conversation with a prompt of 4..1024 tokens and a reply of at least 4",
                                 o.path));
  // Fewer usable conversations than prompts asked for: repeat them in order (and say so).
  const std::size_t usable = prompts.size();
  if (usable < static_cast<std::size_t>(o.num_prompts))
    fmt::print(stderr, "flashline: {}: {} usable conversations, repeated to make {} prompts\n", o.path, usable,
               o.num_prompts);
  for (std::size_t i = 0; prompts.size() < static_cast<std::size_t>(o.num_prompts); ++i)
    prompts.push_back(prompts[i % usable]);
  return prompts;
}

std::vector<BenchPrompt> jsonl_prompts(const DatasetOptions& o, const Tokenizer* tokenizer) {
  std::istringstream in(read_input_file(o.path, "--dataset-path file (JSONL)"));
  std::vector<BenchPrompt> all;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json entry;
    try {
      entry = json::parse(line);
    } catch (const json::parse_error& e) {
      throw InputError(fmt::format("{}:{}: not valid JSON near byte {}", o.path, n, e.byte));
    }
    if (!entry.is_object() || !entry.contains("prompt") || !entry["prompt"].is_string())
      throw InputError(fmt::format("{}:{}: prompt: expected a string ({{\"prompt\": ..., \"output_len\": N}})", o.path, n));
    BenchPrompt p;
    p.prompt = entry["prompt"].get<std::string>();
    p.output_len = o.output_len;
    if (entry.contains("output_len") && !o.output_len_given) {
      if (!entry["output_len"].is_number_integer() || entry["output_len"].get<int64_t>() < 1)
        throw InputError(fmt::format("{}:{}: output_len: expected an integer of at least 1", o.path, n));
      p.output_len = entry["output_len"].get<int64_t>();
    }
    if (tokenizer) p.prompt_len = token_count(*tokenizer, p.prompt);
    all.push_back(std::move(p));
  }
  if (all.empty()) throw InputError(fmt::format("{}: no prompts (expected one JSON object per line)", o.path));
  std::vector<BenchPrompt> prompts;
  for (int i = 0; i < o.num_prompts; ++i) prompts.push_back(all[static_cast<std::size_t>(i) % all.size()]);
  return prompts;
}

std::vector<BenchPrompt> load_dataset(const DatasetOptions& o, const Tokenizer* tokenizer) {
  if (o.num_prompts < 1) throw InputError(fmt::format("--num-prompts {}: expected at least 1", o.num_prompts));
  if (o.name != "random" && o.path.empty())
    throw InputError(fmt::format("--dataset {}: needs --dataset-path", o.name));
  if (o.name == "jsonl") return jsonl_prompts(o, tokenizer);
  if (o.name != "random" && o.name != "sharegpt")
    throw InputError(fmt::format("--dataset {}: expected random, sharegpt or jsonl", o.name));
  if (tokenizer == nullptr)
    throw InputError(fmt::format("--dataset {}: needs --tokenizer (prompt and output lengths are counted in tokens)",
                                 o.name));
  return o.name == "random" ? random_prompts(o, *tokenizer) : sharegpt_prompts(o, *tokenizer);
}

}  // namespace flashline
