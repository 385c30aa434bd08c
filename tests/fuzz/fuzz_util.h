#pragma once
// Shared by the input fuzzers: a user input may be rejected only with InputError (what the
// command line reports as "flashline: error:", exit 2). Any other exception would reach the user
// as "internal error" and is a defect: the fuzzer aborts on it so libFuzzer saves the input.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "base/input_error.h"

namespace flashline::fuzz {

[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "property violated: %s\n", what.c_str());
  std::abort();
}

// Runs `f`; true when it returned, false when it threw `Error` (InputError unless the code under
// test documents another); aborts on anything else.
template <class Error = InputError, class F>
bool accepts(F&& f) {
  try {
    f();
    return true;
  } catch (const Error&) {
    return false;
  } catch (const std::exception& e) {
    fail(std::string("not the documented error: ") + e.what());
  } catch (...) {
    fail("not the documented error: a non-standard exception");
  }
}

}  // namespace flashline::fuzz
