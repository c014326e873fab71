// `pgolf check FOLDER`: everything the files of a participant's record folder and the rules can say before a PR
// (COMPLIANCE.md sections 1-9 and 12): the folder reader's findings (required files, seeds, headline and mean, bytes,
// wallclock from the logs, tokens per byte), the artifact cap recomputed with every shipped code file, significance
// against the current frontier of the results store, and the static scan of every .py for the illegal evaluation
// patterns of section 5. Verdict PASS, WARN or FAIL.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "audit/static_scan.h"
#include "leaderboard/stats.h"
#include "records/folder_reader.h"

namespace pgolf {

struct CheckOptions {
    std::string folder;
    std::string db_path;                  // the results store for significance; "" or a missing file: not tested
    std::optional<std::int64_t> against;  // a stored submission id to test against instead of the frontier
};

struct CheckSignificance {
    std::int64_t against_id = 0;
    std::string against_name;
    std::string against_folder;
    double against_mean_bpb = 0.0;
    std::int64_t against_seeds = 0;
    std::optional<Significance> tests;  // all three forms when every seed has a loss in both
    std::optional<TTest> welch_bpb;     // the gate alone, when losses are missing
    bool passes = false;
};

struct CheckReport {
    RecordFolderFacts facts;
    ScanReport scan;
    std::vector<RecordFinding> findings;  // the folder reader's, the cap recomputed, significance, the scan's
    std::optional<std::int64_t> largest_total_bytes;  // the largest per-seed total the logs print
    std::optional<CheckSignificance> significance;
    std::string significance_note;  // why no test was made, when none was
    std::string verdict;            // PASS, WARN or FAIL
};

// Throws pgolf::Error only when the folder cannot be read at all (not a directory, invalid JSON) or --against names
// no stored submission.
CheckReport check_folder(const CheckOptions& options);

// 0 PASS, 1 WARN, 2 FAIL.
int check_exit_status(const CheckReport& report);

std::string check_report_text(const CheckReport& report);
nlohmann::ordered_json check_report_json(const CheckReport& report);

}  // namespace pgolf
