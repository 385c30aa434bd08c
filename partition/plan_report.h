#pragma once
// The planner's result for people (a table), for programs (JSON) and as a picture (SVG).
#include <nlohmann/json.hpp>
#include <string>

#include "partition/stage_planner.h"

namespace flashline {

std::string plan_table(const PlanResult& r);
nlohmann::json plan_json(const PlanResult& r);
std::string plan_svg(const PlanResult& r);

}  // namespace flashline
