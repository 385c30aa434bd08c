#include "launch/prompt_list_arg.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "base/input_error.h"
#include "launch/token_ids_arg.h"

namespace flashline {
namespace {

template <typename T>
std::optional<T> field(const nlohmann::json& o, const char* key, const std::string& where, bool integer) {
  auto it = o.find(key);
  if (it == o.end()) return std::nullopt;
  if (!it->is_number() || (integer && !it->is_number_integer()))
    throw InputError(fmt::format("{}.{}: expected {}", where, key, integer ? "an integer" : "a number"));
  return it->get<T>();
}

}  // namespace

std::vector<PromptSpec> parse_prompt_list(const std::string& arg, const std::string& option) {
  if (arg.empty() || arg[0] != '@') throw InputError(fmt::format("{}: expected @prompts.json", option));
  const std::string path = arg.substr(1);
  const nlohmann::json j = read_json_file_arg(arg, option);
  if (!j.is_array() || j.empty()) throw InputError(fmt::format("{}: expected a non-empty JSON list of prompts", path));
  std::vector<PromptSpec> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const std::string where = fmt::format("{}: element [{}]", path, i);
    PromptSpec p;
    if (j[i].is_object()) {
      for (const auto& [key, v] : j[i].items())
        if (key != "ids" && key != "arrival_s" && key != "max_tokens" && key != "seed" && key != "temperature" &&
            key != "top_p" && key != "top_k" && key != "min_p" && key != "abort_when" && key != "draft_ids")
          throw InputError(fmt::format("{}: unknown key \"{}\" (expected ids, arrival_s, max_tokens, seed, "
                                       "temperature, top_p, top_k, min_p, abort_when, draft_ids)",
                                       where, key));
      if (!j[i].contains("ids")) throw InputError(fmt::format("{}: missing \"ids\"", where));
      p.ids = token_ids_from_json(j[i]["ids"], where + ".ids");
      p.arrival_s = field<double>(j[i], "arrival_s", where, false).value_or(0.0);
      if (p.arrival_s < 0) throw InputError(fmt::format("{}.arrival_s: expected a number >= 0", where));
      p.max_tokens = field<int>(j[i], "max_tokens", where, true);
      p.seed = field<uint64_t>(j[i], "seed", where, true);
      p.temperature = field<float>(j[i], "temperature", where, false);
      p.top_p = field<float>(j[i], "top_p", where, false);
      p.top_k = field<int>(j[i], "top_k", where, true);
      p.min_p = field<float>(j[i], "min_p", where, false);
      if (auto d = j[i].find("draft_ids"); d != j[i].end()) p.draft_ids = token_ids_from_json(*d, where + ".draft_ids");
      if (auto a = j[i].find("abort_when"); a != j[i].end()) {
        if (!a->is_array() || a->size() != 2 || !(*a)[0].is_number_integer() || !(*a)[1].is_number_integer() ||
            (*a)[0].get<int64_t>() < 0 || (*a)[0].get<int64_t>() >= int64_t(j.size()) || (*a)[1].get<int64_t>() < 0)
          throw InputError(fmt::format("{}.abort_when: expected [request index 0..{}, tokens >= 0]", where,
                                       j.size() - 1));
        p.abort_when = std::pair<int, int>{(*a)[0].get<int>(), (*a)[1].get<int>()};
      }
    } else if (j[i].is_array()) {
      p.ids = token_ids_from_json(j[i], where);
    } else {
      throw InputError(fmt::format("{}: expected a list of token ids or an object with \"ids\"", where));
    }
    if (p.ids.empty()) throw InputError(fmt::format("{}: empty prompt", where));
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace flashline
