#pragma once
// What every layer function needs besides its weights: the config, the numerics mode, the two
// RoPE tables (plain theta for window-only layers, YaRN + compress theta for compressed ones).
#include "kernels/cpu/numerics.h"
#include "kernels/cpu/rope.h"
#include "model/model_config.h"

namespace flashline {

struct LayerContext {
  const ModelConfig& config;
  Numerics numerics;
  const RopeTable& rope_plain;
  const RopeTable& rope_compressed;

  const RopeTable& rope_for(int layer_id) const {
    return config.ratio(layer_id) > 0 ? rope_compressed : rope_plain;
  }
};

}  // namespace flashline
