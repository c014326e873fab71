// The records-tree importer: folder facts (records/folder_reader) turned into stored submissions, runs and findings.
#include "leaderboard/importer.h"

#include <cmath>
#include <filesystem>
#include <limits>

#include "core/error.h"
#include "core/json_util.h"

namespace pgolf {

namespace {

constexpr double nan_value = std::numeric_limits<double>::quiet_NaN();

StoredFinding stored_finding(const RecordFinding& finding) {
    std::string evidence = "{\"kind\":" + json_quote(finding.kind);
    if (!finding.evidence.empty()) evidence += ",\"at\":" + json_quote(finding.evidence);
    evidence += "}";
    return {finding.rule.empty() ? finding.kind : finding.rule, finding.severity, finding.message, evidence};
}

StoredRun stored_run(const RecordFolderFacts& facts, const FolderSeed& seed, std::int64_t ordinal) {
    StoredRun run;
    run.seed = seed.seed ? *seed.seed : -ordinal;
    run.val_bpb = seed.val_bpb;
    run.val_loss = seed.val_loss;
    run.artifact_bytes = seed.total_bytes.value_or(-1);
    run.train_time_s = seed.train_time_ms ? *seed.train_time_ms / 1e3 : nan_value;
    run.eval_time_s = seed.eval_time_s.value_or(nan_value);
    if (seed.log >= 0) {
        const FolderLog& log = facts.logs[seed.log];
        const LogFacts& f = log.facts;
        run.log_sha256 = log.sha256;
        run.run_folder = log.path;
        run.model_bytes = f.model_bytes.value_or(-1);
        run.code_bytes = f.code_bytes.value_or(-1);
        run.steps = f.stop_step.value_or(-1);
        run.step_avg_ms = f.step_avg_ms.value_or(nan_value);
        for (const LogMetric& metric : f.metrics)
            run.metrics.push_back({metric.family, metric.val_loss, metric.val_bpb});
        if (!seed.seed) {
            run.findings.push_back({"S5", "info",
                                    "the log names no seed: stored under seed " + std::to_string(run.seed),
                                    "{\"kind\":\"unseeded_log\",\"at\":" + json_quote(log.path) + "}"});
        }
    } else {
        if (seed.json >= 0) {
            const SubmissionSeed& entry = facts.submission->seeds[seed.json];
            if (entry.steps.value) run.steps = *entry.steps.value;
            if (entry.step_avg_ms.value) run.step_avg_ms = *entry.step_avg_ms.value;
        }
        run.run_folder = "";
        run.findings.push_back({"S5", "warn", "no log backs this seed: the values are the JSON's (" + seed.from + ")",
                                "{\"kind\":\"seed_without_log\",\"at\":" + json_quote(seed.from) + "}"});
    }
    return run;
}

}  // namespace

std::string leaderboard_import_key(const std::string& folder) {
    std::filesystem::path path = std::filesystem::path(folder).lexically_normal();
    if (path.filename().empty()) path = path.parent_path();
    const std::string parent = path.parent_path().filename().string();
    return "records/" + (parent.empty() ? std::string("track_unknown") : parent) + "/" + path.filename().string();
}

StoredSubmission leaderboard_submission_from_folder(const RecordFolderFacts& facts) {
    StoredSubmission submission;
    submission.folder = leaderboard_import_key(facts.folder);
    submission.origin = "import";
    const SubmissionFile* json = facts.submission ? &*facts.submission : nullptr;
    submission.name = json && json->name.value && !json->name.value->empty() ? *json->name.value : facts.name;
    if (json && json->author.value) submission.author = *json->author.value;
    if (json && json->github_id.value) submission.github_id = *json->github_id.value;
    submission.date = facts.date;
    submission.track = facts.track;
    for (const RecordFinding& finding : facts.findings) submission.findings.push_back(stored_finding(finding));
    std::int64_t ordinal = 0;
    for (const FolderSeed& seed : facts.seeds) {
        if (std::isnan(seed.val_bpb) && seed.log < 0) continue;  // a seed named in the JSON with no value anywhere
        ++ordinal;
        submission.runs.push_back(stored_run(facts, seed, ordinal));
    }
    return submission;
}

ImportResult leaderboard_import_tree(
    Store& store, const std::string& root,
    const std::function<void(const ImportedFolder&, std::size_t index, std::size_t count)>& note) {
    const std::vector<std::string> folders = record_tree_folders(root);
    ImportResult result;
    for (std::size_t i = 0; i < folders.size(); ++i) {
        ImportedFolder imported;
        StoredSubmission submission;
        try {
            const RecordFolderFacts facts = record_folder_read(folders[i]);
            submission = leaderboard_submission_from_folder(facts);
        } catch (const Error& error) {
            // Unreadable (invalid JSON, duplicate keys): stored as such, so the tree's listing stays complete and
            // the row is excluded from the frontier.
            std::filesystem::path path = std::filesystem::path(folders[i]).lexically_normal();
            if (path.filename().empty()) path = path.parent_path();
            const std::string name = path.filename().string();
            submission = StoredSubmission{};
            submission.folder = leaderboard_import_key(folders[i]);
            submission.origin = "import";
            submission.name = name;
            submission.track = path.parent_path().filename().string();
            submission.date = name.size() >= 10 ? name.substr(0, 10) : "";
            submission.findings.push_back(
                {"F1", "fail", std::string("unreadable: ") + error.what(), "{\"kind\":\"unreadable\"}"});
            imported.error = error.what();
            ++result.unreadable;
        }
        imported.key = submission.folder;
        imported.submission_id = store.put_submission_with_runs(submission);
        imported.runs = static_cast<int>(submission.runs.size());
        auto count = [&](const StoredFinding& finding) {
            imported.fails += finding.severity == "fail";
            imported.warnings += finding.severity == "warn";
        };
        for (const StoredFinding& finding : submission.findings) count(finding);
        for (const StoredRun& run : submission.runs) {
            for (const StoredFinding& finding : run.findings) count(finding);
        }
        if (note) note(imported, i, folders.size());
        result.folders.push_back(std::move(imported));
    }
    return result;
}

}  // namespace pgolf
