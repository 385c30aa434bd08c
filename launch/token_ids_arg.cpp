#include "launch/token_ids_arg.h"

#include "base/input_file.h"

#include <fmt/format.h>

#include <charconv>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/model_config.h"

namespace flashline {

nlohmann::json read_json_file_arg(const std::string& arg, const std::string& option) {
  const std::string path = arg.substr(1);
  const std::string text = read_input_file(path, fmt::format("the JSON file of {} {}", option, arg));
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(fmt::format("{}: invalid JSON: {}", path, e.what()));
  }
}

std::vector<int32_t> token_ids_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_array()) throw InputError(fmt::format("{}: expected a JSON array of token ids", where));
  std::vector<int32_t> ids;
  for (std::size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_number_integer() || j[i].get<int64_t>() < 0 || j[i].get<int64_t>() > INT32_MAX)
      throw InputError(fmt::format("{}[{}] = {} is not a token id", where, i, j[i].dump()));
    ids.push_back(j[i].get<int32_t>());
  }
  return ids;
}

std::vector<int32_t> parse_token_ids(const std::string& arg, const std::string& option) {
  std::vector<int32_t> ids;
  if (arg.empty()) throw InputError(fmt::format("{}: empty (expected token ids, e.g. 1,2,3 or @ids.json)", option));
  if (arg[0] == '@') {
    ids = token_ids_from_json(read_json_file_arg(arg, option), arg.substr(1) + ": element ");
  } else {
    std::size_t start = 0;
    while (start <= arg.size()) {
      std::size_t end = arg.find(',', start);
      if (end == std::string::npos) end = arg.size();
      int32_t v = -1;
      auto [p, ec] = std::from_chars(arg.data() + start, arg.data() + end, v);
      if (ec != std::errc() || p != arg.data() + end || v < 0)
        throw InputError(fmt::format("{}: \"{}\" is not a token id (expected e.g. 1,2,3 or @ids.json)", option,
                                     arg.substr(start, end - start)));
      ids.push_back(v);
      start = end + 1;
    }
  }
  if (ids.empty()) throw InputError(fmt::format("{}: no token ids given", option));
  return ids;
}

Numerics parse_numerics(const std::string& name) {
  if (name == "exact") return Numerics::Exact;
  if (name == "fast") return Numerics::Fast;
  throw InputError(fmt::format("--numerics: expected exact or fast, found \"{}\"", name));
}

}  // namespace flashline
