#include "stages/safetensors_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "model/model_config.h"

namespace flashline {

int64_t TensorView::elements() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : path_(path) {
  const std::string f = path.string();
  int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(fmt::format("{}: cannot open: {}", f, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw InputError(fmt::format("{}: cannot stat: {}", f, std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw InputError(fmt::format("{}: is {}, expected a safetensors file", f,
                                 S_ISDIR(st.st_mode) ? "a directory" : "not a regular file"));
  }
  size_ = std::size_t(st.st_size);
  if (size_ > 0) {  // mmap refuses an empty range; parse() rejects the empty file
    map_ = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
    if (map_ == MAP_FAILED) {
      map_ = nullptr;
      ::close(fd);
      throw InputError(fmt::format("{}: cannot map: {}", f, std::strerror(errno)));
    }
  }
  ::close(fd);
  try {
    parse({static_cast<const std::byte*>(map_), size_});
  } catch (...) {
    if (map_) ::munmap(map_, size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::SafetensorsFile(std::span<const std::byte> bytes, const std::filesystem::path& path) : path_(path) {
  parse(bytes);
}

void SafetensorsFile::parse(std::span<const std::byte> bytes) {
  const std::string f = path_.string();
  if (bytes.size() < 8)
    throw InputError(fmt::format("{}: file is {} bytes, too short for a safetensors header", f, bytes.size()));
  const std::byte* base = bytes.data();
  const std::size_t size = bytes.size();
  uint64_t hlen = 0;
  std::memcpy(&hlen, base, 8);  // little-endian host assumed (x86-64, aarch64)
  if (hlen > size - 8)
    throw InputError(fmt::format("{}: header length {} runs past the end of the file ({} bytes)", f, hlen, size));
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(reinterpret_cast<const char*>(base + 8),
                              reinterpret_cast<const char*>(base + 8 + hlen));
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range: a number beyond double
    throw InputError(fmt::format("{}: header is not valid JSON: {}", f, e.what()));
  }
  if (!h.is_object()) throw InputError(fmt::format("{}: header is not a JSON object", f));
  const std::size_t data_start = 8 + hlen;
  const std::size_t data_size = size - data_start;
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> ranges;
  for (auto& item : h.items()) {
    // Named copies, not a structured binding: lambdas below capture them (clang < 16).
    const std::string name = item.key();
    const auto& info = item.value();
    if (name == "__metadata__") {
      if (info.is_object())
        for (auto& [k, v] : info.items())
          if (v.is_string()) metadata_[k] = v.get<std::string>();
      continue;
    }
    auto bad = [&](const std::string& what) {
      return InputError(fmt::format("{}: tensor \"{}\": {}", f, name, what));
    };
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") ||
        !info.contains("data_offsets"))
      throw bad("header entry needs dtype, shape and data_offsets");
    if (!info["dtype"].is_string()) throw bad("dtype is not a string");
    auto dt = parse_dtype(info["dtype"].get<std::string>());
    if (!dt) throw bad(fmt::format("unknown dtype \"{}\"", info["dtype"].get<std::string>()));
    TensorView v;
    v.name = name;
    v.dtype = *dt;
    v.file = path_;
    if (!info["shape"].is_array()) throw bad("shape is not an array");
    int64_t n = 1;
    for (auto& d : info["shape"]) {
      if (!d.is_number_unsigned()) throw bad(fmt::format("shape entry {} is not a non-negative integer", d.dump()));
      // above INT64_MAX the entry would turn negative and slip past the overflow check below
      if (d.get<uint64_t>() > uint64_t(INT64_MAX / 16)) throw bad(fmt::format("shape entry {} is too large", d.dump()));
      v.shape.push_back(d.get<int64_t>());
      if (v.shape.back() > 0 && n > INT64_MAX / 16 / v.shape.back()) throw bad("shape is too large");
      n *= v.shape.back();
    }
    const auto& off = info["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw bad("data_offsets must be two non-negative integers");
    uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    if (b > e)
      throw bad(fmt::format("data_offsets [{}, {}] are reversed: the end is before the beginning", b, e));
    if (e > data_size)
      throw bad(fmt::format("data_offsets [{}, {}] out of range: the data section has {} bytes", b, e,
                            data_size));
    uint64_t want = uint64_t(n) * dtype_size(*dt);
    if (e - b != want)
      throw bad(fmt::format("data_offsets cover {} bytes, but shape {} of {} needs {}", e - b,
                            info["shape"].dump(), dtype_name(*dt), want));
    v.data = {base + data_start + b, std::size_t(e - b)};
    ranges.emplace_back(b, e, name);
    tensors_.emplace(name, std::move(v));
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i)
    if (std::get<0>(ranges[i]) < std::get<1>(ranges[i - 1]))
      throw InputError(fmt::format("{}: tensors \"{}\" and \"{}\" overlap in the data section", f,
                                   std::get<2>(ranges[i - 1]), std::get<2>(ranges[i])));
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, size_);
}

}  // namespace flashline
