// SHA-256 known answers: the FIPS 180-2 vectors and the published digest of a shipped shard.
#include "core/digest.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

TEST(Digest, KnownAnswers) {
    EXPECT_EQ(digest_sha256_hex(std::string_view("")),
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(digest_sha256_hex(std::string_view("abc")),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(digest_sha256_hex(std::string_view("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Digest, FileMatchesPublishedShardDigest) {
    // sha256 from data/SOURCES.md
    EXPECT_EQ(
        digest_sha256_file_hex(test::test_source_path("data/datasets/fineweb10B_sp1024_mini/fineweb_val_000000.bin")),
        "62512cec9ab5607c370dc7304bb5021e6afb3ff2a7560d2308131e1489e54a48");
    EXPECT_THROW(digest_sha256_file_hex("/nonexistent/file"), Error);
}

TEST(Digest, BytesAndTextAgree) {
    const std::vector<std::uint8_t> bytes = {'p', 'g', 'o', 'l', 'f'};
    EXPECT_EQ(digest_sha256_hex(bytes), digest_sha256_hex(std::string_view("pgolf")));
}

}  // namespace
}  // namespace pgolf
