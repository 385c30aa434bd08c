#include "partition/expert_placement.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <numeric>
#include <nlohmann/json.hpp>

#include "base/input_error.h"
#include "base/input_file.h"

namespace flashline {

double ExpertPlacement::max_lane_load() const {
  return lane_load.empty() ? 0.0 : *std::max_element(lane_load.begin(), lane_load.end());
}

int ExpertPlacement::max_slots() const {
  std::size_t m = 0;
  for (const auto& l : map.lanes) m = std::max(m, l.size());
  return int(m);
}

ExpertPlacement place_experts_uniform(int experts, int lanes) {
  ExpertPlacement p;
  p.map.lanes.resize(lanes);
  p.lane_load.resize(lanes);
  int begin = 0;
  for (int j = 0; j < lanes; ++j) {
    int n = experts / lanes + (j < experts % lanes ? 1 : 0);
    for (int e = begin; e < begin + n; ++e) p.map.lanes[j].push_back(e);
    p.lane_load[j] = double(n) / experts;
    begin += n;
  }
  return p;
}

ExpertPlacement place_experts_balanced(const std::vector<double>& load, int lanes, int redundant) {
  const int n = int(load.size());
  double total = std::accumulate(load.begin(), load.end(), 0.0);
  if (!(total > 0)) return place_experts_uniform(n, lanes);
  // Replicas: each one goes to the expert whose per-replica load is highest.
  std::vector<int> copies(n, 1);
  // More copies than lanes would put two on one lane, which balances nothing.
  for (int r = 0; r < redundant; ++r) {
    int best = -1;
    for (int e = 0; e < n; ++e)
      if (copies[e] < lanes && (best < 0 || load[e] / copies[e] > load[best] / copies[best])) best = e;
    if (best < 0) break;
    copies[best]++;
  }
  struct Replica {
    int expert;
    double load;
  };
  std::vector<Replica> replicas;
  for (int e = 0; e < n; ++e)
    for (int c = 0; c < copies[e]; ++c) replicas.push_back({e, load[e] / copies[e] / total});
  std::stable_sort(replicas.begin(), replicas.end(), [](const Replica& a, const Replica& b) { return a.load > b.load; });
  // Equal slot counts per lane; heaviest replica first onto the lightest lane with room that
  // does not already hold that expert (a second copy on the same lane would balance nothing).
  const int slots = int(replicas.size());
  std::vector<int> capacity(lanes);
  for (int j = 0; j < lanes; ++j) capacity[j] = slots / lanes + (j < slots % lanes ? 1 : 0);
  ExpertPlacement p;
  p.map.lanes.resize(lanes);
  p.lane_load.assign(lanes, 0.0);
  for (const auto& r : replicas) {
    int best = -1;
    for (int pass = 0; pass < 2 && best < 0; ++pass)
      for (int j = 0; j < lanes; ++j) {
        if (int(p.map.lanes[j].size()) >= capacity[j]) continue;
        bool holds = std::find(p.map.lanes[j].begin(), p.map.lanes[j].end(), r.expert) != p.map.lanes[j].end();
        if (pass == 0 && holds) continue;
        if (best < 0 || p.lane_load[j] < p.lane_load[best]) best = j;
      }
    if (std::find(p.map.lanes[best].begin(), p.map.lanes[best].end(), r.expert) == p.map.lanes[best].end())
      p.map.lanes[best].push_back(r.expert);
    p.lane_load[best] += r.load;
  }
  for (auto& l : p.map.lanes) std::sort(l.begin(), l.end());
  return p;
}

ExpertLoad ExpertLoad::load(const std::filesystem::path& path, int layers, int experts) {
  const std::string text = read_input_file(path, "expert-load histogram");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(fmt::format("{}: invalid JSON: {}", path.string(), e.what()));
  }
  auto counts = [&](const nlohmann::json& v, const std::string& where) {
    if (!v.is_array() || int(v.size()) != experts)
      throw InputError(fmt::format("{}: {}: expected an array of {} expert loads", path.string(), where, experts));
    std::vector<double> r;
    for (const auto& x : v) {
      if (!x.is_number() || x.get<double>() < 0)
        throw InputError(fmt::format("{}: {}: loads must be numbers >= 0, found {}", path.string(), where, x.dump()));
      r.push_back(x.get<double>());
    }
    return r;
  };
  if (!j.is_object()) throw InputError(fmt::format("{}: expected a JSON object with \"load\" or \"layers\"", path.string()));
  ExpertLoad l;
  for (const auto& [k, v] : j.items()) {
    if (k == "load") {
      l.all_layers = counts(v, "load");
    } else if (k == "layers") {
      if (!v.is_object()) throw InputError(fmt::format("{}: layers: expected an object {{\"layer\": [loads]}}", path.string()));
      for (const auto& [lk, lv] : v.items()) {
        int layer = -1;
        try {
          layer = std::stoi(lk);
        } catch (const std::exception&) {
        }
        if (layer < 0 || layer >= layers)
          throw InputError(fmt::format("{}: layers.{}: not a layer id (0 to {})", path.string(), lk, layers - 1));
        l.by_layer[layer] = counts(lv, "layers." + lk);
      }
    } else {
      throw InputError(fmt::format("{}: unknown key \"{}\" (expected \"load\" or \"layers\")", path.string(), k));
    }
  }
  return l;
}

const std::vector<double>* ExpertLoad::of(int layer) const {
  if (auto it = by_layer.find(layer); it != by_layer.end()) return &it->second;
  return all_layers.empty() ? nullptr : &all_layers;
}

}  // namespace flashline
