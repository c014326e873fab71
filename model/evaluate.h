// Plain validation (the reference's eval_val): the val tokens cut into non-overlapping sequences of seq_len, every
// target scored once, val_loss = mean NLL, val_bpb = val_loss / ln 2 × targets / bytes. Sliding windows, TTT and the
// validation gate arrive with issue 6.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "core/metrics.h"
#include "core/tokenizer.h"
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

}  // namespace pgolf
