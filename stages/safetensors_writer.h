#pragma once
// Writes .safetensors files in the layout SafetensorsFile reads: an 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {"format": "pt"}}
// padded with spaces to a multiple of 8 bytes, then the tensors' bytes back to back (other
// safetensors readers reject holes in the data section, so tensors are not padded).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "base/input_error.h"
#include "model/dtype.h"

namespace flashline {

class SafetensorsWriter {
 public:
  // Takes the tensor's bytes (little-endian elements). Throws std::invalid_argument when the
  // byte count does not match shape x dtype size or the name is already present.
  void add(std::string name, DType dtype, std::vector<int64_t> shape, std::vector<std::byte> data);

  std::size_t tensor_count() const { return tensors_.size(); }
  uint64_t data_bytes() const;
  std::vector<std::string> names() const;

  // Tensors are written sorted by name. Throws InputError naming the file when it cannot be written.
  void write(const std::filesystem::path& path) const;

  // A file with exactly this header text (padded to 8 bytes) and data section, nothing checked:
  // how tests forge malformed files.
  static void write_raw(const std::filesystem::path& path, const std::string& header,
                        std::span<const std::byte> data);

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<std::byte> data;
  };
  std::vector<Entry> tensors_;
};

}  // namespace flashline
