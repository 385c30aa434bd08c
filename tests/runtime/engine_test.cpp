// The serving engine in one process on tiny-a: requests that arrive at any time, under any
// token budget and prefill chunk, get exactly the tokens of their solo run (greedy and seeded
// sampling); a KV pool too small for every request preempts and recomputes without changing
// any output; aborts and finished requests give every page back; memory does not grow with
// the number of requests served.
#include <gtest/gtest.h>
#include <omp.h>

#include <fmt/format.h>

#include <fstream>
#include <random>
#include <thread>
#include <unistd.h>

#include "base/input_error.h"
#include "kernels/cpu/threads.h"
#include "launch/engine_bootstrap.h"
#include "launch/engine_run.h"
#include "stages/request_state.h"

namespace flashline {
namespace {

const std::string kModel = std::string(FLASHLINE_TEST_DATA) + "/models/tiny-a";

std::vector<int32_t> prompt(int n, int salt) {
  std::vector<int32_t> ids(n);
  for (int i = 0; i < n; ++i) ids[i] = int32_t((1103515245LL * (i + 1 + 31 * salt) + 12345) % 2147483648LL % 2048);
  return ids;
}

EngineOptions options(int budget_tokens = 4096, int chunk = 512) {
  EngineOptions o;
  o.model = kModel;
  o.max_batch_tokens = budget_tokens;
  o.prefill_chunk = chunk;
  o.kv_cache_memory = "64MiB";
  return o;
}

TimedRequest request(std::vector<int32_t> ids, int max_tokens, double arrival = 0, float temperature = 0,
                     uint64_t seed = 0) {
  TimedRequest t;
  t.request.prompt = std::move(ids);
  t.request.sampling.max_tokens = max_tokens;
  t.request.sampling.ignore_eos = true;
  t.request.sampling.temperature = temperature;
  t.request.sampling.top_p = temperature > 0 ? 0.9f : 1.0f;
  t.request.sampling.seed = seed;
  t.request.sampling.has_seed = temperature > 0;
  t.arrival_s = arrival;
  return t;
}

// Prompts of 1 to 150 tokens (across the window of 128 and many compressed blocks).
std::vector<TimedRequest> mixed_requests(float temperature, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<TimedRequest> r;
  int i = 0;
  for (int n : {1, 7, 40, 130, 150, 3, 64}) {
    r.push_back(request(prompt(n, i), 5 + i % 3, double(rng() % 40) / 1000.0, temperature, 1000 + i));
    ++i;
  }
  return r;
}

std::vector<std::vector<int32_t>> ids_of(const std::vector<RequestOutcome>& out) {
  std::vector<std::vector<int32_t>> ids;
  for (const auto& o : out) {
    EXPECT_NE(o.finish, FinishReason::Error) << o.error;
    ids.push_back(o.ids);
  }
  return ids;
}

// Pages come back when the last stage's ids reach stage 0, just after the last token event.
int64_t pages_used_when_settled(Engine& e) {
  for (int i = 0; i < 200 && e.stats().kv_pages_used != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return e.stats().kv_pages_used;
}

std::vector<std::vector<int32_t>> solo_runs(const std::vector<TimedRequest>& reqs) {
  auto engine = start_engine(options());
  std::vector<std::vector<int32_t>> out;
  for (auto r : reqs) {
    r.arrival_s = 0;
    out.push_back(ids_of(run_requests(*engine, {r})).at(0));
  }
  engine->shutdown(0);
  return out;
}

class Batching : public ::testing::TestWithParam<float> {};

// Each request's tokens do not depend on what else runs, when it arrives, the step budget or
// the prefill chunk (greedy: temperature 0; seeded sampling: temperature 0.8, top_p 0.9).
TEST_P(Batching, EveryRequestGetsItsSoloTokens) {
  const auto reqs = mixed_requests(GetParam(), 7);
  const auto solo = solo_runs(reqs);
  for (auto [budget, chunk] : std::vector<std::pair<int, int>>{{4096, 0}, {16, 5}, {7, 3}, {64, 64}, {300, 1}}) {
    SCOPED_TRACE(fmt::format("--max-batch-tokens {} --prefill-chunk {}", budget, chunk));
    auto engine = start_engine(options(budget, chunk));
    EXPECT_EQ(ids_of(run_requests(*engine, reqs)), solo);
    engine->shutdown(0);
    for (const auto& r : engine->rank_stats()) EXPECT_EQ(r.pages_used, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Sampling, Batching, ::testing::Values(0.0f, 0.8f),
                         [](const auto& info) { return info.param == 0.0f ? "greedy" : "seeded_temperature_0_8"; });

TEST(Engine, SeededSamplingDiffersFromGreedyAndRepeats) {
  auto engine = start_engine(options());
  const auto a = ids_of(run_requests(*engine, {request(prompt(20, 1), 12, 0, 0.8f, 42)})).at(0);
  const auto b = ids_of(run_requests(*engine, {request(prompt(20, 1), 12, 0, 0.8f, 42)})).at(0);
  const auto c = ids_of(run_requests(*engine, {request(prompt(20, 1), 12, 0, 0.8f, 43)})).at(0);
  const auto g = ids_of(run_requests(*engine, {request(prompt(20, 1), 12)})).at(0);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, g);
}

// A pool that holds three requests at their prompt length (and not a fourth) but not their
// growth: eight requests all finish with their solo tokens, the newest is preempted and
// recomputed when pages run out, and the pool ends empty.
TEST(Engine, SmallKvPoolPreemptsAndStillGivesSoloTokens) {
  const ModelConfig c = ModelConfig::load(kModel + "/config.json");
  const int page = 1024, prompt_len = 40, new_tokens = 60;
  const int at_prompt = kv_pages_for(c, 0, c.n_layers, prompt_len, page);
  const int full = kv_pages_for(c, 0, c.n_layers, prompt_len + new_tokens, page);
  const int pages = 3 * at_prompt + (full - at_prompt);  // growth room for one request of three
  ASSERT_LT(pages, 4 * at_prompt);
  ASSERT_LT(pages, 3 * full);
  std::vector<TimedRequest> reqs;
  for (int i = 0; i < 8; ++i) reqs.push_back(request(prompt(prompt_len, 50 + i), new_tokens));
  const auto solo = solo_runs(reqs);
  auto o = options();
  o.kv_page_bytes = page;
  o.kv_cache_memory = std::to_string(int64_t(pages) * page);
  auto engine = start_engine(o);
  EXPECT_EQ(ids_of(run_requests(*engine, reqs)), solo);
  EXPECT_GT(engine->stats().preemptions, 0);
  EXPECT_EQ(pages_used_when_settled(*engine), 0);
  engine->shutdown(0);
  const auto ranks = engine->rank_stats();
  ASSERT_EQ(ranks.size(), 1u);
  EXPECT_EQ(ranks[0].pages_total, pages);
  EXPECT_EQ(ranks[0].pages_used, 0);
  EXPECT_EQ(ranks[0].live_states, 0);
}

// Aborting a request in the middle of its chunked prefill and another in the middle of its
// decode frees their pages; the others finish unchanged.
TEST(Engine, AbortMidPrefillAndMidDecodeFreesPages) {
  const auto keep = request(prompt(30, 9), 8);
  const auto solo = solo_runs({keep});
  auto engine = start_engine(options(8, 4));
  std::mutex mu;
  std::condition_variable cv;
  int decoding_tokens = 0, aborted = 0;
  auto watch = [&](const TokenEvent& e) {
    std::lock_guard lock(mu);
    if (e.finish == FinishReason::Abort) ++aborted;
    if (e.id >= 0) ++decoding_tokens;
    cv.notify_all();
  };
  EngineRequest long_prefill = request(prompt(150, 3), 4).request;
  long_prefill.on_token = watch;
  EngineRequest long_decode = request(prompt(5, 4), 200).request;
  long_decode.on_token = watch;
  const int64_t a = engine->submit(std::move(long_prefill));
  const int64_t b = engine->submit(std::move(long_decode));
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return decoding_tokens >= 3; });  // b decodes; a is still prefilling (150 tokens, 4 a step)
  }
  EXPECT_GT(engine->stats().kv_pages_used, 0);
  engine->abort(a);
  engine->abort(b);
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return aborted == 2; });
  }
  EXPECT_EQ(ids_of(run_requests(*engine, {keep})).at(0), solo.at(0));
  EXPECT_EQ(pages_used_when_settled(*engine), 0);
  EXPECT_EQ(engine->stats().aborted, 2);
  engine->shutdown(0);
  EXPECT_EQ(engine->rank_stats().at(0).pages_used, 0);
  EXPECT_EQ(engine->rank_stats().at(0).live_states, 0);
}

TEST(Engine, RequestErrorsNameTheLimit) {
  auto engine = start_engine(options());
  auto too_long = request(prompt(4, 1), 1048576).request;
  try {
    engine->submit(std::move(too_long));
    FAIL() << "accepted a request over the context limit";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("4 tokens + max_tokens 1048576"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("1048576"), std::string::npos) << e.what();
  }
  auto bad_id = request({5, 99999}, 1).request;
  EXPECT_THROW(engine->submit(std::move(bad_id)), InputError);
  auto empty = request({}, 1).request;
  EXPECT_THROW(engine->submit(std::move(empty)), InputError);
  auto o = options();
  o.kv_cache_memory = "1MiB";
  auto small = start_engine(o);
  auto big = request(prompt(100, 1), 5000).request;
  EXPECT_THROW(small->submit(std::move(big)), InputError);
}

long resident_kib() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

// Serving 1,000 short requests (ten at a time) leaves the process no bigger than serving the
// first 10 (within 5 %): nothing of a finished request stays behind.
TEST(Engine, MemoryDoesNotGrowWithRequestsServed) {
  auto engine = start_engine(options());
  auto batch = [&](int salt) {
    std::vector<TimedRequest> reqs;
    for (int i = 0; i < 10; ++i) reqs.push_back(request(prompt(4 + i % 5, salt + i), 2));
    ids_of(run_requests(*engine, std::move(reqs)));
  };
  batch(0);
  const long after_10 = resident_kib();
  for (int round = 1; round < 100; ++round) batch(10 * round);
  const long after_1000 = resident_kib();
  EXPECT_LE(after_1000, after_10 * 105 / 100) << after_10 << " KiB after 10, " << after_1000 << " KiB after 1000";
  EXPECT_EQ(pages_used_when_settled(*engine), 0);
}

// The engine sizes its compute pool before loading (--threads here; a plan's share of the host
// under mpirun): every kernel and stage region then runs that many threads, on whichever thread
// runs the model, so ranks sharing a host do not each start one thread per core.
TEST(Engine, StartSizesTheComputePool) {
  for (int threads : {1, 2}) {
    EngineOptions o = options();
    o.threads = threads;
    auto engine = start_engine(o);
    EXPECT_EQ(kernel_threads(), threads);
    EXPECT_EQ(omp_get_max_threads(), threads);
    EXPECT_EQ(ids_of(run_requests(*engine, {request(prompt(20, 3), 4)})).at(0).size(), 4u);
    engine->shutdown(0);
  }
  set_kernel_threads(0);
}

}  // namespace
}  // namespace flashline
