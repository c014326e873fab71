// Tests of `pgolf rerun`'s library: fake training scripts (/bin/sh, tests/audit/fixtures/rerun/) run per seed in a
// scratch copy of a record folder; the findings by rule id, the runs stored in a temporary database, skip-on-rerun,
// the artifact rule, and rerun.json.
#include "audit/rerun.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "leaderboard/store.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

std::string fixture(const std::string& name) { return test::test_source_path("tests/audit/fixtures/rerun/" + name); }

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::vector<std::string> rules(const RerunSeedResult& seed) {
    std::vector<std::string> ids;
    for (const StoredFinding& f : seed.findings) ids.push_back(f.rule);
    return ids;
}

bool has_rule(const RerunSeedResult& seed, const std::string& rule) {
    const std::vector<std::string> ids = rules(seed);
    return std::find(ids.begin(), ids.end(), rule) != ids.end();
}

std::string finding_message(const RerunSeedResult& seed, const std::string& rule) {
    for (const StoredFinding& f : seed.findings) {
        if (f.rule == rule) return f.message;
    }
    return "";
}

// The good folder with a script from the fixtures, writing into a temporary OUT and database.
RerunOptions options_for(const test::TemporaryFolder& tmp, const std::string& script,
                         std::vector<std::int64_t> seeds = {1, 2}) {
    RerunOptions options;
    options.folder = fixture("good");
    options.seeds = std::move(seeds);
    options.command = {"sh", fixture(script)};
    options.out = tmp.path("out");
    options.db_path = tmp.path("pgolf.db");
    options.limit_s = 20.0;
    options.grace_s = 1.0;
    return options;
}

std::int64_t good_code_bytes() {
    return static_cast<std::int64_t>(std::filesystem::file_size(fixture("good/train_gpt.py")));
}

TEST(RerunTest, ArtifactNameRule) {
    for (const char* name : {"final_model.int6.ptz", "model.pt.xz", "weights.bin.zst", "m.lzma", "m.brotli", "m.zst",
                             "m.xz", "m.br", "final_model.int8.bin", "final_model_q.safetensors"}) {
        EXPECT_TRUE(rerun_is_artifact_name(name)) << name;
    }
    for (const char* name : {"final_model.pt", "model.pt", "train_gpt.py", "train.log", ".zst", "final.bin"}) {
        EXPECT_FALSE(rerun_is_artifact_name(name)) << name;
    }
}

TEST(RerunTest, GoodFolderTwoSeedsPassAndAreStored) {
    test::TemporaryFolder tmp;
    RerunOptions options = options_for(tmp, "fake_train.sh");
    std::vector<std::string> notes;
    options.note = [&](const std::string& line) { notes.push_back(line); };
    const RerunResult result = rerun_run(options);

    EXPECT_EQ(result.verdict, "PASS");
    EXPECT_EQ(rerun_exit_status(result), 0);
    EXPECT_EQ(result.code_bytes, good_code_bytes());
    ASSERT_EQ(result.seeds.size(), 2u);
    const double expected_bpb[] = {1.125, 1.126};
    const double submitted_bpb[] = {1.125, 1.1262};
    for (int i = 0; i < 2; ++i) {
        const RerunSeedResult& seed = result.seeds[i];
        SCOPED_TRACE(seed.seed);
        EXPECT_EQ(seed.seed, i + 1);
        EXPECT_FALSE(seed.skipped);
        EXPECT_EQ(seed.process.exit_code, 0);
        EXPECT_DOUBLE_EQ(seed.val_bpb, expected_bpb[i]);
        EXPECT_DOUBLE_EQ(seed.val_loss, 1.9);
        EXPECT_EQ(seed.family, "final_int6_sliding_window");
        ASSERT_TRUE(seed.submitted_bpb.has_value());
        EXPECT_DOUBLE_EQ(*seed.submitted_bpb, submitted_bpb[i]);
        EXPECT_EQ(seed.submitted_from, "submission.json:seed_results." + std::to_string(i + 1) + ".val_bpb");
        EXPECT_NEAR(seed.delta_bpb, expected_bpb[i] - submitted_bpb[i], 1e-12);
        EXPECT_EQ(seed.artifact_path, "final_model.int6.ptz");  // not the newer raw final_model.pt
        EXPECT_EQ(seed.artifact_bytes, 1000);
        EXPECT_EQ(seed.code_bytes, good_code_bytes());
        EXPECT_EQ(seed.total_bytes, 1000 + good_code_bytes());
        EXPECT_EQ(seed.log_total_bytes, 1000 + good_code_bytes());
        EXPECT_TRUE(seed.findings.empty()) << testing::PrintToString(rules(seed));
        EXPECT_EQ(seed.verdict, "PASS");
        EXPECT_NE(read_text(seed.log_path).find("seed:" + std::to_string(i + 1)), std::string::npos);
        EXPECT_TRUE(std::filesystem::exists(tmp.path("out/seed_" + std::to_string(i + 1) + "/work/train_gpt.py")));
    }
    EXPECT_FALSE(std::filesystem::exists(fixture("good/final_model.int6.ptz")));  // the submitted folder is untouched
    ASSERT_EQ(notes.size(), 4u);
    EXPECT_NE(notes[0].find("seed 1: running sh "), std::string::npos) << notes[0];
    EXPECT_NE(notes[1].find("seed 1: exit 0 in "), std::string::npos) << notes[1];
    EXPECT_NE(notes[1].find("val_bpb 1.12500000 (final_int6_sliding_window)"), std::string::npos) << notes[1];

    // The comparison: means, the headline, and Welch against the JSON's per-seed values.
    const RerunComparison& c = result.comparison;
    EXPECT_EQ(c.rerun.n, 2);
    EXPECT_NEAR(c.rerun.mean, 1.1255, 1e-12);
    ASSERT_TRUE(c.submitted_mean.has_value());
    EXPECT_DOUBLE_EQ(*c.submitted_mean, 1.1256);
    EXPECT_EQ(c.submitted_from, "submission.json:val_bpb");
    EXPECT_NEAR(c.mean_delta, -0.0001, 1e-12);
    ASSERT_TRUE(c.welch.has_value());
    EXPECT_GT(c.welch_p_two_sided, 0.5);

    // Stored like our own runs.
    const Store store = Store::open(options.db_path, 10.0, false);
    const auto stored = store.find_submission_by_folder(result.out);
    ASSERT_TRUE(stored.has_value());
    EXPECT_EQ(stored->id, result.submission_id);
    EXPECT_EQ(stored->origin, "rerun");
    EXPECT_EQ(stored->name, "Fake Good Record (rerun)");
    EXPECT_EQ(stored->author, "Test Author");
    EXPECT_EQ(stored->track, "track_10min_16mb");
    EXPECT_FALSE(stored->config_digest.empty());
    ASSERT_EQ(stored->runs.size(), 2u);
    const StoredRun& run = stored->runs[0];
    EXPECT_EQ(run.seed, 1);
    EXPECT_DOUBLE_EQ(run.val_bpb, 1.125);
    EXPECT_EQ(run.artifact_bytes, 1000 + good_code_bytes());
    EXPECT_EQ(run.model_bytes, 1000);
    EXPECT_EQ(run.code_bytes, good_code_bytes());
    EXPECT_EQ(run.steps, 100);
    EXPECT_DOUBLE_EQ(run.step_avg_ms, 10.0);
    EXPECT_DOUBLE_EQ(run.train_time_s, 1.0);
    EXPECT_DOUBLE_EQ(run.eval_time_s, 12.3);
    EXPECT_FALSE(run.hardware.empty());
    EXPECT_EQ(run.log_sha256.size(), 64u);
    EXPECT_EQ(run.run_folder, "seed_1");
    EXPECT_EQ(run.audit_verdict, "PASS");
    ASSERT_EQ(run.metrics.size(), 2u);
    EXPECT_EQ(run.metrics[0].family, "final_int6_roundtrip");
    EXPECT_DOUBLE_EQ(run.metrics[0].val_bpb, 1.15);
    EXPECT_EQ(run.metrics[1].family, "final_int6_sliding_window");

    // rerun.json holds the same.
    const nlohmann::json json = nlohmann::json::parse(read_text(tmp.path("out/rerun.json")));
    EXPECT_EQ(json["schema"], "pgolf-rerun/1");
    EXPECT_EQ(json["verdict"], "PASS");
    EXPECT_EQ(json["exit_status"], 0);
    EXPECT_EQ(json["code_bytes"], good_code_bytes());
    ASSERT_EQ(json["seeds"].size(), 2u);
    EXPECT_EQ(json["seeds"][1]["seed"], 2);
    EXPECT_DOUBLE_EQ(json["seeds"][1]["val_bpb"].get<double>(), 1.126);
    EXPECT_EQ(json["seeds"][1]["artifact"], "final_model.int6.ptz");
    EXPECT_EQ(json["seeds"][1]["process"]["exit_code"], 0);
    EXPECT_EQ(json["comparison"]["rerun"]["n"], 2);
    EXPECT_DOUBLE_EQ(json["comparison"]["submitted"]["mean_bpb"].get<double>(), 1.1256);
    EXPECT_EQ(json["comparison"]["submitted"]["per_seed_bpb"].size(), 2u);
    EXPECT_TRUE(json["comparison"]["welch"].is_object());
}

TEST(RerunTest, StoredSeedsAreSkippedUnlessForced) {
    test::TemporaryFolder tmp;
    RerunOptions options = options_for(tmp, "fake_train.sh", {1});
    rerun_run(options);
    const std::string log = tmp.path("out/seed_1/rerun.log");
    const std::string first_log = read_text(log);

    options.seeds = {1, 2};
    std::vector<std::string> notes;
    options.note = [&](const std::string& line) { notes.push_back(line); };
    const RerunResult again = rerun_run(options);
    ASSERT_EQ(again.seeds.size(), 2u);
    EXPECT_TRUE(again.seeds[0].skipped);
    EXPECT_DOUBLE_EQ(again.seeds[0].val_bpb, 1.125);
    EXPECT_EQ(again.seeds[0].family, "final_int6_sliding_window");
    EXPECT_EQ(again.seeds[0].verdict, "PASS");
    EXPECT_FALSE(again.seeds[1].skipped);
    EXPECT_EQ(notes[0], "seed 1: stored already, skipped (--force runs it again)");
    EXPECT_EQ(again.comparison.rerun.n, 2);
    const nlohmann::json json = nlohmann::json::parse(read_text(tmp.path("out/rerun.json")));
    EXPECT_TRUE(json["seeds"][0]["skipped"].get<bool>());
    EXPECT_TRUE(json["seeds"][0]["process"].is_null());

    options.seeds = {1};
    options.force = true;
    const RerunResult forced = rerun_run(options);
    EXPECT_FALSE(forced.seeds[0].skipped);
    EXPECT_EQ(forced.submission_id, again.submission_id);
    const Store store = Store::open(options.db_path, 10.0, false);
    const auto stored = store.find_submission(forced.submission_id);
    ASSERT_EQ(stored->runs.size(), 2u);  // seed 1 replaced, seed 2 kept
    EXPECT_NE(stored->runs[0].id, 0);
}

TEST(RerunTest, OtherCommandOrEnvironmentInTheSameOutIsRefusedWithoutForce) {
    test::TemporaryFolder tmp;
    RerunOptions options = options_for(tmp, "fake_train.sh", {1, 2});
    rerun_run(options);
    RerunOptions other = options;
    other.command = {"sh", fixture("wrong_seed.sh")};
    EXPECT_NE(test::error_message([&] { rerun_run(other); }).find("holds a re-run of other code, command or --env"),
              std::string::npos);
    other = options;
    other.environment = {{"FAKE_BPB", "1.12700000"}};
    EXPECT_NE(test::error_message([&] { rerun_run(other); }).find("holds a re-run"), std::string::npos);
    other.seeds = {1};
    other.force = true;  // replaces the stored re-run: seed 2 is gone with it
    const RerunResult forced = rerun_run(other);
    EXPECT_DOUBLE_EQ(forced.seeds[0].val_bpb, 1.127);
    const Store store = Store::open(options.db_path, 10.0, false);
    const auto stored = store.find_submission(forced.submission_id);
    ASSERT_EQ(stored->runs.size(), 1u);
    EXPECT_DOUBLE_EQ(stored->runs[0].val_bpb, 1.127);
}

TEST(RerunTest, OverrunIsKilledAtTheLimitR2) {
    test::TemporaryFolder tmp;
    RerunOptions options = options_for(tmp, "overrun.sh", {1});
    options.limit_s = 0.5;
    options.grace_s = 0.5;
    const RerunResult result = rerun_run(options);
    const RerunSeedResult& seed = result.seeds[0];
    EXPECT_TRUE(seed.process.killed_at_limit);
    EXPECT_LT(seed.process.wall_s, 3.0);
    EXPECT_EQ(rules(seed), std::vector<std::string>{"R2"});
    EXPECT_EQ(seed.verdict, "FAIL");
    EXPECT_EQ(rerun_exit_status(result), 2);
    EXPECT_NE(read_text(seed.log_path).find("step:1/200"), std::string::npos);
    const Store store = Store::open(options.db_path, 10.0, false);
    const auto stored = store.find_submission(result.submission_id);
    ASSERT_EQ(stored->runs.size(), 1u);  // a failed seed is stored too, with its finding
    EXPECT_EQ(stored->runs[0].findings.at(0).rule, "R2");
    EXPECT_EQ(stored->runs[0].audit_verdict, "FAIL");
}

TEST(RerunTest, CrashIsR3) {
    test::TemporaryFolder tmp;
    const RerunResult result = rerun_run(options_for(tmp, "crash.sh", {1}));
    const RerunSeedResult& seed = result.seeds[0];
    EXPECT_EQ(seed.process.exit_code, 3);
    EXPECT_EQ(rules(seed), std::vector<std::string>{"R3"});
    EXPECT_EQ(finding_message(seed, "R3"), "the command ended with exit 3");
    EXPECT_EQ(rerun_exit_status(result), 2);
    EXPECT_NE(read_text(seed.log_path).find("RuntimeError: CUDA error"), std::string::npos);  // stderr captured
}

TEST(RerunTest, MissingCommandIsR3) {
    test::TemporaryFolder tmp;
    RerunOptions options = options_for(tmp, "fake_train.sh", {1});
    options.command = {"pgolf-no-such-command-xyz"};
    const RerunResult result = rerun_run(options);
    EXPECT_EQ(rules(result.seeds[0]), std::vector<std::string>{"R3"});
    EXPECT_NE(finding_message(result.seeds[0], "R3").find("did not start"), std::string::npos);
}

TEST(RerunTest, NoArtifactIsR4) {
    test::TemporaryFolder tmp;
    const RerunResult result = rerun_run(options_for(tmp, "no_artifact.sh", {1}));
    const RerunSeedResult& seed = result.seeds[0];
    EXPECT_EQ(rules(seed), std::vector<std::string>{"R4"});
    EXPECT_NE(finding_message(seed, "R4").find("no artifact file"), std::string::npos);
    EXPECT_EQ(seed.artifact_bytes, -1);
    EXPECT_DOUBLE_EQ(seed.val_bpb, 1.125);
    EXPECT_EQ(rerun_exit_status(result), 2);
}

TEST(RerunTest, NamedArtifactIsMeasuredExactly) {
    test::TemporaryFolder tmp;
    RerunOptions options = options_for(tmp, "fake_train.sh", {1});
    options.artifact = "final_model.pt";
    const RerunResult result = rerun_run(options);
    EXPECT_EQ(result.seeds[0].artifact_path, "final_model.pt");
    EXPECT_EQ(result.seeds[0].artifact_bytes, 4000);
    EXPECT_TRUE(has_rule(result.seeds[0], "R6"));  // the log's total counts the 1000-byte .ptz

    options.artifact = "train_gpt.py";  // shipped in the folder, never written by the run
    options.force = true;
    const RerunResult stale = rerun_run(options);
    EXPECT_TRUE(has_rule(stale.seeds[0], "R4"));
    EXPECT_NE(finding_message(stale.seeds[0], "R4").find("only the submitted folder's copy exists"), std::string::npos);
}

TEST(RerunTest, WrongSeedIsR5) {
    test::TemporaryFolder tmp;
    const RerunResult result = rerun_run(options_for(tmp, "wrong_seed.sh", {2}));
    const RerunSeedResult& seed = result.seeds[0];
    EXPECT_EQ(rules(seed), std::vector<std::string>{"R5"});
    EXPECT_EQ(finding_message(seed, "R5"), "the log prints seed 1002 (line 1) but SEED was 2");
    EXPECT_EQ(seed.verdict, "WARN");
    EXPECT_EQ(rerun_exit_status(result), 1);
}

TEST(RerunTest, OverCapIsA1) {
    test::TemporaryFolder tmp;
    RerunOptions options = options_for(tmp, "fake_train.sh", {1});
    options.cap_bytes = 1100;
    const RerunResult result = rerun_run(options);
    EXPECT_EQ(rules(result.seeds[0]), std::vector<std::string>{"A1"});
    EXPECT_NE(finding_message(result.seeds[0], "A1").find("over the cap of 1100"), std::string::npos);
    EXPECT_EQ(rerun_exit_status(result), 2);
}

TEST(RerunTest, ScoreBeyondToleranceIsR1) {
    test::TemporaryFolder tmp;
    RerunOptions options = options_for(tmp, "fake_train.sh", {1, 3});
    options.environment = {{"FAKE_BPB", "1.13000000"}};
    const RerunResult result = rerun_run(options);
    EXPECT_EQ(rules(result.seeds[0]), std::vector<std::string>{"R1"});
    EXPECT_NE(finding_message(result.seeds[0], "R1").find("submission.json:seed_results.1.val_bpb"), std::string::npos);
    // Seed 3 is not in the JSON: compared with the headline.
    EXPECT_EQ(result.seeds[1].submitted_from, "submission.json:val_bpb");
    EXPECT_NEAR(result.seeds[1].delta_bpb, 1.13 - 1.1256, 1e-12);
    EXPECT_TRUE(has_rule(result.seeds[1], "R1"));
    EXPECT_EQ(result.verdict, "WARN");
    EXPECT_EQ(rerun_exit_status(result), 1);
    EXPECT_NEAR(result.comparison.mean_delta, 1.13 - 1.1256, 1e-12);
    ASSERT_TRUE(result.comparison.welch.has_value());  // the re-run has no spread, the submitted values have some
    EXPECT_GT(result.comparison.welch->t, 0.0);
}

TEST(RerunTest, WithinToleranceIsNotR1) {
    test::TemporaryFolder tmp;
    RerunOptions options = options_for(tmp, "fake_train.sh", {1});
    options.environment = {{"FAKE_BPB", "1.12690000"}};
    options.tolerance_bpb = 0.002;
    EXPECT_TRUE(rerun_run(options).seeds[0].findings.empty());
}

TEST(RerunTest, PrintedBytesDifferIsR6) {
    test::TemporaryFolder tmp;
    RerunOptions options = options_for(tmp, "fake_train.sh", {1});
    options.environment = {{"FAKE_TOTAL_BYTES", "999"}};
    const RerunResult result = rerun_run(options);
    EXPECT_EQ(rules(result.seeds[0]), std::vector<std::string>{"R6"});
    EXPECT_NE(finding_message(result.seeds[0], "R6").find("total 999 (int6+zstd, line 8) vs measured"),
              std::string::npos)
        << finding_message(result.seeds[0], "R6");
}

TEST(RerunTest, TrainAndEvalOverTheirCapsAreT1AndE1) {
    test::TemporaryFolder tmp;
    RerunOptions options = options_for(tmp, "fake_train.sh", {1});
    options.environment = {{"FAKE_TRAIN_MS", "600011"}, {"FAKE_EVAL_S", "600.5"}};
    const RerunResult result = rerun_run(options);
    EXPECT_EQ(rules(result.seeds[0]), (std::vector<std::string>{"T1", "E1"}));
    EXPECT_EQ(rerun_exit_status(result), 2);

    options.environment = {{"FAKE_TRAIN_MS", "600009"}, {"FAKE_EVAL_S", "600.0"}};  // within one 10 ms step
    options.force = true;
    EXPECT_TRUE(rerun_run(options).seeds[0].findings.empty());
}

TEST(RerunTest, BadOptionsAreOneLineErrors) {
    test::TemporaryFolder tmp;
    auto message = [&](const std::function<void(RerunOptions&)>& change) {
        RerunOptions options = options_for(tmp, "fake_train.sh", {1});
        change(options);
        return test::error_message([&] { rerun_run(options); });
    };
    EXPECT_EQ(message([](RerunOptions& o) { o.seeds.clear(); }), "rerun: no seeds given (--seeds 1337,42,2024)");
    EXPECT_EQ(message([](RerunOptions& o) { o.seeds = {1, 2, 1}; }), "rerun: seed 1 is given twice");
    EXPECT_NE(message([](RerunOptions& o) { o.command.clear(); }).find("rerun: no command given"), std::string::npos);
    EXPECT_EQ(message([&](RerunOptions& o) { o.folder = tmp.path("absent"); }),
              "rerun: " + tmp.path("absent") + " is not a folder");
    EXPECT_NE(message([](RerunOptions& o) { o.out = fixture("good/rerun-out"); }).find("is inside"), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(fixture("good/rerun-out")));
    EXPECT_EQ(message([](RerunOptions& o) {
                  o.environment = {{"SEED", "5"}};
              }),
              "rerun: SEED is set per seed from --seeds, not with --env");
}

}  // namespace
}  // namespace pgolf
