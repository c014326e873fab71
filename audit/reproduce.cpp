// The seeds of a reproduction, the store writes after each, and the record folder at the end.
#include "audit/reproduce.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <regex>

#include "audit/ledger.h"
#include "audit/verifier.h"
#include "core/build_info.h"
#include "core/clock.h"
#include "core/digest.h"
#include "core/engine_sources.h"
#include "core/error.h"
#include "leaderboard/queries.h"
#include "leaderboard/store.h"
#include "records/record_folder.h"

namespace pgolf {

namespace {

double measure(const AuditReport& report, const char* key) {
    return report.measures.contains(key) && report.measures[key].is_number() ? report.measures[key].get<double>()
                                                                             : std::nan("");
}
std::int64_t measure_count(const AuditReport& report, const char* key) {
    return report.measures.contains(key) && report.measures[key].is_number_integer()
               ? report.measures[key].get<std::int64_t>()
               : -1;
}
std::string measure_text(const AuditReport& report, const char* key) {
    return report.measures.contains(key) && report.measures[key].is_string() ? report.measures[key].get<std::string>()
                                                                             : "";
}

// Every evaluation family of a log: its final_<family>_exact lines (the last one of a family wins).
std::vector<StoredMetric> reproduce_log_metrics(const std::string& log_path) {
    std::vector<StoredMetric> metrics;
    std::ifstream log(log_path);
    static const std::regex exact(R"(^final_(\S+)_exact val_loss:([0-9.eE+-]+) val_bpb:([0-9.eE+-]+))");
    std::string line;
    std::smatch match;
    while (std::getline(log, line)) {
        if (!std::regex_search(line, match, exact)) continue;
        StoredMetric metric{match[1].str(), std::strtod(match[2].str().c_str(), nullptr),
                            std::strtod(match[3].str().c_str(), nullptr)};
        auto found = std::find_if(metrics.begin(), metrics.end(),
                                  [&](const StoredMetric& m) { return m.family == metric.family; });
        if (found == metrics.end()) {
            metrics.push_back(metric);
        } else {
            *found = metric;
        }
    }
    return metrics;
}

// One finished (or stopped) seed as the store keeps it: the verifier's recomputed numbers, not the log's claims.
StoredRun reproduce_stored_run(std::int64_t seed, const std::string& run_folder, const std::string& relative_folder,
                               const AuditReport& report, const std::string& hardware) {
    StoredRun run;
    run.seed = seed;
    run.val_bpb = measure(report, "val_bpb");
    run.val_loss = measure(report, "val_loss");
    run.artifact_bytes = measure_count(report, "total_bytes");
    run.model_bytes = measure_count(report, "model_bytes");
    run.code_bytes = measure_count(report, "code_bytes");
    run.steps = measure_count(report, "train_steps");
    const double loop_ms = measure(report, "train_loop_ms");
    run.train_time_s = loop_ms / 1000.0;
    run.step_avg_ms = run.steps > 0 ? loop_ms / static_cast<double>(run.steps) : std::nan("");
    run.eval_time_s = measure(report, "timed_eval_ms") / 1000.0;
    run.hardware = hardware;
    run.preset = measure_text(report, "preset");
    run.config_digest = measure_text(report, "config_digest");
    run.engine_version = measure_text(report, "pgolf_version");
    run.engine_digest = measure_text(report, "engine_digest");
    const std::string log_path = run_folder + "/" + run_log_file_name;
    if (std::filesystem::exists(log_path)) {
        run.log_sha256 = digest_sha256_file_hex(log_path);
        run.metrics = reproduce_log_metrics(log_path);
    }
    run.ledger_sha256 = digest_sha256_file_hex(run_folder + "/" + ledger_file_name);
    run.audit_verdict = report.verdict;
    run.run_folder = relative_folder;
    for (const AuditFinding& finding : report.findings) {
        if (finding.severity == FindingSeverity::info) continue;  // audit.json keeps every finding
        run.findings.push_back({finding.rule, finding_severity_name(finding.severity), finding.message,
                                finding.evidence.empty() ? "" : finding.evidence.dump()});
    }
    return run;
}

std::string worst_verdict(const std::vector<std::string>& verdicts) {
    static const std::vector<std::string> order = {"PASS", "WARN", "INCOMPLETE", "FAIL"};
    std::size_t worst = 0;
    for (const std::string& verdict : verdicts) {
        const auto at = std::find(order.begin(), order.end(), verdict);
        worst = std::max(worst, at == order.end() ? order.size() - 1 : static_cast<std::size_t>(at - order.begin()));
    }
    return verdicts.empty() ? "" : order[worst];
}

// The three tests of COMPLIANCE.md §7 against the best stored record of the track.
SubmissionSignificance reproduce_significance(const std::vector<double>& bpb, const std::vector<double>& nats,
                                              const SubmissionSummary& best) {
    const Significance significance = stats_compare(bpb, nats, best.bpb, best.nats);
    SubmissionSignificance g;
    g.against_name = best.submission.name;
    g.against_folder = best.submission.folder;
    g.against_val_bpb = best.bpb_summary.mean;
    g.against_seeds = static_cast<std::int64_t>(best.bpb.size());
    for (const TTest& test : {significance.one_sample_nats, significance.welch_nats, significance.welch_bpb}) {
        g.tests.push_back(leaderboard_significance_test(test));
    }
    g.gate = significance.gate;
    g.passes = significance.passes;
    return g;
}

}  // namespace

std::string reproduce_config_digest(const Config& config) {
    nlohmann::json values = config.values();
    values.erase("SEED");
    return Config(values).digest();
}

ReproduceResult reproduce_run(const ReproduceOptions& options) {
    if (options.seeds.empty()) throw Error("reproduce: no seeds given (--seeds 1337,42,2024)");
    if (options.out.empty()) throw Error("reproduce: a record folder is required (--out)");
    for (std::size_t i = 0; i < options.seeds.size(); ++i) {
        if (std::count(options.seeds.begin(), options.seeds.end(), options.seeds[i]) > 1) {
            throw Error("reproduce: seed " + std::to_string(options.seeds[i]) + " is given twice");
        }
    }
    auto note = [&](const std::string& line) {
        if (options.note) options.note(line);
    };
    std::filesystem::create_directories(options.out);
    const std::string folder = std::filesystem::weakly_canonical(options.out).string();
    const std::string hardware = build_info_cpu_description();
    const Config& config = options.run.config;

    Store store = Store::open(options.db_path);
    StoredSubmission submission;
    submission.folder = folder;
    submission.origin = "reproduce";
    submission.name = options.name.empty() ? options.run.preset + "-" + options.run.scale : options.name;
    submission.author = options.author;
    submission.github_id = options.github_id;
    submission.date = options.date.empty() ? clock_utc_date() : options.date;
    submission.track = !options.track.empty()        ? options.track
                       : options.run.scale == "full" ? "track_10min_16mb"
                                                     : "smoke";
    submission.preset = options.run.preset;
    submission.hardware = hardware;
    submission.engine_version = build_info_version();
    submission.config_digest = reproduce_config_digest(config);
    if (const auto stored = store.find_submission_by_folder(folder)) {
        // S2: every seed of a record comes from one config.
        if (stored->config_digest != submission.config_digest) {
            if (!options.force) {
                throw Error("reproduce: " + folder + " holds a submission of another config (digest " +
                            stored->config_digest.substr(0, 12) + "); use another --out, or --force to replace it");
            }
            store.remove_submission(stored->id);
        }
    }
    const std::int64_t submission_id = store.put_submission(submission);

    ReproduceResult result;
    result.folder = folder;
    result.submission_id = submission_id;
    for (const std::int64_t seed : options.seeds) {
        const std::string relative = "runs/seed_" + std::to_string(seed);
        const std::string run_folder = folder + "/" + relative;
        if (!options.force && store.has_run(submission_id, seed) &&
            std::filesystem::exists(run_folder + "/" + ledger_file_name)) {
            note("seed " + std::to_string(seed) + ": stored already, skipped (--force runs it again)");
            result.skipped.push_back(seed);
            continue;
        }
        // A seed's folder without a stored run is a crashed attempt: it starts over.
        std::filesystem::remove_all(run_folder);
        note("seed " + std::to_string(seed) + ": running into " + run_folder);
        RunOptions run = options.run;
        run.config.set("SEED", seed);
        run.output_directory = run_folder;
        run_supervised(run);
        const AuditReport report = audit_run(run_folder);
        audit_write_json(report, run_folder + "/audit.json");
        store.put_run(submission_id, reproduce_stored_run(seed, run_folder, relative, report, hardware));
        note("seed " + std::to_string(seed) + ": stored, audit " + report.verdict);
        result.ran.push_back(seed);
    }

    // The record: every requested seed, read back from the store.
    const StoredSubmission stored = *store.find_submission(submission_id);
    Submission& record = result.submission;
    record.name = stored.name;
    record.author = stored.author;
    record.github_id = stored.github_id;
    record.date = stored.date;
    record.track = stored.track;
    record.blurb = options.blurb;
    record.cap_bytes = options.run.cap_bytes;
    record.hardware = hardware;
    record.preset = options.run.preset;
    record.scale = options.run.scale;
    record.eval_mode = config.has("EVAL_MODE") ? config.get_string("EVAL_MODE") : "sliding";
    record.config_digest = stored.config_digest;
    record.engine_version = stored.engine_version;
    record.engine_digest = engine_code_size().digest;
    std::vector<std::string> verdicts;
    RecordFolder files;
    files.folder = folder;
    files.command = options.command;
    for (const StoredRun& run : stored.runs) {
        if (std::find(options.seeds.begin(), options.seeds.end(), run.seed) == options.seeds.end()) continue;
        SeedResult seed;
        seed.val_bpb = run.val_bpb;
        seed.val_loss = run.val_loss;
        seed.artifact_bytes = run.artifact_bytes;
        seed.model_bytes = run.model_bytes;
        seed.code_bytes = run.code_bytes;
        seed.steps = run.steps;
        seed.step_avg_ms = run.step_avg_ms;
        seed.train_time_s = run.train_time_s;
        seed.eval_time_s = run.eval_time_s;
        seed.audit_verdict = run.audit_verdict;
        if (!std::isfinite(seed.val_bpb) || !std::isfinite(seed.val_loss)) {
            throw Error("reproduce: seed " + std::to_string(run.seed) + " has no score (audit " + run.audit_verdict +
                        "; see " + folder + "/" + run.run_folder + "/audit.json): no record folder is written");
        }
        record.seeds.push_back(run.seed);
        record.seed_results[run.seed] = seed;
        record.bytes_total = std::max(record.bytes_total, run.artifact_bytes);
        record.bytes_code = std::max(record.bytes_code, run.code_bytes);
        verdicts.push_back(run.audit_verdict);
        if (!run.metrics.empty()) record.metric_family = run.metrics.back().family;
        files.seed_logs[run.seed] = folder + "/" + run.run_folder + "/" + run_log_file_name;
        files.seed_runs[run.seed] = run.run_folder;
    }
    std::vector<double> bpb, nats;
    for (const auto& [seed, r] : record.seed_results) {
        bpb.push_back(r.val_bpb);
        nats.push_back(r.val_loss);
    }
    const SampleSummary bpb_summary = stats_summary(bpb);
    const SampleSummary nats_summary = stats_summary(nats);
    record.val_bpb = bpb_summary.mean;
    record.val_bpb_std = bpb_summary.std;
    record.val_loss = nats_summary.mean;
    record.val_loss_std = nats_summary.std;
    record.margin_bytes = record.cap_bytes - record.bytes_total;
    record.audit_verdict = worst_verdict(verdicts);

    if (const auto best = leaderboard_best(store, stored.track, submission_id); best && bpb.size() >= 2) {
        try {
            record.significance = reproduce_significance(bpb, nats, *best);
        } catch (const Error& error) {
            note(std::string("significance not computed: ") + error.what());
        }
    }
    files.submission = record;
    record_folder_write(files);
    return result;
}

}  // namespace pgolf
