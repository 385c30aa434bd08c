#pragma once
// NumPy .npy (format 1.0, little-endian, C order) files of float32 or int32 arrays: what the
// `logits` command writes and what the golden tests read.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace flashline {

struct NpyArray {
  std::string descr;  // "<f4" or "<i4"
  std::vector<int64_t> shape;
  std::vector<float> f32;
  std::vector<int32_t> i32;

  int64_t elements() const;
};

NpyArray read_npy(const std::filesystem::path& path);
void write_npy(const std::filesystem::path& path, const std::vector<float>& data, const std::vector<int64_t>& shape);
void write_npy(const std::filesystem::path& path, const std::vector<int32_t>& data, const std::vector<int64_t>& shape);

}  // namespace flashline
