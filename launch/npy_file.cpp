#include "launch/npy_file.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>
#include <fstream>
#include <regex>

#include "base/input_file.h"
#include "model/model_config.h"

namespace flashline {
namespace {

void write_raw(const std::filesystem::path& path, const char* descr, const void* data, std::size_t bytes,
               const std::vector<int64_t>& shape) {
  std::string dims = shape.size() == 1 ? fmt::format("{},", shape[0]) : fmt::format("{}", fmt::join(shape, ", "));
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", descr, dims);
  // magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64
  const std::size_t total = (10 + header.size() + 1 + 63) / 64 * 64;
  header.append(total - 10 - header.size() - 1, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  if (!out) throw InputError(fmt::format("{}: cannot write", path.string()));
  const uint16_t len = uint16_t(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  out.write(reinterpret_cast<const char*>(&len), 2);
  out.write(header.data(), std::streamsize(header.size()));
  out.write(static_cast<const char*>(data), std::streamsize(bytes));
  if (!out) throw InputError(fmt::format("{}: write failed", path.string()));
}

}  // namespace

int64_t NpyArray::elements() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

NpyArray read_npy(const std::filesystem::path& path) {
  check_input_file(path, ".npy file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open", path.string()));
  char magic[8];
  uint16_t len = 0;
  in.read(magic, 8);
  in.read(reinterpret_cast<char*>(&len), 2);
  if (!in || std::memcmp(magic, "\x93NUMPY\x01", 7) != 0)
    throw InputError(fmt::format("{}: not a .npy version 1 file", path.string()));
  std::string header(len, '\0');
  in.read(header.data(), len);
  std::smatch m;
  NpyArray a;
  if (!std::regex_search(header, m, std::regex(R"('descr':\s*'([^']+)')")))
    throw InputError(fmt::format("{}: header has no descr", path.string()));
  a.descr = m[1];
  if (header.find("'fortran_order': False") == std::string::npos)
    throw InputError(fmt::format("{}: only C-order arrays are supported", path.string()));
  if (!std::regex_search(header, m, std::regex(R"('shape':\s*\(([^)]*)\))")))
    throw InputError(fmt::format("{}: header has no shape", path.string()));
  std::string dims = m[1];
  const std::regex number(R"(\d+)");
  for (std::sregex_iterator it(dims.begin(), dims.end(), number), end; it != end; ++it)
    a.shape.push_back(std::stoll(it->str()));
  const auto n = std::size_t(a.elements());
  if (a.descr == "<f4") {
    a.f32.resize(n);
    in.read(reinterpret_cast<char*>(a.f32.data()), std::streamsize(n * 4));
  } else if (a.descr == "<i4") {
    a.i32.resize(n);
    in.read(reinterpret_cast<char*>(a.i32.data()), std::streamsize(n * 4));
  } else {
    throw InputError(fmt::format("{}: dtype {} not supported (expected <f4 or <i4)", path.string(), a.descr));
  }
  if (!in) throw InputError(fmt::format("{}: data shorter than its shape", path.string()));
  return a;
}

void write_npy(const std::filesystem::path& path, const std::vector<float>& data, const std::vector<int64_t>& shape) {
  write_raw(path, "<f4", data.data(), data.size() * 4, shape);
}

void write_npy(const std::filesystem::path& path, const std::vector<int32_t>& data, const std::vector<int64_t>& shape) {
  write_raw(path, "<i4", data.data(), data.size() * 4, shape);
}

}  // namespace flashline
