// The audited pipeline (`pgolf run`): setup → build → warmup → train → [pre-quant TTT] → [calibrate] → serialize →
// evaluate, each phase timed on one monotonic clock and written to the run's ledger with every data read, validation
// pause and validation-gate event the engine reports (core/events.h). Budgets are enforced while the run goes: the
// training loop stops at the training budget, a training-data read past it stops the run (T4), and timed evaluation
// past the evaluation budget stops it (E1); a stopped run ends its ledger with the finding. The verifier
// (audit/verifier.h) then proves the same from the files.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"
#include "model/validation_gate.h"

namespace pgolf {

struct RunOptions {
    Config config;  // preset at its scale with overrides and SEED applied
    std::string preset;
    std::string scale;
    std::string data_directory;
    std::string tokenizer_path;
    std::string output_directory;   // must not hold a ledger yet
    double train_budget_s = 600.0;  // training loop + every training-data read
    double eval_budget_s = 600.0;   // timed evaluation
    std::int64_t cap_bytes = 16'000'000;
    GateMode gate = GateMode::enforce;
    std::string scheme;                           // empty: the config's EXPORT_SCHEME
    std::string codec;                            // empty: the config's EXPORT_CODEC
    std::vector<std::string> overrides;           // the --set assignments, recorded (already applied to config)
    Device device = Device::cpu;                  // where training and the evaluation run (export stays on the CPU)
    std::function<void(const std::string&)> log;  // every log line (also written to train.log)
    std::function<void(std::int64_t, std::int64_t)> progress;  // training steps, terminal only
};

struct RunSummary {
    std::string status;  // "complete", "stopped" (a budget rule ended it)
    std::string stop_rule;
    std::string stop_reason;
    std::string ledger_path;
    std::string log_path;
    double val_loss = 0.0;
    double val_bpb = 0.0;
    std::int64_t total_bytes = 0;
};

RunSummary run_supervised(const RunOptions& options);

// The rule ids the supervisor stops a run for; the verifier finds the same from the ledger.
inline constexpr const char* run_log_file_name = "train.log";

}  // namespace pgolf
