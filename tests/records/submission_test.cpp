// The canonical submission.json: every field survives a write and a strict read; anything off the schema is refused
// with a one-line message naming the field; the record folder's README says what a reviewer needs.
#include "records/submission.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/file_util.h"
#include "records/record_folder.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using test::error_message;
using test::TemporaryFolder;

Submission sample_submission(bool with_significance) {
    Submission s;
    s.name = "baseline-smoke";
    s.author = "A. Golfer";
    s.github_id = "golfer";
    s.date = "2026-11-30";
    s.track = "smoke";
    s.blurb = "Three seeds of the smoke baseline.";
    s.val_bpb = 2.5384303712345678;  // 17 significant digits: a double must come back bit for bit
    s.val_loss = 4.28662084;
    s.val_bpb_std = 0.00071667;
    s.val_loss_std = 0.0012;
    s.seeds = {1337, 42, 2024};
    for (const std::int64_t seed : s.seeds) {
        SeedResult r;
        r.val_bpb = 2.5 + static_cast<double>(seed) * 1e-6;
        r.val_loss = 4.2 + static_cast<double>(seed) * 1e-6;
        r.artifact_bytes = 315'154 + seed;
        r.model_bytes = 167'022 + seed;
        r.code_bytes = 148'132;
        r.steps = 150;
        r.step_avg_ms = 379.47;
        r.train_time_s = 56.92;
        r.eval_time_s = 4.5;
        r.audit_verdict = seed == 42 ? "WARN" : "PASS";
        s.seed_results[seed] = r;
    }
    s.bytes_total = 315'154 + 2024;
    s.bytes_code = 148'132;
    s.margin_bytes = s.cap_bytes - s.bytes_total;
    s.hardware = "CPU: test, 2 hardware threads";
    s.preset = "baseline";
    s.scale = "smoke";
    s.eval_mode = "plain";
    s.metric_family = "int8_zlib_roundtrip";
    s.config_digest = std::string(64, 'c');
    s.engine_version = "0.1.0";
    s.engine_digest = std::string(64, 'e');
    s.audit_verdict = "WARN";
    if (with_significance) {
        SubmissionSignificance g;
        g.against_name = "older";
        g.against_folder = "/records/older";
        g.against_val_bpb = 2.6;
        g.against_seeds = 3;
        g.tests = {{"one_sample_nats", -8.2, 2.0, 0.007, 0.005, 0.01, true},
                   {"welch_nats", -4.29, 3.3, 0.0095, 0.005, 0.01, true},
                   {"welch_bpb", -11.8, 3.3063, 0.0004, 0.0, 0.25, true}};
        g.gate = "welch_bpb";
        g.passes = true;
        s.significance = g;
    }
    return s;
}

TEST(Submission, RoundTripsEveryFieldThroughTheFile) {
    TemporaryFolder folder;
    for (const bool significance : {false, true}) {
        const Submission written = sample_submission(significance);
        submission_write(folder.path("submission.json"), written);
        const Submission read = submission_read(folder.path("submission.json"));
        EXPECT_EQ(read, written);
        EXPECT_EQ(read.val_bpb, 2.5384303712345678);
        EXPECT_EQ(read.significance.has_value(), significance);
    }
    // Seeds are string keys in JSON, as the records write them.
    const nlohmann::ordered_json json = submission_to_json(sample_submission(false));
    EXPECT_TRUE(json["seed_results"].contains("1337"));
    EXPECT_EQ(json["schema"], submission_schema_id);
    EXPECT_TRUE(json["significance"].is_null());
}

TEST(Submission, StrictReaderNamesWhatIsWrong) {
    const nlohmann::ordered_json good = submission_to_json(sample_submission(true));
    auto refused = [&](const std::function<void(nlohmann::ordered_json&)>& edit) {
        nlohmann::ordered_json json = good;
        edit(json);
        const std::string message = error_message([&] { submission_from_json(json); });
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
        return message;
    };
    EXPECT_NE(refused([](auto& j) { j.erase("val_bpb"); }).find("no field \"val_bpb\""), std::string::npos);
    EXPECT_NE(refused([](auto& j) { j["val_bpb"] = "1.2"; }).find("\"val_bpb\" is not a number"), std::string::npos);
    EXPECT_NE(refused([](auto& j) { j["extra"] = 1; }).find("unknown field \"extra\""), std::string::npos);
    EXPECT_NE(refused([](auto& j) { j["schema"] = "other/1"; }).find("is not schema"), std::string::npos);
    EXPECT_NE(refused([](auto& j) { j["seed_results"]["x1"] = j["seed_results"]["42"]; }).find("\"x1\" is not a seed"),
              std::string::npos);
    EXPECT_NE(refused([](auto& j) { j["seed_results"]["42"].erase("steps"); }).find("seed_results[\"42\"]"),
              std::string::npos);
    EXPECT_NE(refused([](auto& j) { j["seed_results"]["42"]["steps"] = 1.5; }).find("not an integer"),
              std::string::npos);
    EXPECT_NE(refused([](auto& j) { j["significance"]["tests"][1].erase("p"); }).find("significance.tests[1]"),
              std::string::npos);
    EXPECT_NE(refused([](auto& j) { j["seeds"] = {1, "2"}; }).find("\"seeds\""), std::string::npos);
}

TEST(Submission, ReadingABrokenFileNamesThePath) {
    TemporaryFolder folder;
    const std::string path = folder.path("submission.json");
    std::ofstream(path) << R"({"schema": "pgolf-submission/1", "name": "a", "name": "b"})";
    const std::string message = error_message([&] { submission_read(path); });
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("duplicate key"), std::string::npos) << message;
}

TEST(RecordFolder, WritesTheFilesAndAReadmeWithTheNumbers) {
    TemporaryFolder folder;
    const std::string log = folder.path("run.log");
    std::ofstream(log) << "final_int8_zlib_roundtrip_exact val_loss:4.1 val_bpb:2.5\n";
    RecordFolder record;
    record.folder = folder.path("record");
    record.submission = sample_submission(true);
    for (const std::int64_t seed : record.submission.seeds) {
        record.seed_logs[seed] = log;
        record.seed_runs[seed] = "runs/seed_" + std::to_string(seed);
    }
    record.command = "pgolf reproduce --preset baseline --scale smoke --seeds 1337,42,2024 --out record";
    record_folder_write(record);
    EXPECT_EQ(submission_read(record.folder + "/submission.json"), record.submission);
    for (const std::int64_t seed : record.submission.seeds) {
        const std::string copied = record.folder + "/train_seed" + std::to_string(seed) + ".log";
        EXPECT_EQ(file_read_bytes(copied), file_read_bytes(log));
    }
    const std::vector<std::uint8_t> bytes = file_read_bytes(record.folder + "/README.md");
    const std::string readme(bytes.begin(), bytes.end());
    for (const char* text : {"# baseline-smoke", "2.53843037 ± 0.00071667", "| 2024 |", "margin", "317178 bytes",
                             "pgolf audit runs/seed_42", "**WARN**", "welch_bpb (gate)", "**passes**",
                             "pgolf reproduce --preset baseline"}) {
        EXPECT_NE(readme.find(text), std::string::npos) << text << "\n" << readme;
    }
    record.submission.significance.reset();
    EXPECT_NE(record_readme_text(record).find("No earlier record of track `smoke`"), std::string::npos);
}

}  // namespace
}  // namespace pgolf
