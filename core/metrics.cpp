// Bits-per-byte accumulator; the divisions live here so that every caller reports the same arithmetic.
#include "core/metrics.h"

#include <numbers>
#include <string>

#include "core/error.h"

namespace pgolf {

namespace {

void check_counts(std::int64_t targets, std::int64_t bytes) {
    if (targets < 0 || bytes < 0) {
        throw Error("bpb accumulator: negative count (targets " + std::to_string(targets) + ", bytes " +
                    std::to_string(bytes) + ")");
    }
}

}  // namespace

void BpbAccumulator::add(double nll_nats, std::int64_t bytes) { add_sums(nll_nats, 1, bytes); }

void BpbAccumulator::add_sums(double nll_sum, std::int64_t targets, std::int64_t bytes) {
    // A non-finite nll is accepted on purpose: a diverged model should report nan/inf, not abort the evaluation.
    check_counts(targets, bytes);
    nll_sum_ += nll_sum;
    target_count_ += targets;
    byte_count_ += bytes;
}

void BpbAccumulator::merge(const BpbAccumulator& other) {
    nll_sum_ += other.nll_sum_;
    target_count_ += other.target_count_;
    byte_count_ += other.byte_count_;
}

double BpbAccumulator::mean_loss() const {
    if (target_count_ == 0) {
        throw Error("bpb accumulator: mean loss of zero scored targets");
    }
    return nll_sum_ / static_cast<double>(target_count_);
}

double BpbAccumulator::bits_per_byte() const {
    if (byte_count_ == 0) {
        throw Error("bpb accumulator: bits per byte over zero bytes");
    }
    return (nll_sum_ / std::numbers::ln2) / static_cast<double>(byte_count_);
}

double BpbAccumulator::tokens_per_byte() const {
    if (byte_count_ == 0) {
        throw Error("bpb accumulator: tokens per byte over zero bytes");
    }
    return static_cast<double>(target_count_) / static_cast<double>(byte_count_);
}

}  // namespace pgolf
