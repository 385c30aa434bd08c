#pragma once
// A directory of output files replaced as a whole (`flashline logits --out DIR`). The files are written into a temporary
// directory next to the destination; commit() then puts it in the destination's place with one
// rename, so a reader sees either the earlier complete set or the new complete set: never a mix
// of two runs (files of an earlier run that this run does not write are gone), never a partial
// set. Without commit() (an exception while writing) the temporary directory is removed and the
// destination is left as it was.
//
// The destination must be a directory holding only files this command may write (or absent):
// replacing a directory of unrelated files would destroy them, so that is a user error, as is a
// destination that is a file.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace flashline {

class OutputSet {
 public:
  // `names`: every file name the command can write into `dir` (one '*' matches any run of
  // characters: "model-*.safetensors"). Throws InputError naming `dir`
  // when it is a file, holds anything else, or its parent cannot be created.
  OutputSet(const std::filesystem::path& dir, std::vector<std::string> names);
  ~OutputSet();
  OutputSet(const OutputSet&) = delete;
  OutputSet& operator=(const OutputSet&) = delete;

  // Where to write the file `name` (one of `names`) before commit().
  std::filesystem::path file(const std::string& name) const;
  // The temporary directory the files go to before commit().
  const std::filesystem::path& staging() const { return staging_; }
  // The destination as it will be after commit().
  const std::filesystem::path& dir() const { return dir_; }
  // `message` with the temporary directory's path replaced by the destination's, so an error
  // raised while writing names the path the user gave.
  std::string in_destination_terms(std::string message) const;
  // Replaces the destination by the files written so far; throws InputError when that fails
  // (the destination is then unchanged).
  void commit();

 private:
  std::filesystem::path dir_;
  std::filesystem::path staging_;
  std::vector<std::string> names_;
  bool committed_ = false;
};

// Writes each (path, contents) pair, all or none: every file is first written in full next to its
// destination, then the temporaries are renamed over the destinations. A path that is a directory,
// or whose directory does not exist, is an InputError naming it, and nothing is written.
void write_files_atomically(const std::vector<std::pair<std::filesystem::path, std::string>>& files);

}  // namespace flashline
