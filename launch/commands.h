#pragma once
// Each subcommand of the `flashline` executable registers itself on the application here.
#include <CLI/CLI.hpp>

namespace flashline {

void add_inspect_command(CLI::App& app);
void add_make_tiny_command(CLI::App& app);
void add_plan_command(CLI::App& app);
void add_launch_command(CLI::App& app);
void add_logits_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_detokenize_command(CLI::App& app);
void add_chat_prompt_command(CLI::App& app);
void add_chat_parse_command(CLI::App& app);
void add_serve_command(CLI::App& app);
// `bench` and its subcommands: add_bench_command creates the group and registers `kernels`,
// `serve`, `sweep` and `offline` on it.
void add_bench_command(CLI::App& app);
void add_bench_kernels_command(CLI::App& bench);
void add_bench_serve_command(CLI::App& bench);
void add_bench_sweep_command(CLI::App& bench);
void add_bench_offline_command(CLI::App& bench);

}  // namespace flashline
