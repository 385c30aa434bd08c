// libFuzzer target: config.json text through ModelConfig::from_json. Properties: only InputError
// on bad input; an accepted config yields a release layout whose tensor names are unique and
// whose byte counts are positive (what inspect --config and the planner rely on).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "model/model_config.h"
#include "model/release_layout.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flashline;
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;
  ModelConfig c;
  if (!fuzz::accepts([&] { c = ModelConfig::from_json(j, "config.json"); })) return 0;
  // The inventory of a release-sized config is ~70k tensors: listed only for small models, so
  // the fuzzer spends its time on the parser (the bound on expert layers is checked above).
  if (int64_t(c.n_layers + c.n_mtp) * c.n_experts > 512) return 0;
  std::vector<TensorSpec> specs;
  fuzz::accepts([&] { specs = release_tensors(c); });
  std::set<std::string> names;
  for (const auto& t : specs) {
    if (!names.insert(t.name).second) fuzz::fail("duplicate tensor name " + t.name);
    if (t.bytes() <= 0) fuzz::fail("non-positive size of " + t.name);
  }
  return 0;
}
