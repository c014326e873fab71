// The results store (docs/records-store.md): SQLite with WAL, foreign keys on, schema migrations by PRAGMA
// user_version, every write in one transaction. Submissions (one per record folder), runs (one per seed) with the
// metrics of every evaluation family, and findings (rule id, severity, evidence). Means and standard deviations are
// not stored: they are derived from the runs whenever they are needed.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace pgolf {

inline constexpr int store_schema_version = 1;

struct StoredMetric {
    std::string family;  // e.g. "int8_zlib_roundtrip", "int6_sliding_window", "ttt_sliding"
    double val_loss = std::numeric_limits<double>::quiet_NaN();
    double val_bpb = std::numeric_limits<double>::quiet_NaN();
};

struct StoredFinding {
    std::string rule;      // COMPLIANCE.md id or a verifier/importer id
    std::string severity;  // "info", "warn", "fail"
    std::string message;
    std::string evidence;  // JSON text; may be empty
};

// NaN / −1 / "" mean "not known" (imported records often lack fields); they are stored as NULL.
struct StoredRun {
    std::int64_t id = 0;  // set by the store
    std::int64_t seed = 0;
    double val_loss = std::numeric_limits<double>::quiet_NaN();  // the headline family's
    double val_bpb = std::numeric_limits<double>::quiet_NaN();
    std::int64_t artifact_bytes = -1;  // code + model, as measured
    std::int64_t model_bytes = -1;
    std::int64_t code_bytes = -1;
    std::int64_t steps = -1;
    double step_avg_ms = std::numeric_limits<double>::quiet_NaN();
    double train_time_s = std::numeric_limits<double>::quiet_NaN();
    double eval_time_s = std::numeric_limits<double>::quiet_NaN();
    std::string hardware;
    std::string preset;
    std::string config_digest;
    std::string engine_version;
    std::string engine_digest;
    std::string log_sha256;
    std::string ledger_sha256;
    std::string audit_verdict;  // PASS, WARN, FAIL, INCOMPLETE, or "" (not audited)
    std::string run_folder;
    std::vector<StoredMetric> metrics;  // one per family (a family twice is refused)
    std::vector<StoredFinding> findings;
};

struct StoredSubmission {
    std::int64_t id = 0;  // set by the store
    std::string folder;   // unique key: the record folder (as given, or the records-tree path for imports)
    std::string origin;   // "reproduce", "import" or "rerun"
    std::string name;
    std::string author;
    std::string github_id;
    std::string date;  // ISO 8601: YYYY-MM-DD, optionally with a time
    std::string track;
    std::string preset;
    std::string hardware;
    std::string engine_version;
    std::string config_digest;
    std::vector<StoredFinding> findings;  // submission-level
    std::vector<StoredRun> runs;          // filled when read, ordered by seed
};

class Store {
public:
    // Opens the database (creating it when create is true; a missing file is otherwise a one-line error, so a query
    // in the wrong folder says so instead of answering from an empty database) and migrates it to
    // store_schema_version. Refuses a database written by a newer pgolf (user_version above ours). A write that finds
    // the database locked waits busy_timeout_s, then fails with a one-line message naming the file.
    static Store open(const std::string& path, double busy_timeout_s = 10.0, bool create = true);
    ~Store();
    Store(Store&& other) noexcept;
    Store& operator=(Store&& other) noexcept;
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    const std::string& path() const { return path_; }
    int schema_version() const;

    // Inserts, or updates by folder, the submission's own fields and replaces its submission-level findings; its runs
    // are left alone. One transaction. Returns the id.
    std::int64_t put_submission(const StoredSubmission& submission);
    // Inserts, or replaces by (submission, seed), one run with its metrics and findings. One transaction.
    std::int64_t put_run(std::int64_t submission_id, const StoredRun& run);
    // The whole submission in one transaction: its fields and findings (as put_submission), every run in
    // submission.runs (as put_run), and the removal of stored runs whose seed is no longer there. What an idempotent
    // import needs: a re-import leaves exactly what the folder now holds, and a crash leaves the previous state.
    std::int64_t put_submission_with_runs(const StoredSubmission& submission);
    // Removes a submission with its runs, metrics and findings (cascade). One transaction. An unknown id throws.
    void remove_submission(std::int64_t submission_id);

    std::optional<StoredSubmission> find_submission(std::int64_t id) const;
    std::optional<StoredSubmission> find_submission_by_folder(const std::string& folder) const;
    bool has_run(std::int64_t submission_id, std::int64_t seed) const;
    // Every submission (of one track when given), with runs, metrics and findings, by date then id.
    std::vector<StoredSubmission> list_submissions(const std::string& track = "") const;
    // Submissions whose name, author or github_id contains text (case-insensitive), by date then id.
    std::vector<StoredSubmission> search_submissions(const std::string& text) const;

private:
    Store() = default;
    std::string path_;
    sqlite3* db_ = nullptr;
};

}  // namespace pgolf
