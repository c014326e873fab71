// BpbAccumulator tests: hand-computed bpb arithmetic, double accumulation over many targets, merging, zero counts.
#include "core/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numbers>

#include "core/error.h"

namespace pgolf {
namespace {

TEST(BpbAccumulator, OneBitPerTwoBytesIsHalfBpb) {
    BpbAccumulator acc;
    for (int i = 0; i < 4; ++i) {
        acc.add(std::numbers::ln2, 2);  // one bit per target, two bytes per target
    }
    EXPECT_EQ(acc.target_count(), 4);
    EXPECT_EQ(acc.byte_count(), 8);
    EXPECT_DOUBLE_EQ(acc.nll_sum(), 4 * std::numbers::ln2);
    EXPECT_DOUBLE_EQ(acc.bits_per_byte(), 0.5);
    EXPECT_DOUBLE_EQ(acc.mean_loss(), std::numbers::ln2);
    EXPECT_DOUBLE_EQ(acc.tokens_per_byte(), 0.5);
}

TEST(BpbAccumulator, HandComputedMixedTargets) {
    // nll (nats) 1.0, 2.0, 3.5 over 3 + 0 + 5 bytes: bpb = 6.5 / ln 2 / 8, mean loss = 6.5 / 3.
    BpbAccumulator acc;
    acc.add(1.0, 3);
    acc.add(2.0, 0);  // a target with no bytes (e.g. BOS) still counts as a scored token
    acc.add(3.5, 5);
    EXPECT_DOUBLE_EQ(acc.bits_per_byte(), 6.5 / std::log(2.0) / 8.0);
    EXPECT_DOUBLE_EQ(acc.mean_loss(), 6.5 / 3.0);
    EXPECT_DOUBLE_EQ(acc.tokens_per_byte(), 3.0 / 8.0);
    // Same score as the challenge's (mean_loss / ln 2) * (tokens / bytes) formulation.
    EXPECT_NEAR(acc.bits_per_byte(), acc.mean_loss() / std::numbers::ln2 * acc.tokens_per_byte(), 1e-15);
}

TEST(BpbAccumulator, AddSumsEqualsIndividualAdds) {
    BpbAccumulator one_by_one;
    one_by_one.add(0.25, 1);
    one_by_one.add(0.5, 2);
    one_by_one.add(1.25, 4);
    BpbAccumulator summed;
    summed.add_sums(2.0, 3, 7);
    EXPECT_EQ(one_by_one.nll_sum(), summed.nll_sum());
    EXPECT_EQ(one_by_one.target_count(), summed.target_count());
    EXPECT_EQ(one_by_one.byte_count(), summed.byte_count());
    EXPECT_EQ(one_by_one.bits_per_byte(), summed.bits_per_byte());
}

TEST(BpbAccumulator, TenMillionSmallValuesAccumulateInDouble) {
    // 0.1 per target (not exact in binary): a float sum would be off by percents, a double sum by ~1e-9 relative.
    constexpr std::int64_t n = 10'000'000;
    BpbAccumulator acc;
    for (std::int64_t i = 0; i < n; ++i) {
        acc.add(0.1, 3);
    }
    EXPECT_EQ(acc.target_count(), n);
    EXPECT_EQ(acc.byte_count(), 3 * n);
    EXPECT_NEAR(acc.nll_sum(), 1'000'000.0, 1e-3);
    EXPECT_NEAR(acc.mean_loss(), 0.1, 1e-10);
    EXPECT_NEAR(acc.bits_per_byte(), 0.1 / std::numbers::ln2 / 3.0, 1e-10);
}

TEST(BpbAccumulator, MergeEqualsSequential) {
    BpbAccumulator sequential;
    BpbAccumulator first_half;
    BpbAccumulator second_half;
    for (int i = 0; i < 1000; ++i) {
        const double nll = 0.5 + 0.001 * i;  // sums of these are exact enough that order does not matter at 1e-12
        const std::int64_t bytes = i % 7;
        sequential.add(nll, bytes);
        (i < 400 ? first_half : second_half).add(nll, bytes);
    }
    BpbAccumulator merged;
    merged.merge(first_half);
    merged.merge(second_half);
    EXPECT_EQ(merged.target_count(), sequential.target_count());
    EXPECT_EQ(merged.byte_count(), sequential.byte_count());
    EXPECT_NEAR(merged.nll_sum(), sequential.nll_sum(), 1e-9);
    EXPECT_NEAR(merged.bits_per_byte(), sequential.bits_per_byte(), 1e-12);
    EXPECT_NEAR(merged.mean_loss(), sequential.mean_loss(), 1e-12);

    BpbAccumulator empty;
    merged.merge(empty);
    EXPECT_EQ(merged.target_count(), sequential.target_count());
}

TEST(BpbAccumulator, ZeroCountsThrow) {
    const BpbAccumulator empty;
    EXPECT_EQ(empty.nll_sum(), 0.0);
    EXPECT_THROW(empty.mean_loss(), Error);
    EXPECT_THROW(empty.bits_per_byte(), Error);
    EXPECT_THROW(empty.tokens_per_byte(), Error);

    BpbAccumulator no_bytes;
    no_bytes.add(1.0, 0);
    EXPECT_DOUBLE_EQ(no_bytes.mean_loss(), 1.0);
    EXPECT_THROW(no_bytes.bits_per_byte(), Error);
    EXPECT_THROW(no_bytes.tokens_per_byte(), Error);
}

TEST(BpbAccumulator, NegativeCountsThrow) {
    BpbAccumulator acc;
    EXPECT_THROW(acc.add(1.0, -1), Error);
    EXPECT_THROW(acc.add_sums(1.0, -1, 5), Error);
    EXPECT_EQ(acc.target_count(), 0);
    EXPECT_EQ(acc.byte_count(), 0);
}

TEST(BpbAccumulator, NonFiniteLossPropagates) {
    BpbAccumulator acc;
    acc.add(std::numeric_limits<double>::infinity(), 4);
    EXPECT_TRUE(std::isinf(acc.bits_per_byte()));
}

}  // namespace
}  // namespace pgolf
