// The extend primitive: a request extended by chunks of any size from any position gives, at
// every position, the logits of the whole prefill (and of the goldens in exact mode), and the
// decode after it is unchanged. Checked on tiny-a against the goldens and on two other presets
// (hc 2, ratios 4/16/128, window 32; hc 3, ratios 8/32, window 16) across chunkings.
#include <fmt/format.h>

#include <filesystem>
#include <random>

#include "stages/tiny_model.h"
#include "tests/golden/golden_fixture.h"

namespace flashline::testing {
namespace {

struct Model {
  Checkpoint ck;
  LoopbackExpertExchange exchange;
  Transformer tf;
  Model(const std::string& dir, Numerics num)
      : ck(Checkpoint::open(dir)), tf(ck, num, exchange, ExpertRoutes::single(ck.config().n_experts)) {}

  // Logits of every position of `ids`, fed in chunks of the given sizes (the last one takes
  // the rest), then of `decode` teacher-forced single steps.
  std::vector<float> run(const std::vector<int32_t>& ids, const std::vector<int>& chunks,
                         const std::vector<int32_t>& decode) {
    auto st = tf.new_state();
    std::vector<float> out;
    std::size_t at = 0, c = 0;
    while (at < ids.size()) {
      const std::size_t n = c < chunks.size() ? std::min<std::size_t>(chunks[c++], ids.size() - at) : ids.size() - at;
      extend({ids.begin() + std::ptrdiff_t(at), ids.begin() + std::ptrdiff_t(at + n)}, int(at), st, out);
      at += n;
    }
    for (std::size_t i = 0; i < decode.size(); ++i) extend({decode[i]}, int(ids.size() + i), st, out);
    return out;
  }
  void extend(const std::vector<int32_t>& tokens, int pos, RequestState& st, std::vector<float>& out) {
    StepBatch b;
    b.add(tokens, pos, &st);
    auto X = tf.embed(b);
    tf.run_layers(0, tf.config().n_layers, b, X);
    std::vector<int> rows(tokens.size());
    for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = int(i);
    const auto l = tf.logits(X, rows);
    out.insert(out.end(), l.begin(), l.end());
  }
};

std::vector<int> repeat(int size, int total) { return std::vector<int>(std::size_t(total / size + 1), size); }

std::vector<int> random_chunks(int total, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<int> c;
  for (int sum = 0; sum < total;) {
    c.push_back(int(rng() % 70) + 1);
    sum += c.back();
  }
  return c;
}

// The chunkings every test runs: 1, 3 and 64 tokens at a time, two random splits, and one
// chunk that ends one token before a window wrap.
std::vector<std::pair<std::string, std::vector<int>>> chunkings(int total) {
  return {{"1", repeat(1, total)},   {"3", repeat(3, total)},          {"64", repeat(64, total)},
          {"random-a", random_chunks(total, 1)}, {"random-b", random_chunks(total, 2)}, {"127+rest", {127}}};
}

std::vector<int32_t> to_ids(const NpyArray& a) { return {a.i32.begin(), a.i32.end()}; }

TEST(Extend, ChunkedPrefillAndDecodeEqualGoldensExact) {
  Model m(kModelDir, Numerics::Exact);
  const auto prompt = to_ids(golden("prompt_len250_ids.npy"));
  const auto decode_ids = to_ids(golden("decode_input_ids.npy"));
  const std::vector<int32_t> decode(decode_ids.begin(), decode_ids.begin() + 12);
  auto expect = golden("prefill_len250_logits.npy").f32;
  const auto dec = golden("decode_logits.npy").f32;
  expect.insert(expect.end(), dec.begin(), dec.begin() + std::ptrdiff_t(decode.size()) * m.tf.config().vocab);
  for (const auto& [name, chunks] : chunkings(int(prompt.size()))) {
    SCOPED_TRACE("chunks of " + name);
    EXPECT_EQ(m.run(prompt, chunks, decode), expect);
  }
}

class ExtendPresets : public ::testing::TestWithParam<std::tuple<std::string, Numerics>> {};

// Every chunking gives the whole prefill's logits bit for bit, in both numerics modes.
TEST_P(ExtendPresets, EveryChunkingEqualsTheWholePrefill) {
  const auto& [preset, num] = GetParam();
  const auto dir = std::filesystem::path(::testing::TempDir()) / fmt::format("extend-{}-{}", preset, int(num));
  std::filesystem::remove_all(dir);
  write_tiny_model(preset == "tiny-c" ? tiny_preset_from_file(std::string(FLASHLINE_REFERENCE_DIR) + "/tiny-c.json")
                                      : tiny_preset(preset),
                   dir);
  Model m(dir.string(), num);
  const int V = m.tf.config().vocab;
  std::vector<int32_t> prompt(250);
  for (int i = 0; i < 250; ++i) prompt[i] = int32_t((1103515245LL * (i + 11) + 12345) % 2147483648LL % V);
  const std::vector<int32_t> decode{3, 1, 4, 1, 5, 9, 2, 6};
  const auto whole = m.run(prompt, {250}, decode);
  for (const auto& [name, chunks] : chunkings(250)) {
    SCOPED_TRACE("chunks of " + name);
    EXPECT_EQ(m.run(prompt, chunks, decode), whole);
  }
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(
    Presets, ExtendPresets,
    ::testing::Combine(::testing::Values("tiny-a", "tiny-b", "tiny-c"), ::testing::Values(Numerics::Exact, Numerics::Fast)),
    [](const auto& info) {
      std::string name = std::get<0>(info.param) + (std::get<1>(info.param) == Numerics::Exact ? "_exact" : "_fast");
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

}  // namespace
}  // namespace flashline::testing
