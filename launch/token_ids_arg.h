#pragma once
// Command-line token id lists: "1,2,3" or "@file.json" (a JSON array of integers).
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/numerics.h"

namespace flashline {

std::vector<int32_t> parse_token_ids(const std::string& arg, const std::string& option);
Numerics parse_numerics(const std::string& name);

}  // namespace flashline
