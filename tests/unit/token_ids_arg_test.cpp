// Token id lists of the command line ("1,2,3" or "@ids.json"): what is accepted, and that every
// rejection names the option or file and the offending element.
#include "launch/token_ids_arg.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "base/input_error.h"

namespace flashline {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(accepted)";
}

class TokenIdsFile : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::path(::testing::TempDir()) / "flashline-token-ids-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  std::filesystem::path dir_;
};

TEST(TokenIds, CommaListIsParsed) {
  EXPECT_EQ(parse_token_ids("1,2,3", "--ids"), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(parse_token_ids("0", "--ids"), (std::vector<int32_t>{0}));
  EXPECT_EQ(parse_token_ids("2147483647", "--ids"), (std::vector<int32_t>{2147483647}));
}

TEST(TokenIds, CommaListErrorsNameTheOptionAndTheElement) {
  EXPECT_NE(error_of([] { parse_token_ids("1,x,3", "--ids"); }).find("--ids: \"x\" is not a token id"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_token_ids("1,-2", "--ids"); }).find("--ids: \"-2\" is not a token id"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_token_ids("1,,2", "--ids"); }).find("--ids: \"\" is not a token id"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_token_ids("1,2,", "--prompt-ids"); }).find("--prompt-ids: \"\" is not a token id"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_token_ids("", "--ids"); }).find("--ids: empty (expected token ids"), std::string::npos);
  EXPECT_NE(error_of([] { parse_token_ids("1 2", "--ids"); }).find("\"1 2\" is not a token id"), std::string::npos);
  EXPECT_NE(error_of([] { parse_token_ids("2147483648", "--ids"); }).find("\"2147483648\" is not a token id"),
            std::string::npos);
}

TEST_F(TokenIdsFile, JsonFileIsParsed) {
  const auto f = write("ids.json", "[5, 17, 300]");
  EXPECT_EQ(parse_token_ids("@" + f, "--ids"), (std::vector<int32_t>{5, 17, 300}));
}

TEST_F(TokenIdsFile, JsonFileErrorsNameTheFileAndTheElement) {
  const auto bad = write("bad.json", "[1, 2.5, 3]");
  EXPECT_NE(error_of([&] { parse_token_ids("@" + bad, "--ids"); }).find(bad + ": element [1] = 2.5 is not a token id"),
            std::string::npos);
  const auto neg = write("neg.json", "[1, -4]");
  EXPECT_NE(error_of([&] { parse_token_ids("@" + neg, "--ids"); }).find("[1] = -4 is not a token id"),
            std::string::npos);
  const auto str = write("str.json", "[\"7\"]");
  EXPECT_NE(error_of([&] { parse_token_ids("@" + str, "--ids"); }).find("[0] = \"7\" is not a token id"),
            std::string::npos);
  const auto obj = write("obj.json", "{\"ids\": [1]}");
  EXPECT_NE(error_of([&] { parse_token_ids("@" + obj, "--ids"); }).find("expected a JSON array of token ids"),
            std::string::npos);
  const auto empty = write("empty.json", "[]");
  EXPECT_NE(error_of([&] { parse_token_ids("@" + empty, "--ids"); }).find("--ids: no token ids given"),
            std::string::npos);
  const auto broken = write("broken.json", "[1, 2");
  EXPECT_NE(error_of([&] { parse_token_ids("@" + broken, "--ids"); }).find(broken + ": invalid JSON"),
            std::string::npos);
  const std::string missing = (dir_ / "missing.json").string();
  EXPECT_NE(error_of([&] { parse_token_ids("@" + missing, "--ids"); })
                .find(missing + ": cannot open the JSON file of --ids @" + missing + ": no such file"),
            std::string::npos);
}

TEST(TokenIds, NumericsNames) {
  EXPECT_EQ(parse_numerics("exact"), Numerics::Exact);
  EXPECT_EQ(parse_numerics("fast"), Numerics::Fast);
  EXPECT_NE(error_of([] { parse_numerics("Fast"); }).find("--numerics: expected exact or fast, found \"Fast\""),
            std::string::npos);
}

}  // namespace
}  // namespace flashline
