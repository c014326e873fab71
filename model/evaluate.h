// Validation: plain non-overlapping sequences (the reference's eval_val) and sliding windows (SEED-SYSTEMS.md §1.5)
// through the validation gate, every target scored once; val_loss = mean NLL, val_bpb = val_loss / ln 2 × targets /
// bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/metrics.h"
#include "core/tokenizer.h"
#include "model/config.h"
#include "model/gpt.h"
#include "model/validation_gate.h"

namespace pgolf {

struct ValidationResult {
    double val_loss = 0.0;
    double val_bpb = 0.0;
    std::int64_t targets = 0;
    std::int64_t bytes = 0;
};

// tokens: (n,) with (n − 1) a multiple of seq_len (validation_tokens_load's output). batch_sequences: sequences per
// forward pass. progress(done_sequences, total_sequences) is called after each batch when given.
ValidationResult evaluate_validation(const Gpt& model, std::span<const std::uint16_t> tokens,
                                     const TokenizerByteTables& tables, std::int64_t seq_len,
                                     std::int64_t batch_sequences,
                                     const std::function<void(std::int64_t, std::int64_t)>& progress = {});

// The validation split as a run evaluates it: tokens truncated for TRAIN_SEQ_LEN, the tokenizer's byte tables, and
// the sequences per forward pass from VAL_BATCH_SIZE (per rank, per micro-step, as the reference divides it).
struct ValidationData {
    std::vector<std::uint16_t> tokens;
    TokenizerByteTables tables;
    std::int64_t seq_len = 0;
    std::int64_t batch_sequences = 0;
    std::string pattern;  // the shard glob read
};

// Checks that the tokenizer's vocabulary matches VOCAB_SIZE.
ValidationData validation_data_load(const Config& config, const std::string& data_directory,
                                    const std::string& tokenizer_path);

// evaluate_validation over the data, with a terminal progress line named label (silent in logs and CI).
ValidationResult evaluate_validation(const Gpt& model, const ValidationData& data, const char* label);

// One sliding window: input tokens [input_begin, input_end) score targets [score_begin, score_end) (positions as in
// the gate: target p is token p predicted from tokens before it).
struct SlidingWindow {
    std::int64_t input_begin = 0;
    std::int64_t input_end = 0;
    std::int64_t score_begin = 0;
    std::int64_t score_end = 0;
};

struct SlidingWindowOptions {
    std::int64_t window = 2048;       // T
    std::int64_t stride = 64;         // S
    std::int64_t batch_windows = 32;  // windows per forward pass
    // The reference's end of stream: every window truncated at the end scores its last S positions again, so up to S
    // targets are counted several times (C4). Off: each target once. On: needs the gate in observe mode.
    bool reference_end_quirk = false;
};

// The windows for a stream of token_count tokens: starts 0, S, 2S, … while a start leaves a target; a window is kept
// when it is at least S long or starts at 0, as the seeds keep them. The first window scores all its targets, later
// ones their last S; without the quirk a window scores only targets no earlier window scored, and a window with none
// is dropped, so every target 1 … n−1 is scored exactly once.
std::vector<SlidingWindow> sliding_window_plan(std::int64_t token_count, const SlidingWindowOptions& options);

struct SlidingWindowResult {
    GateTotals totals;
    std::int64_t windows = 0;
};

// Scores the plan's windows through the gate with the model's current weights (named by weights_digest in the gate's
// events). progress(done_windows, total_windows) after each batch when given.
SlidingWindowResult evaluate_sliding_window(const Gpt& model, ValidationGate& gate, const SlidingWindowOptions& options,
                                            const std::string& weights_digest,
                                            const std::function<void(std::int64_t, std::int64_t)>& progress = {});

// Scores the windows' targets (inputs through the gate) and commits them; the primitive the sliding evaluation and
// score-first TTT share.
void evaluate_score_windows(const Gpt& model, ValidationGate& gate, std::span<const SlidingWindow> windows,
                            std::int64_t batch_windows, const std::string& weights_digest);

struct CausalityProbeResult {
    std::int64_t position = 0;    // p: tokens after it were replaced
    std::int64_t checked = 0;     // targets 1 … p compared
    std::int64_t mismatches = 0;  // of those, NLLs not bit-identical: the evaluator looked ahead (C1)
    std::int64_t first_mismatch = -1;
    std::int64_t changed_after = 0;  // targets after p whose NLL changed (shows the replacement took effect)
    bool passed() const { return mismatches == 0; }
};

// The causality probe: evaluate the stream, then the stream with every token after `position` replaced; an evaluation
// path that respects C1 (TTT included) gives bit-identical NLLs for targets ≤ position. evaluate returns one NLL per
// position (index 0 unused), e.g. ValidationGate::target_nll() of a fresh gate and model.
CausalityProbeResult evaluate_causality_probe(
    const std::vector<std::uint16_t>& tokens, std::int64_t position, std::int64_t vocab_size,
    const std::function<std::vector<float>(const std::vector<std::uint16_t>&)>& evaluate);

}  // namespace pgolf
