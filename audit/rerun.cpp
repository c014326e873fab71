// The seeds of a re-run: a scratch copy, the supervised command, the log and the artifact measured, the findings, the
// store write after each seed, and the comparison with the submitted numbers in OUT/rerun.json.
#include "audit/rerun.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/build_info.h"
#include "core/clock.h"
#include "core/digest.h"
#include "core/error.h"
#include "core/file_util.h"
#include "records/log_reader.h"
#include "records/submission_reader.h"

namespace pgolf {

namespace {

namespace fs = std::filesystem;

constexpr const char* rerun_artifact_suffixes[] = {".ptz",    ".pt.xz", ".bin.zst", ".lzma",
                                                   ".brotli", ".zst",   ".xz",      ".br"};

std::string rerun_fixed(double value, int decimals) {
    char buffer[64];
    std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, value);
    return buffer;
}

std::string rerun_join(const std::vector<std::string>& words) {
    std::string text;
    for (const std::string& word : words) text += (text.empty() ? "" : " ") + word;
    return text;
}

// Whether inner is outer or lies under it (both absolute and normal).
bool rerun_path_within(const fs::path& inner, const fs::path& outer) {
    auto i = inner.begin();
    for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
        if (o->empty()) continue;  // a trailing separator
        if (i == inner.end() || *i != *o) return false;
    }
    return true;
}

// Every regular file under root with its modification time and size, by path relative to root.
using FileState = std::pair<fs::file_time_type, std::uintmax_t>;
std::map<std::string, FileState> rerun_snapshot(const fs::path& root) {
    std::map<std::string, FileState> files;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        std::error_code status_error;
        if (!it->is_regular_file(status_error) || it->is_symlink(status_error)) continue;
        std::error_code time_error, size_error;
        const auto time = it->last_write_time(time_error);
        const auto size = it->file_size(size_error);
        if (time_error || size_error) continue;
        files[fs::relative(it->path(), root).generic_string()] = {time, size};
    }
    return files;
}

struct ArtifactSearch {
    std::string path;  // relative to the scratch folder; empty when none
    std::int64_t bytes = -1;
    std::string missing;  // why none was found
};

// The artifact: the newest file written or changed during the run that the name (or the rule) picks.
ArtifactSearch rerun_find_artifact(const fs::path& work, const std::map<std::string, FileState>& before,
                                   const std::string& name) {
    const std::map<std::string, FileState> after = rerun_snapshot(work);
    ArtifactSearch found;
    fs::file_time_type newest{};
    bool stale_match = false;
    for (const auto& [path, state] : after) {
        const std::string file_name = fs::path(path).filename().string();
        const bool matches = name.empty() ? rerun_is_artifact_name(file_name) : (path == name || file_name == name);
        if (!matches) continue;
        const auto old = before.find(path);
        if (old != before.end() && old->second == state) {
            stale_match = true;  // shipped in the folder and untouched by the run
            continue;
        }
        if (found.path.empty() || state.first > newest) {
            found.path = path;
            found.bytes = static_cast<std::int64_t>(state.second);
            newest = state.first;
        }
    }
    if (found.path.empty()) {
        const std::string what = name.empty() ? "no artifact file (see the --artifact rule)" : "no file " + name;
        found.missing = what + (stale_match ? " was written by the run (only the submitted folder's copy exists)"
                                            : " was written by the run");
    }
    return found;
}

std::string rerun_verdict(const std::vector<StoredFinding>& findings) {
    std::string verdict = "PASS";
    for (const StoredFinding& f : findings) {
        if (f.severity == "fail") return "FAIL";
        if (f.severity == "warn") verdict = "WARN";
    }
    return verdict;
}

// The submitted value for a seed: its per-seed val_bpb, else the headline.
void rerun_submitted_value(const std::optional<SubmissionFile>& submission, std::int64_t seed, RerunSeedResult& out) {
    if (!submission) return;
    for (const SubmissionSeed& s : submission->seeds) {
        if (s.seed == seed && s.val_bpb.value) {
            out.submitted_bpb = s.val_bpb.value;
            out.submitted_from = fs::path(s.val_bpb.from.file).filename().string() + ":" + s.val_bpb.from.key;
            return;
        }
    }
    if (submission->val_bpb.value) {
        out.submitted_bpb = submission->val_bpb.value;
        out.submitted_from =
            fs::path(submission->val_bpb.from.file).filename().string() + ":" + submission->val_bpb.from.key;
    }
}

// A digest of what a re-run runs: the command, the extra variables and every code file's content, so one OUT holds one
// experiment.
std::string rerun_config_digest(const std::string& folder, const std::vector<CodeFile>& code,
                                const RerunOptions& options) {
    std::string text = "pgolf-rerun/1\n" + rerun_join(options.command) + "\n";
    for (const auto& [key, value] : options.environment) text += key + "=" + value + "\n";
    for (const CodeFile& file : code) text += file.path + " " + digest_sha256_file_hex(folder + "/" + file.path) + "\n";
    return digest_sha256_hex(text);
}

// The findings of one finished seed (the rule ids of docs/rerun.md).
void rerun_add_findings(const RerunOptions& options, const LogFacts* facts, const std::string& artifact_missing,
                        RerunSeedResult& seed) {
    auto add = [&](const char* rule, const char* severity, const std::string& message) {
        seed.findings.push_back({rule, severity, message, ""});
    };
    const ProcessResult& p = seed.process;
    bool ended_badly = true;
    if (p.killed_at_limit) {
        add("R2", "fail",
            "killed at the " + rerun_fixed(options.limit_s, 0) + " s limit (600 s train + 600 s eval + startup)");
    } else if (!p.spawn_error.empty()) {
        add("R3", "fail", "the command did not start: " + p.spawn_error);
    } else if (p.signal != 0 || p.exit_code != 0 || p.interrupted_by != 0) {
        add("R3", "fail", "the command ended with " + process_describe_result(p));
    } else {
        ended_badly = false;
    }
    if (!ended_badly) {
        if (seed.artifact_path.empty()) add("R4", "fail", artifact_missing);
        if (!std::isfinite(seed.val_bpb)) add("R7", "fail", "the log prints no final val_bpb");
    }
    if (!seed.artifact_path.empty() && seed.total_bytes > options.cap_bytes) {
        add("A1", "fail",
            "artifact " + seed.artifact_path + " " + std::to_string(seed.artifact_bytes) + " bytes + code " +
                std::to_string(seed.code_bytes) + " = " + std::to_string(seed.total_bytes) +
                " bytes, over the cap of " + std::to_string(options.cap_bytes));
    }
    if (facts != nullptr) {
        const double step = facts->step_avg_ms.value_or(0.0);
        if (facts->train_time_ms && *facts->train_time_ms > record_train_cap_ms + step) {
            add("T1", "fail",
                "the log's training stopped at " + rerun_fixed(*facts->train_time_ms, 0) +
                    " ms, over 600,000 ms (+ one step of " + rerun_fixed(step, 2) + " ms)");
        }
        if (facts->total_eval_time_s && *facts->total_eval_time_s > record_eval_cap_s) {
            add("E1", "fail",
                "the log's total_eval_time is " + rerun_fixed(*facts->total_eval_time_s, 1) + " s, over 600 s");
        }
    }
    if (seed.submitted_bpb && std::isfinite(seed.delta_bpb) && std::fabs(seed.delta_bpb) > options.tolerance_bpb) {
        add("R1", "warn",
            "re-run val_bpb " + rerun_fixed(seed.val_bpb, 8) + " (" + seed.family + ") differs from the submitted " +
                rerun_fixed(*seed.submitted_bpb, 8) + " (" + seed.submitted_from + ") by " +
                rerun_fixed(seed.delta_bpb, 8) + ", beyond the tolerance " + rerun_fixed(options.tolerance_bpb, 4));
    }
    if (facts != nullptr && facts->seed && *facts->seed != seed.seed) {
        add("R5", "warn",
            "the log prints seed " + std::to_string(*facts->seed) + " (line " + std::to_string(facts->seed_line) +
                ") but SEED was " + std::to_string(seed.seed));
    }
    if (facts != nullptr && !seed.artifact_path.empty()) {
        std::vector<std::string> differences;
        if (facts->total_bytes && *facts->total_bytes != seed.total_bytes) {
            differences.push_back("total " + std::to_string(*facts->total_bytes) + " (" + facts->total_bytes_label +
                                  ", line " + std::to_string(facts->total_bytes_line) + ") vs measured " +
                                  std::to_string(seed.total_bytes));
        }
        if (facts->model_bytes && *facts->model_bytes != seed.artifact_bytes) {
            differences.push_back("model " + std::to_string(*facts->model_bytes) + " vs artifact file " +
                                  std::to_string(seed.artifact_bytes));
        }
        if (!differences.empty()) {
            std::string message = "the log's printed bytes differ from the measured:";
            for (std::size_t i = 0; i < differences.size(); ++i) message += (i ? "; " : " ") + differences[i];
            add("R6", "warn", message);
        }
    }
    seed.verdict = rerun_verdict(seed.findings);
}

std::string rerun_seed_summary(const RerunSeedResult& seed) {
    std::string text = "seed " + std::to_string(seed.seed) + ": " + process_describe_result(seed.process) + " in " +
                       rerun_fixed(seed.process.wall_s, 1) + " s";
    text += std::isfinite(seed.val_bpb) ? ", val_bpb " + rerun_fixed(seed.val_bpb, 8) + " (" + seed.family + ")"
                                        : ", no score";
    if (!seed.artifact_path.empty()) {
        text += ", artifact " + seed.artifact_path + " " + std::to_string(seed.artifact_bytes) + " + code " +
                std::to_string(seed.code_bytes) + " = " + std::to_string(seed.total_bytes) + " bytes";
    }
    text += ", " + seed.verdict;
    for (const StoredFinding& f : seed.findings) text += " " + f.rule;
    return text;
}

// The stored run a skipped seed came from, as a seed result.
RerunSeedResult rerun_seed_from_store(const StoredRun& run, const std::string& log_path) {
    RerunSeedResult seed;
    seed.seed = run.seed;
    seed.skipped = true;
    seed.log_path = log_path;
    seed.val_bpb = run.val_bpb;
    seed.val_loss = run.val_loss;
    for (const StoredMetric& m : run.metrics) {
        if (m.val_bpb == run.val_bpb) seed.family = m.family;
    }
    seed.artifact_bytes = run.model_bytes;
    seed.code_bytes = run.code_bytes;
    seed.total_bytes = run.artifact_bytes;
    if (std::isfinite(run.train_time_s)) seed.train_time_ms = run.train_time_s * 1000.0;
    if (std::isfinite(run.eval_time_s)) seed.eval_time_s = run.eval_time_s;
    seed.findings = run.findings;
    seed.verdict = run.audit_verdict.empty() ? rerun_verdict(run.findings) : run.audit_verdict;
    return seed;
}

RerunComparison rerun_compare(const std::vector<RerunSeedResult>& seeds, const std::optional<SubmissionFile>& json) {
    RerunComparison c;
    std::vector<double> rerun;
    for (const RerunSeedResult& s : seeds) {
        if (std::isfinite(s.val_bpb)) rerun.push_back(s.val_bpb);
    }
    if (!rerun.empty()) c.rerun = stats_summary(rerun);
    if (json) {
        for (const SubmissionSeed& s : json->seeds) {
            if (s.val_bpb.value && std::isfinite(*s.val_bpb.value)) c.submitted_values.push_back(*s.val_bpb.value);
        }
        if (json->val_bpb.value) {
            c.submitted_mean = json->val_bpb.value;
            c.submitted_from = fs::path(json->val_bpb.from.file).filename().string() + ":" + json->val_bpb.from.key;
        } else if (!c.submitted_values.empty()) {
            c.submitted_mean = stats_summary(c.submitted_values).mean;
            c.submitted_from = "mean of " + std::to_string(c.submitted_values.size()) + " per-seed values";
        }
    }
    if (c.submitted_mean && c.rerun.n > 0) c.mean_delta = c.rerun.mean - *c.submitted_mean;
    if (rerun.size() >= 2 && c.submitted_values.size() >= 2) {
        try {
            c.welch = stats_welch_lower(rerun, c.submitted_values, 0.0, 0.05);
            c.welch->name = "welch_bpb_rerun_vs_submitted";
            c.welch_p_two_sided = 2.0 * std::min(c.welch->p, 1.0 - c.welch->p);
        } catch (const Error&) {
            c.welch.reset();  // zero spread on both sides: no test
        }
    }
    return c;
}

nlohmann::ordered_json rerun_optional_json(const std::optional<double>& value) {
    return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json(nullptr);
}

}  // namespace

bool rerun_is_artifact_name(const std::string& file_name) {
    for (const char* suffix : rerun_artifact_suffixes) {
        if (file_name.ends_with(suffix) && file_name.size() > std::string(suffix).size()) return true;
    }
    return file_name.starts_with("final_model") && !file_name.ends_with(".pt");
}

int rerun_exit_status(const RerunResult& result) {
    if (result.verdict == "FAIL") return 2;
    if (result.verdict == "WARN") return 1;
    return 0;
}

std::string rerun_json_text(const RerunResult& result, const RerunOptions& options) {
    using Json = nlohmann::ordered_json;
    Json seeds = Json::array();
    for (const RerunSeedResult& s : result.seeds) {
        Json findings = Json::array();
        for (const StoredFinding& f : s.findings) {
            findings.push_back({{"rule", f.rule}, {"severity", f.severity}, {"message", f.message}});
        }
        Json process = nullptr;
        if (!s.skipped) {
            process = {{"exit_code", s.process.exit_code},
                       {"signal", s.process.signal},
                       {"killed_at_limit", s.process.killed_at_limit},
                       {"strays_killed", s.process.strays_killed},
                       {"wall_s", s.process.wall_s},
                       {"spawn_error", s.process.spawn_error}};
        }
        seeds.push_back({{"seed", s.seed},
                         {"skipped", s.skipped},
                         {"process", process},
                         {"log", s.log_path},
                         {"val_bpb", s.val_bpb},
                         {"val_loss", s.val_loss},
                         {"family", s.family},
                         {"submitted_bpb", rerun_optional_json(s.submitted_bpb)},
                         {"submitted_from", s.submitted_from},
                         {"delta_bpb", s.delta_bpb},
                         {"artifact", s.artifact_path},
                         {"artifact_bytes", s.artifact_bytes},
                         {"code_bytes", s.code_bytes},
                         {"total_bytes", s.total_bytes},
                         {"log_total_bytes", s.log_total_bytes ? Json(*s.log_total_bytes) : Json(nullptr)},
                         {"train_time_ms", rerun_optional_json(s.train_time_ms)},
                         {"eval_time_s", rerun_optional_json(s.eval_time_s)},
                         {"verdict", s.verdict},
                         {"findings", findings}});
    }
    const RerunComparison& c = result.comparison;
    Json welch = nullptr;
    if (c.welch) {
        welch = {{"name", c.welch->name},
                 {"t", c.welch->t},
                 {"df", c.welch->df},
                 {"p_lower", c.welch->p},
                 {"p_two_sided", c.welch_p_two_sided}};
    }
    Json code_files = Json::array();
    for (const CodeFile& f : result.code_files) code_files.push_back({{"path", f.path}, {"bytes", f.bytes}});
    Json environment = Json::object();
    for (const auto& [key, value] : options.environment) environment[key] = value;
    const Json out = {{"schema", "pgolf-rerun/1"},
                      {"folder", fs::absolute(options.folder).lexically_normal().string()},
                      {"out", result.out},
                      {"db", result.db_path},
                      {"submission_id", result.submission_id},
                      {"command", options.command},
                      {"environment", environment},
                      {"limit_s", options.limit_s},
                      {"grace_s", options.grace_s},
                      {"tolerance_bpb", options.tolerance_bpb},
                      {"cap_bytes", options.cap_bytes},
                      {"artifact_rule", options.artifact.empty() ? "default" : "name " + options.artifact},
                      {"code_bytes", result.code_bytes},
                      {"code_files", code_files},
                      {"seeds", seeds},
                      {"comparison",
                       {{"rerun",
                         {{"n", c.rerun.n},
                          {"mean_bpb", c.rerun.n > 0 ? Json(c.rerun.mean) : Json(nullptr)},
                          {"std_bpb", c.rerun.n > 1 ? Json(c.rerun.std) : Json(nullptr)}}},
                        {"submitted",
                         {{"mean_bpb", rerun_optional_json(c.submitted_mean)},
                          {"from", c.submitted_from},
                          {"per_seed_bpb", c.submitted_values}}},
                        {"mean_delta_bpb", c.mean_delta},
                        {"welch", welch}}},
                      {"verdict", result.verdict},
                      {"exit_status", rerun_exit_status(result)}};
    return out.dump(2) + "\n";
}

RerunResult rerun_run(const RerunOptions& options) {
    if (options.seeds.empty()) throw Error("rerun: no seeds given (--seeds 1337,42,2024)");
    for (const std::int64_t seed : options.seeds) {
        if (std::count(options.seeds.begin(), options.seeds.end(), seed) > 1) {
            throw Error("rerun: seed " + std::to_string(seed) + " is given twice");
        }
    }
    if (options.command.empty() || options.command[0].empty()) {
        throw Error("rerun: no command given (put it after --, e.g. -- torchrun --nproc_per_node=8 train_gpt.py)");
    }
    if (options.out.empty()) throw Error("rerun: an output folder is required (--out)");
    for (const auto& [key, value] : options.environment) {
        if (key.empty() || key.find('=') != std::string::npos) throw Error("rerun: bad variable name '" + key + "'");
        if (key == "SEED") throw Error("rerun: SEED is set per seed from --seeds, not with --env");
    }
    std::error_code ec;
    if (!fs::is_directory(options.folder, ec)) throw Error("rerun: " + options.folder + " is not a folder");
    const fs::path folder = fs::canonical(options.folder);
    const fs::path out = fs::weakly_canonical(fs::absolute(options.out));
    if (rerun_path_within(out, folder)) {
        throw Error("rerun: the output folder " + out.string() + " is inside " + folder.string() +
                    " (it would be copied into itself); use --out elsewhere");
    }
    auto note = [&](const std::string& line) {
        if (options.note) options.note(line);
    };

    RerunResult result;
    result.out = out.string();
    result.db_path = options.db_path.empty() ? (out.parent_path() / "pgolf.db").string() : options.db_path;
    result.json_path = (out / "rerun.json").string();
    result.code_files = record_code_files(folder.string());
    for (const CodeFile& file : result.code_files) result.code_bytes += file.bytes;

    std::optional<SubmissionFile> submission;
    if (const auto json = submission_find(folder.string())) {
        try {
            submission = submission_read_variant(*json);
        } catch (const Error& error) {
            note(std::string("submitted numbers not read: ") + error.what());
        }
    } else {
        note("no submission*.json in " + folder.string() + ": nothing to compare with");
    }

    fs::create_directories(out);
    Store store = Store::open(result.db_path);
    StoredSubmission stored;
    stored.folder = out.string();
    stored.origin = "rerun";
    const std::string name =
        submission && submission->name.value ? *submission->name.value : folder.filename().string();
    stored.name = name + " (rerun)";
    if (submission && submission->author.value) stored.author = *submission->author.value;
    if (submission && submission->github_id.value) stored.github_id = *submission->github_id.value;
    stored.date = clock_utc_date();
    const std::string parent = folder.parent_path().filename().string();
    stored.track = submission && submission->track.value ? *submission->track.value
                   : parent.starts_with("track_")        ? parent
                                                         : "rerun";
    stored.hardware = build_info_cpu_description();
    stored.engine_version = build_info_version();
    stored.config_digest = rerun_config_digest(folder.string(), result.code_files, options);
    if (const auto existing = store.find_submission_by_folder(stored.folder)) {
        if (existing->config_digest != stored.config_digest) {
            if (!options.force) {
                throw Error("rerun: " + stored.folder + " holds a re-run of other code, command or --env (digest " +
                            existing->config_digest.substr(0, 12) + "); use another --out, or --force to replace it");
            }
            store.remove_submission(existing->id);
        }
    }
    result.submission_id = store.put_submission(stored);

    auto finish = [&] {
        result.comparison = rerun_compare(result.seeds, submission);
        result.verdict = "PASS";
        for (const RerunSeedResult& s : result.seeds) {
            if (s.verdict == "FAIL" || (s.verdict == "WARN" && result.verdict == "PASS")) result.verdict = s.verdict;
        }
        const std::string text = rerun_json_text(result, options);
        file_write_bytes(result.json_path, text.data(), text.size());
    };

    for (const std::int64_t seed_value : options.seeds) {
        const std::string seed_name = "seed_" + std::to_string(seed_value);
        const fs::path seed_folder = out / seed_name;
        const fs::path work = seed_folder / "work";
        const std::string log_path = (seed_folder / "rerun.log").string();
        if (!options.force && store.has_run(result.submission_id, seed_value)) {
            const auto current = store.find_submission(result.submission_id);
            for (const StoredRun& run : current->runs) {
                if (run.seed != seed_value) continue;
                RerunSeedResult seed = rerun_seed_from_store(run, log_path);
                rerun_submitted_value(submission, seed_value, seed);
                if (seed.submitted_bpb && std::isfinite(seed.val_bpb))
                    seed.delta_bpb = seed.val_bpb - *seed.submitted_bpb;
                result.seeds.push_back(seed);
            }
            note("seed " + std::to_string(seed_value) + ": stored already, skipped (--force runs it again)");
            continue;
        }

        // A seed folder without a stored run is a crashed attempt: it starts over from a fresh copy.
        fs::remove_all(seed_folder);
        fs::create_directories(seed_folder);
        try {
            fs::copy(folder, work, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
        } catch (const fs::filesystem_error& error) {
            throw Error("rerun: cannot copy " + folder.string() + " to " + work.string() + ": " +
                        error.code().message());
        }
        const auto before = rerun_snapshot(work);

        ProcessOptions process;
        process.argv = options.command;
        process.working_directory = work.string();
        process.environment = options.environment;
        const bool has_unbuffered = std::any_of(options.environment.begin(), options.environment.end(),
                                                [](const auto& kv) { return kv.first == "PYTHONUNBUFFERED"; });
        if (!has_unbuffered) process.environment.emplace_back("PYTHONUNBUFFERED", "1");
        process.environment.emplace_back("SEED", std::to_string(seed_value));
        process.log_path = log_path;
        process.limit_s = options.limit_s;
        process.grace_s = options.grace_s;
        note("seed " + std::to_string(seed_value) + ": running " + rerun_join(options.command) + " in " +
             work.string() + " (limit " + rerun_fixed(options.limit_s, 0) + " s)");

        RerunSeedResult seed;
        seed.seed = seed_value;
        seed.log_path = log_path;
        seed.process = process_run_supervised(process);

        const LogFacts facts = log_read_file(log_path);
        if (const LogMetric* headline = log_headline_metric(facts)) {
            seed.val_bpb = headline->val_bpb;
            seed.val_loss = headline->val_loss;
            seed.family = headline->family;
        }
        rerun_submitted_value(submission, seed_value, seed);
        if (seed.submitted_bpb && std::isfinite(seed.val_bpb)) seed.delta_bpb = seed.val_bpb - *seed.submitted_bpb;
        const ArtifactSearch artifact = rerun_find_artifact(work, before, options.artifact);
        seed.artifact_path = artifact.path;
        seed.code_bytes = result.code_bytes;
        if (!artifact.path.empty()) {
            seed.artifact_bytes = artifact.bytes;
            seed.total_bytes = artifact.bytes + result.code_bytes;
        }
        seed.log_total_bytes = facts.total_bytes;
        seed.train_time_ms = facts.train_time_ms;
        seed.eval_time_s = facts.total_eval_time_s;
        rerun_add_findings(options, &facts, artifact.missing, seed);

        StoredRun run;
        run.seed = seed_value;
        run.val_bpb = seed.val_bpb;
        run.val_loss = seed.val_loss;
        run.artifact_bytes = seed.total_bytes;
        run.model_bytes = seed.artifact_bytes;
        run.code_bytes = seed.code_bytes;
        run.steps = facts.stop_step ? *facts.stop_step : facts.iterations.value_or(-1);
        if (facts.step_avg_ms) run.step_avg_ms = *facts.step_avg_ms;
        if (facts.train_time_ms) run.train_time_s = *facts.train_time_ms / 1000.0;
        if (facts.total_eval_time_s) run.eval_time_s = *facts.total_eval_time_s;
        run.hardware = stored.hardware;
        run.config_digest = stored.config_digest;
        run.log_sha256 = digest_sha256_file_hex(log_path);
        run.audit_verdict = seed.verdict;
        run.run_folder = seed_name;
        for (const LogMetric& m : facts.metrics) run.metrics.push_back({m.family, m.val_loss, m.val_bpb});
        run.findings = seed.findings;
        store.put_run(result.submission_id, run);
        note(rerun_seed_summary(seed));
        result.seeds.push_back(std::move(seed));
        finish();
    }
    finish();
    return result;
}

}  // namespace pgolf
