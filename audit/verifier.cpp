// The verifier's rules over a run folder: chain, files, clocks, data access, the gate's order, the log.
#include "audit/verifier.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <numbers>
#include <optional>
#include <regex>

#include "audit/ledger.h"
#include "audit/supervisor.h"
#include "core/codec.h"
#include "core/digest.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/json_util.h"
#include "core/text_format.h"
#include "model/config.h"

namespace pgolf {

namespace {

using Json = nlohmann::ordered_json;
constexpr std::int64_t challenge_cap_bytes = 16'000'000;

// Half-open token ranges, kept merged, for "which targets are committed".
class RangeSet {
public:
    void add(std::int64_t begin, std::int64_t end) {
        if (begin >= end) return;
        std::vector<std::pair<std::int64_t, std::int64_t>> merged;
        bool placed = false;
        for (const auto& [b, e] : ranges_) {
            if (e < begin || b > end) {
                if (!placed && b > end) {
                    merged.emplace_back(begin, end);
                    placed = true;
                }
                merged.emplace_back(b, e);
            } else {
                begin = std::min(begin, b);
                end = std::max(end, e);
            }
        }
        if (!placed) merged.emplace_back(begin, end);
        std::sort(merged.begin(), merged.end());
        ranges_ = std::move(merged);
    }
    // Elements of [begin, end) in the set.
    std::int64_t covered(std::int64_t begin, std::int64_t end) const {
        std::int64_t total = 0;
        for (const auto& [b, e] : ranges_) total += std::max<std::int64_t>(0, std::min(e, end) - std::max(b, begin));
        return total;
    }
    bool empty() const { return ranges_.empty(); }

private:
    std::vector<std::pair<std::int64_t, std::int64_t>> ranges_;
};

std::string range_text(std::int64_t begin, std::int64_t end) {
    return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

std::int64_t json_int(const Json& payload, const char* key, std::int64_t fallback = 0) {
    return payload.contains(key) && payload[key].is_number() ? payload[key].get<std::int64_t>() : fallback;
}
double json_double(const Json& payload, const char* key, double fallback = 0.0) {
    return payload.contains(key) && payload[key].is_number() ? payload[key].get<double>() : fallback;
}
std::string json_string(const Json& payload, const char* key) {
    return payload.contains(key) && payload[key].is_string() ? payload[key].get<std::string>() : "";
}

// A finite decimal number, the whole text.
bool verifier_parse_number(const std::string& text, double& value) {
    const auto parsed = std::from_chars(text.data(), text.data() + text.size(), value);
    return parsed.ec == std::errc() && parsed.ptr == text.data() + text.size() && std::isfinite(value);
}

bool phase_before_evaluation(const std::string& phase) { return phase != "evaluate"; }

class Verifier {
public:
    Verifier(std::string directory, const AuditOptions& options)
        : directory_(std::move(directory)), options_(options) {}

    AuditReport run() {
        report_.run_directory = directory_;
        const std::string ledger_path = directory_ + "/" + ledger_file_name;
        if (!std::filesystem::exists(ledger_path)) {
            throw Error(directory_ + ": no " + ledger_file_name + " (not a folder written by pgolf run)");
        }
        const LedgerReading reading = ledger_read(ledger_path);
        report_.ledger_lines = static_cast<std::int64_t>(reading.entries.size());
        check_chain(reading);
        for (const LedgerEntry& entry : reading.entries) {
            if (entry.parsed) walk(entry);
        }
        finish();
        return std::move(report_);
    }

private:
    void add(const std::string& rule, FindingSeverity severity, const std::string& message, std::int64_t line = 0,
             Json evidence = Json::object()) {
        report_.findings.push_back(AuditFinding{rule, severity, message, line, std::move(evidence)});
    }
    bool has_fail(const std::string& rule) const {
        return std::any_of(report_.findings.begin(), report_.findings.end(), [&](const AuditFinding& f) {
            return f.rule == rule && f.severity == FindingSeverity::fail;
        });
    }

    void check_chain(const LedgerReading& reading) {
        for (const LedgerProblem& problem : reading.problems) {
            add("V1", FindingSeverity::fail, "ledger chain broken: " + problem.message, problem.line);
        }
        if (!reading.head) add("V1", FindingSeverity::warn, "ledger head missing: " + reading.head_problem);
        if (reading.truncated_tail) {
            add("V1", FindingSeverity::info, "the ledger ends inside a line (a write cut short by a crash): ignored");
        }
        unanchored_ = reading.unanchored_lines;
        chain_intact_ = reading.problems.empty();
    }

    // Training time at monotonic time t: since the loop began, validation pauses removed, stopped at serialization.
    double train_clock(double t) const {
        if (!train_start_) return 0.0;
        const double end = train_stop_ ? std::min(t, *train_stop_) : t;
        double paused = 0.0;
        for (const auto& [b, e] : pauses_) {
            paused += std::max(0.0, std::min(e, end) - std::max(b, *train_start_));
        }
        if (pause_open_) paused += std::max(0.0, end - std::max(*pause_open_, *train_start_));
        return std::max(0.0, end - *train_start_ - paused);
    }

    void walk(const LedgerEntry& entry) {
        last_t_ = entry.t_ms;
        report_.last_phase = entry.phase;
        const Json& p = entry.payload;
        const std::string& event = entry.event;
        if (event == "run_begin") {
            run_begin_ = p;
            for (const char* key : {"pgolf_version", "engine_digest", "preset", "scale", "seed"}) {
                if (p.contains(key)) report_.measures[key] = p[key];
            }
            if (p.contains("budgets")) {
                train_budget_ms_ = json_double(p["budgets"], "train_ms", 600'000.0);
                eval_budget_ms_ = json_double(p["budgets"], "eval_ms", 600'000.0);
                ledger_cap_ = json_int(p["budgets"], "cap_bytes", challenge_cap_bytes);
            }
        } else if (event == "config") {
            check_config(entry);
            report_.measures["config_digest"] = json_string(p, "digest");
        } else if (event == "phase_begin") {
            const std::string phase = json_string(p, "phase");
            phase_begin_.emplace(phase, entry.t_ms);
            if (phase == "train") train_start_ = entry.t_ms;
            if ((phase == "serialize" || phase == "evaluate") && train_start_ && !train_stop_) {
                if (pause_open_) {
                    pauses_.emplace_back(*pause_open_, entry.t_ms);
                    pause_open_.reset();
                }
                train_stop_ = entry.t_ms;
            }
        } else if (event == "phase_end") {
            phase_end_[json_string(p, "phase")] = entry.t_ms;
        } else if (event == "validation_begin") {
            in_validation_ = true;
            validation_open_ = entry.t_ms;
            if (train_start_ && !train_stop_) pause_open_ = entry.t_ms;
        } else if (event == "validation_end") {
            in_validation_ = false;
            validations_.emplace_back(validation_open_, entry.t_ms);
            if (pause_open_) {
                pauses_.emplace_back(*pause_open_, entry.t_ms);
                pause_open_.reset();
            }
        } else if (event == "train_end") {
            check_training_loop(entry);
            loop_ended_ = true;
        } else if (event == "data_read") {
            check_read(entry);
        } else if (event == "gate_open") {
            Gate& gate = gates_[json_int(p, "gate")];
            gate.purpose = json_string(p, "purpose");
            gate.targets = json_int(p, "targets");
            gate.mode = json_string(p, "mode");
            gate.line = entry.line;
            if (gate.purpose == "timed") timed_gate_ = json_int(p, "gate");
        } else if (event == "gate_commit") {
            check_commit(entry);
        } else if (event == "gate_adapt") {
            check_adapt(entry);
        } else if (event == "gate_violation") {
            add(json_string(p, "rule"), FindingSeverity::fail,
                "the validation gate recorded a violation (observe mode): " + json_string(p, "message"), entry.line);
        } else if (event == "eval_stage_begin") {
            eval_stage_open_[json_string(p, "stage")] = entry.t_ms;
        } else if (event == "eval_stage_end") {
            eval_stage_ms_[json_string(p, "stage")] = entry.t_ms - eval_stage_open_[json_string(p, "stage")];
        } else if (event == "artifact") {
            artifact_ = p;
            artifact_line_ = entry.line;
        } else if (event == "metrics") {
            metrics_ = p;
            metrics_line_ = entry.line;
            report_.measures["eval_mode"] = json_string(p, "mode");
            report_.measures["metric_label"] = json_string(p, "label");
        } else if (event == "finding") {
            live_findings_.push_back(entry);
        } else if (event == "run_end") {
            run_end_ = p;
            run_end_line_ = entry.line;
        }
    }

    void check_config(const LedgerEntry& entry) {
        try {
            const Config config(nlohmann::json(entry.payload.at("config")));
            if (config.digest() != json_string(entry.payload, "digest")) {
                add("V6", FindingSeverity::fail, "the recorded config does not hash to its recorded digest",
                    entry.line);
            }
        } catch (const std::exception& error) {
            add("V6", FindingSeverity::fail, std::string("the recorded config cannot be read: ") + error.what(),
                entry.line);
        }
    }

    void check_training_loop(const LedgerEntry& entry) {
        if (!train_start_) return;
        const Json& p = entry.payload;
        const double loop_ms = train_clock(entry.t_ms);
        const std::int64_t steps = json_int(p, "steps");
        const double tolerance = std::max(json_double(p, "max_step_ms"), steps > 0 ? loop_ms / steps : 0.0);
        report_.measures["train_loop_ms"] = loop_ms;
        report_.measures["train_loop_reported_ms"] = json_double(p, "train_time_ms");
        report_.measures["train_steps"] = steps;
        report_.measures["train_budget_ms"] = train_budget_ms_;
        const Json evidence = {{"loop_ms", loop_ms},
                               {"reported_ms", json_double(p, "train_time_ms")},
                               {"budget_ms", train_budget_ms_},
                               {"one_step_tolerance_ms", tolerance},
                               {"steps", steps}};
        if (loop_ms > train_budget_ms_ + tolerance) {
            add("T2", FindingSeverity::fail,
                text_format("training loop ran %.0f ms, over the %.0f ms budget plus one step (%.0f ms)", loop_ms,
                            train_budget_ms_, tolerance),
                entry.line, evidence);
        } else if (loop_ms > train_budget_ms_) {
            add("T2", FindingSeverity::info,
                text_format("training loop %.0f ms: past the %.0f ms budget by less than one step (%.0f ms), as a loop "
                            "that stops at the first step boundary past its cap does (%lld steps)",
                            loop_ms, train_budget_ms_, tolerance, static_cast<long long>(steps)),
                entry.line, evidence);
        } else {
            add("T2", FindingSeverity::info,
                text_format("training loop %.0f ms of the %.0f ms budget (validation excluded; %lld steps)", loop_ms,
                            train_budget_ms_, static_cast<long long>(steps)),
                entry.line, evidence);
        }
    }

    void check_read(const LedgerEntry& entry) {
        const Json& p = entry.payload;
        const std::string split = json_string(p, "split");
        const std::string& phase = entry.phase;
        const std::string what =
            json_string(p, "shard") + " tokens " + range_text(json_int(p, "begin"), json_int(p, "end"));
        if (split == "train") {
            const double clock = train_clock(json_double(p, "t_last_ms", entry.t_ms));
            if (phase == "evaluate") {
                add("D2", FindingSeverity::fail, "training data read during evaluation: " + what, entry.line);
            } else if (train_start_ && phase != "warmup" && phase != "build" && phase != "setup") {
                last_train_read_clock_ = std::max(last_train_read_clock_, clock);
                // Reads inside the loop are T2's (the last step may read past the budget); after it, T4's.
                if (loop_ended_ && clock > train_budget_ms_ && !has_fail("T4")) {
                    add("T4", FindingSeverity::fail,
                        text_format("training data read at %.0f ms of training time, after the %.0f ms budget "
                                    "(phase %s): %s",
                                    clock, train_budget_ms_, phase.c_str(), what.c_str()),
                        entry.line, {{"train_clock_ms", clock}, {"budget_ms", train_budget_ms_}, {"phase", phase}});
                }
            }
        } else if (split == "val") {
            if ((phase == "warmup" || phase == "train") && !in_validation_) {
                add("D1", FindingSeverity::fail,
                    "validation data read during training outside a validation pass: " + what, entry.line);
            } else if (phase == "calibrate") {
                add("D3", FindingSeverity::fail, "validation data read during calibration: " + what, entry.line);
            } else if (phase == "prequant_ttt" || phase == "serialize") {
                if (!has_fail("D4")) {
                    add("D4", FindingSeverity::fail,
                        "validation data read in phase " + phase +
                            ", before evaluation and outside any scoring: " + what,
                        entry.line);
                }
            }
        }
    }

    struct Gate {
        std::string purpose, mode;
        std::int64_t targets = 0, line = 0;
        RangeSet committed;
        std::int64_t last_commit_line = 0;
        double nll_sum = 0.0;
        std::int64_t bytes = 0, scored = 0;
    };
    struct Adapt {
        std::int64_t gate = 0, begin = 0, end = 0, line = 0;
        std::string phase;
    };

    void check_commit(const LedgerEntry& entry) {
        const Json& p = entry.payload;
        const std::int64_t id = json_int(p, "gate"), begin = json_int(p, "begin"), end = json_int(p, "end");
        Gate& gate = gates_[id];
        const std::int64_t again = gate.committed.covered(begin, end);
        if (again > 0) {
            add("C4", FindingSeverity::fail,
                text_format("%lld targets of %s scored again in gate %lld (each target contributes once)",
                            static_cast<long long>(again), range_text(begin, end).c_str(), static_cast<long long>(id)),
                entry.line);
        }
        for (const Adapt& adapt : adapts_) {
            const std::int64_t overlap =
                std::max<std::int64_t>(0, std::min(adapt.end, end) - std::max(adapt.begin, begin));
            if (overlap == 0) continue;
            const std::string detail = text_format(
                "targets %s of gate %lld scored after adapting on %lld of them (ledger line %lld, phase %s)",
                range_text(begin, end).c_str(), static_cast<long long>(id), static_cast<long long>(overlap),
                static_cast<long long>(adapt.line), adapt.phase.c_str());
            if (phase_before_evaluation(adapt.phase)) {
                if (!has_fail("L6"))
                    add("L6", FindingSeverity::fail, "pre-quant TTT on validation tokens: " + detail, entry.line);
            } else if (adapt.gate == id) {
                if (!has_fail("L4")) add("L4", FindingSeverity::fail, "train-then-score: " + detail, entry.line);
            } else if (!has_fail("L5")) {
                add("L5", FindingSeverity::fail, "re-scoring after adaptation: " + detail, entry.line);
            }
        }
        gate.committed.add(begin, end);
        gate.last_commit_line = entry.line;
        gate.nll_sum += json_double(p, "nll_sum");
        gate.bytes += json_int(p, "bytes");
        gate.scored += end - begin;
    }

    void check_adapt(const LedgerEntry& entry) {
        const Json& p = entry.payload;
        const std::int64_t id = json_int(p, "gate"), begin = json_int(p, "begin"), end = json_int(p, "end");
        Gate& gate = gates_[id];
        const std::int64_t first_target = std::max<std::int64_t>(begin, 1);
        const std::int64_t unscored = end - first_target - gate.committed.covered(first_target, end);
        if (phase_before_evaluation(entry.phase)) {
            if (!has_fail("L6")) {
                add("L6", FindingSeverity::fail,
                    text_format("adapted on validation tokens %s in phase %s, before evaluation (%lld of them never "
                                "scored first): pre-quant TTT trains on the tokens it later scores",
                                range_text(begin, end).c_str(), entry.phase.c_str(), static_cast<long long>(unscored)),
                    entry.line);
            }
        } else if (unscored > 0) {
            add("C3", FindingSeverity::fail,
                text_format("adapted on %s in gate %lld with %lld targets not yet scored (score before adapt)",
                            range_text(begin, end).c_str(), static_cast<long long>(id),
                            static_cast<long long>(unscored)),
                entry.line);
        }
        adapts_.push_back(Adapt{id, begin, end, entry.line, entry.phase});
        if (id == timed_gate_) {
            ++timed_adapts_;
            last_timed_adapt_line_ = entry.line;
        }
    }

    void check_gates() {
        if (timed_gate_ < 0 || gates_[timed_gate_].bytes == 0) {
            if (!metrics_.is_null()) {
                add("V5", FindingSeverity::fail, "the reported score has no timed gate's commits behind it",
                    metrics_line_);
            }
            return;
        }
        const Gate& gate = gates_[timed_gate_];
        const std::int64_t never = gate.targets - gate.committed.covered(1, gate.targets + 1);
        report_.measures["scored_targets"] = gate.scored;
        report_.measures["target_count"] = gate.targets;
        if (never > 0) {
            add("C4", FindingSeverity::fail,
                text_format("%lld of %lld validation targets were never scored", static_cast<long long>(never),
                            static_cast<long long>(gate.targets)),
                gate.line);
        }
        if (timed_adapts_ > 0) {
            if (last_timed_adapt_line_ > gate.last_commit_line) {
                add("L1", FindingSeverity::warn,
                    "adapted after the last chunk was scored (the last chunk is never trained)",
                    last_timed_adapt_line_);
            } else if (!has_fail("C3") && !has_fail("L4")) {
                add("L1", FindingSeverity::info,
                    text_format("score-first TTT: %lld adaptations, each on targets already scored; the last chunk "
                                "not trained",
                                static_cast<long long>(timed_adapts_)));
            }
        }
        if (gate.mode == "observe") {
            add("V7", FindingSeverity::warn, "the scored evaluation ran with the validation gate in observe mode",
                gate.line);
        }
        if (gate.bytes > 0 && !metrics_.is_null()) {
            // V5: the score recomputed from the gate's commits.
            const double bpb = gate.nll_sum / std::numbers::ln2 / static_cast<double>(gate.bytes);
            const double loss = gate.scored > 0 ? gate.nll_sum / static_cast<double>(gate.scored) : 0.0;
            report_.measures["val_bpb"] = bpb;
            report_.measures["val_loss"] = loss;
            const double reported = json_double(metrics_, "val_bpb");
            if (std::abs(bpb - reported) > 1e-9 * std::max(1.0, std::abs(bpb))) {
                add("V5", FindingSeverity::fail,
                    text_format("the reported val_bpb %.8f is not the %.8f the gate's commits give", reported, bpb),
                    metrics_line_);
            }
        }
    }

    void check_evaluation_time() {
        auto stage_ms = [&](const std::string& stage) {
            const auto done = eval_stage_ms_.find(stage);
            if (done != eval_stage_ms_.end()) return done->second;
            const auto open = eval_stage_open_.find(stage);
            return open == eval_stage_open_.end() ? 0.0 : last_t_ - open->second;  // still running when it ended
        };
        if (eval_stage_open_.count("timed") == 0) return;
        const double timed = stage_ms("timed");
        const double strict = stage_ms("deserialize") + stage_ms("warmup") + stage_ms("diagnostic") + timed;
        report_.measures["timed_eval_ms"] = timed;
        report_.measures["eval_strict_total_ms"] = strict;
        report_.measures["eval_lenient_total_ms"] = timed;
        report_.measures["eval_budget_ms"] = eval_budget_ms_;
        const Json evidence = {{"timed_ms", timed},
                               {"deserialize_ms", stage_ms("deserialize")},
                               {"warmup_ms", stage_ms("warmup")},
                               {"diagnostics_ms", stage_ms("diagnostic")},
                               {"strict_total_ms", strict},
                               {"budget_ms", eval_budget_ms_}};
        if (timed > eval_budget_ms_) {
            add("E1", FindingSeverity::fail,
                text_format("timed evaluation %.0f ms, over the %.0f ms budget", timed, eval_budget_ms_), 0, evidence);
        } else {
            add("E1", FindingSeverity::info,
                text_format("timed evaluation %.0f ms of the %.0f ms budget", timed, eval_budget_ms_), 0, evidence);
        }
        add("E2", strict > eval_budget_ms_ ? FindingSeverity::warn : FindingSeverity::info,
            text_format("evaluation totals: lenient (timed) %.0f ms, strict (deserialize + warm-up + diagnostics + "
                        "timed) %.0f ms, budget %.0f ms",
                        timed, strict, eval_budget_ms_),
            0, evidence);
    }

    void check_serialization_time() {
        if (phase_begin_.count("serialize") == 0 || phase_end_.count("serialize") == 0) return;
        const double serialize = phase_end_["serialize"] - phase_begin_["serialize"];
        const double start = phase_begin_.count("build") ? phase_begin_["build"] : 0.0;
        double validation = 0.0;
        for (const auto& [b, e] : validations_) {
            validation += std::max(0.0, std::min(e, phase_end_["serialize"]) - std::max(b, start));
        }
        const double production = phase_end_["serialize"] - start - validation;
        report_.measures["serialize_wallclock_ms"] = serialize;
        report_.measures["artifact_production_wallclock_ms"] = production;
        report_.measures["last_train_read_clock_ms"] = last_train_read_clock_;
        add("T6", FindingSeverity::info,
            text_format("serialize_wallclock %.1f s, artifact_production_wallclock %.1f s; enforced: training-data "
                        "access (loop + reads, last at %.0f ms of training time) within the %.0f ms budget, "
                        "serialization post-budget (precedent #1868, #1950)",
                        serialize / 1000.0, production / 1000.0, last_train_read_clock_, train_budget_ms_));
    }

    void check_artifact() {
        if (artifact_.is_null()) return;
        std::map<std::string, std::int64_t> sizes;
        for (const Json& file : artifact_.value("files", Json::array())) {
            const std::string name = json_string(file, "name");
            const std::string path = directory_ + "/" + name;
            // Recorded files are plain files in the run folder itself.
            if (name.empty() || name.find('/') != std::string::npos || name == "." || name == ".." ||
                !std::filesystem::is_regular_file(path)) {
                add("V4", FindingSeverity::fail, json_quote(name) + ": missing from the run folder or not a file",
                    artifact_line_);
                continue;
            }
            sizes[name] = static_cast<std::int64_t>(std::filesystem::file_size(path));
            if (sizes[name] != json_int(file, "bytes") || digest_sha256_file_hex(path) != json_string(file, "sha256")) {
                add("V4", FindingSeverity::fail, name + ": differs from the file the run wrote (size or SHA-256)",
                    artifact_line_, {{"recorded_bytes", json_int(file, "bytes")}, {"bytes", sizes[name]}});
            }
        }
        const std::string model_file = json_string(artifact_, "model_file");
        const std::string code_file = json_string(artifact_, "code_file");
        if (sizes.count(model_file) == 0 || sizes.count(code_file) == 0) return;
        const std::int64_t total = sizes[model_file] + sizes[code_file];
        const std::int64_t cap =
            options_.cap_bytes > 0 ? options_.cap_bytes : std::min(ledger_cap_, challenge_cap_bytes);
        report_.measures["model_bytes"] = sizes[model_file];
        report_.measures["code_bytes"] = sizes[code_file];
        report_.measures["total_bytes"] = total;
        report_.measures["cap_bytes"] = cap;
        report_.measures["margin_bytes"] = cap - total;
        total_bytes_ = total;
        const Json evidence = {{"model_bytes", sizes[model_file]},
                               {"code_bytes", sizes[code_file]},
                               {"total_bytes", total},
                               {"cap_bytes", cap}};
        if (total > cap) {
            add("A1", FindingSeverity::fail,
                text_format(
                    "artifact %lld bytes (model %lld + code %lld, measured from the files) is over the %lld-byte "
                    "cap by %lld",
                    static_cast<long long>(total), static_cast<long long>(sizes[model_file]),
                    static_cast<long long>(sizes[code_file]), static_cast<long long>(cap),
                    static_cast<long long>(total - cap)),
                artifact_line_, evidence);
        } else {
            add("A1", FindingSeverity::info,
                text_format("artifact %lld bytes (model %lld + code %lld, measured from the files) under the %lld-byte "
                            "cap",
                            static_cast<long long>(total), static_cast<long long>(sizes[model_file]),
                            static_cast<long long>(sizes[code_file]), static_cast<long long>(cap)),
                artifact_line_, evidence);
        }
        add("A3", total > cap ? FindingSeverity::fail : FindingSeverity::info,
            text_format("this seed's own files: margin %lld bytes (a record takes the maximum over its seeds)",
                        static_cast<long long>(cap - total)),
            artifact_line_);
        // A2/A4: the counted code is the shipped bundle of the engine that ran, at its file size (docs/code-bytes.md).
        const std::string code_path = directory_ + "/" + code_file;
        const std::string engine = run_begin_.is_null() ? "" : json_string(run_begin_, "engine_digest");
        try {
            const std::vector<std::uint8_t> tar = codec_decompress(CodecKind::xz, file_read_bytes(code_path));
            if (digest_sha256_hex(tar) != engine) {
                add("A2", FindingSeverity::fail, code_file + " is not the source bundle of the engine that ran",
                    artifact_line_);
            } else {
                add("A2", FindingSeverity::info,
                    text_format("code counted as the shipped %s: %lld bytes (%lld bytes of tar inside), the sources "
                                "of the engine that ran",
                                code_file.c_str(), static_cast<long long>(sizes[code_file]),
                                static_cast<long long>(tar.size())),
                    artifact_line_);
            }
        } catch (const Error& error) {
            add("A2", FindingSeverity::fail, code_file + " does not decompress: " + error.what(), artifact_line_);
        }
    }

    void check_log() {
        const std::string log_path = directory_ + "/" + run_log_file_name;
        if (!std::filesystem::exists(log_path)) {
            add("V3", run_end_.is_null() ? FindingSeverity::info : FindingSeverity::fail,
                "no " + std::string(run_log_file_name) + " in the run folder");
            return;
        }
        if (!run_end_.is_null() && !json_string(run_end_, "log_sha256").empty() &&
            digest_sha256_file_hex(log_path) != json_string(run_end_, "log_sha256")) {
            add("V3", FindingSeverity::fail,
                std::string(run_log_file_name) + " changed after the run (SHA-256 differs)", run_end_line_);
        }
        if (metrics_.is_null()) return;
        std::ifstream log(log_path);
        std::string line, final_line, size_line;
        static const std::regex final_exact(R"(^final_\S+_exact val_loss:(\S+) val_bpb:(\S+))");
        static const std::regex total_size(R"(^Total submission size [^:]*: (\d+) bytes)");
        std::smatch match;
        double loss = 0, bpb = 0;
        std::int64_t claimed_total = -1;
        bool numbers = true, total_fits = true;
        while (std::getline(log, line)) {
            if (std::regex_search(line, match, final_exact)) {
                final_line = line;
                numbers = verifier_parse_number(match[1].str(), loss) && verifier_parse_number(match[2].str(), bpb);
            } else if (std::regex_search(line, match, total_size)) {
                const std::string digits = match[1].str();
                const auto parsed = std::from_chars(digits.data(), digits.data() + digits.size(), claimed_total);
                total_fits = parsed.ec == std::errc() && parsed.ptr == digits.data() + digits.size();
            }
        }
        if (!total_fits) {
            add("A9", FindingSeverity::fail, "the log's total submission size is not a byte count that fits 64 bits");
            claimed_total = -1;
        }
        if (final_line.empty()) {
            add("V3", FindingSeverity::fail, "the log has no final_*_exact line", metrics_line_);
        } else if (!numbers) {
            add("V3", FindingSeverity::fail, "the log's final line does not hold numbers: " + final_line,
                metrics_line_);
        } else if (std::abs(loss - json_double(metrics_, "val_loss")) > 5e-8 ||
                   std::abs(bpb - json_double(metrics_, "val_bpb")) > 5e-8) {
            add("V3", FindingSeverity::fail, "the log's final line disagrees with the ledger: " + final_line,
                metrics_line_);
        }
        if (claimed_total >= 0 && total_bytes_ >= 0 && claimed_total != total_bytes_) {
            add("A9", FindingSeverity::fail,
                text_format("the log claims %lld bytes in total; the files measure %lld",
                            static_cast<long long>(claimed_total), static_cast<long long>(total_bytes_)));
        }
    }

    void finish() {
        check_gates();
        check_evaluation_time();
        check_serialization_time();
        check_artifact();
        check_log();
        // Findings the supervisor recorded live that the ledger's evidence did not already show.
        for (const LedgerEntry& entry : live_findings_) {
            const std::string rule = json_string(entry.payload, "rule");
            if (!has_fail(rule)) {
                add(rule, FindingSeverity::fail, "recorded by the supervisor: " + json_string(entry.payload, "message"),
                    entry.line);
            }
        }
        if (run_end_.is_null()) {
            report_.status = "incomplete";
            add("V2", FindingSeverity::info,
                "the run did not finish: the ledger ends in phase " + report_.last_phase + " (" +
                    std::to_string(report_.ledger_lines) + " lines, " + std::to_string(unanchored_) +
                    " after the last sync)");
        } else {
            report_.status = json_string(run_end_, "status");
            const std::string rule = json_string(run_end_, "rule");
            if (report_.status == "stopped" && !has_fail(rule.empty() ? "V2" : rule)) {
                add(rule.empty() ? "V2" : rule, FindingSeverity::fail,
                    "the run was stopped: " + json_string(run_end_, "reason"), run_end_line_);
            }
            if (report_.status == "failed") {
                add("V2", FindingSeverity::fail,
                    "the run failed in phase " + report_.last_phase + ": " + json_string(run_end_, "error"),
                    run_end_line_);
            } else if (unanchored_ > 0) {
                add("V1", FindingSeverity::warn,
                    std::to_string(unanchored_) + " ledger lines after the head's anchor in a finished run");
            }
        }
        report_.measures["chain_intact"] = chain_intact_;
        const bool any_fail = std::any_of(report_.findings.begin(), report_.findings.end(),
                                          [](const AuditFinding& f) { return f.severity == FindingSeverity::fail; });
        const bool any_warn = std::any_of(report_.findings.begin(), report_.findings.end(),
                                          [](const AuditFinding& f) { return f.severity == FindingSeverity::warn; });
        report_.verdict = any_fail                         ? "FAIL"
                          : report_.status == "incomplete" ? "INCOMPLETE"
                          : any_warn                       ? "WARN"
                                                           : "PASS";
        std::stable_sort(report_.findings.begin(), report_.findings.end(),
                         [](const AuditFinding& a, const AuditFinding& b) { return a.severity > b.severity; });
    }

    std::string directory_;
    AuditOptions options_;
    AuditReport report_;
    bool chain_intact_ = true;
    std::int64_t unanchored_ = 0;
    double last_t_ = 0.0;
    double train_budget_ms_ = 600'000.0, eval_budget_ms_ = 600'000.0;
    std::int64_t ledger_cap_ = challenge_cap_bytes;
    Json run_begin_, artifact_, metrics_, run_end_;
    std::int64_t artifact_line_ = 0, metrics_line_ = 0, run_end_line_ = 0;
    std::map<std::string, double> phase_begin_, phase_end_;
    std::optional<double> train_start_, train_stop_, pause_open_;
    std::vector<std::pair<double, double>> pauses_, validations_;
    bool in_validation_ = false;
    bool loop_ended_ = false;
    double validation_open_ = 0.0;
    double last_train_read_clock_ = 0.0;
    std::map<std::int64_t, Gate> gates_;
    std::vector<Adapt> adapts_;
    std::int64_t timed_gate_ = -1, timed_adapts_ = 0, last_timed_adapt_line_ = 0;
    std::map<std::string, double> eval_stage_open_, eval_stage_ms_;
    std::vector<LedgerEntry> live_findings_;
    std::int64_t total_bytes_ = -1;
};

}  // namespace

std::string finding_severity_name(FindingSeverity severity) {
    switch (severity) {
        case FindingSeverity::info:
            return "info";
        case FindingSeverity::warn:
            return "warn";
        case FindingSeverity::fail:
            return "fail";
    }
    return "unknown";
}

AuditReport audit_run(const std::string& run_directory, const AuditOptions& options) {
    return Verifier(run_directory, options).run();
}

nlohmann::ordered_json audit_report_json(const AuditReport& report) {
    Json findings = Json::array();
    for (const AuditFinding& finding : report.findings) {
        Json item = {{"rule", finding.rule},
                     {"severity", finding_severity_name(finding.severity)},
                     {"message", finding.message}};
        if (finding.line > 0) item["ledger_line"] = finding.line;
        if (!finding.evidence.empty()) item["evidence"] = finding.evidence;
        findings.push_back(item);
    }
    return {{"run", report.run_directory},
            {"verdict", report.verdict},
            {"status", report.status},
            {"last_phase", report.last_phase},
            {"ledger_lines", report.ledger_lines},
            {"measures", report.measures},
            {"findings", findings}};
}

std::string audit_report_text(const AuditReport& report) {
    std::string text = "audit " + report.run_directory + ": " + report.verdict + " (run " + report.status +
                       ", last phase " + report.last_phase + ", " + std::to_string(report.ledger_lines) +
                       " ledger lines)\n";
    for (const AuditFinding& finding : report.findings) {
        std::string severity = finding_severity_name(finding.severity);
        std::transform(severity.begin(), severity.end(), severity.begin(), ::toupper);
        text += text_format("  %-4s %-3s %s%s\n", severity.c_str(), finding.rule.c_str(), finding.message.c_str(),
                            finding.line > 0 ? (" (ledger line " + std::to_string(finding.line) + ")").c_str() : "");
    }
    return text;
}

void audit_write_json(const AuditReport& report, const std::string& path) {
    const std::string text = audit_report_json(report).dump(2) + "\n";
    file_write_bytes(path, text.data(), text.size());
}

int audit_exit_status(const AuditReport& report) {
    if (report.verdict == "PASS") return 0;
    if (report.verdict == "WARN") return 1;
    if (report.verdict == "FAIL") return 2;
    return 3;
}

}  // namespace pgolf
