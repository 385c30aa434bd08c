#pragma once
// Command-line token id lists: "1,2,3" or "@file.json" (a JSON array of integers).
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/cpu/numerics.h"

namespace flashline {

// The JSON document named by an "@file" argument; errors name the option and the file.
nlohmann::json read_json_file_arg(const std::string& arg, const std::string& option);
// A JSON array of token ids; `where` prefixes the element in errors (e.g. "p.json: element ").
std::vector<int32_t> token_ids_from_json(const nlohmann::json& j, const std::string& where);
std::vector<int32_t> parse_token_ids(const std::string& arg, const std::string& option);
Numerics parse_numerics(const std::string& name);

}  // namespace flashline
