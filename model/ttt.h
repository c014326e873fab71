// Test-time training through the validation gate: score-first chunked TTT (SEED-SYSTEMS.md §1.5; S1–S3 with SGD, S4's
// Muon-style diagnostic) and S4's pre-quant AdamW TTT on the whole validation stream (§5.3), which the gate refuses
// (C3).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/evaluate.h"
#include "model/gpt.h"
#include "model/optim.h"
#include "model/validation_gate.h"

namespace pgolf {

// sgd: torch SGD with momentum, state kept across chunks (S1–S3). muon_style: S4's diagnostic — every 2-D gradient (and
// each slice of a 3-D bank) orthogonalised by Newton–Schulz, p −= η·g with no momentum; other tensors a raw step.
// sgd: S1–S3 (momentum, no Nesterov, no weight decay). muon_style: S4's diagnostic TTT as SEED-SYSTEMS.md §5.5
// describes it; the S4 function itself was not read, so two details are assumptions: the global clip applies before
// the update, and Muon's √max(1, rows/cols) scale is not applied.
enum class TttOptimizerKind { sgd, muon_style };
std::string ttt_optimizer_kind_name(TttOptimizerKind kind);

// S4's entropy-adaptive epochs: as_ran reproduces the shipped code, whose NLL accumulators are never filled (no
// change); intended adds an epoch when the chunk's mean scored NLL exceeds entropy_high and drops one below
// entropy_low.
enum class TttEntropyEpochs { off, as_ran, intended };
std::string ttt_entropy_epochs_name(TttEntropyEpochs mode);

struct TttOptions {
    std::int64_t chunk_tokens = 32768;
    std::int64_t epochs = 3;
    double lr = 0.002;  // cosine over chunks: η_c = lr·½(1 + cos(π·c/(C − 1)))
    double momentum = 0.9;
    std::int64_t batch_sequences = 32;  // sequences per micro-batch (one optimizer step each)
    std::int64_t seq_len = 2048;        // training sequence length
    double grad_clip = 1.0;             // global norm; ≤ 0: off
    // Physical blocks whose parameters stay fixed: blocks.<i>.* are left out of the optimizer and, in banked models,
    // the blocks' bank slices get zero gradient.
    std::vector<std::int64_t> frozen_blocks;
    TttOptimizerKind optimizer = TttOptimizerKind::sgd;
    int newton_schulz_steps = 3;                                 // muon_style
    MuonPrecision newton_schulz_precision = MuonPrecision::f32;  // the CPU fp32 path is the specification
    TttEntropyEpochs entropy_epochs = TttEntropyEpochs::off;
    double entropy_high = 2.1;  // nats
    double entropy_low = 1.75;
    SlidingWindowOptions sliding;  // how each chunk's windows are scored
};

struct TttResult {
    GateTotals totals;                // the gate's totals after the run
    std::int64_t windows = 0;         // sliding windows scored
    std::int64_t chunks = 0;          // C
    std::int64_t chunks_adapted = 0;  // chunks trained on (never the last)
    std::int64_t epochs_run = 0;      // summed over adapted chunks
    std::int64_t steps = 0;           // optimizer steps
    double scoring_ms = 0.0;
    double adaptation_ms = 0.0;
};

// Score-first TTT: the stream is split into C = ⌈(n − 1)/chunk_tokens⌉ chunks of targets; each sliding window belongs
// to the chunk holding its first scored target; chunk c's windows are scored and committed with the current weights,
// then (unless c is the last chunk) the model trains on the chunk's tokens, obtained only through gate.adapt, which
// therefore covers committed targets only. log, when given, gets one line per chunk.
TttResult ttt_score_first(Gpt& model, ValidationGate& gate, const TttOptions& options,
                          const std::function<void(const std::string&)>& log = {});

struct PrequantTttOptions {
    std::int64_t epochs = 10;
    double lr = 5e-4;      // η0 of the non-block group; block i uses lr·(0.3 + 0.7·i/(L − 1))
    double lr_min = 5e-5;  // absolute floor of every group's per-epoch cosine
    double beta1 = 0.9;
    double beta2 = 0.999;
    double weight_decay = 0.0;
    std::int64_t batch_sequences = 32;
    std::int64_t seq_len = 2048;
    double grad_clip = 1.0;
};

struct PrequantTttResult {
    std::int64_t epochs_run = 0;
    std::int64_t steps = 0;
    std::vector<double> epoch_loss;  // mean training loss per epoch
    double adaptation_ms = 0.0;
};

// S4's "discriminative" pre-quant TTT: AdamW over the whole validation stream before any of it is scored. The tokens
// come from gate.adapt(0, n), so in enforce mode it throws (C3) before touching a weight; in observe mode it runs and
// the gate records the violation, so the non-compliant record can be reproduced and flagged.
PrequantTttResult ttt_prequant_adamw(Gpt& model, ValidationGate& gate, const PrequantTttOptions& options,
                                     const std::function<void(const std::string&)>& log = {});

// SHA-256 hex over the model's named tensors (names, shapes and bytes): names the weights in the gate's events.
std::string ttt_digest_weights(const Gpt& model);

}  // namespace pgolf
