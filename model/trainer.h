// The training loop of the reference train_gpt.py on the CPU engine or one GPU: warmup-then-restore, gradient
// accumulation over micro-batches, Muon + Adam groups with the wallclock or iteration warmdown, periodic and final
// validation over the whole val split, a Deadline on training time (validation excluded), log lines in the reference's
// shapes. Stages, validation pauses and the loop's end go to the event sink (core/events.h) for a supervisor.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/tensor.h"
#include "model/config.h"

namespace pgolf {

struct TrainOptions {
    Config config;                 // a preset with overrides applied (config_load_preset + --set)
    std::string data_directory;    // fineweb_train_*.bin and fineweb_val_*.bin
    std::string tokenizer_path;    // SentencePiece model for the val byte tables
    std::string output_directory;  // train.log, final_model.safetensors; empty: write nothing
    // Every log line, in order (the reference's log0). The CLI prints them; tests collect them.
    std::function<void(const std::string&)> log;
    // Called on a terminal-only channel with (step, iterations) for progress display; may be empty.
    std::function<void(std::int64_t, std::int64_t)> progress;
    // false: no validation at all (benchmarks time the training steps only).
    bool validate = true;
    // false: train.log is not written (a supervisor that keeps one log of the whole run writes the lines itself).
    bool write_log = true;
    // > 0: a supervisor's training budget. The loop stops at the first step boundary where the training time
    // (validation excluded) reaches it, like MAX_WALLCLOCK_SECONDS but without changing the lr schedule.
    double budget_ms = 0.0;
    // Where the step runs. cuda: the model, its gradients, the optimizers' state and the averages live on the GPU;
    // GEMMs multiply f32 activations with bf16 products and fp32 accumulation (the reference's autocast precision).
    Device device = Device::cpu;
};

struct TrainResult {
    std::int64_t steps = 0;
    bool stopped_early = false;      // the Deadline (MAX_WALLCLOCK_SECONDS) ended training before ITERATIONS
    bool stopped_by_budget = false;  // TrainOptions::budget_ms ended it
    double train_time_ms = 0.0;      // validation excluded, as in the reference
    double final_val_loss = 0.0;
    double final_val_bpb = 0.0;
    double tokens_per_second = 0.0;
    double model_gflops_per_second = 0.0;  // training FLOPs per token × tokens/s
    double mfu = 0.0;                      // model FLOP/s over the GPU's dense bf16 peak (cuda only; 0 otherwise)
    std::int64_t parameters = 0;
};

TrainResult trainer_run(const TrainOptions& options);

}  // namespace pgolf
