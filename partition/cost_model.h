#pragma once
// What each layer costs, derived from the model config alone: weight bytes (from the release
// tensor layout, so they equal the checkpoint inventory), KV and compressor-state bytes per
// request and per token of context, FLOPs and bytes moved for a prefill or decode step, and
// the all-to-all and pipeline message sizes. The planner turns these into times with a
// roofline per device (`step_time`), whose constants `flashline plan --calibrate` is meant to fit.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cluster/device_catalog.h"
#include "model/model_config.h"
#include "model/release_layout.h"

namespace flashline {

// How KV entries are stored. fp8: the nope dims as e4m3 with one UE8M0 scale per 64 values (the
// model's own KV quantisation) and the rope dims in bf16; indexer keys as e2m1 with a UE8M0
// scale per 32. bf16: every value in bf16.
enum class KvFormat { FP8, BF16 };
const char* kv_format_name(KvFormat f);
KvFormat parse_kv_format(const std::string& name);  // throws InputError

// Work of one step on one rank: FLOPs by precision and bytes read from device memory.
struct Work {
  double flops_fp8 = 0;   // FP8 weight GEMMs (and the FP4-simulated indexer scores)
  double flops_fp4 = 0;   // FP4 routed-expert GEMMs
  double flops_bf16 = 0;  // bf16/fp32 GEMMs, attention scores and values
  double bytes = 0;       // weights and KV read, activations written
  Work& operator+=(const Work& o);
};

struct LayerCost {
  int layer = 0;
  AttentionKind attention = AttentionKind::Window;
  bool hash_routed = false;
  bool mtp = false;
  int ratio = 0;
  // Weights.
  int64_t dense_bytes = 0;   // everything but routed experts: replicated on every lane
  int64_t expert_bytes = 0;  // one routed expert (w1, w2, w3 and their scales)
  std::map<TensorGroup, int64_t> bytes_by_group;
  // Multiply-adds per token.
  int64_t dense_macs_fp8 = 0;   // attention projections, indexer wq_b, shared expert, MTP projections
  int64_t dense_macs_bf16 = 0;  // compressors, gate, hc mixes, indexer weights_proj
  int64_t expert_macs = 0;      // one routed expert
  // KV state of one request.
  double kv_bytes_per_token = 0;     // compressed entries (+ indexer keys) per token of context
  int64_t kv_bytes_per_request = 0;  // window ring + compressor partial-block states
};

// Constants of the time model; the defaults are typical achieved fractions of peak. The CPU
// efficiencies are what `flashline plan --calibrate` fits (partition/cost_calibration.h).
struct CostConstants {
  double compute_efficiency = 0.5;   // GPU ranks: of peak dense FLOP/s
  double memory_efficiency = 0.8;    // GPU ranks: of peak memory bandwidth
  double cpu_compute_efficiency = 0.5;  // CPU ranks: of cores x flops_per_core
  double cpu_memory_efficiency = 0.8;   // CPU ranks: of memory_bandwidth
  double link_efficiency = 0.7;      // of link bandwidth, for all-to-all and pipeline messages
  double gpu_layer_overhead_s = 30e-6;  // kernel launches and synchronisation per layer
  double cpu_layer_overhead_s = 20e-6;  // thread fork/join per layer
};

struct StepTime {
  double seconds = 0;
  std::string bound;  // "compute" or "memory"
};

class CostModel {
 public:
  explicit CostModel(const ModelConfig& config, KvFormat kv = KvFormat::FP8, CostConstants constants = {});

  const ModelConfig& config() const { return config_; }
  KvFormat kv_format() const { return kv_; }
  const CostConstants& constants() const { return k_; }
  void set_constants(const CostConstants& k) { k_ = k; }

  // Layers 0 .. n_layers-1, then the MTP blocks.
  const std::vector<LayerCost>& layers() const { return layers_; }
  int64_t embedding_bytes() const { return embedding_bytes_; }
  int64_t head_bytes() const { return head_bytes_; }  // hc_head, norm, head
  int64_t head_macs() const { return head_macs_; }
  std::map<TensorGroup, int64_t> bytes_by_group() const;  // whole model
  int64_t total_weight_bytes() const;

  // Bytes of one KV entry and of one indexer key in the chosen format.
  int64_t kv_entry_bytes() const;
  int64_t index_key_bytes() const;
  // KV + state of one request holding `context` tokens, summed over layers [first, last].
  double kv_bytes(int first, int last, double context) const;

  // Per-lane work of the dense part (attention, compressor, indexer, shared expert, gate, hc)
  // of `layer` for `tokens` new tokens at attended position `position` (decode: the context
  // length; prefill: the middle of the prompt).
  Work dense_work(int layer, double tokens, double position, bool prefill) const;
  // Work of the routed experts on one rank: `pairs` token-expert pairs over `touched` experts.
  Work expert_work(int layer, double pairs, double touched) const;
  Work head_work(double tokens) const;  // hc_head + norm + head projection
  Work embedding_work(double tokens) const;

  // Messages. All-to-all: bytes a rank sends (dispatch + combine) for `tokens` of its lane when
  // the stage has `lanes` lanes. Pipeline: bytes sent to the next stage for `tokens`.
  double all_to_all_bytes(double tokens, int lanes) const;
  double pipeline_bytes(double tokens) const;

  // Roofline time of `w` on `device`.
  StepTime time(const Work& w, const DeviceSpec& device) const;
  double layer_overhead(const DeviceSpec& device) const {
    return device.gpu ? k_.gpu_layer_overhead_s : k_.cpu_layer_overhead_s;
  }

 private:
  ModelConfig config_;
  KvFormat kv_;
  CostConstants k_;
  std::vector<LayerCost> layers_;
  int64_t embedding_bytes_ = 0, head_bytes_ = 0, head_macs_ = 0;
  std::map<TensorGroup, int64_t> top_bytes_by_group_;
};

}  // namespace flashline
