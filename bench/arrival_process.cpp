#include "bench/arrival_process.h"

#include <fmt/format.h>

#include <cmath>
#include <string>

#include "base/input_error.h"

namespace flashline {

ArrivalProcess::ArrivalProcess(double rate, double burstiness, uint64_t seed)
    : rate_(rate), rng_(seed), gap_(burstiness > 0 ? burstiness : 1.0, 1.0) {
  if (!(rate > 0)) throw InputError(fmt::format("--request-rate {}: expected a rate above 0 or inf", rate));
  if (!(burstiness > 0) || std::isinf(burstiness))
    throw InputError(fmt::format("--burstiness {}: expected a finite value above 0 (1: Poisson)", burstiness));
  if (!all_at_once()) gap_ = std::gamma_distribution<double>(burstiness, 1.0 / (rate * burstiness));
}

double ArrivalProcess::next_gap_s() { return all_at_once() ? 0.0 : gap_(rng_); }

std::vector<double> arrival_offsets(int count, double rate, double burstiness, uint64_t seed) {
  ArrivalProcess process(rate, burstiness, seed);
  std::vector<double> offsets;
  double t = 0;
  for (int i = 0; i < count; ++i) {
    offsets.push_back(t);
    t += process.next_gap_s();
  }
  return offsets;
}

double parse_rate(const std::string& text, const std::string& flag) {
  if (text == "inf" || text == "Inf" || text == "INF") return std::numeric_limits<double>::infinity();
  try {
    std::size_t used = 0;
    const double rate = std::stod(text, &used);
    if (used == text.size() && rate > 0 && std::isfinite(rate)) return rate;
  } catch (const std::exception&) {
  }
  throw InputError(fmt::format("{} {}: expected requests per second above 0, or inf", flag, text));
}

}  // namespace flashline
