// Tests for audit/verifier: run folders crafted with the supervisor's event vocabulary, a compliant one and variants
// that each break one rule, checked for the verdict, the exit status and the finding (rule, severity, ledger line).
#include "audit/verifier.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <numbers>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "audit/ledger.h"
#include "audit/supervisor.h"
#include "core/codec.h"
#include "core/digest.h"
#include "core/error.h"
#include "core/text_format.h"
#include "model/config.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using namespace pgolf::test;
using Json = nlohmann::ordered_json;
using Bytes = std::vector<std::uint8_t>;

struct Event {
    double t_ms = 0.0;
    std::string phase;
    std::string event;
    Json payload;
};
using Events = std::vector<Event>;

constexpr const char* model_file = "final_model.int8.ptz";
constexpr const char* code_file = "engine-source.tar.xz";
constexpr std::int64_t timed_gate = 0;
constexpr std::int64_t target_count = 100;
// The good run's timeline (ms): the training loop starts at 30 and pauses 300–400 for a validation pass, so its clock
// reads t − 130 after the pause; train_end at 800 is 670 ms of training. Serialization starts at 1500, leaving room to
// insert calibration or pre-quant TTT phases. The timed evaluation runs 1720–2220 (500 ms) after a 100 ms deserialize.
constexpr double train_start_ms = 30.0;
constexpr double validation_pause_ms = 100.0;
constexpr double train_loop_ms = 670.0;
constexpr double timed_eval_ms = 500.0;

Bytes bytes_of(const std::string& text) { return Bytes(text.begin(), text.end()); }

// The engine's sources as the bundle holds them (the verifier only hashes what the xz stream decompresses to).
const Bytes& engine_sources() {
    static const Bytes sources = [] {
        std::string text;
        for (int i = 0; i < 64; ++i)
            text += "// engine source file " + std::to_string(i) + ": int main() { return 0; }\n";
        return bytes_of(text);
    }();
    return sources;
}

// xz-9 reserves a large dictionary, so the bundle is compressed once for the whole suite.
const Bytes& engine_bundle() {
    static const Bytes bundle = codec_compress(codec_parse_spec("xz-9"), engine_sources());
    return bundle;
}

Bytes model_bytes() {
    Bytes bytes(3000);
    std::uint32_t state = 12345;
    for (std::uint8_t& b : bytes) {
        state = state * 1664525u + 1013904223u;
        b = static_cast<std::uint8_t>(state >> 24);
    }
    return bytes;
}

Json file_record(const std::string& directory, const std::string& name) {
    const std::string path = directory + "/" + name;
    return {{"name", name},
            {"bytes", static_cast<std::int64_t>(std::filesystem::file_size(path))},
            {"sha256", digest_sha256_file_hex(path)}};
}

Json read_payload(const std::string& split, std::int64_t begin, std::int64_t end, double t_first, double t_last,
                  double train_clock) {
    return {{"split", split},      {"shard", split == "val" ? "fineweb_val_000000.bin" : "fineweb_train_000001.bin"},
            {"begin", begin},      {"end", end},
            {"reads", 1},          {"t_first_ms", t_first},
            {"t_last_ms", t_last}, {"train_clock_ms", train_clock}};
}

Json commit_payload(std::int64_t gate, std::int64_t begin, std::int64_t end, double nll_sum, std::int64_t bytes) {
    return {{"gate", gate}, {"begin", begin}, {"end", end}, {"commits", 1}, {"nll_sum", nll_sum}, {"bytes", bytes}};
}

Json adapt_payload(std::int64_t gate, std::int64_t begin, std::int64_t end) {
    return {{"gate", gate}, {"begin", begin}, {"end", end}, {"weights", "ttt-weights"}};
}

Config run_config() {
    return Config(nlohmann::json{
        {"NUM_LAYERS", 9}, {"MODEL_DIM", 512}, {"SEED", 1337}, {"EXPORT_CODEC", "zlib-9"}, {"EVAL_MODE", "plain"}});
}

// The index of the first event named name (whose payload[key] is value, when key is given).
std::size_t index_of(const Events& events, const std::string& name, const char* key = nullptr,
                     const Json& value = nullptr) {
    for (std::size_t i = 0; i < events.size(); ++i) {
        if (events[i].event != name) continue;
        if (key == nullptr || (events[i].payload.contains(key) && events[i].payload[key] == value)) return i;
    }
    throw std::logic_error("the crafted run has no " + name + " event");
}
std::int64_t line_of(const Events& events, const std::string& name, const char* key = nullptr,
                     const Json& value = nullptr) {
    return static_cast<std::int64_t>(index_of(events, name, key, value)) + 1;
}
// The index of the last event named name.
std::size_t last_index_of(const Events& events, const std::string& name) {
    for (std::size_t i = events.size(); i-- > 0;) {
        if (events[i].event == name) return i;
    }
    throw std::logic_error("the crafted run has no " + name + " event");
}
void insert_at(Events& events, std::size_t index, const Events& block) {
    events.insert(events.begin() + static_cast<std::ptrdiff_t>(index), block.begin(), block.end());
}
std::size_t serialize_begin(const Events& events) { return index_of(events, "phase_begin", "phase", "serialize"); }
std::size_t timed_end(const Events& events) { return index_of(events, "eval_stage_end", "stage", "timed"); }

Events good_events(const std::string& directory, double train_ms, double eval_ms, std::int64_t cap_bytes) {
    const Config config = run_config();
    const Json model = file_record(directory, model_file);
    const Json code = file_record(directory, code_file);
    const std::int64_t model_size = model["bytes"], code_size = code["bytes"];
    auto phase = [](const std::string& name, Json extra = Json::object()) {
        extra["phase"] = name;
        return extra;
    };
    auto phase_end = [](const std::string& name, double elapsed) {
        return Json{{"phase", name}, {"elapsed_ms", elapsed}};
    };
    return {
        {0, "setup", "phase_begin", phase("setup")},
        {1,
         "setup",
         "run_begin",
         {{"pgolf_version", "test"},
          {"engine_digest", digest_sha256_hex(engine_sources())},
          {"code", {{"files", 64}, {"raw_bytes", engine_sources().size()}, {"compressed_bytes", code_size}}},
          {"preset", "baseline"},
          {"scale", "smoke"},
          {"seed", 1337},
          {"overrides", Json::array()},
          {"gate", "enforce"},
          {"budgets", {{"train_ms", train_ms}, {"eval_ms", eval_ms}, {"cap_bytes", cap_bytes}}}}},
        {2, "setup", "config", {{"config", Json(config.values())}, {"digest", config.digest()}}},
        {3, "setup", "data", {{"directory", "data"}, {"shards", Json::array()}, {"tokenizer", Json::object()}}},
        {5, "setup", "phase_end", phase_end("setup", 5)},
        {5, "build", "phase_begin", phase("build")},
        {10, "build", "phase_end", phase_end("build", 5)},
        {10, "warmup", "phase_begin", phase("warmup", {{"steps", 2}})},
        {20, "warmup", "data_read", read_payload("train", 0, 4096, 12, 18, 0)},
        {30, "warmup", "phase_end", phase_end("warmup", 20)},
        {train_start_ms, "train", "phase_begin", phase("train", {{"iterations", 10}})},
        {100, "train", "data_read", read_payload("train", 4096, 40960, 35, 100, 70)},
        {300, "train", "validation_begin", {{"step", 5}}},
        {350, "train", "data_read", read_payload("val", 0, 101, 310, 340, 270)},
        {400, "train", "validation_end", {{"step", 5}, {"val_loss", 2.5}, {"val_bpb", 1.4}}},
        {600, "train", "data_read", read_payload("train", 40960, 81920, 410, 600, 470)},
        {800,
         "train",
         "train_end",
         {{"steps", 10},
          {"train_time_ms", train_loop_ms},
          {"max_step_ms", 70.0},
          {"last_step_ms", 60.0},
          {"train_clock_ms", train_loop_ms}}},
        {800, "train", "phase_end", phase_end("train", 770)},
        {1500, "serialize", "phase_begin", phase("serialize", {{"scheme", "int8"}, {"codec", "zlib-9"}})},
        {1550,
         "serialize",
         "artifact",
         {{"files", {model, code}},
          {"model_file", model_file},
          {"code_file", code_file},
          {"model_bytes", model_size},
          {"code_bytes", code_size},
          {"total_bytes", model_size + code_size},
          {"cap_bytes", cap_bytes}}},
        {1590, "serialize", "phase_end", phase_end("serialize", 90)},
        {1600, "evaluate", "phase_begin", phase("evaluate")},
        {1610, "evaluate", "eval_stage_begin", {{"stage", "deserialize"}}},
        {1710, "evaluate", "eval_stage_end", {{"stage", "deserialize"}, {"elapsed_ms", 100.0}}},
        {1720, "evaluate", "eval_stage_begin", {{"stage", "timed"}}},
        {1725,
         "evaluate",
         "gate_open",
         {{"gate", timed_gate},
          {"tokens", target_count + 1},
          {"targets", target_count},
          {"mode", "enforce"},
          {"tokens_sha256", std::string(64, 'a')},
          {"purpose", "timed"}}},
        {1800, "evaluate", "data_read", read_payload("val", 0, 101, 1730, 1790, train_loop_ms)},
        {1900, "evaluate", "gate_score", {{"gate", timed_gate}, {"begin", 1}, {"end", 51}, {"windows", 1}}},
        {1950, "evaluate", "gate_commit", commit_payload(timed_gate, 1, 51, 120.5, 200)},
        {2000, "evaluate", "gate_score", {{"gate", timed_gate}, {"begin", 51}, {"end", 101}, {"windows", 1}}},
        {2100, "evaluate", "gate_commit", commit_payload(timed_gate, 51, 101, 98.25, 190)},
        {1720 + timed_eval_ms, "evaluate", "eval_stage_end", {{"stage", "timed"}, {"elapsed_ms", timed_eval_ms}}},
        // val_bpb/val_loss null: filled from the timed gate's commits once the test's edits are made.
        {2230,
         "evaluate",
         "metrics",
         {{"mode", "plain"}, {"label", "int8_zlib_roundtrip"}, {"val_loss", nullptr}, {"val_bpb", nullptr}}},
        {2240, "evaluate", "phase_end", phase_end("evaluate", 640)},
        // log_sha256 null: filled from train.log once it is written.
        {2250,
         "evaluate",
         "run_end",
         {{"status", "complete"},
          {"rule", ""},
          {"reason", ""},
          {"log_file", run_log_file_name},
          {"log_sha256", nullptr}}},
    };
}

// What a test changes in the good run; each hook is optional.
struct RunSpec {
    double train_ms = 1000.0;
    double eval_ms = 1000.0;
    std::int64_t cap_bytes = 16'000'000;
    std::optional<Bytes> code_bundle;                         // the shipped code file's bytes instead of xz(sources)
    std::function<void(Events&)> edit;                        // the ledger's events, before they are written
    std::function<void(std::vector<std::string>&)> edit_log;  // train.log's lines, before run_end hashes them
    std::function<void(const std::string& directory)> after;  // the folder, once the run is written
};

RunSpec with_train_budget(double ms) {
    RunSpec spec;
    spec.train_ms = ms;
    return spec;
}
RunSpec with_eval_budget(double ms) {
    RunSpec spec;
    spec.eval_ms = ms;
    return spec;
}
RunSpec with_cap(std::int64_t bytes) {
    RunSpec spec;
    spec.cap_bytes = bytes;
    return spec;
}

// Fills the metrics the timed gate's commits give, when the test left them null.
void fill_metrics(Events& events) {
    std::optional<std::int64_t> timed;
    double nll = 0.0;
    std::int64_t bytes = 0, targets = 0;
    for (Event& e : events) {
        if (e.event == "gate_open" && e.payload["purpose"] == "timed") timed = e.payload["gate"].get<std::int64_t>();
        if (e.event == "gate_commit" && timed && e.payload["gate"] == *timed) {
            nll += e.payload["nll_sum"].get<double>();
            bytes += e.payload["bytes"].get<std::int64_t>();
            targets += e.payload["end"].get<std::int64_t>() - e.payload["begin"].get<std::int64_t>();
        }
        if (e.event != "metrics") continue;
        if (e.payload["val_bpb"].is_null()) e.payload["val_bpb"] = nll / std::numbers::ln2 / static_cast<double>(bytes);
        if (e.payload["val_loss"].is_null()) e.payload["val_loss"] = nll / static_cast<double>(targets);
    }
}

std::vector<std::string> log_lines(const Events& events, std::int64_t total_bytes) {
    std::vector<std::string> lines = {"run: preset:baseline scale:smoke seed:1337 train_budget:1.0s eval_budget:1.0s",
                                      "step:10/10 train_loss:2.4000 train_time:670ms step_avg:67.00ms",
                                      "Serialized model int8+zlib: 3000 bytes"};
    for (const Event& e : events) {
        if (e.event != "metrics") continue;
        lines.push_back(
            text_format("Total submission size int8+zlib: %lld bytes", static_cast<long long>(total_bytes)));
        lines.push_back(text_format("final_int8_zlib_roundtrip_exact val_loss:%.8f val_bpb:%.8f",
                                    e.payload["val_loss"].get<double>(), e.payload["val_bpb"].get<double>()));
    }
    return lines;
}

// Writes the run folder (model, code bundle, train.log, ledger) and returns the events as the ledger holds them, so a
// test can name the ledger line (index + 1) it expects a finding on.
Events write_run(const std::string& directory, const RunSpec& spec = {}) {
    test_write_file(directory + "/" + model_file, model_bytes());
    test_write_file(directory + "/" + code_file, spec.code_bundle ? *spec.code_bundle : engine_bundle());
    Events events = good_events(directory, spec.train_ms, spec.eval_ms, spec.cap_bytes);
    if (spec.edit) spec.edit(events);
    fill_metrics(events);

    const auto total = static_cast<std::int64_t>(std::filesystem::file_size(directory + "/" + model_file) +
                                                 std::filesystem::file_size(directory + "/" + code_file));
    std::vector<std::string> log = log_lines(events, total);
    if (spec.edit_log) spec.edit_log(log);
    const std::string log_path = directory + "/" + run_log_file_name;
    {
        std::ofstream out(log_path, std::ios::binary | std::ios::trunc);
        for (const std::string& line : log) out << line << '\n';
    }
    for (Event& e : events) {
        if (e.event == "run_end" && e.payload.contains("log_sha256") && e.payload["log_sha256"].is_null()) {
            e.payload["log_sha256"] = digest_sha256_file_hex(log_path);
        }
    }
    {
        LedgerWriter writer(directory + "/" + ledger_file_name);
        for (const Event& e : events) writer.append(e.t_ms, e.phase, e.event, e.payload);
    }
    if (spec.after) spec.after(directory);
    return events;
}

::testing::AssertionResult has_finding(const AuditReport& report, const std::string& rule, FindingSeverity severity,
                                       std::int64_t line = -1) {
    for (const AuditFinding& finding : report.findings) {
        if (finding.rule == rule && finding.severity == severity && (line < 0 || finding.line == line)) {
            return ::testing::AssertionSuccess();
        }
    }
    return ::testing::AssertionFailure() << "no " << finding_severity_name(severity) << " finding " << rule
                                         << (line >= 0 ? " on ledger line " + std::to_string(line) : std::string())
                                         << " in:\n"
                                         << audit_report_text(report);
}

::testing::AssertionResult lacks_rule(const AuditReport& report, const std::string& rule,
                                      std::optional<FindingSeverity> severity = std::nullopt) {
    for (const AuditFinding& finding : report.findings) {
        if (finding.rule == rule && (!severity || finding.severity == *severity)) {
            return ::testing::AssertionFailure() << "unexpected " << rule << " finding in:\n"
                                                 << audit_report_text(report);
        }
    }
    return ::testing::AssertionSuccess();
}

const AuditFinding* finding_of(const AuditReport& report, const std::string& rule, FindingSeverity severity) {
    for (const AuditFinding& finding : report.findings) {
        if (finding.rule == rule && finding.severity == severity) return &finding;
    }
    return nullptr;
}

void expect_verdict(const AuditReport& report, const std::string& verdict, int exit_status) {
    EXPECT_EQ(report.verdict, verdict) << audit_report_text(report);
    EXPECT_EQ(audit_exit_status(report), exit_status);
}

void append_text(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out << text;
}

class VerifierTest : public ::testing::Test {
protected:
    AuditReport audit(const RunSpec& spec = {}, const AuditOptions& options = {}) {
        events_ = write_run(folder_.root(), spec);
        return audit_run(folder_.root(), options);
    }

    TemporaryFolder folder_;
    Events events_;  // as the last audited ledger holds them
};

// --- the compliant run ---

TEST_F(VerifierTest, GoodRunPasses) {
    const AuditReport report = audit();
    expect_verdict(report, "PASS", 0);
    EXPECT_EQ(report.status, "complete");
    EXPECT_EQ(report.last_phase, "evaluate");
    EXPECT_EQ(report.ledger_lines, static_cast<std::int64_t>(events_.size()));
    for (const AuditFinding& finding : report.findings) {
        EXPECT_EQ(finding.severity, FindingSeverity::info) << audit_report_text(report);
    }
    const auto model_size = static_cast<std::int64_t>(std::filesystem::file_size(folder_.path(model_file)));
    const auto code_size = static_cast<std::int64_t>(std::filesystem::file_size(folder_.path(code_file)));
    EXPECT_EQ(model_size, 3000);
    EXPECT_EQ(report.measures.at("model_bytes"), model_size);
    EXPECT_EQ(report.measures.at("code_bytes"), code_size);
    EXPECT_EQ(report.measures.at("total_bytes"), model_size + code_size);
    EXPECT_EQ(report.measures.at("cap_bytes"), 16'000'000);
    EXPECT_EQ(report.measures.at("chain_intact"), true);
    EXPECT_EQ(report.measures.at("scored_targets"), target_count);
    // The recomputed clocks: the validation pause is not training time.
    EXPECT_DOUBLE_EQ(report.measures.at("train_loop_ms").get<double>(), train_loop_ms);
    EXPECT_DOUBLE_EQ(report.measures.at("timed_eval_ms").get<double>(), timed_eval_ms);
    EXPECT_DOUBLE_EQ(report.measures.at("eval_strict_total_ms").get<double>(), timed_eval_ms + 100.0);
    EXPECT_NEAR(report.measures.at("val_bpb").get<double>(), (120.5 + 98.25) / std::numbers::ln2 / 390.0, 1e-12);
    EXPECT_TRUE(has_finding(report, "A2", FindingSeverity::info));
    EXPECT_TRUE(has_finding(report, "T2", FindingSeverity::info, line_of(events_, "train_end")));
}

// --- training time ---

TEST_F(VerifierTest, T2LoopOverBudgetPlusOneStepFails) {
    // 670 ms of loop against 550 ms plus the 70 ms longest step.
    const AuditReport report = audit(with_train_budget(550.0));
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "T2", FindingSeverity::fail, line_of(events_, "train_end")));
}

TEST_F(VerifierTest, T2OneStepOverBudgetIsTolerated) {
    // 670 ms of loop against 610 ms: over, but by less than the 70 ms longest step the loop could not cut short.
    const AuditReport report = audit(with_train_budget(610.0));
    expect_verdict(report, "PASS", 0);
    EXPECT_TRUE(has_finding(report, "T2", FindingSeverity::info));
    EXPECT_TRUE(lacks_rule(report, "T2", FindingSeverity::fail));
}

TEST_F(VerifierTest, T4LeavesTheLastStepsReadsPastTheBudgetToT2) {
    // The last step began before the 610 ms budget and read its micro-batches up to 650 ms of training time: the loop
    // stops at the first step boundary past the budget, so that read is T2's (within one step), not a T4 violation.
    RunSpec spec = with_train_budget(610.0);
    spec.edit = [](Events& events) {
        insert_at(events, index_of(events, "train_end"),
                  {{780, "train", "data_read", read_payload("train", 81920, 90112, 700, 780, 650)}});
    };
    const AuditReport report = audit(spec);
    expect_verdict(report, "PASS", 0);
    EXPECT_TRUE(lacks_rule(report, "T4"));
    EXPECT_TRUE(has_finding(report, "T2", FindingSeverity::info));
}

// A calibration phase after the loop whose training-data read ends at t_last (the train clock keeps running there).
RunSpec calibration_read(double t_last, const std::string& split = "train") {
    RunSpec spec;
    spec.edit = [t_last, split](Events& events) {
        const double clock = t_last - train_start_ms - validation_pause_ms;
        insert_at(events, serialize_begin(events),
                  {{850, "calibrate", "phase_begin", {{"phase", "calibrate"}, {"scheme", "int8"}}},
                   {t_last + 1, "calibrate", "data_read", read_payload(split, 0, 8192, 860, t_last, clock)},
                   {t_last + 2, "calibrate", "phase_end", {{"phase", "calibrate"}, {"elapsed_ms", t_last - 848}}}});
    };
    return spec;
}

TEST_F(VerifierTest, T4CalibrationReadPastTheTrainingBudgetFails) {
    // 1200 − 30 − 100 (the validation pause) = 1070 ms of training time, past the 1000 ms budget.
    const AuditReport report = audit(calibration_read(1200.0));
    expect_verdict(report, "FAIL", 2);
    const std::size_t read = index_of(events_, "phase_begin", "phase", "calibrate") + 1;
    ASSERT_EQ(events_[read].event, "data_read");
    EXPECT_TRUE(has_finding(report, "T4", FindingSeverity::fail, static_cast<std::int64_t>(read) + 1));
    const AuditFinding* t4 = finding_of(report, "T4", FindingSeverity::fail);
    ASSERT_NE(t4, nullptr);
    EXPECT_DOUBLE_EQ(t4->evidence.at("train_clock_ms").get<double>(), 1070.0);
}

TEST_F(VerifierTest, T4CalibrationReadWithinTheBudgetOnceValidationIsExcludedPasses) {
    // 1100 − 30 = 1070 ms since the loop began, but 970 ms of training time: the 100 ms validation pause is not
    // training, and the read fits only because the verifier subtracts it.
    const AuditReport report = audit(calibration_read(1100.0));
    expect_verdict(report, "PASS", 0);
    EXPECT_TRUE(lacks_rule(report, "T4"));
    EXPECT_DOUBLE_EQ(report.measures.at("last_train_read_clock_ms").get<double>(), 970.0);
}

// --- data access ---

TEST_F(VerifierTest, D1ValidationReadInTrainingOutsideAValidationPassFails) {
    RunSpec spec;
    spec.edit = [](Events& events) {
        insert_at(events, index_of(events, "train_end"),
                  {{500, "train", "data_read", read_payload("val", 0, 101, 480, 490, 360)}});
    };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "D1", FindingSeverity::fail, line_of(events_, "train_end") - 1));
}

TEST_F(VerifierTest, D1ValidationReadInsideAValidationPassIsAllowed) {
    const AuditReport report = audit();
    const std::size_t read = index_of(events_, "data_read", "shard", "fineweb_val_000000.bin");
    // The good run's periodic validation reads the val split in phase train, between validation_begin and _end.
    ASSERT_EQ(events_[read].phase, "train");
    ASSERT_EQ(events_[read - 1].event, "validation_begin");
    EXPECT_TRUE(lacks_rule(report, "D1"));
    expect_verdict(report, "PASS", 0);
}

TEST_F(VerifierTest, D3ValidationReadDuringCalibrationFails) {
    const AuditReport report = audit(calibration_read(900.0, "val"));
    expect_verdict(report, "FAIL", 2);
    const std::size_t begin = index_of(events_, "phase_begin", "phase", "calibrate");
    EXPECT_TRUE(has_finding(report, "D3", FindingSeverity::fail, static_cast<std::int64_t>(begin) + 2));
}

TEST_F(VerifierTest, D2TrainingReadDuringEvaluationFails) {
    RunSpec spec;
    spec.edit = [](Events& events) {
        insert_at(events, timed_end(events),
                  {{2150, "evaluate", "data_read", read_payload("train", 0, 4096, 2140, 2145, train_loop_ms)}});
    };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "D2", FindingSeverity::fail, static_cast<std::int64_t>(timed_end(events_))));
}

// --- the gate's commits ---

TEST_F(VerifierTest, C4DoubleCommitInTheTimedGateFails) {
    RunSpec spec;
    spec.edit = [](Events& events) {
        insert_at(events, timed_end(events),
                  {{2150, "evaluate", "gate_commit", commit_payload(timed_gate, 40, 60, 50.0, 80)}});
    };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "C4", FindingSeverity::fail, static_cast<std::int64_t>(timed_end(events_))));
}

TEST_F(VerifierTest, C4TargetsNeverCommittedFails) {
    RunSpec spec;
    spec.edit = [](Events& events) { events.erase(events.begin() + last_index_of(events, "gate_commit")); };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "C4", FindingSeverity::fail, line_of(events_, "gate_open")));
    const AuditFinding* c4 = finding_of(report, "C4", FindingSeverity::fail);
    ASSERT_NE(c4, nullptr);
    EXPECT_NE(c4->message.find("50 of 100"), std::string::npos) << c4->message;
}

// --- score-first adaptation ---

// Inserts an adapt event in the timed gate just after the event at index after.
void insert_adapt_after(Events& events, std::size_t after, std::int64_t begin, std::int64_t end) {
    insert_at(events, after + 1,
              {{events[after].t_ms + 1, "evaluate", "gate_adapt", adapt_payload(timed_gate, begin, end)}});
}

TEST_F(VerifierTest, ScoreFirstAdaptationOnCommittedTargetsPasses) {
    RunSpec spec;
    // Tokens [0, 51) hold targets 1–50, all committed by the first commit.
    spec.edit = [](Events& events) { insert_adapt_after(events, index_of(events, "gate_commit"), 0, 51); };
    const AuditReport report = audit(spec);
    expect_verdict(report, "PASS", 0);
    EXPECT_TRUE(lacks_rule(report, "C3"));
    EXPECT_TRUE(lacks_rule(report, "L4"));
    EXPECT_TRUE(has_finding(report, "L1", FindingSeverity::info));
}

TEST_F(VerifierTest, C3AdaptBeforeCommitFails) {
    RunSpec spec;
    spec.edit = [](Events& events) { insert_adapt_after(events, index_of(events, "gate_score"), 0, 51); };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "C3", FindingSeverity::fail, line_of(events_, "gate_adapt")));
}

TEST_F(VerifierTest, L4CommitAfterAdaptingOnTheSameTokensFails) {
    RunSpec spec;
    // Tokens [40, 60): targets 51–59 are adapted on and only then committed by the second commit.
    spec.edit = [](Events& events) { insert_adapt_after(events, index_of(events, "gate_commit"), 40, 60); };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "L4", FindingSeverity::fail,
                            static_cast<std::int64_t>(last_index_of(events_, "gate_commit")) + 1));
}

TEST_F(VerifierTest, L6PrequantAdaptationOnTokensScoredLaterFails) {
    RunSpec spec;
    spec.edit = [](Events& events) {
        constexpr std::int64_t prequant_gate = 5;
        insert_at(events, serialize_begin(events),
                  {{850, "prequant_ttt", "phase_begin", {{"phase", "prequant_ttt"}, {"epochs", 1}}},
                   {860,
                    "prequant_ttt",
                    "gate_open",
                    {{"gate", prequant_gate},
                     {"tokens", target_count + 1},
                     {"targets", target_count},
                     {"mode", "enforce"},
                     {"purpose", "prequant_ttt"}}},
                   {900, "prequant_ttt", "gate_adapt", adapt_payload(prequant_gate, 0, target_count + 1)},
                   {950, "prequant_ttt", "phase_end", {{"phase", "prequant_ttt"}, {"elapsed_ms", 100.0}}}});
    };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "L6", FindingSeverity::fail, line_of(events_, "gate_adapt")));
    // Its own gate, not the timed one: the verifier must not read the adaptation as a timed-gate C3.
    EXPECT_TRUE(lacks_rule(report, "C3"));
}

TEST_F(VerifierTest, L1AdaptationAfterTheLastCommitWarns) {
    RunSpec spec;
    spec.edit = [](Events& events) { insert_adapt_after(events, last_index_of(events, "gate_commit"), 0, 101); };
    const AuditReport report = audit(spec);
    expect_verdict(report, "WARN", 1);
    EXPECT_TRUE(has_finding(report, "L1", FindingSeverity::warn, line_of(events_, "gate_adapt")));
    EXPECT_TRUE(lacks_rule(report, "C3"));
}

TEST_F(VerifierTest, L5RescoringAfterAdaptingInAnotherGateFails) {
    RunSpec spec;
    spec.edit = [](Events& events) {
        // A diagnostic pass scores everything, adapts score-first on it, and the timed gate then scores the same
        // targets with the adapted weights.
        constexpr std::int64_t diagnostic_gate = 3;
        insert_at(events, index_of(events, "eval_stage_begin", "stage", "timed"),
                  {{1711, "evaluate", "eval_stage_begin", {{"stage", "diagnostic"}}},
                   {1712,
                    "evaluate",
                    "gate_open",
                    {{"gate", diagnostic_gate},
                     {"tokens", target_count + 1},
                     {"targets", target_count},
                     {"mode", "enforce"},
                     {"purpose", "diagnostic"}}},
                   {1713, "evaluate", "gate_commit", commit_payload(diagnostic_gate, 1, 101, 230.0, 390)},
                   {1714, "evaluate", "gate_adapt", adapt_payload(diagnostic_gate, 0, 101)},
                   {1715, "evaluate", "eval_stage_end", {{"stage", "diagnostic"}, {"elapsed_ms", 4.0}}}});
    };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    const std::size_t first_timed_commit = index_of(events_, "gate_commit", "gate", timed_gate);
    EXPECT_TRUE(has_finding(report, "L5", FindingSeverity::fail, static_cast<std::int64_t>(first_timed_commit) + 1));
    EXPECT_TRUE(lacks_rule(report, "C3"));
}

TEST_F(VerifierTest, D4ValidationReadDuringSerializationFails) {
    RunSpec spec;
    spec.edit = [](Events& events) {
        insert_at(events, index_of(events, "artifact"),
                  {{1520, "serialize", "data_read", read_payload("val", 0, 101, 1510, 1515, train_loop_ms)}});
    };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "D4", FindingSeverity::fail, line_of(events_, "artifact") - 1));
}

TEST_F(VerifierTest, GateViolationFailsWithItsRule) {
    RunSpec spec;
    spec.edit = [](Events& events) {
        insert_at(events, index_of(events, "gate_commit"),
                  {{1920,
                    "evaluate",
                    "gate_violation",
                    {{"gate", timed_gate},
                     {"begin", 0},
                     {"end", 51},
                     {"rule", "C3"},
                     {"message", "adapted on [0, 51) with 50 targets not yet committed"}}}});
    };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "C3", FindingSeverity::fail, line_of(events_, "gate_violation")));
}

TEST_F(VerifierTest, ObserveModeTimedGateWarns) {
    RunSpec spec;
    spec.edit = [](Events& events) { events[index_of(events, "gate_open")].payload["mode"] = "observe"; };
    const AuditReport report = audit(spec);
    expect_verdict(report, "WARN", 1);
    EXPECT_TRUE(has_finding(report, "V7", FindingSeverity::warn, line_of(events_, "gate_open")));
}

// --- evaluation time ---

TEST_F(VerifierTest, E1TimedEvaluationOverBudgetFails) {
    const AuditReport report = audit(with_eval_budget(450.0));
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "E1", FindingSeverity::fail));
    const AuditFinding* e1 = finding_of(report, "E1", FindingSeverity::fail);
    ASSERT_NE(e1, nullptr);
    EXPECT_DOUBLE_EQ(e1->evidence.at("timed_ms").get<double>(), timed_eval_ms);
}

TEST_F(VerifierTest, E2StrictTotalOverBudgetWarnsWhenTimedFits) {
    // Timed 500 ms fits 550; deserialize 100 + timed 500 does not.
    const AuditReport report = audit(with_eval_budget(550.0));
    expect_verdict(report, "WARN", 1);
    EXPECT_TRUE(has_finding(report, "E2", FindingSeverity::warn));
    EXPECT_TRUE(has_finding(report, "E1", FindingSeverity::info));
    EXPECT_TRUE(lacks_rule(report, "E1", FindingSeverity::fail));
}

TEST_F(VerifierTest, TimedEvaluationCutShortIsMeasuredToTheLastEvent) {
    RunSpec spec;
    // The supervisor stopped the timed evaluation past the budget: no eval_stage_end, the finding, then run_end.
    spec.eval_ms = 300.0;
    spec.edit = [](Events& events) {
        events.erase(events.begin() + timed_end(events), events.end());
        events.push_back({2150,
                          "evaluate",
                          "finding",
                          {{"rule", "E1"}, {"severity", "fail"}, {"message", "timed evaluation past the budget"}}});
        events.push_back({2160,
                          "evaluate",
                          "run_end",
                          {{"status", "stopped"},
                           {"rule", "E1"},
                           {"reason", "timed evaluation past the budget"},
                           {"log_file", run_log_file_name},
                           {"log_sha256", nullptr}}});
    };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_EQ(report.status, "stopped");
    // The verifier's own E1 (from the clock, 2160 − 1720), not only the supervisor's word for it.
    const AuditFinding* e1 = finding_of(report, "E1", FindingSeverity::fail);
    ASSERT_NE(e1, nullptr) << audit_report_text(report);
    EXPECT_DOUBLE_EQ(e1->evidence.at("timed_ms").get<double>(), 440.0);
}

// --- the artifact ---

TEST_F(VerifierTest, A1ArtifactOverTheRecordedCapFails) {
    const AuditReport report = audit(with_cap(1000));
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "A1", FindingSeverity::fail, line_of(events_, "artifact")));
    EXPECT_EQ(report.measures.at("cap_bytes"), 1000);
    EXPECT_LT(report.measures.at("margin_bytes").get<std::int64_t>(), 0);
}

TEST_F(VerifierTest, A1CapOverrideReplacesTheRecordedCap) {
    AuditOptions options;
    options.cap_bytes = 1'000'000;
    const AuditReport raised = audit(with_cap(1000), options);
    expect_verdict(raised, "PASS", 0);
    EXPECT_TRUE(has_finding(raised, "A1", FindingSeverity::info));
    EXPECT_EQ(raised.measures.at("cap_bytes"), 1'000'000);

    options.cap_bytes = 1000;
    const AuditReport lowered = audit_run(folder_.root(), options);
    expect_verdict(lowered, "FAIL", 2);
    EXPECT_TRUE(has_finding(lowered, "A1", FindingSeverity::fail));
}

TEST_F(VerifierTest, A1RecordedCapNeverExceedsTheChallengeCap) {
    const AuditReport report = audit(with_cap(50'000'000));
    EXPECT_EQ(report.measures.at("cap_bytes"), 16'000'000);
    expect_verdict(report, "PASS", 0);
}

TEST_F(VerifierTest, A2CodeBundleOfAnotherEngineFails) {
    RunSpec spec;
    spec.edit = [](Events& events) {
        events[index_of(events, "run_begin")].payload["engine_digest"] = digest_sha256_hex(std::string_view("other"));
    };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "A2", FindingSeverity::fail, line_of(events_, "artifact")));
}

TEST_F(VerifierTest, A2CodeBundleThatIsNotXzFails) {
    RunSpec spec;
    spec.code_bundle = engine_sources();  // the sources uncompressed: recorded faithfully, but not a bundle
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "A2", FindingSeverity::fail, line_of(events_, "artifact")));
    EXPECT_TRUE(lacks_rule(report, "V4"));
}

TEST_F(VerifierTest, V4ModelModifiedAfterTheRunFails) {
    RunSpec spec;
    spec.after = [](const std::string& directory) {
        Bytes bytes = test_read_file(directory + "/" + model_file);
        bytes[100] ^= 0x01;  // same size: only the SHA-256 can tell
        test_write_file(directory + "/" + model_file, bytes);
    };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "V4", FindingSeverity::fail, line_of(events_, "artifact")));
}

TEST_F(VerifierTest, V4ModelMissingFails) {
    RunSpec spec;
    spec.after = [](const std::string& directory) { std::filesystem::remove(directory + "/" + model_file); };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "V4", FindingSeverity::fail, line_of(events_, "artifact")));
}

// --- the log and the score ---

TEST_F(VerifierTest, V3LogEditedAfterTheRunFails) {
    RunSpec spec;
    spec.after = [](const std::string& directory) {
        append_text(directory + "/" + run_log_file_name, "a line added after the run\n");
    };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "V3", FindingSeverity::fail, line_of(events_, "run_end")));
}

TEST_F(VerifierTest, V3LogFinalLineDisagreeingWithMetricsFails) {
    RunSpec spec;
    spec.edit_log = [](std::vector<std::string>& lines) {
        lines.back() = "final_int8_zlib_roundtrip_exact val_loss:2.18750000 val_bpb:0.70000000";
    };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "V3", FindingSeverity::fail, line_of(events_, "metrics")));
}

TEST_F(VerifierTest, V3LogWithoutAFinalLineFails) {
    RunSpec spec;
    spec.edit_log = [](std::vector<std::string>& lines) { lines.pop_back(); };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "V3", FindingSeverity::fail, line_of(events_, "metrics")));
}

TEST_F(VerifierTest, A9LogTotalSizeDisagreeingWithTheFilesFails) {
    RunSpec spec;
    spec.edit_log = [](std::vector<std::string>& lines) {
        for (std::string& line : lines) {
            if (line.rfind("Total submission size", 0) == 0) line = "Total submission size int8+zlib: 1234 bytes";
        }
    };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "A9", FindingSeverity::fail));
    EXPECT_TRUE(lacks_rule(report, "V3", FindingSeverity::fail));
}

TEST_F(VerifierTest, V5ReportedScoreNotTheCommitsFails) {
    RunSpec spec;
    // The log agrees with the metrics (it is written from them): only the commits can expose the score.
    spec.edit = [](Events& events) { events[index_of(events, "metrics")].payload["val_bpb"] = 0.75; };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "V5", FindingSeverity::fail, line_of(events_, "metrics")));
    EXPECT_TRUE(lacks_rule(report, "V3", FindingSeverity::fail));
}

TEST_F(VerifierTest, V6ConfigDigestMismatchFails) {
    RunSpec spec;
    spec.edit = [](Events& events) { events[index_of(events, "config")].payload["digest"] = std::string(64, '0'); };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "V6", FindingSeverity::fail, line_of(events_, "config")));
}

TEST_F(VerifierTest, V6EditedConfigValueFails) {
    RunSpec spec;
    spec.edit = [](Events& events) { events[index_of(events, "config")].payload["config"]["NUM_LAYERS"] = 11; };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "V6", FindingSeverity::fail, line_of(events_, "config")));
}

// --- how the run ended ---

TEST_F(VerifierTest, RunStoppingMidTrainingIsIncomplete) {
    RunSpec spec;
    spec.edit = [](Events& events) { events.erase(events.begin() + index_of(events, "train_end"), events.end()); };
    const AuditReport report = audit(spec);
    expect_verdict(report, "INCOMPLETE", 3);
    EXPECT_EQ(report.status, "incomplete");
    EXPECT_EQ(report.last_phase, "train");
    EXPECT_TRUE(has_finding(report, "V2", FindingSeverity::info));
}

TEST_F(VerifierTest, BrokenChainInAnIncompleteRunFails) {
    RunSpec spec;
    spec.edit = [](Events& events) { events.erase(events.begin() + index_of(events, "train_end"), events.end()); };
    spec.after = [](const std::string& directory) {
        // Rewrites line 3 (the config) with a different, still valid, payload.
        const std::string path = directory + "/" + ledger_file_name;
        std::ifstream in(path);
        std::vector<std::string> lines;
        for (std::string line; std::getline(in, line);) lines.push_back(line);
        const std::size_t at = lines[2].find("\"SEED\":1337");
        ASSERT_NE(at, std::string::npos) << lines[2];
        lines[2].replace(at, 11, "\"SEED\":1338");
        std::ofstream out(path, std::ios::trunc);
        for (const std::string& line : lines) out << line << '\n';
    };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_EQ(report.status, "incomplete");
    EXPECT_TRUE(has_finding(report, "V1", FindingSeverity::fail, 4));
    EXPECT_EQ(report.measures.at("chain_intact"), false);
}

TEST_F(VerifierTest, FailedRunFails) {
    RunSpec spec;
    spec.edit = [](Events& events) {
        events.erase(events.begin() + index_of(events, "train_end"), events.end());
        events.push_back({810, "train", "run_end", {{"status", "failed"}, {"error", "out of memory"}}});
    };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_EQ(report.status, "failed");
    EXPECT_TRUE(has_finding(report, "V2", FindingSeverity::fail, line_of(events_, "run_end")));
}

TEST_F(VerifierTest, SupervisorFindingInAStoppedRunFails) {
    RunSpec spec;
    spec.edit = [](Events& events) {
        const std::size_t end = index_of(events, "run_end");
        events[end].payload["status"] = "stopped";
        events[end].payload["rule"] = "E1";
        insert_at(events, end,
                  {{2245,
                    "evaluate",
                    "finding",
                    {{"rule", "E1"}, {"severity", "fail"}, {"message", "timed evaluation past the budget"}}}});
    };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_EQ(report.status, "stopped");
    EXPECT_TRUE(has_finding(report, "E1", FindingSeverity::fail, line_of(events_, "finding")));
}

TEST_F(VerifierTest, MissingLedgerHeadWarns) {
    RunSpec spec;
    spec.after = [](const std::string& directory) { std::filesystem::remove(directory + "/" + ledger_head_file_name); };
    const AuditReport report = audit(spec);
    expect_verdict(report, "WARN", 1);
    EXPECT_TRUE(has_finding(report, "V1", FindingSeverity::warn));
}

TEST_F(VerifierTest, UnsyncedLinesInAFinishedRunWarn) {
    RunSpec spec;
    spec.after = [](const std::string& directory) {
        // The head as a sync two lines before the end left it: the last two lines were never anchored.
        std::ifstream in(directory + "/" + ledger_file_name);
        std::vector<std::string> lines;
        for (std::string line; std::getline(in, line);) lines.push_back(line);
        const nlohmann::json head = {
            {"lines", lines.size() - 2},
            {"last_line_sha256", digest_sha256_hex(std::string_view(lines[lines.size() - 3]))}};
        std::ofstream out(directory + "/" + ledger_head_file_name, std::ios::trunc);
        out << head.dump() << '\n';
    };
    const AuditReport report = audit(spec);
    expect_verdict(report, "WARN", 1);
    EXPECT_TRUE(has_finding(report, "V1", FindingSeverity::warn));
    EXPECT_TRUE(lacks_rule(report, "V1", FindingSeverity::fail));
}

// --- the report ---

TEST_F(VerifierTest, ReportJsonAndTextNameTheVerdictAndEveryRule) {
    RunSpec spec = with_eval_budget(450.0);
    spec.cap_bytes = 1000;
    const AuditReport report = audit(spec);
    const std::string path = folder_.path("audit.json");
    audit_write_json(report, path);
    const Bytes bytes = test_read_file(path);
    const nlohmann::json json = nlohmann::json::parse(bytes.begin(), bytes.end());
    EXPECT_EQ(json["verdict"], "FAIL");
    EXPECT_EQ(json["status"], "complete");
    ASSERT_TRUE(json["findings"].is_array());
    ASSERT_EQ(json["findings"].size(), report.findings.size());
    bool e1 = false, a1 = false;
    for (const nlohmann::json& finding : json["findings"]) {
        ASSERT_TRUE(finding.contains("rule") && finding.contains("severity")) << finding.dump();
        e1 = e1 || (finding["rule"] == "E1" && finding["severity"] == "fail");
        a1 = a1 || (finding["rule"] == "A1" && finding["severity"] == "fail" &&
                    finding.value("ledger_line", std::int64_t{0}) == line_of(events_, "artifact"));
    }
    EXPECT_TRUE(e1) << json.dump(2);
    EXPECT_TRUE(a1) << json.dump(2);
    // Fails first, so a reader sees what matters at the top.
    EXPECT_EQ(json["findings"][0]["severity"], "fail");

    const std::string text = audit_report_text(report);
    EXPECT_NE(text.find("FAIL"), std::string::npos) << text;
    for (const AuditFinding& finding : report.findings) {
        EXPECT_NE(text.find(" " + finding.rule + " "), std::string::npos) << finding.rule << " in:\n" << text;
    }
}

TEST(VerifierFolderTest, FolderWithoutALedgerThrows) {
    TemporaryFolder folder;
    const std::string message = error_message([&] { audit_run(folder.root()); });
    EXPECT_NE(message.find(ledger_file_name), std::string::npos) << message;
}

// --- hostile or unusual evidence: each once crashed or fooled the verifier ---

TEST_F(VerifierTest, LogFinalLineThatIsNotANumberIsAV3Finding) {
    RunSpec spec;
    spec.edit_log = [](std::vector<std::string>& lines) {
        lines.back() = "final_int8_zlib_roundtrip_exact val_loss:low val_bpb:lower";
    };
    AuditReport report;
    ASSERT_NO_THROW(report = audit(spec));
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "V3", FindingSeverity::fail, line_of(events_, "metrics")));
}

TEST_F(VerifierTest, LogTotalSizeOutOfRangeIsAnA9Finding) {
    RunSpec spec;
    spec.edit_log = [](std::vector<std::string>& lines) {
        for (std::string& line : lines) {
            if (line.rfind("Total submission size", 0) == 0) {
                line = "Total submission size int8+zlib: 99999999999999999999999 bytes";
            }
        }
    };
    AuditReport report;
    ASSERT_NO_THROW(report = audit(spec));
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "A9", FindingSeverity::fail));
}

TEST_F(VerifierTest, ArtifactNamingTheRunFolderItselfIsAV4Finding) {
    RunSpec spec;
    spec.edit = [](Events& events) { events[index_of(events, "artifact")].payload["files"][0]["name"] = ""; };
    AuditReport report;
    ASSERT_NO_THROW(report = audit(spec));
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "V4", FindingSeverity::fail, line_of(events_, "artifact")));
}

TEST_F(VerifierTest, FailedRunLogIsNotClaimedEdited) {
    RunSpec spec;
    spec.edit = [](Events& events) {
        events.erase(events.begin() + index_of(events, "train_end"), events.end());
        // A failed run whose run_end carries no log digest (a hand-written or older ledger): not an edited log.
        events.push_back({810, "train", "run_end", {{"status", "failed"}, {"error", "out of memory"}}});
    };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "V2", FindingSeverity::fail, line_of(events_, "run_end")));
    EXPECT_TRUE(lacks_rule(report, "V3", FindingSeverity::fail));
}

TEST_F(VerifierTest, ScoreWithoutATimedGateFails) {
    RunSpec spec;
    spec.edit = [](Events& events) {
        std::erase_if(events, [](const Event& e) { return e.event.rfind("gate_", 0) == 0; });
        events[index_of(events, "metrics")].payload["val_bpb"] = 0.5;
        events[index_of(events, "metrics")].payload["val_loss"] = 1.0;
    };
    const AuditReport report = audit(spec);
    expect_verdict(report, "FAIL", 2);
    EXPECT_TRUE(has_finding(report, "V5", FindingSeverity::fail, line_of(events_, "metrics")));
}

}  // namespace
}  // namespace pgolf
