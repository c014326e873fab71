// The frontier as the maintainers build it, the best record of a track, and the summaries, over a crafted store.
#include "leaderboard/queries.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using test::TemporaryFolder;

// A submission with one run per bpb value (nats = bpb × 1.7, as a fixed tokens-per-byte ratio would give).
std::int64_t add_submission(Store& store, const std::string& name, const std::string& date,
                            const std::vector<double>& bpb, const std::string& verdict = "PASS",
                            const std::string& track = "smoke") {
    StoredSubmission submission;
    submission.folder = "/records/" + name;
    submission.origin = "reproduce";
    submission.name = name;
    submission.author = "author of " + name;
    submission.date = date;
    submission.track = track;
    const std::int64_t id = store.put_submission(submission);
    for (std::size_t i = 0; i < bpb.size(); ++i) {
        StoredRun run;
        run.seed = static_cast<std::int64_t>(i);
        run.val_bpb = bpb[i];
        run.val_loss = bpb[i] * 1.7;
        run.artifact_bytes = 1000 + static_cast<std::int64_t>(i);
        run.audit_verdict = verdict;
        store.put_run(id, run);
    }
    return id;
}

TEST(Queries, SummaryDerivesMeansStdAndLargestArtifact) {
    TemporaryFolder folder;
    Store store = Store::open(folder.path("db"));
    const std::int64_t id = add_submission(store, "a", "2026-01-01", {1.0, 1.2, 1.1});
    const SubmissionSummary summary = leaderboard_summarize(*store.find_submission(id));
    EXPECT_NEAR(summary.bpb_summary.mean, 1.1, 1e-12);
    EXPECT_NEAR(summary.bpb_summary.std, 0.1, 1e-12);
    EXPECT_NEAR(summary.nats_summary.mean, 1.87, 1e-12);
    EXPECT_EQ(summary.bytes_max, 1002);
    EXPECT_FALSE(summary.failed);
    const nlohmann::ordered_json json = leaderboard_summary_json(summary, true);
    EXPECT_EQ(json["runs"].size(), 3u);
    EXPECT_EQ(json["seeds"], 3);
}

TEST(Queries, FrontierIsChronologicalAndJoinsOnlySignificantImprovements) {
    TemporaryFolder folder;
    Store store = Store::open(folder.path("db"));
    add_submission(store, "first", "2026-01-01", {1.200, 1.201, 1.202});
    add_submission(store, "worse", "2026-01-05", {1.300, 1.301, 1.302});
    add_submission(store, "noise", "2026-01-10", {1.1995, 1.2025, 1.1985});  // lower mean, far from significant
    add_submission(store, "failed", "2026-01-12", {1.0, 1.001, 1.002}, "FAIL");
    add_submission(store, "better", "2026-01-20", {1.150, 1.151, 1.152});
    add_submission(store, "other-track", "2026-01-21", {0.5, 0.51, 0.52}, "PASS", "track_10min_16mb");
    add_submission(store, "best", "2026-02-01", {1.100, 1.102, 1.101});

    const Frontier frontier = leaderboard_frontier(store, "smoke", "");
    ASSERT_EQ(frontier.rows.size(), 3u);
    EXPECT_EQ(frontier.rows[0].summary.submission.name, "first");
    EXPECT_FALSE(frontier.rows[0].against_previous.has_value());
    EXPECT_EQ(frontier.rows[1].summary.submission.name, "better");
    EXPECT_EQ(frontier.rows[1].previous_name, "first");
    ASSERT_TRUE(frontier.rows[1].against_previous.has_value());
    EXPECT_LT(frontier.rows[1].against_previous->p, 0.25);
    EXPECT_EQ(frontier.rows[2].summary.submission.name, "best");
    EXPECT_EQ(frontier.rows[2].previous_name, "better");
    ASSERT_EQ(frontier.excluded.size(), 3u);
    EXPECT_EQ(frontier.excluded[0].summary.submission.name, "worse");
    EXPECT_NE(frontier.excluded[0].reason.find("not better than first"), std::string::npos);
    EXPECT_EQ(frontier.excluded[1].summary.submission.name, "noise");
    EXPECT_NE(frontier.excluded[1].reason.find("0.25"), std::string::npos) << frontier.excluded[1].reason;
    EXPECT_EQ(frontier.excluded[2].summary.submission.name, "failed");

    // As of a date: only what was there then.
    const Frontier january = leaderboard_frontier(store, "smoke", "2026-01-15");
    ASSERT_EQ(january.rows.size(), 1u);
    EXPECT_EQ(january.rows[0].summary.submission.name, "first");
    const nlohmann::ordered_json json = leaderboard_frontier_json(frontier);
    EXPECT_EQ(json["frontier"].size(), 3u);
    EXPECT_EQ(json["frontier"][1]["against"], "first");
    EXPECT_EQ(json["excluded"][0]["reason"], frontier.excluded[0].reason);
}

TEST(Queries, BestSkipsFailedAndOtherTracksAndTheSubmissionItself) {
    TemporaryFolder folder;
    Store store = Store::open(folder.path("db"));
    const std::int64_t a = add_submission(store, "a", "2026-01-01", {1.2, 1.21});
    add_submission(store, "failed", "2026-01-02", {0.9, 0.91}, "FAIL");
    add_submission(store, "elsewhere", "2026-01-03", {0.8, 0.81}, "PASS", "track_10min_16mb");
    const std::int64_t b = add_submission(store, "b", "2026-01-04", {1.1, 1.11});
    const auto best = leaderboard_best(store, "smoke", 0);
    ASSERT_TRUE(best.has_value());
    EXPECT_EQ(best->submission.id, b);
    EXPECT_EQ(leaderboard_best(store, "smoke", b)->submission.id, a);
    EXPECT_FALSE(leaderboard_best(store, "nothing-here", 0).has_value());
}

}  // namespace
}  // namespace pgolf

namespace pgolf {
namespace {

TEST(Queries, ReRunsAreEvidenceNotEntries) {
    TemporaryFolder folder;
    Store store = Store::open(folder.path("db"));
    add_submission(store, "original", "2026-01-01", {1.200, 1.201, 1.202});
    const std::int64_t rerun = add_submission(store, "original-rerun", "2026-01-02", {1.100, 1.101, 1.102});
    StoredSubmission marked = *store.find_submission(rerun);
    marked.origin = "rerun";
    store.put_submission(marked);

    const Frontier frontier = leaderboard_frontier(store, "smoke", "");
    ASSERT_EQ(frontier.rows.size(), 1u);
    EXPECT_EQ(frontier.rows[0].summary.submission.name, "original");
    ASSERT_EQ(frontier.excluded.size(), 1u);
    EXPECT_NE(frontier.excluded[0].reason.find("re-run"), std::string::npos);
    EXPECT_EQ(leaderboard_best(store, "smoke", 0)->submission.name, "original");
}

}  // namespace
}  // namespace pgolf
