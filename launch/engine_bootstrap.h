#pragma once
// Starts the serving engine for a command (generate, logits, serve, bench offline): in this
// process when there is no plan, or as one rank of a plan's world under mpirun. The transports
// (MPI, NCCL, loopback) are chosen here, the only place that knows them.
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "kernels/cpu/numerics.h"
#include "model/model_config.h"
#include "partition/plan.h"
#include "stages/checkpoint.h"
#include "runtime/engine.h"

namespace flashline {

struct EngineOptions {
  std::string model;               // checkpoint directory
  std::string plan;                // empty: one process holds the whole model
  Numerics numerics = Numerics::Fast;
  int micro_batches = 0;           // micro-batches in flight per lane; 0: one per stage
  int max_batch_tokens = 2048;     // token budget of one micro-batch (decodes + prefill chunks)
  int max_seqs = 256;              // sequences in one micro-batch at most
  int prefill_chunk = 512;         // prefill chunk size; 0: whole prompts
  std::string kv_cache_memory;     // per-rank KV budget ("4GiB"); empty: the plan's, else 1 GiB
  int threads = 0;                 // compute threads per rank; 0: from the plan or the machine
  int kv_page_bytes = 16 * 1024;   // KV page size (a window ring of the release config takes 5)
  bool skip_weight_check = false;  // trust the checkpoint's values (no scan for NaN / Inf at load)
  int speculative_tokens = 0;      // MTP drafts per request and step (0: off; up to 3)
  double speculative_min_acceptance = 0;  // below this acceptance a request stops drafting
};

// The engine flags shared by every command that runs the model (--model, --plan, --numerics,
// --micro-batches, --max-batch-tokens, --max-seqs, --prefill-chunk, --kv-cache-memory, --threads,
// --speculative-tokens).
// Call finish_engine_flags in the command's callback.
void add_engine_flags(CLI::App& cmd, EngineOptions& o, std::string& numerics_text);
void finish_engine_flags(EngineOptions& o, const std::string& numerics_text);

// On world rank 0 (or in one process) returns the running engine. On every other rank runs
// this rank's loop until rank 0 shuts the engine down, then returns nullptr (the caller exits).
// InputError for a bad model, plan or flag, before any weight is read.
std::unique_ptr<Engine> start_engine(const EngineOptions& options);

// Plan against the model and the world size: InputError naming the plan entry.
void check_plan_against_model(const Plan& plan, const ModelConfig& config, int world_size, const std::string& source);
// The parts of the checkpoint (stage, lane) needs: its layers, its experts per layer, and the
// embedding / head / MTP copies its stage holds.
CheckpointSelection selection_for(const Plan& plan, int stage, int lane, const ModelConfig& config);

// The config.json of a model directory (for checks before the engine starts).
ModelConfig engine_model_config(const EngineOptions& options);

}  // namespace flashline
