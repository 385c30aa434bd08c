#include "launch/output_set.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "base/input_error.h"

namespace flashline {
namespace {

namespace fs = std::filesystem;

// `dir` as an absolute path without a trailing separator or dot segments, so that its parent
// and last component are well defined ("out/", "./out", "a/../out").
fs::path normalized(const fs::path& dir) {
  if (dir.empty()) throw InputError("output directory: empty path");
  fs::path p = fs::absolute(dir).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();
  if (p == p.root_path()) throw InputError(fmt::format("{}: cannot be an output directory", dir.string()));
  return p;
}

// `name` against a declared output: literal, or one '*' standing for any run of characters.
bool matches(const std::string& pattern, const std::string& name) {
  const auto star = pattern.find('*');
  if (star == std::string::npos) return pattern == name;
  const std::string head = pattern.substr(0, star), tail = pattern.substr(star + 1);
  return name.size() >= head.size() + tail.size() && name.starts_with(head) && name.ends_with(tail);
}

bool declared(const std::vector<std::string>& names, const std::string& name) {
  return std::any_of(names.begin(), names.end(), [&](const std::string& p) { return matches(p, name); });
}

mode_t current_umask() {
  const mode_t m = ::umask(0);
  ::umask(m);
  return m;
}

}  // namespace

OutputSet::OutputSet(const fs::path& dir, std::vector<std::string> names) : names_(std::move(names)) {
  dir_ = normalized(dir);
  std::error_code ec;
  if (fs::is_symlink(dir_, ec)) dir_ = fs::weakly_canonical(dir_, ec);  // replace the target, keep the link
  const fs::file_status st = fs::status(dir_, ec);
  if (st.type() != fs::file_type::not_found) {
    if (st.type() != fs::file_type::directory)
      throw InputError(fmt::format("{}: is {}, expected an output directory (give a new or an existing directory)",
                                   dir.string(), st.type() == fs::file_type::regular ? "a file" : "not a directory"));
    std::vector<std::string> foreign;
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
      const std::string n = e.path().filename().string();
      if (!e.is_regular_file() || !declared(names_, n)) foreign.push_back(n);
    }
    if (ec) throw InputError(fmt::format("{}: cannot list the output directory: {}", dir.string(), ec.message()));
    if (!foreign.empty()) {
      std::sort(foreign.begin(), foreign.end());
      if (foreign.size() > 3) foreign.resize(3), foreign.push_back("...");
      throw InputError(fmt::format("{}: the output directory holds other files ({}); it is replaced as a whole, so "
                                   "give a new directory or one holding only {}",
                                   dir.string(), fmt::join(foreign, ", "), fmt::join(names_, ", ")));
    }
  }
  const fs::path parent = dir_.parent_path();
  fs::create_directories(parent, ec);
  if (ec || !fs::is_directory(parent))
    throw InputError(fmt::format("{}: cannot create the parent directory {}: {}", dir.string(), parent.string(),
                                 ec ? ec.message() : "a file is in the way"));
  std::string tmpl = (parent / ("." + dir_.filename().string() + ".partial-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data()))
    throw InputError(fmt::format("{}: cannot create a directory next to it in {}: {}", dir.string(), parent.string(),
                                 std::strerror(errno)));
  staging_ = tmpl;
  ::chmod(staging_.c_str(), 0777 & ~current_umask());  // mkdtemp makes it private; the result should not be
}

OutputSet::~OutputSet() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(staging_, ec);
}

fs::path OutputSet::file(const std::string& name) const {
  if (!declared(names_, name) || name.find('/') != std::string::npos)
    throw std::logic_error(fmt::format("OutputSet: \"{}\" is not among the declared outputs", name));
  return staging_ / name;
}

std::string OutputSet::in_destination_terms(std::string message) const {
  const std::string from = staging_.string(), to = dir_.string();
  for (std::size_t p = message.find(from); p != std::string::npos; p = message.find(from, p + to.size()))
    message.replace(p, from.size(), to);
  return message;
}

void OutputSet::commit() {
  if (committed_) return;
  std::error_code ec;
  const bool exists = fs::exists(dir_, ec);
  if (!exists) {
    if (::rename(staging_.c_str(), dir_.c_str()) != 0)
      throw InputError(fmt::format("{}: cannot move the written files into place: {}", dir_.string(),
                                   std::strerror(errno)));
  } else if (::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, dir_.c_str(), RENAME_EXCHANGE) != 0) {
    // Filesystems without RENAME_EXCHANGE: two renames, the earlier set moved aside first.
    const fs::path aside = staging_.string() + ".old";
    if (::rename(dir_.c_str(), aside.c_str()) != 0)
      throw InputError(fmt::format("{}: cannot replace the output directory: {}", dir_.string(),
                                   std::strerror(errno)));
    if (::rename(staging_.c_str(), dir_.c_str()) != 0) {
      const int err = errno;
      ::rename(aside.c_str(), dir_.c_str());  // put the earlier set back
      throw InputError(fmt::format("{}: cannot move the written files into place: {}", dir_.string(),
                                   std::strerror(err)));
    }
    fs::remove_all(aside, ec);
    committed_ = true;
    return;
  }
  committed_ = true;
  // After the exchange the staging name holds the earlier set.
  if (exists) fs::remove_all(staging_, ec);
}

void write_files_atomically(const std::vector<std::pair<fs::path, std::string>>& files) {
  std::vector<fs::path> temps;  // one per file; empty for a device or pipe written in place
  auto cleanup = [&] {
    for (const auto& t : temps)
      if (!t.empty()) ::unlink(t.c_str());
  };
  try {
    for (const auto& [path, text] : files) {
      if (path.empty()) throw InputError("output file: empty path");
      std::error_code ec;
      const auto type = fs::status(path, ec).type();
      if (type == fs::file_type::directory)
        throw InputError(fmt::format("{}: is a directory, expected an output file", path.string()));
      if (type != fs::file_type::not_found && type != fs::file_type::regular && type != fs::file_type::symlink) {
        temps.emplace_back();  // /dev/null, a pipe: written in place, never replaced by a rename
        continue;
      }
      const fs::path parent = fs::absolute(path).parent_path();
      if (!fs::is_directory(parent, ec))
        throw InputError(fmt::format("{}: the directory {} does not exist", path.string(), parent.string()));
      std::string tmpl = (parent / ("." + path.filename().string() + ".partial-XXXXXX")).string();
      const int fd = ::mkstemp(tmpl.data());
      if (fd < 0)
        throw InputError(fmt::format("{}: cannot write in {}: {}", path.string(), parent.string(), std::strerror(errno)));
      temps.push_back(tmpl);
      std::size_t done = 0;
      while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          const int err = errno;
          ::close(fd);
          throw InputError(fmt::format("{}: write failed: {}", path.string(), std::strerror(err)));
        }
        done += std::size_t(n);
      }
      ::fchmod(fd, 0644 & ~current_umask());
      if (::close(fd) != 0)
        throw InputError(fmt::format("{}: write failed: {}", path.string(), std::strerror(errno)));
    }
    for (std::size_t i = 0; i < files.size(); ++i) {
      if (temps[i].empty()) {
        std::ofstream f(files[i].first, std::ios::binary);
        if (!(f << files[i].second && f.flush()))
          throw InputError(fmt::format("{}: write failed", files[i].first.string()));
        continue;
      }
      if (::rename(temps[i].c_str(), files[i].first.c_str()) != 0)
        throw InputError(fmt::format("{}: cannot replace: {}", files[i].first.string(), std::strerror(errno)));
    }
  } catch (...) {
    cleanup();
    throw;
  }
}

}  // namespace flashline
