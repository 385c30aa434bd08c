// libFuzzer target: plan files (YAML) through Plan::from_yaml, which validates. Properties: only
// InputError on bad input (yaml-cpp's own exceptions must not escape); an accepted plan written
// back with to_yaml reads back equal.
#include <cstdint>
#include <string>

#include "partition/plan.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flashline;
  const std::string text(reinterpret_cast<const char*>(data), size);
  Plan p;
  if (!fuzz::accepts([&] { p = Plan::from_yaml(text, "plan.yaml"); })) return 0;
  const std::string again = p.to_yaml();
  Plan q;
  if (!fuzz::accepts([&] { q = Plan::from_yaml(again, "rewritten plan.yaml"); }))
    fuzz::fail("an accepted plan, written back, is rejected:\n" + again);
  if (!(p == q)) fuzz::fail("an accepted plan, written back, reads back different:\n" + again);
  return 0;
}
