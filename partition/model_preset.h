#pragma once
// Model configs built into the binary, so `flashline plan --preset deepseek-v4-flash` works on
// a machine that has neither the weights nor this source tree.
#include <string>
#include <vector>

#include "model/model_config.h"

namespace flashline {

ModelConfig model_preset(const std::string& name);  // throws InputError naming the presets
std::vector<std::string> model_preset_names();

}  // namespace flashline
