// Summaries, the frontier and their JSON.
#include "leaderboard/queries.h"

#include <cmath>

#include "core/error.h"

namespace pgolf {

namespace {

using Json = nlohmann::ordered_json;

Json number_or_null(double value) { return std::isfinite(value) ? Json(value) : Json(nullptr); }
Json count_or_null(std::int64_t value) { return value >= 0 ? Json(value) : Json(nullptr); }

}  // namespace

SignificanceTest leaderboard_significance_test(const TTest& test) {
    return {test.name, test.t, test.df, test.p, test.margin, test.alpha, test.significant};
}

SubmissionSummary leaderboard_summarize(const StoredSubmission& submission) {
    SubmissionSummary summary;
    summary.submission = submission;
    for (const StoredRun& run : submission.runs) {
        if (std::isfinite(run.val_bpb) && std::isfinite(run.val_loss)) {
            summary.bpb.push_back(run.val_bpb);
            summary.nats.push_back(run.val_loss);
        }
        summary.bytes_max = std::max(summary.bytes_max, run.artifact_bytes);
        if (run.audit_verdict == "FAIL") summary.failed = true;
        for (const StoredFinding& finding : run.findings) summary.failed |= finding.severity == "fail";
    }
    for (const StoredFinding& finding : submission.findings) summary.failed |= finding.severity == "fail";
    if (!summary.bpb.empty()) {
        summary.bpb_summary = stats_summary(summary.bpb);
        summary.nats_summary = stats_summary(summary.nats);
    }
    return summary;
}

std::optional<SubmissionSummary> leaderboard_best(const Store& store, const std::string& track,
                                                  std::int64_t exclude_id) {
    std::optional<SubmissionSummary> best;
    for (const StoredSubmission& submission : store.list_submissions(track)) {
        if (submission.id == exclude_id || submission.origin == "rerun") continue;
        SubmissionSummary summary = leaderboard_summarize(submission);
        if (summary.failed || summary.bpb.empty()) continue;
        if (!best || summary.bpb_summary.mean < best->bpb_summary.mean) best = std::move(summary);
    }
    return best;
}

Frontier leaderboard_frontier(const Store& store, const std::string& track, const std::string& as_of) {
    Frontier frontier;
    frontier.track = track;
    frontier.as_of = as_of;
    for (const StoredSubmission& submission : store.list_submissions(track)) {
        // Dates compare as text: ISO 8601 sorts chronologically, and "2026-04-28" ≤ "2026-04-28T12:00".
        if (!as_of.empty() && submission.date.substr(0, as_of.size()) > as_of) continue;
        SubmissionSummary summary = leaderboard_summarize(submission);
        // A re-run is evidence about another submission (COMPLIANCE.md S4), not an entry of its own.
        if (submission.origin == "rerun") {
            frontier.excluded.push_back({std::move(summary), "a re-run of another submission (pgolf rerun)"});
            continue;
        }
        if (summary.failed) {
            frontier.excluded.push_back({std::move(summary), "an audit or check failed"});
            continue;
        }
        if (summary.bpb.empty()) {
            frontier.excluded.push_back({std::move(summary), "no scored seed"});
            continue;
        }
        if (frontier.rows.empty()) {
            frontier.rows.push_back({std::move(summary), std::nullopt, ""});
            continue;
        }
        const FrontierRow& previous = frontier.rows.back();
        if (summary.bpb_summary.mean >= previous.summary.bpb_summary.mean) {
            frontier.excluded.push_back({std::move(summary), "not better than " + previous.summary.submission.name});
            continue;
        }
        try {
            TTest test =
                previous.summary.bpb.size() >= 2
                    ? stats_welch_lower(summary.bpb, previous.summary.bpb, 0.0, stats_progression_alpha)
                    : stats_one_sample_lower(summary.bpb, previous.summary.bpb_summary.mean, stats_progression_alpha);
            test.name = "welch_bpb";
            if (!test.significant) {
                frontier.excluded.push_back({std::move(summary), "p " + std::to_string(test.p) + " ≥ 0.25 against " +
                                                                     previous.summary.submission.name});
                continue;
            }
            const std::string previous_name = previous.summary.submission.name;
            frontier.rows.push_back({std::move(summary), test, previous_name});
        } catch (const Error& error) {
            frontier.excluded.push_back({std::move(summary), error.what()});
        }
    }
    return frontier;
}

nlohmann::ordered_json leaderboard_summary_json(const SubmissionSummary& summary, bool with_runs) {
    const StoredSubmission& s = summary.submission;
    Json json = {{"id", s.id},
                 {"folder", s.folder},
                 {"origin", s.origin},
                 {"name", s.name},
                 {"author", s.author},
                 {"github_id", s.github_id},
                 {"date", s.date},
                 {"track", s.track},
                 {"preset", s.preset},
                 {"hardware", s.hardware},
                 {"engine_version", s.engine_version},
                 {"config_digest", s.config_digest},
                 {"seeds", summary.bpb.size()},
                 {"val_bpb", summary.bpb.empty() ? Json(nullptr) : Json(summary.bpb_summary.mean)},
                 {"val_bpb_std", summary.bpb.empty() ? Json(nullptr) : Json(summary.bpb_summary.std)},
                 {"val_loss", summary.nats.empty() ? Json(nullptr) : Json(summary.nats_summary.mean)},
                 {"val_loss_std", summary.nats.empty() ? Json(nullptr) : Json(summary.nats_summary.std)},
                 {"bytes_max", count_or_null(summary.bytes_max)},
                 {"failed", summary.failed}};
    if (!with_runs) return json;
    Json findings = Json::array();
    for (const StoredFinding& f : s.findings) {
        findings.push_back({{"rule", f.rule}, {"severity", f.severity}, {"message", f.message}});
    }
    json["findings"] = findings;
    Json runs = Json::array();
    for (const StoredRun& r : s.runs) {
        Json metrics = Json::array();
        for (const StoredMetric& m : r.metrics) {
            metrics.push_back({{"family", m.family},
                               {"val_loss", number_or_null(m.val_loss)},
                               {"val_bpb", number_or_null(m.val_bpb)}});
        }
        Json run_findings = Json::array();
        for (const StoredFinding& f : r.findings) {
            run_findings.push_back({{"rule", f.rule}, {"severity", f.severity}, {"message", f.message}});
        }
        runs.push_back({{"id", r.id},
                        {"seed", r.seed},
                        {"val_bpb", number_or_null(r.val_bpb)},
                        {"val_loss", number_or_null(r.val_loss)},
                        {"artifact_bytes", count_or_null(r.artifact_bytes)},
                        {"model_bytes", count_or_null(r.model_bytes)},
                        {"code_bytes", count_or_null(r.code_bytes)},
                        {"steps", count_or_null(r.steps)},
                        {"step_avg_ms", number_or_null(r.step_avg_ms)},
                        {"train_time_s", number_or_null(r.train_time_s)},
                        {"eval_time_s", number_or_null(r.eval_time_s)},
                        {"hardware", r.hardware},
                        {"preset", r.preset},
                        {"config_digest", r.config_digest},
                        {"engine_version", r.engine_version},
                        {"engine_digest", r.engine_digest},
                        {"log_sha256", r.log_sha256},
                        {"ledger_sha256", r.ledger_sha256},
                        {"audit_verdict", r.audit_verdict},
                        {"run_folder", r.run_folder},
                        {"metrics", metrics},
                        {"findings", run_findings}});
    }
    json["runs"] = runs;
    return json;
}

nlohmann::ordered_json leaderboard_frontier_json(const Frontier& frontier) {
    Json rows = Json::array();
    for (const FrontierRow& row : frontier.rows) {
        Json item = leaderboard_summary_json(row.summary, false);
        item["against"] = row.previous_name.empty() ? Json(nullptr) : Json(row.previous_name);
        item["test"] = row.against_previous
                           ? significance_test_to_json(leaderboard_significance_test(*row.against_previous))
                           : Json(nullptr);
        rows.push_back(item);
    }
    Json excluded = Json::array();
    for (const ExcludedRow& row : frontier.excluded) {
        Json item = leaderboard_summary_json(row.summary, false);
        item["reason"] = row.reason;
        excluded.push_back(item);
    }
    return {{"track", frontier.track},
            {"as_of", frontier.as_of.empty() ? Json(nullptr) : Json(frontier.as_of)},
            {"rule",
             "chronological; a row joins when its mean val_bpb is lower and a one-sided Welch test on "
             "per-seed val_bpb against the previous frontier row gives p < 0.25 (COMPLIANCE.md §7)"},
            {"frontier", rows},
            {"excluded", excluded}};
}

}  // namespace pgolf
