// The `flashline` executable: one binary, one subcommand per job.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <exception>

#include "launch/commands.h"
#include "model/model_config.h"

int main(int argc, char** argv) {
  CLI::App app{"flashline: a distributed runtime for DeepSeek-V4-Flash"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const flashline::InputError& e) {
    fmt::print(stderr, "flashline: error: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "flashline: internal error: {}\n", e.what());
    return 1;
  }
  return 0;
}
