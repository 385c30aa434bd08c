#pragma once
// Helpers of the checkpoint tests: scratch directories, a writable copy of tiny-a, header edits
// that forge defective shards, and running the flashline binary.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/model_config.h"
#include "stages/safetensors_writer.h"

namespace flashline::test {

namespace fs = std::filesystem;

inline const fs::path kTinyA = fs::path(FLASHLINE_TEST_DATA) / "models" / "tiny-a";
inline const char* const kShard1 = "model-00001-of-00002.safetensors";
inline const char* const kShard2 = "model-00002-of-00002.safetensors";

// A fresh directory under the system temp dir, removed at scope exit.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag) {
    path_ = fs::temp_directory_path() / ("flashline-ckpt-" + tag + "-" + std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// tiny-a copied into `dir`, writable (the checked-in files are read-only).
inline fs::path copy_tiny_a(const fs::path& dir) {
  const fs::path out = dir / "tiny-a";
  fs::create_directories(out);
  for (const auto& e : fs::directory_iterator(kTinyA)) {
    fs::copy_file(e.path(), out / e.path().filename(), fs::copy_options::overwrite_existing);
    fs::permissions(out / e.path().filename(), fs::perms::owner_write, fs::perm_options::add);
  }
  return out;
}

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

struct ShardParts {
  nlohmann::json header;
  std::string data;  // the data section
};

inline ShardParts read_shard(const fs::path& p) {
  const std::string b = read_file(p);
  uint64_t n = 0;
  std::memcpy(&n, b.data(), 8);
  return {nlohmann::json::parse(b.substr(8, n)), b.substr(8 + n)};
}

// Rewrites a shard with an edited header and the same data section.
inline void edit_header(const fs::path& shard, const std::function<void(nlohmann::json&)>& edit) {
  ShardParts s = read_shard(shard);
  edit(s.header);
  SafetensorsWriter::write_raw(shard, s.header.dump(),
                               {reinterpret_cast<const std::byte*>(s.data.data()), s.data.size()});
}

// Overwrites bytes of one tensor's data, at `offset` bytes into the tensor.
inline void poke_tensor(const fs::path& shard, const std::string& tensor, std::size_t offset, const std::string& bytes) {
  const std::string b = read_file(shard);
  uint64_t n = 0;
  std::memcpy(&n, b.data(), 8);
  const auto header = nlohmann::json::parse(b.substr(8, n));
  const uint64_t begin = header.at(tensor).at("data_offsets")[0].get<uint64_t>();
  std::fstream f(shard, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(std::streamoff(8 + n + begin + offset));
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

// The InputError message `f` throws, or "(no InputError)".
inline std::string input_error_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs the flashline binary with `args` (each quoted for the shell).
inline CommandResult run_flashline(const std::vector<std::string>& args) {
  std::string cmd = "'" + std::string(FLASHLINE_BIN) + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " 2>&1";
  CommandResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace flashline::test
