// Bits-per-byte accounting for evaluation: val_bpb = (sum of nll in nats / ln 2) / sum of target bytes.
// Sums are double and counts int64, as in the challenge, so long evaluations and rank/chunk merges stay exact enough.
#pragma once

#include <cstdint>

namespace pgolf {

class BpbAccumulator {
public:
    void add(double nll_nats, std::int64_t bytes);                            // one scored target
    void add_sums(double nll_sum, std::int64_t targets, std::int64_t bytes);  // a pre-summed chunk
    void merge(const BpbAccumulator& other);

    double nll_sum() const { return nll_sum_; }
    std::int64_t target_count() const { return target_count_; }
    std::int64_t byte_count() const { return byte_count_; }

    // Each throws pgolf::Error when its denominator is zero (nothing scored yet).
    double mean_loss() const;        // nats per target
    double bits_per_byte() const;    // the challenge score
    double tokens_per_byte() const;  // targets per byte, a property of the tokenizer on this text

private:
    double nll_sum_ = 0.0;
    std::int64_t target_count_ = 0;
    std::int64_t byte_count_ = 0;
};

}  // namespace pgolf
