// Tokenizer and byte-table tests: hard-coded known answers, a real-data identity (shard target bytes == text bytes),
// and an entry-by-entry comparison with the independent Python reference (tests/tools/sp_reference.py).
#include "core/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/shard.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

constexpr std::uint32_t kBos = 1;
constexpr std::uint32_t kSpaceId1024 = 939;  // "▁" alone
constexpr std::uint32_t kTheId1024 = 267;    // "▁the"
constexpr std::int64_t kMiniValDocs = 233;
constexpr std::int64_t kMiniValTextBytes = 636461;

using test::test_reference_path;
using test::test_source_path;

const std::string kModel1024 = test_source_path("data/tokenizers/fineweb_1024_bpe.model");
const std::string kModel8192 = test_source_path("data/tokenizers/fineweb_8192_bpe.model");
const std::string kValShard1024 = test_source_path("data/datasets/fineweb10B_sp1024_mini/fineweb_val_000000.bin");
const std::string kValDocsJsonl = test_source_path("data/text/fineweb_mini_val_docs.jsonl");

const Tokenizer& sp1024() {
    static const Tokenizer tokenizer = Tokenizer::load(kModel1024);
    return tokenizer;
}

const Tokenizer& sp8192() {
    static const Tokenizer tokenizer = Tokenizer::load(kModel8192);
    return tokenizer;
}

// ids: (N,), validated by the shard reader.
std::vector<std::uint16_t> read_shard_tokens(const std::string& path) {
    const ShardFile shard = ShardFile::open(path);
    return {shard.tokens().begin(), shard.tokens().end()};
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
    std::ifstream in(path);
    EXPECT_TRUE(in) << "cannot open " << path;
    std::vector<nlohmann::json> records;
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty()) {
            records.push_back(nlohmann::json::parse(line));
        }
    }
    return records;
}

std::vector<std::uint32_t> widen(const std::vector<int>& ids) { return {ids.begin(), ids.end()}; }

std::string write_temp_file(const std::string& name, const std::string& contents) {
    const auto path = std::filesystem::temp_directory_path() / ("pgolf_tokenizer_test_" + name);
    std::ofstream(path, std::ios::binary) << contents;
    return path.string();
}

void expect_error_mentions(const std::function<void()>& action, const std::string& fragment) {
    try {
        action();
        ADD_FAILURE() << "expected pgolf::Error mentioning \"" << fragment << "\"";
    } catch (const Error& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find(fragment), std::string::npos) << message;
        EXPECT_EQ(message.find('\n'), std::string::npos) << "error message should be one line: " << message;
    }
}

// ---- loading ----

TEST(TokenizerLoad, MissingFileNamesPath) {
    const std::string path = test_source_path("data/tokenizers/does_not_exist.model");
    expect_error_mentions([&] { Tokenizer::load(path); }, path);
}

TEST(TokenizerLoad, NonModelFilesNamePath) {
    for (const auto& [name, contents] : std::vector<std::pair<std::string, std::string>>{
             {"garbage.model", std::string("\xff\xfe\x00\x13 this is not a protobuf \x01\x02", 30)},
             {"text.model", "hello world\nthis is a vocab file, not a model\n"},
             {"empty.model", ""},
         }) {
        const std::string path = write_temp_file(name, contents);
        expect_error_mentions([&] { Tokenizer::load(path); }, path);
        std::filesystem::remove(path);
    }
}

TEST(TokenizerLoad, DirectoryNamesPath) {
    const std::string path = test_source_path("data/tokenizers");
    expect_error_mentions([&] { Tokenizer::load(path); }, path + ": is a directory");
}

TEST(TokenizerLoad, SpecialIds) {
    EXPECT_EQ(sp1024().vocab_size(), 1024);
    EXPECT_EQ(sp1024().bos_id(), 1);
    EXPECT_EQ(sp1024().eos_id(), 2);
    EXPECT_EQ(sp8192().vocab_size(), 8192);
    EXPECT_EQ(sp8192().bos_id(), 1);
    EXPECT_EQ(sp8192().eos_id(), 2);
    EXPECT_EQ(sp1024().path(), kModel1024);
}

// ---- encode / decode ----

TEST(TokenizerEncode, KnownAnswersSp1024) {
    EXPECT_EQ(sp1024().encode("Hello world, the year 2024 was great."),
              widen({981, 465, 943, 458, 401, 962, 267, 570, 939, 976, 970, 976, 998, 420, 835, 960}));
    EXPECT_EQ(sp1024().encode("\U0001F642 na\u00efve caf\u00e9"),
              widen({244, 163, 157, 134, 312, 942, 199, 179, 305, 274, 942, 956, 199, 173}));
    EXPECT_TRUE(sp1024().encode("").empty());
}

TEST(TokenizerEncode, KnownAnswersSp8192) {
    EXPECT_EQ(sp8192().encode("Hello world, the year 2024 was great."),
              widen({8150, 6437, 962, 8131, 267, 566, 8108, 8145, 8139, 8145, 8168, 417, 837, 8129}));
}

TEST(TokenizerDecode, RoundTripAndErrors) {
    const std::string text = "Hello world, the year 2024 was great. \U0001F642 na\u00efve caf\u00e9";
    EXPECT_EQ(sp1024().decode(sp1024().encode(text)), text);
    EXPECT_EQ(sp1024().decode({}), "");
    const std::vector<std::uint32_t> bad = {981, 1024};
    expect_error_mentions([&] { sp1024().decode(bad); }, "1024");
}

TEST(TokenizerPiece, PiecesAndErrors) {
    EXPECT_EQ(sp1024().piece(static_cast<int>(kSpaceId1024)), "\xE2\x96\x81");
    EXPECT_EQ(sp1024().piece(static_cast<int>(kTheId1024)), "\xE2\x96\x81the");
    EXPECT_EQ(sp1024().piece(1), "<s>");
    EXPECT_EQ(sp1024().piece(4), "<0x00>");
    expect_error_mentions([&] { sp1024().piece(-1); }, "-1");
    expect_error_mentions([&] { sp1024().piece(1024); }, "1024");
}

// ---- byte tables ----

TEST(TokenizerByteTables, HandCheckedEntriesSp1024) {
    const TokenizerByteTables tables = sp1024().byte_tables();
    ASSERT_EQ(tables.size(), 1024u);
    ASSERT_EQ(tables.has_leading_space.size(), 1024u);
    ASSERT_EQ(tables.is_boundary.size(), 1024u);
    for (std::size_t id = 0; id < 4; ++id) {  // <pad> <s> </s> <unk>
        EXPECT_EQ(tables.base_bytes[id], 0) << id;
        EXPECT_EQ(tables.has_leading_space[id], 0) << id;
        EXPECT_EQ(tables.is_boundary[id], 1) << id;
    }
    for (std::size_t id = 4; id < 260; ++id) {  // <0x00>..<0xFF>
        EXPECT_EQ(tables.base_bytes[id], 1) << id;
        EXPECT_EQ(tables.has_leading_space[id], 0) << id;
        EXPECT_EQ(tables.is_boundary[id], 0) << id;
    }
    struct Expected {
        std::size_t id;
        int base;
        int leading_space;
    };
    for (const Expected& e : {
             Expected{kSpaceId1024, 0, 1},  // "▁"
             Expected{kTheId1024, 3, 1},    // "▁the"
             Expected{262, 2, 0},           // "in"
             Expected{981, 1, 0},           // "H"
             Expected{983, 3, 0},           // "’" (U+2019, 3 UTF-8 bytes)
             Expected{502, 3, 1},           // "▁“"
             Expected{923, 4, 0},           // ".”"
         }) {
        EXPECT_EQ(tables.base_bytes[e.id], e.base) << e.id;
        EXPECT_EQ(tables.has_leading_space[e.id], e.leading_space) << e.id;
        EXPECT_EQ(tables.is_boundary[e.id], 0) << e.id;
    }
}

TEST(TokenizerByteTables, ModelVocabPadsWithBoundaries) {
    const TokenizerByteTables padded = sp1024().byte_tables(1100);
    ASSERT_EQ(padded.size(), 1100u);
    for (std::size_t id = 1024; id < 1100; ++id) {
        EXPECT_EQ(padded.base_bytes[id], 0);
        EXPECT_EQ(padded.has_leading_space[id], 0);
        EXPECT_EQ(padded.is_boundary[id], 1);
    }
    EXPECT_EQ(sp1024().byte_tables(512).size(), 1024u);  // never smaller than the sp vocab
    EXPECT_EQ(padded.base_bytes[kTheId1024], 3);
}

TEST(TokenizerByteTables, TargetBytesDependOnPredecessor) {
    const TokenizerByteTables tables = sp1024().byte_tables();
    EXPECT_EQ(tables.target_bytes(kBos, kTheId1024), 3);  // after BOS the space is not text
    EXPECT_EQ(tables.target_bytes(0, kTheId1024), 3);     // <pad>, also a boundary
    EXPECT_EQ(tables.target_bytes(981, kTheId1024), 4);   // after "H" the space is one byte
    EXPECT_EQ(tables.target_bytes(4, kTheId1024), 4);     // byte pieces are not boundaries
    EXPECT_EQ(tables.target_bytes(kBos, kSpaceId1024), 0);
    EXPECT_EQ(tables.target_bytes(981, kSpaceId1024), 1);
    EXPECT_EQ(tables.target_bytes(981, 262), 2);  // no leading space: predecessor irrelevant
    EXPECT_EQ(tables.target_bytes(kBos, 262), 2);
    EXPECT_EQ(tables.target_bytes(981, kBos), 0);
    expect_error_mentions([&] { tables.target_bytes(1024, 262); }, "1024");
    expect_error_mentions([&] { tables.target_bytes(262, 5000); }, "5000");
}

TEST(TokenizerByteTables, CountTargetBytes) {
    const TokenizerByteTables tables = sp1024().byte_tables();
    EXPECT_EQ(tokenizer_count_target_bytes(tables, {}), 0);
    const std::vector<std::uint16_t> just_bos = {1};
    EXPECT_EQ(tokenizer_count_target_bytes(tables, just_bos), 0);
    // BOS "Hello world, the year 2024 was great." : 37 bytes of text.
    std::vector<std::uint16_t> stream = {1};
    for (const std::uint32_t id : sp1024().encode("Hello world, the year 2024 was great.")) {
        stream.push_back(static_cast<std::uint16_t>(id));
    }
    EXPECT_EQ(tokenizer_count_target_bytes(tables, stream), 37);
    const std::vector<std::uint16_t> bad = {1, 981, 2000};
    expect_error_mentions([&] { tokenizer_count_target_bytes(tables, bad); }, "2000");
    const std::vector<std::uint16_t> bad_first = {4000, 981};
    expect_error_mentions([&] { tokenizer_count_target_bytes(tables, bad_first); }, "4000");
}

// Real-data identity: scored through the tables, each document's tokens (after its BOS) account for exactly the
// UTF-8 bytes of its text. This checks the tables independently of the Python reference.
TEST(TokenizerMiniValShard, DocumentTargetBytesEqualTextBytes) {
    const TokenizerByteTables tables = sp1024().byte_tables();
    const std::vector<std::uint16_t> tokens = read_shard_tokens(kValShard1024);
    ASSERT_GT(tokens.size(), 1u);
    const std::vector<nlohmann::json> docs = read_jsonl(kValDocsJsonl);
    ASSERT_EQ(static_cast<std::int64_t>(docs.size()), kMiniValDocs);

    std::int64_t text_bytes_total = 0;
    std::int64_t doc_bytes_total = 0;
    for (std::size_t d = 0; d < docs.size(); ++d) {
        const std::string text = docs[d].at("text").get<std::string>();
        const auto offset = docs[d].at("token_offset").get<std::size_t>();
        const auto count = docs[d].at("n_tokens").get<std::size_t>();
        ASSERT_GE(offset, 1u) << d;
        ASSERT_LE(offset + count, tokens.size()) << d;
        ASSERT_EQ(tokens[offset - 1], kBos) << "doc " << d << " not preceded by BOS";
        // span [offset-1, offset+count): BOS then the document; BOS itself is not a target.
        const std::span<const std::uint16_t> with_bos(tokens.data() + offset - 1, count + 1);
        const std::int64_t doc_bytes = tokenizer_count_target_bytes(tables, with_bos);
        EXPECT_EQ(doc_bytes, static_cast<std::int64_t>(text.size())) << "doc " << d;
        const std::vector<std::uint32_t> encoded = sp1024().encode(text);
        EXPECT_TRUE(std::equal(encoded.begin(), encoded.end(), with_bos.begin() + 1, with_bos.end()))
            << "doc " << d << ": encode(text) differs from the shard";
        text_bytes_total += static_cast<std::int64_t>(text.size());
        doc_bytes_total += doc_bytes;
    }
    EXPECT_EQ(text_bytes_total, kMiniValTextBytes);
    EXPECT_EQ(doc_bytes_total, kMiniValTextBytes);

    const std::int64_t shard_bytes = tokenizer_count_target_bytes(tables, tokens);
    const double tokens_per_byte = static_cast<double>(tokens.size() - 1) / static_cast<double>(shard_bytes);
    std::cout << std::setprecision(10) << "[ info     ] mini val shard: " << tokens.size() << " tokens, " << shard_bytes
              << " target bytes, tokens/byte " << tokens_per_byte << "\n";
    RecordProperty("shard_target_bytes", std::to_string(shard_bytes));
    RecordProperty("shard_tokens_per_byte", std::to_string(tokens_per_byte));
    EXPECT_GE(shard_bytes, kMiniValTextBytes);  // the shard continues past the 233 listed documents
}

// ---- comparison with the Python reference ----

// The JSON's paths may be relative to the repository root, which is where the fixture normally runs.
std::string resolve_reference_path(const std::string& path) {
    if (std::filesystem::path(path).is_absolute() || std::filesystem::exists(path)) {
        return path;
    }
    return test_source_path(path);
}

void compare_with_reference(const char* file_name, const Tokenizer& tokenizer) {
    const std::string reference_path = test_reference_path(file_name);
    if (reference_path.empty()) {
        GTEST_SKIP() << "PGOLF_REFERENCE_DIR is not set; run through ctest, or run tests/tools/sp_reference.py and "
                        "point it at the output folder";
    }
    std::ifstream in(reference_path);
    ASSERT_TRUE(in) << "cannot open " << reference_path;
    const nlohmann::json reference = nlohmann::json::parse(in);

    ASSERT_EQ(reference.at("vocab_size").get<int>(), tokenizer.vocab_size());
    EXPECT_EQ(reference.at("bos_id").get<int>(), tokenizer.bos_id());
    EXPECT_EQ(reference.at("eos_id").get<int>(), tokenizer.eos_id());

    const TokenizerByteTables tables = tokenizer.byte_tables(reference.value("model_vocab_size", 0));
    const auto base_bytes = reference.at("base_bytes").get<std::vector<int>>();
    const auto has_leading_space = reference.at("has_leading_space").get<std::vector<int>>();
    const auto is_boundary = reference.at("is_boundary").get<std::vector<int>>();
    ASSERT_EQ(base_bytes.size(), tables.size());
    ASSERT_EQ(has_leading_space.size(), tables.size());
    ASSERT_EQ(is_boundary.size(), tables.size());
    int mismatches = 0;
    for (std::size_t id = 0; id < tables.size() && mismatches < 20; ++id) {
        const bool same = tables.base_bytes[id] == base_bytes[id] &&
                          tables.has_leading_space[id] == has_leading_space[id] &&
                          tables.is_boundary[id] == is_boundary[id];
        if (!same) {
            ++mismatches;
            ADD_FAILURE() << "id " << id << " (" << tokenizer.piece(static_cast<int>(id)) << "): C++ base "
                          << tables.base_bytes[id] << " space " << int{tables.has_leading_space[id]} << " boundary "
                          << int{tables.is_boundary[id]} << ", Python base " << base_bytes[id] << " space "
                          << has_leading_space[id] << " boundary " << is_boundary[id];
        }
    }

    const auto& encodings = reference.at("encodings");
    EXPECT_GE(encodings.size(), 10u);
    for (const auto& entry : encodings) {
        const std::string text = entry.at("text").get<std::string>();
        EXPECT_EQ(tokenizer.encode(text), entry.at("ids").get<std::vector<std::uint32_t>>()) << "text: " << text;
    }

    if (reference.contains("shard")) {
        const auto& shard = reference.at("shard");
        const std::vector<std::uint16_t> tokens =
            read_shard_tokens(resolve_reference_path(shard.at("path").get<std::string>()));
        EXPECT_EQ(static_cast<std::int64_t>(tokens.size()), shard.at("n_tokens").get<std::int64_t>());
        EXPECT_EQ(std::count(tokens.begin(), tokens.end(), static_cast<std::uint16_t>(tokenizer.bos_id())),
                  shard.at("n_bos").get<std::int64_t>());
        EXPECT_EQ(tokenizer_count_target_bytes(tables, tokens), shard.at("target_bytes").get<std::int64_t>());
    }

    if (reference.contains("jsonl")) {
        const auto& jsonl = reference.at("jsonl");
        const auto text_bytes = jsonl.at("text_bytes").get<std::vector<std::int64_t>>();
        const auto encoded_bytes = jsonl.at("encoded_target_bytes").get<std::vector<std::int64_t>>();
        const std::string jsonl_path = resolve_reference_path(jsonl.at("path").get<std::string>());
        const std::vector<nlohmann::json> docs = read_jsonl(jsonl_path);
        ASSERT_EQ(docs.size(), text_bytes.size());
        ASSERT_EQ(docs.size(), encoded_bytes.size());
        std::int64_t text_bytes_total = 0;
        for (std::size_t d = 0; d < docs.size(); ++d) {
            const std::string text = docs[d].at("text").get<std::string>();
            std::vector<std::uint16_t> stream = {static_cast<std::uint16_t>(tokenizer.bos_id())};
            for (const std::uint32_t id : tokenizer.encode(text)) {
                stream.push_back(static_cast<std::uint16_t>(id));
            }
            EXPECT_EQ(static_cast<std::int64_t>(text.size()), text_bytes[d]) << "doc " << d;
            text_bytes_total += static_cast<std::int64_t>(text.size());
            EXPECT_EQ(tokenizer_count_target_bytes(tables, stream), encoded_bytes[d]) << "doc " << d;
        }
        EXPECT_EQ(jsonl.at("text_bytes_total").get<std::int64_t>(), text_bytes_total);
    }
}

TEST(TokenizerReference, Sp1024MatchesPython) { compare_with_reference("sp1024.json", sp1024()); }

TEST(TokenizerReference, Sp8192MatchesPython) { compare_with_reference("sp8192.json", sp8192()); }

TEST(TokenizerPiece, StandaloneSpacePiece) {
    EXPECT_EQ(sp1024().piece(static_cast<int>(kSpaceId1024)), "\xE2\x96\x81");
    EXPECT_TRUE(tokenizer_has_standalone_space(sp1024()));
    EXPECT_TRUE(tokenizer_has_standalone_space(sp8192()));
}

}  // namespace
}  // namespace pgolf
