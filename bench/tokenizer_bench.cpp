// Tokenizer throughput. Generates a deterministic mixed corpus (English prose, C++/Python code,
// Chinese and Japanese text, numbers, emoji) as a JSON array of documents, and encodes it,
// reporting MB/s and tokens/s. bench/tokenizer/run.sh runs the same corpus through
// @huggingface/tokenizers (npm) and prints the ratio.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "serving/tokenizer.h"
#include "serving/utf8.h"
#include "base/input_error.h"

namespace {

// A fixed LCG: the corpus is identical on every machine and run.
struct Lcg {
  std::uint64_t s = 0x853c49e6748fea9bULL;
  std::uint32_t next() {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::uint32_t>(s >> 33);
  }
  std::size_t below(std::size_t n) { return next() % n; }
};

const char* kWords[] = {"the", "model", "serves", "tokens", "across", "many", "machines", "while", "experts",
                        "route", "each", "request", "quickly", "and", "memory", "bandwidth", "limits", "decode",
                        "throughput", "of", "a", "pipeline", "stage", "with", "careful", "scheduling", "is",
                        "often", "what", "matters", "most", "when", "latency", "budgets", "are", "tight",
                        "however", "practitioners", "rarely", "measure", "everything", "they", "should"};
const char* kCode[] = {
    "for (int i = 0; i < n; ++i) {\n  sum += values[i] * weights[i];\n}\n",
    "def encode(self, text: str) -> list[int]:\n    return [self.vocab[t] for t in self.split(text)]\n",
    "if (!file.is_open()) throw std::runtime_error(\"cannot open \" + path);\n",
    "const auto it = std::find_if(items.begin(), items.end(), [&](const Item& x) { return x.id == id; });\n",
    "    result = {\"status\": \"ok\", \"count\": len(rows), \"elapsed_ms\": 12.5}\n",
    "#include <vector>\n#include <string>\n\nnamespace demo {\nstruct Point { double x, y; };\n}\n"};
const char* kChinese[] = {"模型", "推理", "服务", "分布式", "专家", "路由", "请求", "吞吐量", "延迟", "内存",
                          "带宽", "流水线", "我们", "需要", "测量", "每一个", "步骤", "结果", "非常", "重要"};
const char* kJapanese[] = {"トークン", "モデル", "ひらがな", "カタカナ", "これは", "テスト", "です", "分散", "推論"};
const char* kEmoji[] = {"🚀", "👍🏽", "🇯🇵", "😀", "✨"};

std::string make_document(Lcg& rng) {
  std::string doc;
  const std::size_t kind = rng.below(10);
  const std::size_t target = 1500 + rng.below(3000);
  while (doc.size() < target) {
    if (kind < 5) {  // prose with numbers and the odd emoji
      for (std::size_t w = 0, n = 8 + rng.below(14); w < n; ++w) {
        std::string word = kWords[rng.below(std::size(kWords))];
        if (w == 0) word[0] = static_cast<char>(word[0] - 32);
        doc += word;
        if (rng.below(15) == 0) doc += fmt::format(" {}", rng.below(100000));
        if (rng.below(40) == 0) doc += std::string(" ") + kEmoji[rng.below(std::size(kEmoji))];
        doc += w + 1 < n ? (rng.below(12) == 0 ? ", " : " ") : ". ";
      }
      if (rng.below(4) == 0) doc += "\n\n";
    } else if (kind < 8) {  // code
      doc += kCode[rng.below(std::size(kCode))];
    } else {  // CJK
      for (std::size_t w = 0, n = 10 + rng.below(20); w < n; ++w)
        doc += rng.below(3) ? kChinese[rng.below(std::size(kChinese))] : kJapanese[rng.below(std::size(kJapanese))];
      doc += rng.below(2) ? "。" : "、";
      if (rng.below(5) == 0) doc += "\n";
    }
  }
  return doc;
}

std::vector<std::string> make_corpus(double megabytes) {
  Lcg rng;
  std::vector<std::string> docs;
  std::size_t bytes = 0;
  while (bytes < megabytes * 1e6) {
    docs.push_back(make_document(rng));
    bytes += docs.back().size();
  }
  return docs;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Tokenizer throughput on a deterministic mixed corpus"};
  std::string tokenizer_file, corpus_file, write_corpus;
  double megabytes = 4;
  int repeats = 5;
  app.add_option("--tokenizer", tokenizer_file, "tokenizer.json");
  app.add_option("--corpus", corpus_file, "Corpus (JSON array of strings) to encode; default: generate");
  app.add_option("--write-corpus", write_corpus, "Write the generated corpus here and exit");
  app.add_option("--mb", megabytes, "Size of the generated corpus in MB (default 4)");
  app.add_option("--repeats", repeats, "Timed passes; the fastest is reported (default 5)");
  CLI11_PARSE(app, argc, argv);
  try {
    std::vector<std::string> docs;
    if (!corpus_file.empty()) {
      std::ifstream in(corpus_file, std::ios::binary);
      if (!in) throw flashline::InputError(corpus_file + ": cannot open");
      docs = nlohmann::json::parse(in).get<std::vector<std::string>>();
    } else {
      docs = make_corpus(megabytes);
    }
    if (!write_corpus.empty()) {
      std::ofstream(write_corpus, std::ios::binary) << nlohmann::json(docs).dump();
      return 0;
    }
    if (tokenizer_file.empty()) throw flashline::InputError("give --tokenizer");
    const auto t0 = std::chrono::steady_clock::now();
    const flashline::Tokenizer tok = flashline::Tokenizer::from_file(tokenizer_file);
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::size_t bytes = 0;
    for (const auto& d : docs) bytes += d.size();
    double best = 1e30;
    std::size_t tokens = 0;
    std::uint64_t hash = 1469598103934665603ULL;  // FNV-1a over the ids: both sides must agree
    for (int r = 0; r < repeats; ++r) {
      const auto start = std::chrono::steady_clock::now();
      std::size_t count = 0;
      std::uint64_t h = 1469598103934665603ULL;
      for (const auto& d : docs) {
        const std::vector<int> ids = tok.encode(d);
        count += ids.size();
        for (int id : ids) h = (h ^ static_cast<std::uint64_t>(id)) * 1099511628211ULL;
      }
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      tokens = count;
      hash = h;
    }
    fmt::print("{}\n", nlohmann::json{{"implementation", "flashline"},
                                      {"documents", docs.size()},
                                      {"bytes", bytes},
                                      {"tokens", tokens},
                                      {"ids_fnv1a", fmt::format("{:016x}", hash)},
                                      {"load_s", load_s},
                                      {"encode_s", best},
                                      {"mb_per_s", bytes / 1e6 / best},
                                      {"tokens_per_s", tokens / best}}
                               .dump());
  } catch (const std::exception& e) {
    fmt::print(stderr, "tokenizer_bench: error: {}\n", e.what());
    return 2;
  }
  return 0;
}
