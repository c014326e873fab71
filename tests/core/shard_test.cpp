// Shard format: round trip, every malformed-file case (each a one-line error naming the file), atomic writes.
#include "core/shard.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/file_util.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using test::TemporaryFolder;

std::vector<std::uint8_t> raw_shard(std::int32_t magic, std::int32_t version, std::int32_t count,
                                    const std::vector<std::uint16_t>& tokens) {
    std::vector<std::uint8_t> bytes(1024 + 2 * tokens.size(), 0);
    const std::int32_t header[3] = {magic, version, count};
    std::memcpy(bytes.data(), header, sizeof(header));
    std::memcpy(bytes.data() + 1024, tokens.data(), 2 * tokens.size());
    return bytes;
}

// The error message must name the file and contain the expected problem, on one line.
void expect_open_error(const std::string& path, const std::string& problem) {
    try {
        ShardFile::open(path);
        FAIL() << "expected an error containing '" << problem << "'";
    } catch (const Error& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find(path), std::string::npos) << message;
        EXPECT_NE(message.find(problem), std::string::npos) << message;
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
}

TEST(Shard, WriteThenReadRoundTrips) {
    TemporaryFolder folder;
    const std::vector<std::uint16_t> tokens = {1, 5, 1023, 0, 65535, 7};
    shard_write(folder.path("a.bin"), tokens);
    const auto bytes = test::test_read_file(folder.path("a.bin"));
    ASSERT_EQ(bytes.size(), 1024u + 2 * tokens.size());
    std::int32_t header[256];
    std::memcpy(header, bytes.data(), sizeof(header));
    EXPECT_EQ(header[0], 20240520);
    EXPECT_EQ(header[1], 1);
    EXPECT_EQ(header[2], 6);
    for (int i = 3; i < 256; ++i) EXPECT_EQ(header[i], 0) << "header int " << i;

    const ShardFile shard = ShardFile::open(folder.path("a.bin"));
    EXPECT_EQ(shard.token_count(), 6);
    EXPECT_EQ(shard.file_bytes(), 1036);
    EXPECT_EQ(std::vector<std::uint16_t>(shard.tokens().begin(), shard.tokens().end()), tokens);
}

TEST(Shard, ZeroTokenShardIsValid) {
    TemporaryFolder folder;
    shard_write(folder.path("z.bin"), {});
    const ShardFile shard = ShardFile::open(folder.path("z.bin"));
    EXPECT_EQ(shard.token_count(), 0);
    EXPECT_TRUE(shard.tokens().empty());
}

TEST(Shard, MissingFile) { expect_open_error("/nonexistent/pgolf/shard.bin", "cannot open"); }

TEST(Shard, DirectoryIsNotAShard) {
    TemporaryFolder folder;
    expect_open_error(folder.root(), "not a regular file");
}

TEST(Shard, EmptyFile) {
    TemporaryFolder folder;
    test::test_write_file(folder.path("e.bin"), {});
    expect_open_error(folder.path("e.bin"), "empty file");
}

TEST(Shard, TruncatedHeader) {
    TemporaryFolder folder;
    auto bytes = raw_shard(kShardMagic, 1, 0, {});
    bytes.resize(600);
    test::test_write_file(folder.path("h.bin"), bytes);
    expect_open_error(folder.path("h.bin"), "truncated header: 600 bytes");
}

TEST(Shard, BadMagic) {
    TemporaryFolder folder;
    test::test_write_file(folder.path("m.bin"), raw_shard(12345, 1, 2, {1, 2}));
    expect_open_error(folder.path("m.bin"), "bad magic 12345");
}

TEST(Shard, BadVersion) {
    TemporaryFolder folder;
    test::test_write_file(folder.path("v.bin"), raw_shard(kShardMagic, 2, 2, {1, 2}));
    expect_open_error(folder.path("v.bin"), "unsupported version 2");
}

TEST(Shard, NegativeCount) {
    TemporaryFolder folder;
    test::test_write_file(folder.path("n.bin"), raw_shard(kShardMagic, 1, -5, {}));
    expect_open_error(folder.path("n.bin"), "negative token count -5");
}

TEST(Shard, TruncatedPayload) {
    TemporaryFolder folder;
    test::test_write_file(folder.path("t.bin"), raw_shard(kShardMagic, 1, 10, {1, 2, 3}));
    expect_open_error(folder.path("t.bin"), "truncated: header says 10 tokens (1044 bytes) but the file has 1030");
}

TEST(Shard, OddTrailingByteIsASizeMismatch) {
    TemporaryFolder folder;
    auto bytes = raw_shard(kShardMagic, 1, 2, {1, 2});
    bytes.push_back(0);
    test::test_write_file(folder.path("o.bin"), bytes);
    expect_open_error(folder.path("o.bin"), "size mismatch: header says 2 tokens (1028 bytes) but the file has 1029");
}

TEST(Shard, TrailingTokensAreASizeMismatch) {
    TemporaryFolder folder;
    test::test_write_file(folder.path("x.bin"), raw_shard(kShardMagic, 1, 2, {1, 2, 3, 4}));
    expect_open_error(folder.path("x.bin"), "trailing data");
}

TEST(Shard, TokenOutsideVocabulary) {
    TemporaryFolder folder;
    shard_write(folder.path("v.bin"), std::vector<std::uint16_t>{1, 10, 1023, 1024, 5});
    const ShardFile shard = ShardFile::open(folder.path("v.bin"));
    EXPECT_NO_THROW(shard_check_vocab(shard, 1025));
    try {
        shard_check_vocab(shard, 1024);
        FAIL() << "expected a vocabulary error";
    } catch (const Error& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find(folder.path("v.bin")), std::string::npos);
        EXPECT_NE(message.find("token id 1024 at index 3"), std::string::npos) << message;
    }
}

TEST(Shard, RealValidationShardHeader) {
    const ShardFile shard =
        ShardFile::open(test::test_source_path("data/datasets/fineweb10B_sp1024_mini/fineweb_val_000000.bin"));
    EXPECT_EQ(shard.token_count(), 262145);
    EXPECT_EQ(shard.file_bytes(), 525314);
    EXPECT_EQ(shard.tokens()[0], 1);  // every document starts with BOS
    EXPECT_NO_THROW(shard_check_vocab(shard, 1024));
    EXPECT_THROW(shard_check_vocab(shard, 1000), Error);
}

TEST(Shard, MoveKeepsTheMapping) {
    TemporaryFolder folder;
    shard_write(folder.path("m.bin"), std::vector<std::uint16_t>{9, 8, 7});
    ShardFile first = ShardFile::open(folder.path("m.bin"));
    ShardFile second = std::move(first);
    EXPECT_EQ(second.tokens()[2], 7);
    EXPECT_EQ(first.token_count(), 0);  // NOLINT(bugprone-use-after-move): moved-from state is defined as empty
}

TEST(Shard, GlobIsSortedAndFailsWhenEmpty) {
    TemporaryFolder folder;
    for (const char* name : {"fineweb_train_000002.bin", "fineweb_train_000000.bin", "fineweb_train_000001.bin"}) {
        shard_write(folder.path(name), std::vector<std::uint16_t>{1});
    }
    const auto paths = shard_glob(folder.path("fineweb_train_*.bin"));
    ASSERT_EQ(paths.size(), 3u);
    EXPECT_EQ(paths[0], folder.path("fineweb_train_000000.bin"));
    EXPECT_EQ(paths[2], folder.path("fineweb_train_000002.bin"));
    EXPECT_THROW(shard_glob(folder.path("fineweb_val_*.bin")), Error);
}

TEST(AtomicFileWriter, UncommittedWriteLeavesTheOldFile) {
    TemporaryFolder folder;
    const std::string path = folder.path("f.txt");
    file_write_bytes(path, "old", 3);
    {
        AtomicFileWriter writer(path);
        writer.write("new content", 11);
        // destroyed without commit: a crash or exception mid-write
    }
    const auto bytes = file_read_bytes(path);
    EXPECT_EQ(std::string(bytes.begin(), bytes.end()), "old");
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(folder.root()), {}), 1) << "temporary left behind";
}

TEST(AtomicFileWriter, CommitReplaces) {
    TemporaryFolder folder;
    const std::string path = folder.path("f.txt");
    file_write_bytes(path, "old", 3);
    file_write_bytes(path, "newer", 5);
    const auto bytes = file_read_bytes(path);
    EXPECT_EQ(std::string(bytes.begin(), bytes.end()), "newer");
    EXPECT_THROW(file_read_bytes(folder.path("missing")), Error);
    EXPECT_THROW(file_write_bytes("/nonexistent/dir/f", "x", 1), Error);
}

}  // namespace
}  // namespace pgolf
