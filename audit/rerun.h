// `pgolf rerun`: a participant's own training command run once per seed (SEED in the environment) in a scratch copy of
// the record folder under the process supervisor's hard limit; the captured log read like a submitted one, the artifact
// file it wrote measured, each seed stored in the results database as it finishes (origin "rerun"), and the re-run
// compared with the submitted numbers: per seed, and as means with a Welch test. OUT/rerun.json holds all of it.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "audit/process.h"
#include "leaderboard/stats.h"
#include "leaderboard/store.h"
#include "records/folder_reader.h"

namespace pgolf {

// 600 s training + 600 s evaluation + 60 s for startup (torchrun, imports, compilation, data loading).
inline constexpr double rerun_default_limit_s = 1260.0;
inline constexpr double rerun_default_grace_s = 10.0;
inline constexpr double rerun_default_tolerance_bpb = 0.002;

struct RerunOptions {
    std::string folder;                // the submitted record folder (never written to)
    std::vector<std::int64_t> seeds;   // run in this order
    std::vector<std::string> command;  // argv, run in OUT/seed_<N>/work
    std::string out;                   // OUT/seed_<N>/{work/,rerun.log}, OUT/rerun.json
    std::string db_path;               // empty: pgolf.db next to OUT (in OUT's parent folder)
    double limit_s = rerun_default_limit_s;
    double grace_s = rerun_default_grace_s;
    std::string artifact;  // empty: the rule of rerun_is_artifact_name; else this relative path or file name exactly
    std::vector<std::pair<std::string, std::string>> environment;  // added to every seed's environment (not SEED)
    bool force = false;                                            // re-run seeds already stored
    double tolerance_bpb = rerun_default_tolerance_bpb;
    std::int64_t cap_bytes = record_artifact_cap_bytes;
    std::function<void(const std::string&)> note;  // one line per seed started, skipped or finished
};

struct RerunSeedResult {
    std::int64_t seed = 0;
    bool skipped = false;   // stored already: the values below are the stored run's, process is empty
    ProcessResult process;  // of this invocation
    std::string log_path;   // OUT/seed_<N>/rerun.log
    double val_bpb = std::numeric_limits<double>::quiet_NaN();  // the log's headline family
    double val_loss = std::numeric_limits<double>::quiet_NaN();
    std::string family;
    std::optional<double> submitted_bpb;                          // the JSON's value for this seed, else its headline
    std::string submitted_from;                                   // "submission.json:seed_results.42.val_bpb"
    double delta_bpb = std::numeric_limits<double>::quiet_NaN();  // re-run − submitted
    std::string artifact_path;                                    // relative to the scratch folder
    std::int64_t artifact_bytes = -1;
    std::int64_t code_bytes = -1;
    std::int64_t total_bytes = -1;                     // artifact + code, measured
    std::optional<std::int64_t> log_total_bytes;       // what the log printed
    std::optional<double> train_time_ms, eval_time_s;  // from the log
    std::vector<StoredFinding> findings;
    std::string verdict;  // PASS, WARN or FAIL
};

struct RerunComparison {
    SampleSummary rerun;                   // the seeds with a score (n 0 when none)
    std::optional<double> submitted_mean;  // the JSON headline val_bpb, else the mean of its per-seed values
    std::string submitted_from;            // "submission.json:val_bpb" or "mean of 3 per-seed values"
    std::vector<double> submitted_values;  // the JSON's per-seed val_bpb
    double mean_delta = std::numeric_limits<double>::quiet_NaN();  // re-run mean − submitted mean
    std::optional<TTest> welch;  // re-run against the submitted per-seed values (both n ≥ 2)
    double welch_p_two_sided = std::numeric_limits<double>::quiet_NaN();
};

struct RerunResult {
    std::string out;  // absolute
    std::string db_path;
    std::int64_t submission_id = 0;
    std::int64_t code_bytes = 0;
    std::vector<CodeFile> code_files;
    std::vector<RerunSeedResult> seeds;  // in the order requested
    RerunComparison comparison;
    std::string verdict;    // the worst of the seeds'
    std::string json_path;  // OUT/rerun.json
};

// Throws pgolf::Error (one line) on bad options (no seeds, a repeated seed, no command, a missing folder, OUT inside
// FOLDER, SEED among the extra variables) and when the database cannot be used; a seed that fails is a finding.
RerunResult rerun_run(const RerunOptions& options);

// The default artifact rule: a name ending in .ptz, .pt.xz, .bin.zst, .lzma, .brotli, .zst, .xz or .br, or starting
// with final_model and not ending in .pt.
bool rerun_is_artifact_name(const std::string& file_name);

// 0 when every seed passes, 1 when the worst is WARN, 2 when any seed FAILs.
int rerun_exit_status(const RerunResult& result);

// The content of rerun.json.
std::string rerun_json_text(const RerunResult& result, const RerunOptions& options);

}  // namespace pgolf
