// The canonical submission.json (docs/submission-schema.md): one schema for every record folder pgolf writes, a
// superset of the fields real records use (RECORDS-FORMATS.md), with per-seed results keyed by the seed as a string.
// Writing and strict reading round-trip exactly; the reader of real-world variants is records/ issue 9's.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace pgolf {

inline constexpr const char* submission_schema_id = "pgolf-submission/1";

struct SeedResult {
    double val_bpb = 0.0;
    double val_loss = 0.0;
    std::int64_t artifact_bytes = 0;  // code + model, measured from the files
    std::int64_t model_bytes = 0;
    std::int64_t code_bytes = 0;
    std::int64_t steps = 0;
    double step_avg_ms = 0.0;
    double train_time_s = 0.0;
    double eval_time_s = 0.0;
    std::string audit_verdict;  // PASS, WARN, FAIL, INCOMPLETE
    bool operator==(const SeedResult&) const = default;
};

struct SignificanceTest {
    std::string name;  // one_sample_nats, welch_nats, welch_bpb
    double t = 0.0;
    double df = 0.0;
    double p = 1.0;
    double margin = 0.0;
    double alpha = 0.0;
    bool significant = false;
    bool operator==(const SignificanceTest&) const = default;
};

struct SubmissionSignificance {
    std::string against_name;  // the best stored record of the track when this one was written
    std::string against_folder;
    double against_val_bpb = 0.0;
    std::int64_t against_seeds = 0;
    std::vector<SignificanceTest> tests;
    std::string gate;  // the test whose verdict decides
    bool passes = false;
    bool operator==(const SubmissionSignificance&) const = default;
};

struct Submission {
    std::string name;
    std::string author;
    std::string github_id;
    std::string date;  // YYYY-MM-DD
    std::string track;
    std::string blurb;
    double val_bpb = 0.0;  // mean over the seeds
    double val_loss = 0.0;
    double val_bpb_std = 0.0;  // sample standard deviation (n − 1)
    double val_loss_std = 0.0;
    std::vector<std::int64_t> seeds;
    std::map<std::int64_t, SeedResult> seed_results;
    std::int64_t bytes_total = 0;  // maximum over seeds of code + model
    std::int64_t bytes_code = 0;   // maximum over seeds
    std::int64_t cap_bytes = 16'000'000;
    std::int64_t margin_bytes = 0;  // cap_bytes − bytes_total
    std::string hardware;
    std::string preset;
    std::string scale;
    std::string eval_mode;
    std::string metric_family;  // the log family the headline is (e.g. int8_zlib_roundtrip)
    std::string config_digest;
    std::string engine_version;
    std::string engine_digest;
    std::string audit_verdict;  // the worst over seeds
    std::optional<SubmissionSignificance> significance;
    bool operator==(const Submission&) const = default;
};

nlohmann::ordered_json submission_to_json(const Submission& submission);
nlohmann::ordered_json significance_test_to_json(const SignificanceTest& test);
// Strict: every field of the schema present with its type, the schema id matching, nothing unknown. Throws a one-line
// pgolf::Error naming the field.
Submission submission_from_json(const nlohmann::ordered_json& json);
// Reads and writes the file (writes atomically, 2-space indented, trailing newline).
Submission submission_read(const std::string& path);
void submission_write(const std::string& path, const Submission& submission);

}  // namespace pgolf
