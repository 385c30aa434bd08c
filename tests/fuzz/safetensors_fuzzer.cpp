// libFuzzer target: a safetensors file (8-byte header length, JSON header, data) and a
// model.safetensors.index.json, the two untrusted structures of a checkpoint. The first input
// byte picks which. Both are parsed from memory by the code that parses the mapped file and the
// read index (no file is written: a file per input made this target ~20x slower). Properties:
// only InputError on bad input; an accepted file's tensors lie inside the data section, do not
// overlap and have the size their shape and dtype need; an accepted index names files in the
// model directory only.
#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stages/checkpoint.h"
#include "stages/safetensors_file.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flashline;
  if (size == 0) return 0;
  const bool index = data[0] & 1;
  ++data, --size;
  if (!index) {
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    fuzz::accepts([&] {
      SafetensorsFile f(bytes, "t.safetensors");
      for (const auto& [name, t] : f.tensors()) {
        if (t.data.size() != std::size_t(t.elements()) * dtype_size(t.dtype)) fuzz::fail("size != shape x dtype");
        if (!t.data.empty() && (t.data.data() < bytes.data() || t.data.data() + t.data.size() > bytes.data() + size))
          fuzz::fail("a tensor outside the file");
      }
      std::vector<std::pair<const std::byte*, const std::byte*>> spans;
      for (const auto& [name, t] : f.tensors())
        if (!t.data.empty()) spans.emplace_back(t.data.data(), t.data.data() + t.data.size());
      std::sort(spans.begin(), spans.end());
      for (std::size_t i = 1; i < spans.size(); ++i)
        if (spans[i].first < spans[i - 1].second) fuzz::fail("accepted tensors overlap");
    });
  } else {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    fuzz::accepts([&] {
      for (const auto& [name, file] : parse_checkpoint_index(text, "model.safetensors.index.json"))
        if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos)
          fuzz::fail("an index naming a file outside the model directory: " + file);
    });
  }
  return 0;
}
