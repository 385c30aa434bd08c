// The `flashline` executable: one binary, one subcommand per job.
//
// Exit codes (docs/troubleshooting.md): 0 success; 2 a user error of any kind (a bad flag, a
// missing or malformed file, an input the model cannot take), always printed as one
// "flashline: error: ..." line; 1 an internal error (a defect of flashline: please report it).
// A subcommand that runs other programs (launch) exits with their status.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <CLI/CLI.hpp>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "base/input_error.h"
#include "base/yaml_reader.h"
#include "launch/commands.h"

namespace {

constexpr int kUserError = 2;
constexpr int kInternalError = 1;

int user_error(const std::string& message) {
  fmt::print(stderr, "flashline: error: {}\n", message);
  return kUserError;
}

// The subcommand the arguments name, or the name of the one that was being parsed.
std::string subcommand_path(const CLI::App& app) {
  std::string path;
  for (const CLI::App* a = &app; a;) {
    const auto subs = a->get_subcommands();
    if (subs.empty()) break;
    a = subs.front();
    path += (path.empty() ? "" : " ") + a->get_name();
  }
  return path;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"flashline: a distributed runtime for DeepSeek-V4-Flash"};
  app.name("flashline");
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  app.set_version_flag("--version", std::string("flashline ") + FLASHLINE_VERSION);
  flashline::add_inspect_command(app);
  flashline::add_make_tiny_command(app);
  flashline::add_plan_command(app);
  flashline::add_launch_command(app);
  flashline::add_logits_command(app);
  flashline::add_generate_command(app);
  flashline::add_tokenize_command(app);
  flashline::add_detokenize_command(app);
  flashline::add_chat_prompt_command(app);
  flashline::add_chat_parse_command(app);
  flashline::add_serve_command(app);
  flashline::add_bench_command(app);

  // CLI11 reads an unknown first word as a stray positional ("A subcommand is required"); name
  // it instead, with the closest subcommand.
  if (argc > 1 && argv[1][0] != '-') {
    std::vector<std::string> names;
    for (const CLI::App* s : app.get_subcommands([](const CLI::App*) { return true; })) names.push_back(s->get_name());
    const std::string given = argv[1];
    if (std::find(names.begin(), names.end(), given) == names.end()) {
      const std::vector<std::string_view> views(names.begin(), names.end());
      const std::string near = flashline::nearest_key(given, views);
      return user_error(fmt::format("unknown subcommand '{}'{}; the subcommands are: {} (flashline --help)", given,
                                    near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near),
                                    fmt::join(names, ", ")));
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // Argument errors are user errors like any other: same prefix, same exit code.
    const std::string sub = subcommand_path(app);
    return user_error(fmt::format("{}{} (see flashline {}--help)", sub.empty() ? "" : sub + ": ", e.what(),
                                  sub.empty() ? "" : sub + " "));
  } catch (const flashline::InputError& e) {
    return user_error(e.what());
  } catch (const std::filesystem::filesystem_error& e) {
    // A path the user named could not be created, read or replaced (permissions, a file where a
    // directory is needed): the message names the path(s).
    return user_error(e.what());
  } catch (const std::exception& e) {
    fmt::print(stderr, "flashline: internal error: {}\n", e.what());
    return kInternalError;
  }
  return 0;
}
