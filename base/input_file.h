#pragma once
// Reading a file the user named (config.json, a cluster or plan file, a messages file, @ids.json).
// Every failure is an InputError that names the path and says what was wrong with it: missing,
// a directory where a file was expected, unreadable.
#include <filesystem>
#include <string>
#include <string_view>

namespace flashline {

// The whole file as bytes. `what` names the file's role in the message ("config file",
// "--messages file"); the message is "<path>: cannot open <what>: <problem>".
std::string read_input_file(const std::filesystem::path& path, std::string_view what);

// Throws the same InputError read_input_file would when `path` is missing or not a regular file.
void check_input_file(const std::filesystem::path& path, std::string_view what);

}  // namespace flashline
