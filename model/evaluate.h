// Plain validation (the reference's eval_val): the val tokens cut into non-overlapping sequences of seq_len, every
// target scored once, val_loss = mean NLL, val_bpb = val_loss / ln 2 × targets / bytes. Sliding windows, TTT and the
// validation gate arrive with issue 6.
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

}  // namespace pgolf
