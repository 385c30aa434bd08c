// The flashline binary on bad input: every user error is one "flashline: error:" line naming the
// input and exits 2 (argument errors included: before, CLI11's 104/106/107/109 without the
// prefix); a directory where a file is expected is said to be one (before: "internal error:
// basic_filebuf..."); failures leave nothing written.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/checkpoint/checkpoint_test_util.h"

namespace flashline::test {
namespace {

const std::string kTinyAStr = kTinyA.string();
const std::string kPlans = std::string(FLASHLINE_CONFIGS) + "/plans";

// The shell runs `script` with $FL set to the flashline binary; stdout and stderr together.
CommandResult run_shell(const std::string& script) {
  const std::string cmd = fmt::format("FL='{}'; export FL; {}", FLASHLINE_BIN, script);
  CommandResult r;
  FILE* p = ::popen(fmt::format("bash -c '{}' 2>&1", [&] {
                      std::string q;
                      for (char c : cmd) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
                      return q;
                    }()).c_str(),
                    "r");
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// A user error: exit 2, one line that starts with the prefix (progress lines may come before it),
// and every piece in the output.
void expect_user_error(const CommandResult& r, const std::vector<std::string>& pieces) {
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(r.output.rfind("flashline: error: ", 0) == 0 || r.output.find("\nflashline: error: ") != std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("internal error"), std::string::npos) << r.output;
  for (const auto& p : pieces) EXPECT_NE(r.output.find(p), std::string::npos) << "missing \"" << p << "\" in: " << r.output;
}

TEST(CommandLine, UnknownSubcommandSuggestsTheNearest) {
  expect_user_error(run_flashline({"genrate", "--model", "m"}),
                    {"unknown subcommand 'genrate'", "did you mean 'generate'?"});
  expect_user_error(run_flashline({"frobnicate"}), {"unknown subcommand 'frobnicate'", "inspect, make-tiny, plan"});
}

TEST(CommandLine, Version) {
  const auto r = run_flashline({"--version"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("flashline ", 0), 0u) << r.output;
}

TEST(CommandLine, ArgumentErrorsAreUserErrors) {
  expect_user_error(run_flashline({"plan", "--cluster", "localhost:2", "--preset", "deepseek-v4-flash", "--bogus"}),
                    {"plan: ", "--bogus", "flashline plan --help"});
  expect_user_error(run_flashline({"tokenize"}), {"tokenize: ", "--tokenizer"});
  expect_user_error(run_flashline({"generate", "--model", kTinyAStr, "--prompt-ids", "1", "--max-new-tokens", "x"}),
                    {"generate: ", "--max-new-tokens"});
  expect_user_error(run_flashline({}), {"subcommand"});
}

TEST(CommandLine, DirectoryWhereAFileIsExpected) {
  ScratchDir d("cli-dir");
  const std::string dir = d.path().string();
  expect_user_error(run_flashline({"inspect", "--config", dir}), {dir, "is a directory"});
  expect_user_error(run_flashline({"chat-prompt", "--messages", dir}), {dir, "is a directory", "--messages file"});
  expect_user_error(run_flashline({"make-tiny", "--out", dir + "/m", "--config", dir}), {dir, "is a directory"});
  expect_user_error(run_flashline({"generate", "--model", kTinyAStr, "--prompt-ids", "@" + dir}),
                    {dir, "is a directory", "--prompt-ids"});
  expect_user_error(run_flashline({"tokenize", "--tokenizer", dir}), {dir, "is a directory"});
  expect_user_error(run_flashline({"plan", "--cluster", dir, "--model", kTinyAStr}), {dir, "is a directory"});
  EXPECT_TRUE(fs::is_empty(d.path()));
}

TEST(CommandLine, MisleadingMessagesNameTheActualProblem) {
  ScratchDir out("cli-empty-ids");
  expect_user_error(run_flashline({"logits", "--model", kTinyAStr, "--ids", "", "--out", (out.path() / "o").string()}),
                    {"--ids: empty (expected token ids"});
  expect_user_error(run_flashline({"plan", "--cluster", "localhost:4", "--model", kTinyAStr, "--lanes", "-1"}),
                    {"--lanes"});
  expect_user_error(run_flashline({"plan", "--cluster", "localhost:4", "--model", kTinyAStr + "/config.json"}),
                    {"is a file; --model takes the model directory (" + kTinyAStr + ")"});
  expect_user_error(run_flashline({"plan", "--cluster", "localhost:4", "--model", "/nonexistent/model"}),
                    {"--model /nonexistent/model: no such directory"});
  expect_user_error(run_flashline({"inspect", "--model", "/nonexistent/model"}),
                    {"/nonexistent/model: model directory does not exist"});
  ScratchDir d("cli-effort");
  write_file(d.path() / "m.json", R"([{"role": "user", "content": "hi"}])");
  const auto r = run_flashline({"chat-prompt", "--messages", (d.path() / "m.json").string(), "--reasoning-effort", "low"});
  expect_user_error(r, {"--reasoning-effort low: expected high or max"});
  EXPECT_EQ(r.output.find("m.json"), std::string::npos) << "blamed on the messages file: " << r.output;
}

TEST(CommandLine, PlanLimits) {
  ScratchDir d("cli-plan");
  const std::string out = (d.path() / "p.yaml").string();
  expect_user_error(run_flashline({"plan", "--cluster", "localhost:4", "--model", kTinyAStr, "--context", "5000000",
                                   "-o", out}),
                    {"--context 5000000", "max_position_embeddings (1048576)"});
  expect_user_error(run_flashline({"plan", "--cluster", "localhost:4", "--model", kTinyAStr, "--stages", "0", "-o", out}),
                    {"--stages"});
  expect_user_error(run_flashline({"plan", "--cluster", "localhost:4", "--model", kTinyAStr, "--batch", "0", "-o", out}),
                    {"--batch"});
  EXPECT_TRUE(fs::is_empty(d.path()));
  // The largest context the model has is fine.
  const auto ok = run_flashline({"plan", "--cluster", "localhost:4", "--model", kTinyAStr, "--context", "1048576",
                                 "--out", out});
  EXPECT_EQ(ok.output.find("--context 1048576: more than"), std::string::npos) << ok.output;
}

TEST(CommandLine, SpeculativeTokensLimits) {
  expect_user_error(run_flashline({"generate", "--model", kTinyAStr, "--prompt-ids", "1", "--speculative-tokens", "4"}),
                    {"--speculative-tokens: expected 0 .. 3, got 4"});
  expect_user_error(run_flashline({"generate", "--model", kTinyAStr, "--prompt-ids", "1", "--speculative-tokens", "1",
                                   "--speculative-min-acceptance", "1.5"}),
                    {"--speculative-min-acceptance: expected 0 .. 1"});
  // A model without an MTP block has nothing to draft with: tiny-a with num_nextn_predict_layers 0.
  ScratchDir d("cli-no-mtp");
  for (const auto& e : fs::directory_iterator(kTinyAStr)) fs::copy(e.path(), d.path() / e.path().filename());
  auto config = nlohmann::json::parse(std::ifstream(d.path() / "config.json"));
  config["num_nextn_predict_layers"] = 0;
  config["compress_ratios"].erase(config["compress_ratios"].size() - 1);
  std::ofstream(d.path() / "config.json") << config.dump();
  expect_user_error(run_flashline({"generate", "--model", d.path().string(), "--prompt-ids", "1", "--speculative-tokens",
                                   "1", "--skip-weight-check"}),
                    {"--speculative-tokens 1", "has no MTP block"});
}

TEST(CommandLine, PlanTableLabels) {
  ScratchDir d("cli-plan-table");
  const auto r = run_flashline({"plan", "--cluster", "localhost:1", "--model", kTinyAStr, "--context", "256", "-o",
                                (d.path() / "p.yaml").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("plan: 1 stage x 1 lane on"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("experts/rank"), std::string::npos) << r.output;
}

TEST(CommandLine, PlanWritesNothingWhenTheSvgFails) {
  ScratchDir d("cli-plan-svg");
  const fs::path plan = d.path() / "plan.yaml";
  expect_user_error(run_flashline({"plan", "--cluster", "localhost:4", "--model", kTinyAStr, "--context", "256", "-o",
                                   plan.string(), "--svg", (d.path() / "missing" / "plan.svg").string()}),
                    {"plan.svg", "does not exist"});
  EXPECT_TRUE(fs::is_empty(d.path())) << "plan.yaml written although the SVG failed";
}

TEST(CommandLine, MakeTinySeedMustBeNonNegative) {
  ScratchDir d("cli-seed");
  expect_user_error(run_flashline({"make-tiny", "--out", (d.path() / "m").string(), "--seed", "-1"}), {"--seed"});
  EXPECT_TRUE(fs::is_empty(d.path()));
}

TEST(CommandLine, MakeTinyFailingOnTheSecondShardLeavesNothing) {
  // Files above ~6 MB cannot be written: shard 1 of tiny-a (5.9 MB) is, shard 2 (6.1 MB) fails.
  ScratchDir d("cli-make-tiny-fail");
  const std::string out = (d.path() / "m").string();
  const auto r = run_shell(fmt::format("trap \"\" XFSZ; ulimit -f 5860; \"$FL\" make-tiny --out {} --preset tiny-a", out));
  expect_user_error(r, {out + "/model-00002-of-00002.safetensors: write failed"});
  EXPECT_NE(r.output.find("wrote model-00001-of-00002.safetensors"), std::string::npos)
      << "the limit did not let shard 1 through: " << r.output;
  EXPECT_TRUE(fs::is_empty(d.path())) << "a partial model was left in " << d.path();
  // And an earlier complete model in the same place survives the failed run unchanged.
  ASSERT_EQ(run_flashline({"make-tiny", "--out", out, "--preset", "tiny-a", "--quiet"}).exit_code, 0);
  const std::string before = read_file(fs::path(out) / "config.json");
  expect_user_error(
      run_shell(fmt::format("trap \"\" XFSZ; ulimit -f 5860; \"$FL\" make-tiny --out {} --preset tiny-a --seed 5", out)),
      {"write failed"});
  EXPECT_EQ(read_file(fs::path(out) / "config.json"), before);
  EXPECT_EQ(run_flashline({"inspect", "--model", out}).exit_code, 0);
}

TEST(CommandLine, DetokenizeEmptyInputIsNoIds) {
  const std::string tok = std::string(FLASHLINE_TEST_DATA) + "/tokenizer/tokenizer.json";
  const auto t = run_shell(fmt::format("printf \"\" | \"$FL\" tokenize --tokenizer {}", tok));
  EXPECT_EQ(t.exit_code, 0) << t.output;
  EXPECT_EQ(t.output, "[]\n");
  const auto r = run_shell(fmt::format("printf \"\" | \"$FL\" detokenize --tokenizer {}", tok));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "");
}

TEST(CommandLine, ChatParseRefusesACompletionCutInsideItsToolCalls) {
  // Before: both cuts were reported as valid messages (no tool calls / one call), exit 0.
  const std::string open = "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n";
  const std::string call = open + "<｜DSML｜parameter name=\"a\" string=\"true\">1</｜DSML｜parameter>\n</｜DSML｜invoke>\n";
  for (const std::string& cut : {std::string("\n\n<｜DSML｜tool_calls"), call}) {
    ScratchDir d("cli-chat-parse");
    write_file(d.path() / "c.txt", cut);
    expect_user_error(run_shell(fmt::format("\"$FL\" chat-parse < {}", (d.path() / "c.txt").string())),
                      {"unterminated tool_calls block"});
  }
  ScratchDir d("cli-chat-parse-ok");
  write_file(d.path() / "c.txt", call + "</｜DSML｜tool_calls>");
  const auto r = run_shell(fmt::format("\"$FL\" chat-parse < {}", (d.path() / "c.txt").string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"arguments\":\"{\\\"a\\\": \\\"1\\\"}\""), std::string::npos) << r.output;
}

TEST(Launch, DryRunWritesTheFilesItsCommandNames) {
  ScratchDir d("cli-launch");
  fs::copy_file(kPlans + "/localhost.plan.yaml", d.path() / "p.plan.yaml");
  const auto r = run_flashline({"launch", "--plan", (d.path() / "p.plan.yaml").string(), "--model", kTinyAStr,
                                "--dry-run", "--", "--prompt-ids", "1,2,3"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path hostfile = d.path() / "p.plan.hostfile";
  ASSERT_TRUE(fs::exists(hostfile)) << r.output;
  EXPECT_EQ(read_file(hostfile), "localhost slots=4\n");
  EXPECT_NE(r.output.find("--hostfile " + hostfile.string()), std::string::npos) << r.output;
}

TEST(Launch, CheckedBeforeMpirunStarts) {
  ScratchDir d("cli-launch-check");
  const std::string plan = kPlans + "/localhost.plan.yaml";
  // --mpirun names a program that records being started: none of these may get that far.
  const std::string marker = (d.path() / "started").string();
  write_file(d.path() / "mpirun", "#!/bin/sh\ntouch " + marker + "\n");
  fs::permissions(d.path() / "mpirun", fs::perms::owner_all);
  const std::string mpirun = (d.path() / "mpirun").string();
  expect_user_error(run_flashline({"launch", "--plan", plan, "--model", kTinyAStr, "--mpirun", mpirun, "--run",
                                   "inspect"}),
                    {"--run inspect: expected generate, logits, serve or \"bench offline\""});
  fs::copy_file(kPlans + "/1node-8xh100.plan.yaml", d.path() / "big.plan.yaml");
  expect_user_error(run_flashline({"launch", "--plan", (d.path() / "big.plan.yaml").string(), "--model", kTinyAStr,
                                   "--mpirun", mpirun}),
                    {"big.plan.yaml: model.layers = 43 (made for deepseek-v4-flash), but the model has 5 layers"});
  expect_user_error(run_flashline({"launch", "--plan", plan, "--model", "/nonexistent", "--mpirun", mpirun}),
                    {"--model /nonexistent: no such directory"});
  expect_user_error(run_flashline({"launch", "--plan", plan, "--model", kTinyAStr, "--mpirun", mpirun, "--", "--plan",
                                   "x.yaml"}),
                    {"launch: --plan after --"});
  expect_user_error(run_flashline({"launch", "--plan", plan, "--model", kTinyAStr, "--mpirun", mpirun, "--mca", "btl"}),
                    {"--mca btl: expected NAME=VALUE"});
  EXPECT_FALSE(fs::exists(marker));
}

TEST(Launch, McaReplacesTheTransportChoice) {
  ScratchDir d("cli-launch-mca");
  fs::copy_file(kPlans + "/localhost.plan.yaml", d.path() / "p.plan.yaml");
  const auto r = run_flashline({"launch", "--plan", (d.path() / "p.plan.yaml").string(), "--model", kTinyAStr,
                                "--mca", "btl=tcp,self", "--mca", "btl_tcp_if_include=lo", "--dry-run", "--",
                                "--prompt-ids", "1,2,3"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("--oversubscribe --mca btl tcp,self --mca btl_tcp_if_include lo -x"), std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("self,vader"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--prompt-ids 1,2,3\n"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace flashline::test
