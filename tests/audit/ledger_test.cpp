// Tests for audit/ledger: a ledger written by LedgerWriter reads back intact, every edit, deletion, reordering or
// malformed line is named where the chain (or the head's anchor) exposes it, and crash shapes are not tampering.
#include "audit/ledger.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/digest.h"
#include "core/error.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using namespace pgolf::test;

constexpr int event_count = 10;

const char* phase_of(int i) { return i < 3 ? "setup" : i < 7 ? "train" : "evaluate"; }

nlohmann::ordered_json payload_of(int i) { return {{"index", i}, {"note", "event-" + std::to_string(i)}}; }

void append_event(LedgerWriter& writer, int i) {
    writer.append(10.0 * i + 0.5, phase_of(i), "event_" + std::to_string(i), payload_of(i));
}

std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

void write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
    std::string text;
    for (const std::string& line : lines) text += line + "\n";
    write_text(path, text);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string problems_text(const LedgerReading& reading) {
    std::string text;
    for (const LedgerProblem& problem : reading.problems) text += problem.message + "\n";
    return text;
}

// The first problem on a line, or nullptr.
const LedgerProblem* problem_at(const LedgerReading& reading, std::int64_t line) {
    for (const LedgerProblem& problem : reading.problems) {
        if (problem.line == line) return &problem;
    }
    return nullptr;
}

class LedgerTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::filesystem::create_directories(folder_.path("original"));
        LedgerWriter writer(original());
        for (int i = 0; i < event_count; ++i) append_event(writer, i);
        // Destroying the writer syncs: the head anchors all ten lines.
    }

    std::string original() const { return folder_.path("original/ledger.jsonl"); }

    // A copy of the ledger and its head in a folder of its own, its text lines passed through edit.
    std::string tampered(const std::string& name, const std::function<void(std::vector<std::string>&)>& edit) {
        const std::string directory = folder_.path(name);
        std::filesystem::create_directories(directory);
        std::filesystem::copy_file(folder_.path(std::string("original/") + ledger_head_file_name),
                                   directory + "/" + ledger_head_file_name);
        std::vector<std::string> lines = read_lines(original());
        edit(lines);
        write_lines(directory + "/" + ledger_file_name, lines);
        return directory + "/" + ledger_file_name;
    }

    TemporaryFolder folder_;
};

TEST_F(LedgerTest, IntactLedgerReadsBackWithoutProblems) {
    const LedgerReading reading = ledger_read(original());
    EXPECT_TRUE(reading.problems.empty()) << problems_text(reading);
    ASSERT_EQ(reading.entries.size(), static_cast<std::size_t>(event_count));
    for (int i = 0; i < event_count; ++i) {
        const LedgerEntry& entry = reading.entries[i];
        EXPECT_TRUE(entry.parsed);
        EXPECT_EQ(entry.line, i + 1);
        EXPECT_EQ(entry.seq, i);
        EXPECT_DOUBLE_EQ(entry.t_ms, 10.0 * i + 0.5);
        EXPECT_EQ(entry.phase, phase_of(i));
        EXPECT_EQ(entry.event, "event_" + std::to_string(i));
        EXPECT_EQ(entry.payload, payload_of(i));
    }
    ASSERT_TRUE(reading.head.has_value()) << reading.head_problem;
    EXPECT_EQ(reading.head->lines, event_count);
    EXPECT_EQ(reading.head->last_line_sha256, digest_sha256_hex(std::string_view(read_lines(original()).back())));
    EXPECT_TRUE(reading.head_problem.empty());
    EXPECT_EQ(reading.unanchored_lines, 0);
    EXPECT_FALSE(reading.truncated_tail);
}

TEST_F(LedgerTest, LinesChainFromTheGenesisHash) {
    const std::vector<std::string> lines = read_lines(original());
    ASSERT_EQ(lines.size(), static_cast<std::size_t>(event_count));
    EXPECT_EQ(nlohmann::json::parse(lines[0])["prev"], ledger_genesis_hash);
    EXPECT_EQ(nlohmann::json::parse(lines[4])["prev"], digest_sha256_hex(std::string_view(lines[3])));
}

TEST_F(LedgerTest, EmptyLedgerHasAHeadAnchoringNothing) {
    const std::string directory = folder_.path("empty");
    std::filesystem::create_directories(directory);
    { LedgerWriter writer(directory + "/" + ledger_file_name); }
    const LedgerReading reading = ledger_read(directory + "/" + ledger_file_name);
    EXPECT_TRUE(reading.entries.empty());
    EXPECT_TRUE(reading.problems.empty()) << problems_text(reading);
    ASSERT_TRUE(reading.head.has_value()) << reading.head_problem;
    EXPECT_EQ(reading.head->lines, 0);
}

TEST_F(LedgerTest, EditedPayloadIsNamedByTheNextLine) {
    const LedgerReading reading = ledger_read(tampered("edited", [](std::vector<std::string>& lines) {
        const std::size_t at = lines[3].find("event-3");
        ASSERT_NE(at, std::string::npos);
        lines[3].replace(at, 7, "event-X");
    }));
    ASSERT_EQ(reading.problems.size(), 1u) << problems_text(reading);
    EXPECT_EQ(reading.problems[0].line, 5);
    EXPECT_TRUE(contains(reading.problems[0].message, "line 5")) << reading.problems[0].message;
    EXPECT_TRUE(contains(reading.problems[0].message, "previous-line hash does not match line 4"))
        << reading.problems[0].message;
    // The edited line itself still parses: only its successor can tell.
    EXPECT_TRUE(reading.entries[3].parsed);
    EXPECT_EQ(reading.entries[3].payload["note"], "event-X");
}

TEST_F(LedgerTest, DeletedLineIsNamedWhereTheSequenceSkips) {
    const LedgerReading reading =
        ledger_read(tampered("deleted", [](std::vector<std::string>& lines) { lines.erase(lines.begin() + 3); }));
    ASSERT_FALSE(reading.problems.empty());
    EXPECT_EQ(reading.problems[0].line, 4);
    EXPECT_TRUE(contains(reading.problems[0].message, "line 4")) << reading.problems[0].message;
    EXPECT_TRUE(contains(reading.problems[0].message, "sequence number 4, expected 3")) << problems_text(reading);
    // The head still anchors ten lines, so the shortened file is exposed at its end as well.
    EXPECT_NE(problem_at(reading, event_count), nullptr) << problems_text(reading);
}

TEST_F(LedgerTest, SwappedLinesAreNamed) {
    const LedgerReading reading =
        ledger_read(tampered("swapped", [](std::vector<std::string>& lines) { std::swap(lines[3], lines[4]); }));
    ASSERT_FALSE(reading.problems.empty());
    EXPECT_EQ(reading.problems[0].line, 4);
    EXPECT_TRUE(contains(reading.problems[0].message, "line 4")) << reading.problems[0].message;
    EXPECT_NE(problem_at(reading, 5), nullptr) << problems_text(reading);
    EXPECT_TRUE(contains(problems_text(reading), "sequence number 4, expected 3")) << problems_text(reading);
    EXPECT_TRUE(contains(problems_text(reading), "sequence number 3, expected 4")) << problems_text(reading);
    // Lines before the swap are untouched.
    EXPECT_EQ(problem_at(reading, 3), nullptr);
}

TEST_F(LedgerTest, EditedLastLineIsCaughtByTheHead) {
    const LedgerReading reading = ledger_read(tampered("last_edited", [](std::vector<std::string>& lines) {
        const std::size_t at = lines.back().find("event-9");
        ASSERT_NE(at, std::string::npos);
        lines.back().replace(at, 7, "event-Z");
    }));
    ASSERT_EQ(reading.problems.size(), 1u) << problems_text(reading);
    EXPECT_EQ(reading.problems[0].line, event_count);
    EXPECT_TRUE(contains(reading.problems[0].message, "line 10")) << reading.problems[0].message;
    EXPECT_TRUE(contains(reading.problems[0].message, "head")) << reading.problems[0].message;
}

TEST_F(LedgerTest, DeletedLastLineIsCaughtByTheHead) {
    const LedgerReading reading =
        ledger_read(tampered("last_deleted", [](std::vector<std::string>& lines) { lines.pop_back(); }));
    EXPECT_EQ(reading.entries.size(), static_cast<std::size_t>(event_count - 1));
    ASSERT_EQ(reading.problems.size(), 1u) << problems_text(reading);
    EXPECT_EQ(reading.problems[0].line, event_count);
    EXPECT_TRUE(contains(reading.problems[0].message, "line 10")) << reading.problems[0].message;
    EXPECT_TRUE(contains(reading.problems[0].message, "anchors 10 lines")) << reading.problems[0].message;
}

TEST_F(LedgerTest, GarbageLineIsNotALedgerEvent) {
    const LedgerReading reading =
        ledger_read(tampered("garbage", [](std::vector<std::string>& lines) { lines[3] = "this is not json {"; }));
    const LedgerProblem* problem = problem_at(reading, 4);
    ASSERT_NE(problem, nullptr) << problems_text(reading);
    EXPECT_TRUE(contains(problem->message, "line 4")) << problem->message;
    EXPECT_TRUE(contains(problem->message, "not a ledger event")) << problem->message;
    ASSERT_EQ(reading.entries.size(), static_cast<std::size_t>(event_count));
    EXPECT_FALSE(reading.entries[3].parsed);
    // The chain continues from the garbage's own hash, so the next line is broken too.
    EXPECT_NE(problem_at(reading, 5), nullptr) << problems_text(reading);
}

TEST_F(LedgerTest, JsonWithoutTheLedgerFieldsIsNotALedgerEvent) {
    const LedgerReading reading =
        ledger_read(tampered("shape", [](std::vector<std::string>& lines) { lines[3] = R"({"seq":3})"; }));
    const LedgerProblem* problem = problem_at(reading, 4);
    ASSERT_NE(problem, nullptr) << problems_text(reading);
    EXPECT_TRUE(contains(problem->message, "not a ledger event")) << problem->message;
}

TEST_F(LedgerTest, DuplicatedKeyIsRefused) {
    const LedgerReading reading = ledger_read(tampered("duplicate", [](std::vector<std::string>& lines) {
        // A lax parser would keep the second "event": the line would read as something the run never wrote.
        const std::size_t at = lines[3].find("\"event\":");
        ASSERT_NE(at, std::string::npos);
        lines[3].insert(at, "\"event\":\"forged\",");
    }));
    const LedgerProblem* problem = problem_at(reading, 4);
    ASSERT_NE(problem, nullptr) << problems_text(reading);
    EXPECT_TRUE(contains(problem->message, "line 4")) << problem->message;
    EXPECT_TRUE(contains(problem->message, "duplicate key")) << problem->message;
    EXPECT_FALSE(reading.entries[3].parsed);
}

TEST_F(LedgerTest, PartialLastLineIsATruncatedTailNotAProblem) {
    const std::string path = tampered("partial", [](std::vector<std::string>&) {});
    {
        std::ofstream out(path, std::ios::binary | std::ios::app);
        out << R"({"seq":10,"t_ms":100.5,"pha)";
    }
    const LedgerReading reading = ledger_read(path);
    EXPECT_TRUE(reading.truncated_tail);
    EXPECT_TRUE(reading.problems.empty()) << problems_text(reading);
    EXPECT_EQ(reading.entries.size(), static_cast<std::size_t>(event_count));
    EXPECT_EQ(reading.unanchored_lines, 0);
}

TEST_F(LedgerTest, LinesAfterTheLastSyncAreUnanchoredNotProblems) {
    const std::string live = folder_.path("live");
    const std::string crashed = folder_.path("crashed");
    std::filesystem::create_directories(live);
    std::filesystem::create_directories(crashed);
    {
        LedgerWriter writer(live + "/" + ledger_file_name);
        for (int i = 0; i < 6; ++i) append_event(writer, i);
        writer.sync();
        for (int i = 6; i < event_count; ++i) append_event(writer, i);
        // The process "dies" here: what a crash leaves is the file as it is now, before the writer's final sync.
        for (const char* name : {ledger_file_name, ledger_head_file_name}) {
            std::filesystem::copy_file(live + "/" + name, crashed + "/" + name);
        }
    }
    const LedgerReading reading = ledger_read(crashed + "/" + ledger_file_name);
    EXPECT_TRUE(reading.problems.empty()) << problems_text(reading);
    ASSERT_TRUE(reading.head.has_value()) << reading.head_problem;
    EXPECT_EQ(reading.head->lines, 6);
    EXPECT_EQ(reading.unanchored_lines, event_count - 6);
    EXPECT_EQ(reading.entries.size(), static_cast<std::size_t>(event_count));
    EXPECT_FALSE(reading.truncated_tail);
}

TEST_F(LedgerTest, MissingHeadIsReportedApartFromTheChain) {
    const std::string path = tampered("headless", [](std::vector<std::string>&) {});
    std::filesystem::remove(std::filesystem::path(path).parent_path() / ledger_head_file_name);
    const LedgerReading reading = ledger_read(path);
    EXPECT_FALSE(reading.head.has_value());
    EXPECT_FALSE(reading.head_problem.empty());
    EXPECT_TRUE(contains(reading.head_problem, ledger_head_file_name)) << reading.head_problem;
    EXPECT_TRUE(reading.problems.empty()) << problems_text(reading);
    EXPECT_EQ(reading.entries.size(), static_cast<std::size_t>(event_count));
}

TEST_F(LedgerTest, WriterRefusesAnExistingLedger) {
    const std::string message = error_message([&] { LedgerWriter again(original()); });
    EXPECT_TRUE(contains(message, "already exists")) << message;
    // The refused writer must not have touched the ledger it found.
    EXPECT_EQ(ledger_read(original()).entries.size(), static_cast<std::size_t>(event_count));
    EXPECT_TRUE(ledger_read(original()).problems.empty());
}

TEST_F(LedgerTest, WriterRefusesAnyExistingFile) {
    const std::string path = folder_.path("ledger.jsonl");
    write_text(path, "not a ledger\n");
    EXPECT_THROW(LedgerWriter writer(path), Error);
}

}  // namespace
}  // namespace pgolf
