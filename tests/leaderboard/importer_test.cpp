// The records-tree importer over the fixture tree (tests/records/fixtures/tree): one submission per folder keyed by its
// records-tree path, one run per seed with every metric family, the folder findings stored, idempotent re-imports
// that follow the folder's current content, and unreadable folders kept visible.
#include "leaderboard/importer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "leaderboard/queries.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using test::TemporaryFolder;

std::string tree() { return test::test_source_path("tests/records/fixtures/tree/records"); }

const StoredFinding* find_rule(const std::vector<StoredFinding>& findings, const std::string& rule) {
    for (const StoredFinding& finding : findings) {
        if (finding.rule == rule) return &finding;
    }
    return nullptr;
}

TEST(Importer, StoresOneSubmissionPerFolderAndOneRunPerSeedWithEveryFamily) {
    TemporaryFolder temporary;
    Store store = Store::open(temporary.path("pgolf.db"));
    const ImportResult result = leaderboard_import_tree(store, tree());
    ASSERT_EQ(result.folders.size(), 9u);
    EXPECT_EQ(result.unreadable, 0);

    const auto clean = store.find_submission_by_folder("records/track_10min_16mb/2026-03-17_CleanBaseline");
    ASSERT_TRUE(clean);
    EXPECT_EQ(clean->origin, "import");
    EXPECT_EQ(clean->name, "Clean baseline");
    EXPECT_EQ(clean->author, "Fixture Author");
    EXPECT_EQ(clean->date, "2026-03-17");
    EXPECT_EQ(clean->track, "track_10min_16mb");
    EXPECT_TRUE(clean->findings.empty());
    ASSERT_EQ(clean->runs.size(), 3u);
    const StoredRun& run = clean->runs[0];  // by seed: 42
    EXPECT_EQ(run.seed, 42);
    EXPECT_NEAR(run.val_bpb, 1.21033266, 1e-8);
    EXPECT_DOUBLE_EQ(run.val_loss, 2.0436);
    EXPECT_EQ(run.artifact_bytes, 15863533);
    EXPECT_EQ(run.model_bytes, 15815847);
    EXPECT_EQ(run.code_bytes, 47686);
    EXPECT_EQ(run.steps, 13780);
    EXPECT_NEAR(run.train_time_s, 600.038, 1e-9);
    EXPECT_EQ(run.run_folder, "train_seed42.log");
    EXPECT_EQ(run.log_sha256.size(), 64u);
    ASSERT_EQ(run.metrics.size(), 1u);
    EXPECT_EQ(run.metrics[0].family, "final_int8_zlib_roundtrip");

    // SP8192: the diagnostic and the sliding family both stored; the headline is the sliding one.
    const auto sp8192 = store.find_submission_by_folder("records/track_10min_16mb/2026-04-06_SP8192_ModelOnlyBytes");
    ASSERT_TRUE(sp8192);
    ASSERT_EQ(sp8192->runs.size(), 3u);
    EXPECT_EQ(sp8192->runs[0].metrics.size(), 2u);
    const StoredFinding* a5 = find_rule(sp8192->findings, "A5");
    ASSERT_NE(a5, nullptr);
    EXPECT_EQ(a5->severity, "fail");
    EXPECT_NE(a5->evidence.find("\"kind\":\"model_only_bytes\""), std::string::npos);
    EXPECT_NE(a5->evidence.find("submission.json:bytes_total"), std::string::npos);
    EXPECT_NE(find_rule(sp8192->findings, "A1"), nullptr);

    // Failing folders stay off the frontier; the clean one leads it.
    const Frontier frontier = leaderboard_frontier(store, "track_10min_16mb", "");
    ASSERT_FALSE(frontier.rows.empty());
    EXPECT_EQ(frontier.rows.front().summary.submission.name, "Clean baseline");
    const bool sp8192_excluded = std::any_of(frontier.excluded.begin(), frontier.excluded.end(), [](const auto& row) {
        return row.summary.submission.name == "SP8192 Hessian" && row.reason == "an audit or check failed";
    });
    EXPECT_TRUE(sp8192_excluded);
}

TEST(Importer, JsonOnlySeedsAndUnseededLogsAreMarked) {
    TemporaryFolder temporary;
    const std::string folder = temporary.path("records/track_10min_16mb/2026-04-01_Mixed");
    std::filesystem::create_directories(folder);
    std::ofstream(folder + "/train.log") << "final_int6_sliding_window_exact val_loss:2.04000000 val_bpb:1.20818000\n";
    // Seed 5's JSON value is not what the unseeded log prints, so the two stay apart (no match by value).
    std::ofstream(folder + "/submission.json")
        << R"({"val_bpb": 1.2082, "seeds": [5], "seed_results": {"5": {"val_bpb": 1.2150}}})";
    Store store = Store::open(temporary.path("pgolf.db"));
    leaderboard_import_tree(store, temporary.path("records"));
    const auto stored = store.find_submission_by_folder("records/track_10min_16mb/2026-04-01_Mixed");
    ASSERT_TRUE(stored);
    ASSERT_EQ(stored->runs.size(), 2u);
    // Ordered by seed: the unseeded log under a negative ordinal, then the JSON-only seed 5.
    EXPECT_EQ(stored->runs[0].seed, -2);
    EXPECT_EQ(stored->runs[0].findings.at(0).severity, "info");
    EXPECT_EQ(stored->runs[1].seed, 5);
    EXPECT_DOUBLE_EQ(stored->runs[1].val_bpb, 1.2150);
    EXPECT_EQ(stored->runs[1].findings.at(0).rule, "S5");
    EXPECT_EQ(stored->runs[1].findings.at(0).severity, "warn");
    EXPECT_EQ(stored->name, "2026-04-01_Mixed");  // no name in the JSON: the folder's
}

TEST(Importer, ReimportIsIdempotentAndFollowsTheFolder) {
    TemporaryFolder temporary;
    const std::string records = temporary.path("records");
    std::filesystem::create_directories(records + "/track_10min_16mb");
    std::filesystem::copy(tree() + "/track_10min_16mb/2026-03-17_CleanBaseline",
                          records + "/track_10min_16mb/2026-03-17_CleanBaseline",
                          std::filesystem::copy_options::recursive);
    Store store = Store::open(temporary.path("pgolf.db"));
    const ImportResult first = leaderboard_import_tree(store, records);
    const ImportResult second = leaderboard_import_tree(store, records);
    ASSERT_EQ(first.folders.size(), 1u);
    EXPECT_EQ(first.folders[0].submission_id, second.folders[0].submission_id);
    EXPECT_EQ(store.list_submissions().size(), 1u);
    const auto before = store.find_submission(first.folders[0].submission_id);
    ASSERT_EQ(before->runs.size(), 3u);

    // A log removed from the folder: the re-import drops its run and now reports the JSON seed without a log.
    std::filesystem::remove(records + "/track_10min_16mb/2026-03-17_CleanBaseline/train_seed2024.log");
    leaderboard_import_tree(store, records);
    const auto after = store.find_submission(first.folders[0].submission_id);
    ASSERT_EQ(after->runs.size(), 3u);  // seed 2024 stays, from the JSON, marked as such
    const StoredRun& seed_2024 = after->runs[2];
    EXPECT_EQ(seed_2024.seed, 2024);
    EXPECT_TRUE(seed_2024.log_sha256.empty());
    EXPECT_NE(find_rule(after->findings, "S5"), nullptr);
    EXPECT_NE(find_rule(after->findings, "S1"), nullptr);  // two seeds with a log are too few
}

TEST(Importer, UnreadableFolderIsStoredWithAFailingFinding) {
    TemporaryFolder temporary;
    const std::string folder = temporary.path("records/track_10min_16mb/2026-03-30_Broken");
    std::filesystem::create_directories(folder);
    std::ofstream(folder + "/submission.json") << "{\"val_bpb\": 1.1, \"val_bpb\": 1.2}";
    Store store = Store::open(temporary.path("pgolf.db"));
    const ImportResult result = leaderboard_import_tree(store, temporary.path("records"));
    EXPECT_EQ(result.unreadable, 1);
    ASSERT_EQ(result.folders.size(), 1u);
    EXPECT_NE(result.folders[0].error.find("duplicate"), std::string::npos) << result.folders[0].error;
    const auto stored = store.find_submission(result.folders[0].submission_id);
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->date, "2026-03-30");
    ASSERT_EQ(stored->findings.size(), 1u);
    EXPECT_EQ(stored->findings[0].rule, "F1");
    EXPECT_EQ(stored->findings[0].severity, "fail");
}

}  // namespace
}  // namespace pgolf
