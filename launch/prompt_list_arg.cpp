#include "launch/prompt_list_arg.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "stages/model_config.h"

namespace flashline {

std::vector<std::vector<int32_t>> parse_prompt_list(const std::string& arg, const std::string& option) {
  if (arg.empty() || arg[0] != '@') throw InputError(fmt::format("{}: expected @prompts.json", option));
  const std::string path = arg.substr(1);
  std::ifstream in(path);
  if (!in) throw InputError(fmt::format("{} {}: cannot open {}", option, arg, path));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(fmt::format("{}: invalid JSON: {}", path, e.what()));
  }
  if (!j.is_array() || j.empty()) throw InputError(fmt::format("{}: expected a non-empty JSON list of id lists", path));
  std::vector<std::vector<int32_t>> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_array() || j[i].empty())
      throw InputError(fmt::format("{}: element [{}] is not a non-empty list of token ids", path, i));
    std::vector<int32_t> ids;
    for (std::size_t k = 0; k < j[i].size(); ++k) {
      const auto& v = j[i][k];
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
        throw InputError(fmt::format("{}: element [{}][{}] = {} is not a token id", path, i, k, v.dump()));
      ids.push_back(v.get<int32_t>());
    }
    out.push_back(std::move(ids));
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
