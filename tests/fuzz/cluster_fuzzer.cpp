// libFuzzer target: cluster descriptions (YAML) through ClusterSpec::parse and the rank slots
// the planner takes from it. Property: only InputError on bad input.
#include <cstdint>
#include <string>

#include "cluster/cluster_spec.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flashline;
  const std::string text(reinterpret_cast<const char*>(data), size);
  ClusterSpec c;
  if (!fuzz::accepts([&] { c = ClusterSpec::parse(text, "cluster.yaml"); })) return 0;
  if (c.rank_count() < 0) fuzz::fail("negative rank count");
  if (c.rank_count() <= 4096) fuzz::accepts([&] { (void)c.ranks(); });
  return 0;
}
