#include "launch/prompt_list_arg.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "launch/token_ids_arg.h"
#include "model/model_config.h"

namespace flashline {

std::vector<std::vector<int32_t>> parse_prompt_list(const std::string& arg, const std::string& option) {
  if (arg.empty() || arg[0] != '@') throw InputError(fmt::format("{}: expected @prompts.json", option));
  const std::string path = arg.substr(1);
  const nlohmann::json j = read_json_file_arg(arg, option);
  if (!j.is_array() || j.empty()) throw InputError(fmt::format("{}: expected a non-empty JSON list of id lists", path));
  std::vector<std::vector<int32_t>> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_array() || j[i].empty())
      throw InputError(fmt::format("{}: element [{}] is not a non-empty list of token ids", path, i));
    out.push_back(token_ids_from_json(j[i], fmt::format("{}: element [{}]", path, i)));
  }
  return out;
}

void add_plan_options(CLI::App& cmd, std::string& plan, int& micro_batches) {
  cmd.add_option("--plan", plan,
                 "Plan file (YAML, docs/plan-format.md): run as one rank of a pipeline under mpirun -np <ranks>; "
                 "rank 0 writes the outputs");
  cmd.add_option("--micro-batches", micro_batches,
                 "Micro-batch slots per lane (default: one per pipeline stage)")
      ->check(CLI::NonNegativeNumber);
}

}  // namespace flashline
