#include "base/input_file.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "base/input_error.h"

namespace flashline {

void check_input_file(const std::filesystem::path& path, std::string_view what) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (path.empty()) throw InputError(fmt::format("empty path given for the {}", what));
  if (st.type() == fs::file_type::not_found)
    throw InputError(fmt::format("{}: cannot open {}: no such file", path.string(), what));
  if (st.type() == fs::file_type::directory)
    throw InputError(fmt::format("{}: cannot open {}: is a directory, not a file", path.string(), what));
}

std::string read_input_file(const std::filesystem::path& path, std::string_view what) {
  check_input_file(path, what);
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw InputError(fmt::format("{}: cannot open {}: {}", path.string(), what, std::strerror(errno)));
  std::string text;
  char buf[1 << 16];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) text.append(buf, n);
  if (std::ferror(f.get()))
    throw InputError(fmt::format("{}: cannot read {}: {}", path.string(), what, std::strerror(errno)));
  return text;
}

}  // namespace flashline
