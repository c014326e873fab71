// The external submission checker behind `pgolf check`: the folder reader, the cap recomputed with all shipped code,
// significance against the store's frontier, and the static scan, folded into one report and verdict.
#include "audit/checker.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "core/text_format.h"
#include "leaderboard/importer.h"
#include "leaderboard/queries.h"
#include "leaderboard/store.h"
#include "records/submission.h"

namespace pgolf {

namespace {

// "-" for an unknown value (NaN) in the report's table.
std::string format_or_dash(double value, int decimals) {
    return std::isfinite(value) ? format_fixed(value, decimals) : "-";
}

// A6: the logs' totals count the code the script measured; every shipped code file runs, so each total is
// recomputed with the folder's code bytes in place of the log's.
void check_cap_with_all_code(CheckReport& report) {
    const RecordFolderFacts& facts = report.facts;
    for (const FolderLog& log : facts.logs) {
        if (!log.duplicate_of.empty() || !log.facts.total_bytes) continue;
        report.largest_total_bytes = std::max(report.largest_total_bytes.value_or(0), *log.facts.total_bytes);
        if (!log.facts.code_bytes) continue;
        const std::int64_t model = *log.facts.total_bytes - *log.facts.code_bytes;
        const std::int64_t recomputed = model + facts.code_bytes;
        if (recomputed > record_artifact_cap_bytes && *log.facts.total_bytes <= record_artifact_cap_bytes) {
            report.findings.push_back(
                {"code_not_counted", "A6", "fail",
                 log.path + " counts " + format_count(*log.facts.code_bytes) + " code bytes; the folder ships " +
                     format_count(facts.code_bytes) + " bytes of code (" + std::to_string(facts.code_files.size()) +
                     " files), which makes the total " + format_count(recomputed) + ", over the 16,000,000 cap",
                 log.path + ":" + std::to_string(log.facts.total_bytes_line)});
        }
    }
}

// The frontier's best row of the folder's track (or the submission --against names), other than this folder itself.
void check_significance(CheckReport& report, const CheckOptions& options) {
    std::error_code error;
    if (options.db_path.empty() || !std::filesystem::exists(options.db_path, error)) {
        if (options.against) throw Error("--against needs a results database: " + options.db_path + " does not exist");
        report.significance_note = "no results database (" +
                                   (options.db_path.empty() ? "none given" : options.db_path) +
                                   "): significance not tested";
        return;
    }
    const Store store = Store::open(options.db_path, 10.0, false);
    std::optional<SubmissionSummary> against;
    if (options.against) {
        const auto stored = store.find_submission(*options.against);
        if (!stored) throw Error(options.db_path + ": no submission with id " + std::to_string(*options.against));
        against = leaderboard_summarize(*stored);
    } else {
        const std::string self = leaderboard_import_key(report.facts.folder);
        const Frontier frontier = leaderboard_frontier(store, report.facts.track, "");
        for (auto row = frontier.rows.rbegin(); row != frontier.rows.rend(); ++row) {
            if (row->summary.submission.folder == self) continue;
            against = row->summary;
            break;
        }
        if (!against) {
            report.significance_note = "no frontier row in " + options.db_path + " for track " +
                                       (report.facts.track.empty() ? "(none)" : report.facts.track) +
                                       ": significance not tested";
            return;
        }
    }
    std::vector<double> bpb, nats;
    bool all_nats = true;
    for (const FolderSeed& seed : report.facts.seeds) {
        if (std::isnan(seed.val_bpb)) continue;
        bpb.push_back(seed.val_bpb);
        nats.push_back(seed.val_loss);
        all_nats = all_nats && std::isfinite(seed.val_loss);
    }
    CheckSignificance result;
    result.against_id = against->submission.id;
    result.against_name = against->submission.name;
    result.against_folder = against->submission.folder;
    result.against_mean_bpb = against->bpb_summary.mean;
    result.against_seeds = against->bpb_summary.n;
    try {
        if (all_nats && against->nats.size() == against->bpb.size()) {
            result.tests = stats_compare(bpb, nats, against->bpb, against->nats);
            result.passes = result.tests->passes;
        } else if (against->bpb.size() >= 2) {
            result.welch_bpb = stats_welch_lower(bpb, against->bpb, 0.0, stats_progression_alpha);
            result.passes = result.welch_bpb->significant;
        } else {
            report.significance_note = "no per-seed losses to test against a single-seed row: not tested";
            return;
        }
    } catch (const Error& failure) {
        report.significance_note = std::string("significance not tested: ") + failure.what();
        return;
    }
    if (!result.passes) {
        const TTest& gate = result.tests ? result.tests->welch_bpb : *result.welch_bpb;
        report.findings.push_back(
            {"not_significant", "P1", record_is_record_track(report.facts.track) ? "warn" : "info",
             "not significantly better than " + result.against_name + " (mean " +
                 format_or_dash(result.against_mean_bpb, 5) + "): Welch on bpb p = " + format_or_dash(gate.p, 4) +
                 ", the progression gate needs p < 0.25",
             ""});
    }
    report.significance = result;
}

void add_scan_findings(CheckReport& report) {
    for (const ScanFinding& finding : report.scan.findings) {
        std::string message = finding.message;
        if (!finding.reachable && !finding.reachability.empty()) message += " (" + finding.reachability + ")";
        report.findings.push_back(
            {"scan", finding.rule, finding.severity, message, finding.file + ":" + std::to_string(finding.line)});
    }
}

int severity_rank(const std::string& severity) { return severity == "fail" ? 0 : severity == "warn" ? 1 : 2; }

}  // namespace

CheckReport check_folder(const CheckOptions& options) {
    CheckReport report;
    report.facts = record_folder_read(options.folder);
    report.findings = report.facts.findings;
    check_cap_with_all_code(report);
    check_significance(report, options);
    report.scan = static_scan_folder(options.folder);
    add_scan_findings(report);
    std::stable_sort(report.findings.begin(), report.findings.end(),
                     [](const RecordFinding& a, const RecordFinding& b) {
                         return severity_rank(a.severity) < severity_rank(b.severity);
                     });
    int fails = 0, warnings = 0;
    for (const RecordFinding& finding : report.findings) {
        fails += finding.severity == "fail";
        warnings += finding.severity == "warn";
    }
    report.verdict = fails > 0 ? "FAIL" : warnings > 0 ? "WARN" : "PASS";
    return report;
}

int check_exit_status(const CheckReport& report) {
    return report.verdict == "PASS" ? 0 : report.verdict == "WARN" ? 1 : 2;
}

std::string check_report_text(const CheckReport& report) {
    const RecordFolderFacts& facts = report.facts;
    std::ostringstream out;
    out << "pgolf check " << facts.folder << "\n";
    out << "track " << (facts.track.empty() ? "(unknown)" : facts.track) << " · date "
        << (facts.date.empty() ? "(unknown)" : facts.date) << " · tokenizer "
        << (facts.tokenizer.empty() ? "(unknown)" : facts.tokenizer) << "\n";
    const int logs = record_unique_log_count(facts);
    out << "files: " << facts.files.size() << " (" << logs << " log" << (logs == 1 ? "" : "s") << ", "
        << (facts.submission ? std::filesystem::path(facts.submission->path).filename().string() : "no JSON")
        << "); code: " << facts.code_files.size() << " file" << (facts.code_files.size() == 1 ? "" : "s") << ", "
        << format_count(facts.code_bytes) << " bytes\n\n";

    out << "seed        val_bpb     val_loss  family                           total bytes  train s   eval s  from\n";
    bool any_from_json = false;
    for (const FolderSeed& seed : facts.seeds) {
        auto marked = [&](const std::string& value, const char* field) {
            const bool json = std::find(seed.from_json.begin(), seed.from_json.end(), field) != seed.from_json.end();
            any_from_json = any_from_json || json;
            return value + (json ? "*" : "");
        };
        std::string family = seed.family.empty() ? "-" : seed.family;
        // A roundtrip-named line printed after final_eval_mode:sliding_window is the sliding score.
        if (!seed.eval_mode.empty() && family.find(seed.eval_mode) == std::string::npos &&
            family.find("sliding") == std::string::npos) {
            family += " (" + seed.eval_mode + ")";
        }
        char line[640];
        std::snprintf(
            line, sizeof line, "%-8s %10s %12s  %-30s %13s %8s %8s  %s\n",
            seed.seed ? std::to_string(*seed.seed).c_str() : "?", format_or_dash(seed.val_bpb, 8).c_str(),
            format_or_dash(seed.val_loss, 8).c_str(), family.c_str(),
            seed.total_bytes ? marked(format_count(*seed.total_bytes), "total_bytes").c_str() : "-",
            seed.train_time_ms ? marked(format_or_dash(*seed.train_time_ms / 1e3, 1), "train_time").c_str() : "-",
            seed.eval_time_s ? marked(format_or_dash(*seed.eval_time_s, 1), "eval_time").c_str() : "-",
            seed.from.empty() ? "-" : seed.from.c_str());
        out << line;
    }
    if (any_from_json) out << "* from the JSON: no log prints it\n";
    out << "mean " << format_or_dash(facts.mean_bpb, 8) << " ± " << format_or_dash(facts.std_bpb, 8) << " bpb over "
        << facts.seed_count << " seed" << (facts.seed_count == 1 ? "" : "s");
    if (facts.submission && facts.submission->val_bpb.value) {
        out << "; the JSON says " << format_or_dash(*facts.submission->val_bpb.value, 8) << " ("
            << facts.submission->val_bpb.from.key << ")";
    }
    out << "\n";
    if (report.largest_total_bytes) {
        out << "largest total " << format_count(*report.largest_total_bytes) << " bytes (margin "
            << format_count(record_artifact_cap_bytes - *report.largest_total_bytes) << ")\n";
    }
    if (report.significance) {
        const CheckSignificance& s = *report.significance;
        out << "significance against #" << s.against_id << " " << s.against_name << " (mean "
            << format_or_dash(s.against_mean_bpb, 8) << ", " << s.against_seeds << " seeds): ";
        if (s.tests) {
            out << "welch_bpb p=" << format_or_dash(s.tests->welch_bpb.p, 4)
                << " (gate, p < 0.25); welch_nats p=" << format_or_dash(s.tests->welch_nats.p, 4)
                << ", one_sample_nats p=" << format_or_dash(s.tests->one_sample_nats.p, 4)
                << " (README rule, 0.005 nats, p < 0.01)";
        } else {
            out << "welch_bpb p=" << format_or_dash(s.welch_bpb->p, 4) << " (gate, p < 0.25)";
        }
        out << (s.passes ? " — passes\n" : " — does not pass\n");
    } else {
        out << report.significance_note << "\n";
    }
    out << "static scan: " << report.scan.files.size() << " Python file" << (report.scan.files.size() == 1 ? "" : "s")
        << ", " << report.scan.findings.size() << " finding" << (report.scan.findings.size() == 1 ? "" : "s") << "\n";
    for (const ScanLegalPattern& legal : report.scan.legal) {
        out << "  legal " << legal.rule << ": " << legal.message << " (" << legal.file << ":" << legal.line << ")\n";
    }
    for (const std::string& note : report.scan.notes) out << "  note: " << note << "\n";

    int fails = 0, warnings = 0, infos = 0;
    if (!report.findings.empty()) out << "\nfindings:\n";
    for (const RecordFinding& finding : report.findings) {
        std::string severity = finding.severity;
        std::transform(severity.begin(), severity.end(), severity.begin(), ::toupper);
        fails += finding.severity == "fail";
        warnings += finding.severity == "warn";
        infos += finding.severity == "info";
        out << "  " << severity << " " << (finding.rule.empty() ? "-" : finding.rule) << " " << finding.kind << ": "
            << finding.message;
        if (!finding.evidence.empty()) out << " [" << finding.evidence << "]";
        out << "\n";
    }
    out << "\nverdict: " << report.verdict << " (" << fails << " fail, " << warnings << " warn, " << infos
        << " info)\n";
    return out.str();
}

nlohmann::ordered_json check_report_json(const CheckReport& report) {
    using Json = nlohmann::ordered_json;
    const RecordFolderFacts& facts = report.facts;
    auto number = [](double value) { return std::isfinite(value) ? Json(value) : Json(nullptr); };
    Json seeds = Json::array();
    for (const FolderSeed& seed : facts.seeds) {
        seeds.push_back({{"seed", seed.seed ? Json(*seed.seed) : Json(nullptr)},
                         {"val_bpb", number(seed.val_bpb)},
                         {"val_loss", number(seed.val_loss)},
                         {"family", seed.family},
                         {"eval_mode", seed.eval_mode},
                         {"from", seed.from},
                         {"total_bytes", seed.total_bytes ? Json(*seed.total_bytes) : Json(nullptr)},
                         {"train_time_ms", seed.train_time_ms ? Json(*seed.train_time_ms) : Json(nullptr)},
                         {"eval_time_s", seed.eval_time_s ? Json(*seed.eval_time_s) : Json(nullptr)},
                         {"log", seed.log >= 0 ? Json(facts.logs[seed.log].path) : Json(nullptr)},
                         {"from_json", seed.from_json}});
    }
    Json logs = Json::array();
    for (const FolderLog& log : facts.logs) {
        logs.push_back({{"path", log.path},
                        {"sha256", log.sha256},
                        {"seed", log.seed ? Json(*log.seed) : Json(nullptr)},
                        {"seed_from", log.seed_from},
                        {"duplicate_of", log.duplicate_of.empty() ? Json(nullptr) : Json(log.duplicate_of)}});
    }
    Json code = Json::array();
    for (const CodeFile& file : facts.code_files) code.push_back({{"path", file.path}, {"bytes", file.bytes}});
    Json findings = Json::array();
    for (const RecordFinding& f : report.findings) {
        findings.push_back({{"kind", f.kind},
                            {"rule", f.rule},
                            {"severity", f.severity},
                            {"message", f.message},
                            {"evidence", f.evidence}});
    }
    Json significance = nullptr;
    if (report.significance) {
        const CheckSignificance& s = *report.significance;
        Json tests = Json::array();
        if (s.tests) {
            for (const TTest* test : {&s.tests->one_sample_nats, &s.tests->welch_nats, &s.tests->welch_bpb}) {
                tests.push_back(significance_test_to_json(leaderboard_significance_test(*test)));
            }
        } else {
            tests.push_back(significance_test_to_json(leaderboard_significance_test(*s.welch_bpb)));
        }
        significance = {{"against_id", s.against_id},
                        {"against_name", s.against_name},
                        {"against_folder", s.against_folder},
                        {"against_mean_bpb", s.against_mean_bpb},
                        {"against_seeds", s.against_seeds},
                        {"gate", "welch_bpb"},
                        {"passes", s.passes},
                        {"tests", tests}};
    }
    Json scan_files = Json::array();
    for (const ScannedFile& file : report.scan.files) {
        scan_files.push_back({{"path", file.path}, {"lines", file.lines}, {"decoded_wrapper", file.decoded_wrapper}});
    }
    Json legal = Json::array();
    for (const ScanLegalPattern& l : report.scan.legal) {
        legal.push_back({{"rule", l.rule}, {"file", l.file}, {"line", l.line}, {"message", l.message}});
    }
    return Json{
        {"folder", facts.folder},
        {"name", facts.name},
        {"track", facts.track},
        {"date", facts.date},
        {"tokenizer", facts.tokenizer},
        {"json",
         facts.submission ? Json(std::filesystem::path(facts.submission->path).filename().string()) : Json(nullptr)},
        {"headline_bpb",
         facts.submission && facts.submission->val_bpb.value ? Json(*facts.submission->val_bpb.value) : Json(nullptr)},
        {"mean_bpb", number(facts.mean_bpb)},
        {"std_bpb", number(facts.std_bpb)},
        {"seed_count", facts.seed_count},
        {"seeds", seeds},
        {"logs", logs},
        {"code_files", code},
        {"code_bytes", facts.code_bytes},
        {"largest_total_bytes", report.largest_total_bytes ? Json(*report.largest_total_bytes) : Json(nullptr)},
        {"significance", significance},
        {"significance_note", report.significance_note},
        {"scan", {{"files", scan_files}, {"legal", legal}, {"notes", report.scan.notes}}},
        {"findings", findings},
        {"verdict", report.verdict}};
}

}  // namespace pgolf
