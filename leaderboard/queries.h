// Questions asked of the store: a submission's summary (means, n−1 standard deviations, largest artifact, whether it
// failed an audit), the best record of a track, the frontier as the maintainers build it (chronological; a row joins
// when it beats the previous frontier row by the progression rule, Welch on per-seed val_bpb with p < 0.25), history
// by name or author, and the JSON shapes of `--json`.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "leaderboard/stats.h"
#include "leaderboard/store.h"
#include "records/submission.h"

namespace pgolf {

struct SubmissionSummary {
    StoredSubmission submission;
    std::vector<double> bpb;   // per scored seed, in seed order
    std::vector<double> nats;  // val_loss per scored seed
    SampleSummary bpb_summary;
    SampleSummary nats_summary;
    std::int64_t bytes_max = -1;
    bool failed = false;  // a run audited FAIL or a failing finding
};
SubmissionSummary leaderboard_summarize(const StoredSubmission& submission);

// The lowest mean val_bpb among the track's submissions with scores that did not fail, other than exclude_id and
// re-runs (origin "rerun": evidence about another submission, not an entry).
std::optional<SubmissionSummary> leaderboard_best(const Store& store, const std::string& track,
                                                  std::int64_t exclude_id);

struct FrontierRow {
    SubmissionSummary summary;
    std::optional<TTest> against_previous;  // Welch on bpb against the previous frontier row
    std::string previous_name;
};
struct ExcludedRow {
    SubmissionSummary summary;
    std::string reason;
};
struct Frontier {
    std::string track;
    std::string as_of;
    std::vector<FrontierRow> rows;
    std::vector<ExcludedRow> excluded;
};
// as_of: YYYY-MM-DD (inclusive); empty means every stored submission.
Frontier leaderboard_frontier(const Store& store, const std::string& track, const std::string& as_of);

// A test as record folders keep it.
SignificanceTest leaderboard_significance_test(const TTest& test);

nlohmann::ordered_json leaderboard_summary_json(const SubmissionSummary& summary, bool with_runs);
nlohmann::ordered_json leaderboard_frontier_json(const Frontier& frontier);

}  // namespace pgolf
