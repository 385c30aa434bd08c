#pragma once
// Starts the serving engine for a command (generate, logits, serve, bench offline): in this
// process when there is no plan, or as one rank of a plan's world under mpirun. The transports
// (MPI, NCCL, loopback) are chosen here, the only place that knows them.
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "kernels/cpu/numerics.h"
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
};

// The engine flags shared by every command that runs the model.
void add_engine_flags(CLI::App& cmd, EngineOptions& o, std::string& numerics_text);

// On world rank 0 (or in one process) returns the running engine. On every other rank runs
// this rank's loop until rank 0 shuts the engine down, then returns nullptr (the caller exits).
// InputError for a bad model, plan or flag, before any weight is read.
std::unique_ptr<Engine> start_engine(const EngineOptions& options);

}  // namespace flashline
