#pragma once
// The one type every command reports as a user error: a bad input (file, YAML, request,
// checkpoint, flag) whose message names the input, the place and what was expected.
#include <stdexcept>

namespace flashline {

struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace flashline
