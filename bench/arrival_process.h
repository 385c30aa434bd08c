#pragma once
// When each request of a serving benchmark is sent: gaps drawn from a gamma distribution with
// shape = burstiness and scale = 1 / (rate * burstiness), so the mean rate is `rate` whatever
// the burstiness; burstiness 1 is a Poisson process, below 1 burstier, above 1 more regular
// (vLLM's arrival model). An infinite rate sends everything at once.
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace flashline {

class ArrivalProcess {
 public:
  // rate: requests per second (> 0, may be infinite); burstiness > 0. InputError otherwise.
  ArrivalProcess(double rate, double burstiness, uint64_t seed);
  double next_gap_s();  // 0 for an infinite rate
  bool all_at_once() const { return rate_ == std::numeric_limits<double>::infinity(); }

 private:
  double rate_;
  std::mt19937_64 rng_;
  std::gamma_distribution<double> gap_;
};

// Offsets from the start of the run: the first request at 0, each next one a gap later.
std::vector<double> arrival_offsets(int count, double rate, double burstiness, uint64_t seed);

// "inf" or a positive number (the --request-rate values); InputError naming `flag`.
double parse_rate(const std::string& text, const std::string& flag);

}  // namespace flashline
