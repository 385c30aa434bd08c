#pragma once
// One memory-mapped .safetensors file: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}}, then the raw data. Tensors are views into the mapping;
// nothing is copied. Every structural defect is rejected at open with the file and tensor named.
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "model/dtype.h"

namespace flashline {

struct TensorView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::span<const std::byte> data;
  std::filesystem::path file;

  int64_t elements() const;
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path);
  // The bytes of a file already in memory, checked as a mapped file is; the views point into
  // `bytes`, which must outlive this object. `path` only names the file in errors.
  SafetensorsFile(std::span<const std::byte> bytes, const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  void parse(std::span<const std::byte> bytes);

  std::filesystem::path path_;
  void* map_ = nullptr;  // null when the bytes are the caller's
  std::size_t size_ = 0;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace flashline
