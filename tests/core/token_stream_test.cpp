// Train stream and loaders against hand-computed expectations of the reference's semantics (SEED-SYSTEMS.md §1.1).
#include "core/token_stream.h"

#include <gtest/gtest.h>

#include <numeric>

#include "core/error.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using test::TemporaryFolder;

std::vector<std::uint16_t> iota_tokens(std::uint16_t first, int count) {
    std::vector<std::uint16_t> tokens(static_cast<std::size_t>(count));
    std::iota(tokens.begin(), tokens.end(), first);
    return tokens;
}

// Three shards written out of order: 100..109, 200..204, 300..302.
std::vector<std::string> three_shards(const TemporaryFolder& folder) {
    shard_write(folder.path("fineweb_train_000002.bin"), iota_tokens(300, 3));
    shard_write(folder.path("fineweb_train_000000.bin"), iota_tokens(100, 10));
    shard_write(folder.path("fineweb_train_000001.bin"), iota_tokens(200, 5));
    return {folder.path("fineweb_train_000002.bin"), folder.path("fineweb_train_000000.bin"),
            folder.path("fineweb_train_000001.bin")};
}

TEST(TrainTokenStream, SequentialAcrossSortedShardsWithWrapAround) {
    TemporaryFolder folder;
    std::vector<TokenRead> reads;
    TrainTokenStream stream(three_shards(folder), [&](const TokenRead& read) { reads.push_back(read); });

    std::vector<std::uint16_t> expected = iota_tokens(100, 10);
    expected.push_back(200);
    expected.push_back(201);
    EXPECT_EQ(stream.take(12), expected);

    expected = {202, 203, 204, 300, 301, 302, 100, 101, 102, 103};
    EXPECT_EQ(stream.take(10), expected);
    EXPECT_EQ(stream.shard_index(), 0u);
    EXPECT_EQ(stream.position(), 4);

    ASSERT_EQ(reads.size(), 5u);
    EXPECT_EQ(reads[0].path, folder.path("fineweb_train_000000.bin"));
    EXPECT_EQ(reads[0].begin, 0);
    EXPECT_EQ(reads[0].end, 10);
    EXPECT_EQ(reads[1].end, 2);
    EXPECT_EQ(reads[2].begin, 2);
    EXPECT_EQ(reads[2].end, 5);
    EXPECT_EQ(reads[3].path, folder.path("fineweb_train_000002.bin"));
    EXPECT_EQ(reads[4].path, folder.path("fineweb_train_000000.bin"));
    EXPECT_EQ(reads[4].end, 4);
}

TEST(TrainTokenStream, SkipsEmptyShardsAndRefusesAllEmpty) {
    TemporaryFolder folder;
    shard_write(folder.path("a.bin"), {});
    shard_write(folder.path("b.bin"), iota_tokens(7, 2));
    TrainTokenStream stream({folder.path("a.bin"), folder.path("b.bin")});
    EXPECT_EQ(stream.take(5), (std::vector<std::uint16_t>{7, 8, 7, 8, 7}));

    TrainTokenStream empty({folder.path("a.bin")});
    EXPECT_THROW(empty.take(1), Error);
    EXPECT_TRUE(empty.take(0).empty());
    EXPECT_THROW(TrainTokenStream({}), Error);
}

TEST(DistributedTokenLoader, RanksGetDisjointShiftedSpans) {
    TemporaryFolder folder;
    const auto paths = three_shards(folder);
    // world 2, no accumulation, 8 global tokens, seq 4: L = 4, span 5, each call consumes 10 stream tokens.
    DistributedTokenLoader rank0(paths, 0, 2);
    DistributedTokenLoader rank1(paths, 1, 2);

    const TokenBatch a0 = rank0.next_batch(8, 4, 1);
    const TokenBatch a1 = rank1.next_batch(8, 4, 1);
    EXPECT_EQ(a0.rows, 1);
    EXPECT_EQ(a0.seq_len, 4);
    EXPECT_EQ(a0.inputs, (std::vector<std::int64_t>{100, 101, 102, 103}));
    EXPECT_EQ(a0.targets, (std::vector<std::int64_t>{101, 102, 103, 104}));
    EXPECT_EQ(a1.inputs, (std::vector<std::int64_t>{105, 106, 107, 108}));
    EXPECT_EQ(a1.targets, (std::vector<std::int64_t>{106, 107, 108, 109}));

    const TokenBatch b0 = rank0.next_batch(8, 4, 1);
    const TokenBatch b1 = rank1.next_batch(8, 4, 1);
    EXPECT_EQ(b0.inputs, (std::vector<std::int64_t>{200, 201, 202, 203}));
    EXPECT_EQ(b1.inputs, (std::vector<std::int64_t>{300, 301, 302, 100}));
    EXPECT_EQ(b1.targets, (std::vector<std::int64_t>{301, 302, 100, 101}));
}

TEST(DistributedTokenLoader, GradAccumulationAndRowsOnRealShard) {
    const std::string path = test::test_source_path("data/datasets/fineweb10B_sp1024_mini/fineweb_train_000000.bin");
    // One GPU: grad_accum 8, 8 * 2 * 1024 global tokens -> 2 rows of 1024 per micro-batch.
    DistributedTokenLoader loader({path}, 0, 1);
    const TokenBatch batch = loader.next_batch(8 * 2 * 1024, 1024, 8);
    EXPECT_EQ(batch.rows, 2);
    ASSERT_EQ(batch.inputs.size(), 2048u);
    const ShardFile shard = ShardFile::open(path);
    for (std::size_t i = 0; i < 2048; ++i) {
        ASSERT_EQ(batch.inputs[i], shard.tokens()[i]);
        ASSERT_EQ(batch.targets[i], shard.tokens()[i + 1]);
    }
    const TokenBatch next = loader.next_batch(8 * 2 * 1024, 1024, 8);
    EXPECT_EQ(next.inputs[0], shard.tokens()[2049]);
}

TEST(DistributedTokenLoader, RejectsBadShapes) {
    TemporaryFolder folder;
    const auto paths = three_shards(folder);
    EXPECT_THROW(DistributedTokenLoader(paths, 2, 2), Error);
    DistributedTokenLoader loader(paths, 0, 1);
    EXPECT_THROW(loader.next_batch(10, 4, 1), Error);  // 10 tokens is not a multiple of seq 4
    EXPECT_THROW(loader.next_batch(8, 0, 1), Error);
}

TEST(ValidationTokens, ConcatenateAndTruncateToWholeSequences) {
    TemporaryFolder folder;
    shard_write(folder.path("fineweb_val_000000.bin"), iota_tokens(0, 7));
    shard_write(folder.path("fineweb_val_000001.bin"), iota_tokens(7, 6));
    const std::vector<std::string> paths = {folder.path("fineweb_val_000000.bin"),
                                            folder.path("fineweb_val_000001.bin")};
    // 13 tokens: 12 targets. T=4 keeps all 12 targets; T=5 keeps 10.
    EXPECT_EQ(validation_tokens_load(paths, 4), iota_tokens(0, 13));
    EXPECT_EQ(validation_tokens_load(paths, 5), iota_tokens(0, 11));
    EXPECT_THROW(validation_tokens_load(paths, 13), Error);
    EXPECT_EQ(validation_scored_targets(13, 5), 10);
    EXPECT_EQ(validation_scored_targets(1, 5), 0);
}

TEST(ValidationTokens, RealShardAtTheChallengeLengths) {
    const std::string path = test::test_source_path("data/datasets/fineweb10B_sp1024_mini/fineweb_val_000000.bin");
    EXPECT_EQ(validation_tokens_load({path}, 1024).size(), 262145u);  // 262,144 = 256 x 1024 targets
    EXPECT_EQ(validation_tokens_load({path}, 2048).size(), 262145u);
    EXPECT_EQ(validation_tokens_load({path}, 1000).size(), 262001u);
    // The full SP1024 split has 62,021,846 tokens: 62,021,632 scored positions at T=1024 and T=2048.
    EXPECT_EQ(validation_scored_targets(62021846, 1024), 62021632);
    EXPECT_EQ(validation_scored_targets(62021846, 2048), 62021632);
}

}  // namespace
}  // namespace pgolf
