#pragma once
// JSON as the reference prompt encoder writes it: Python's json.dumps(x, ensure_ascii=False).
//
// Tool schemas, response_format and non-string tool arguments are embedded in the prompt as
// JSON text, so their serialisation is part of the prompt and must match byte for byte:
// ", " and ": " separators, keys in input order, only '"', '\\' and control characters
// escaped, integers exact at any size, floats as Python's repr.
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/input_error.h"

namespace flashline {

using OrderedJson = nlohmann::ordered_json;

// Parses JSON text keeping member order (last duplicate wins, at the first one's place, as
// in a Python dict). Integers too large for 64 bits are kept exact: they are stored as a
// binary value with subtype kBigIntegerSubtype holding the decimal digits.
// Arrays and objects nest at most kMaxJsonDepth deep (Python's json stops near 1000 levels).
// Throws InputError naming `source` and the byte offset.
OrderedJson parse_ordered_json(std::string_view text, std::string_view source);
// The same, returning false instead of throwing (the text is not JSON).
bool try_parse_ordered_json(std::string_view text, OrderedJson& out);

inline constexpr std::uint64_t kBigIntegerSubtype = 0xB1;
inline constexpr std::size_t kMaxJsonDepth = 512;

// json.dumps(value, ensure_ascii=False).
std::string py_json_dumps(const OrderedJson& value);
// json.dumps(s, ensure_ascii=False) of a string (with the quotes).
std::string py_json_string(std::string_view s);
void append_py_json_string(std::string& out, std::string_view s);
// Python's repr of a float.
std::string py_float_repr(double v);

}  // namespace flashline
