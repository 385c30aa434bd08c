// OutputSet: a directory of outputs replaced as a whole, nothing left behind a failure; and
// write_files_atomically: several files all or none.
#include <gtest/gtest.h>

#include <stdexcept>

#include "base/input_error.h"
#include "launch/output_set.h"
#include "tests/checkpoint/checkpoint_test_util.h"

namespace flashline::test {
namespace {

const std::vector<std::string> kNames = {"prefill_logits.npy", "decode_ids.npy", "decode_logits.npy", "mtp_logits.npy"};

std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

void write_set(const fs::path& dir, const std::vector<std::string>& names, const std::string& text) {
  OutputSet s(dir, kNames);
  for (const auto& n : names) write_file(s.file(n), text);
  s.commit();
}

TEST(OutputSet, NewDirectoryAppearsComplete) {
  ScratchDir d("os-new");
  const fs::path out = d.path() / "a" / "b" / "out";
  write_set(out, {"prefill_logits.npy", "decode_ids.npy"}, "1");
  EXPECT_EQ(listing(out), (std::vector<std::string>{"decode_ids.npy", "prefill_logits.npy"}));
  EXPECT_EQ(listing(out.parent_path()), std::vector<std::string>{"out"});  // no temporary left
  fs::create_directory(d.path() / "plain");
  EXPECT_EQ(fs::status(out).permissions(), fs::status(d.path() / "plain").permissions())
      << "the directory gets the umask's permissions like any new directory, not mkdtemp's 0700";
  fs::remove(d.path() / "plain");
}

TEST(OutputSet, SecondRunReplacesTheEarlierSet) {
  // Before: a run without --decode/--mtp left the earlier run's decode and MTP files beside
  // its own prefill file.
  ScratchDir d("os-replace");
  const fs::path out = d.path() / "out";
  write_set(out, {"prefill_logits.npy", "decode_ids.npy", "decode_logits.npy", "mtp_logits.npy"}, "old");
  write_set(out, {"prefill_logits.npy"}, "new");
  EXPECT_EQ(listing(out), std::vector<std::string>{"prefill_logits.npy"});
  EXPECT_EQ(read_file(out / "prefill_logits.npy"), "new");
  EXPECT_EQ(listing(d.path()), std::vector<std::string>{"out"});
}

TEST(OutputSet, FailureLeavesTheEarlierSetAndNoTemporary) {
  ScratchDir d("os-fail");
  const fs::path out = d.path() / "out";
  write_set(out, {"prefill_logits.npy", "mtp_logits.npy"}, "old");
  try {
    OutputSet s(out, kNames);
    write_file(s.file("prefill_logits.npy"), "new");
    throw std::runtime_error("write failed half-way");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(listing(out), (std::vector<std::string>{"mtp_logits.npy", "prefill_logits.npy"}));
  EXPECT_EQ(read_file(out / "prefill_logits.npy"), "old");
  EXPECT_EQ(listing(d.path()), std::vector<std::string>{"out"});
}

TEST(OutputSet, FailureOnANewDirectoryLeavesNothing) {
  ScratchDir d("os-fail-new");
  try {
    OutputSet s(d.path() / "out", kNames);
    write_file(s.file("prefill_logits.npy"), "x");
    throw std::runtime_error("stop");
  } catch (const std::runtime_error&) {
  }
  EXPECT_TRUE(listing(d.path()).empty());
}

TEST(OutputSet, AFileIsAUserErrorNamingIt) {
  ScratchDir d("os-file");
  write_file(d.path() / "afile", "keep me");
  const std::string e = input_error_message([&] { OutputSet s(d.path() / "afile", kNames); });
  EXPECT_NE(e.find("afile: is a file, expected an output directory"), std::string::npos) << e;
  EXPECT_EQ(read_file(d.path() / "afile"), "keep me");
  EXPECT_EQ(listing(d.path()), std::vector<std::string>{"afile"});
}

TEST(OutputSet, ADirectoryOfOtherFilesIsNeverReplaced) {
  ScratchDir d("os-foreign");
  write_file(d.path() / "notes.txt", "precious");
  write_file(d.path() / "prefill_logits.npy", "old");
  const std::string e = input_error_message([&] { OutputSet s(d.path(), kNames); });
  EXPECT_NE(e.find("holds other files (notes.txt)"), std::string::npos) << e;
  EXPECT_EQ(read_file(d.path() / "notes.txt"), "precious");
}

TEST(OutputSet, PatternsAndTrailingSlash) {
  ScratchDir d("os-pattern");
  {
    OutputSet s(d.path() / "m", {"config.json", "model-*.safetensors"});
    write_file(s.file("model-00001-of-00002.safetensors"), "1");
    write_file(s.file("config.json"), "{}");
    EXPECT_THROW(s.file("other.bin"), std::logic_error);
    s.commit();
  }
  OutputSet again((d.path() / "m").string() + "/", {"config.json", "model-*.safetensors"});
  write_file(again.file("config.json"), "{}");
  again.commit();
  EXPECT_EQ(listing(d.path() / "m"), std::vector<std::string>{"config.json"});
}

TEST(WriteFilesAtomically, AllOrNone) {
  ScratchDir d("wfa");
  write_files_atomically({{d.path() / "plan.yaml", "a"}, {d.path() / "plan.svg", "b"}});
  EXPECT_EQ(read_file(d.path() / "plan.yaml"), "a");
  EXPECT_EQ(read_file(d.path() / "plan.svg"), "b");
  // The second destination cannot be written: the first is not replaced either.
  fs::create_directories(d.path() / "adir");
  const std::string e =
      input_error_message([&] { write_files_atomically({{d.path() / "plan.yaml", "new"}, {d.path() / "adir", "x"}}); });
  EXPECT_NE(e.find("adir: is a directory, expected an output file"), std::string::npos) << e;
  EXPECT_EQ(read_file(d.path() / "plan.yaml"), "a");
  const std::string e2 = input_error_message(
      [&] { write_files_atomically({{d.path() / "plan.yaml", "new"}, {d.path() / "no" / "x.svg", "x"}}); });
  EXPECT_NE(e2.find("does not exist"), std::string::npos) << e2;
  EXPECT_EQ(read_file(d.path() / "plan.yaml"), "a");
  EXPECT_EQ(listing(d.path()), (std::vector<std::string>{"adir", "plan.svg", "plan.yaml"}));
}

TEST(WriteFilesAtomically, DevNullIsWrittenNotReplaced) {
  write_files_atomically({{"/dev/null", "plan"}});
  EXPECT_EQ(fs::status("/dev/null").type(), fs::file_type::character);
}

}  // namespace
}  // namespace flashline::test
