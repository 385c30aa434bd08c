// libFuzzer target: a safetensors file (8-byte header length, JSON header, data) and a
// model.safetensors.index.json, the two untrusted structures of a checkpoint. The first input
// byte picks which. Properties: only InputError on bad input; an accepted file's tensors lie
// inside the data section, do not overlap and have the size their shape and dtype need.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <utility>
#include <vector>
#include <filesystem>
#include <fstream>
#include <string>

#include "stages/checkpoint.h"
#include "stages/safetensors_file.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace fs = std::filesystem;
fs::path scratch;

void write(const fs::path& p, const std::uint8_t* data, std::size_t size) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data), std::streamsize(size));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // tmpfs when there is one: every input is written to a file (the loader maps files).
  const fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  scratch = base / ("flashline-safetensors-fuzz-" + std::to_string(::getpid()));
  fs::create_directories(scratch / "model");
  const char* config = std::getenv("FLASHLINE_FUZZ_CONFIG");
  if (!config) {
    std::fprintf(stderr, "set FLASHLINE_FUZZ_CONFIG to a model's config.json (tests/data/models/tiny-a)\n");
    std::exit(2);
  }
  fs::copy_file(config, scratch / "model" / "config.json", fs::copy_options::overwrite_existing);
  std::atexit([] {
    std::error_code ec;
    fs::remove_all(scratch, ec);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flashline;
  if (size == 0) return 0;
  const bool index = data[0] & 1;
  ++data, --size;
  if (!index) {
    const fs::path file = scratch / "t.safetensors";
    write(file, data, size);
    fuzz::accepts([&] {
      SafetensorsFile f(file);
      const std::size_t file_size = size;
      for (const auto& [name, t] : f.tensors()) {
        const auto* begin = reinterpret_cast<const std::uint8_t*>(t.data.data());
        if (t.data.size() != std::size_t(t.elements()) * dtype_size(t.dtype)) fuzz::fail("size != shape x dtype");
        if (t.data.size() > 0) {
          // The mapping is of the file just written: the view must lie inside it.
          (void)begin[0];
          (void)begin[t.data.size() - 1];
        }
        if (t.data.size() > file_size) fuzz::fail("tensor larger than the file");
      }
      std::vector<std::pair<const std::byte*, const std::byte*>> spans;
      for (const auto& [name, t] : f.tensors())
        if (!t.data.empty()) spans.emplace_back(t.data.data(), t.data.data() + t.data.size());
      std::sort(spans.begin(), spans.end());
      for (std::size_t i = 1; i < spans.size(); ++i)
        if (spans[i].first < spans[i - 1].second) fuzz::fail("accepted tensors overlap");
    });
  } else {
    // The index alone: a selection of nothing opens no shard, so only the index is read.
    write(scratch / "model" / "model.safetensors.index.json", data, size);
    CheckpointSelection none;
    none.layer_end = 0;
    none.embedding = none.head = none.mtp = false;
    fuzz::accepts([&] { Checkpoint::open(scratch / "model", none); });
  }
  return 0;
}
