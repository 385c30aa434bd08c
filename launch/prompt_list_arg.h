#pragma once
// Several prompts on the command line: "@prompts.json", a JSON list of token id lists.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace flashline {

std::vector<std::vector<int32_t>> parse_prompt_list(const std::string& arg, const std::string& option);

// --plan and --micro-batches, shared by the commands that can run pipelined.
void add_plan_options(CLI::App& cmd, std::string& plan, int& micro_batches);

}  // namespace flashline
