// The results store on SQLite: connection setup, schema migrations by PRAGMA user_version, transactional writes and
// reads that rebuild submissions with their runs, metrics and findings.
#include "leaderboard/store.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <sstream>
#include <utility>

#include "core/error.h"

namespace pgolf {

namespace {

// Schema version 1 (the reference for docs/records-store.md):
//
//   submissions  one row per record folder (the upsert key). created_at is set on insert, updated_at on every later
//                put_submission of the same folder.
//   runs         one row per (submission, seed); the headline family's numbers plus provenance (digests, hashes of
//                the log and ledger, the audit verdict). Deleted with its submission.
//   metrics      (run, family) -> val_loss, val_bpb for every evaluation family of a run. Deleted with its run.
//   findings     rule, severity (info/warn/fail), message, evidence (JSON text). run_id NULL: a submission-level
//                finding; otherwise the run's, with submission_id set too so a submission's findings are one lookup.
//
// Unknown values (NaN, −1, "") are NULL. Means and deviations are not stored: they derive from the runs. The index on
// runs(submission_id) duplicates the prefix of UNIQUE(submission_id, seed) but names the lookup explicitly;
// findings(run_id) serves put_run's replacement of a run's findings and the cascade from runs.
constexpr const char* schema_v1 = R"sql(
CREATE TABLE submissions (
    id INTEGER PRIMARY KEY,
    folder TEXT NOT NULL UNIQUE,
    origin TEXT NOT NULL,
    name TEXT NOT NULL,
    author TEXT,
    github_id TEXT,
    date TEXT NOT NULL,
    track TEXT NOT NULL,
    preset TEXT,
    hardware TEXT,
    engine_version TEXT,
    config_digest TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    updated_at TEXT
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    submission_id INTEGER NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
    seed INTEGER NOT NULL,
    val_loss REAL,
    val_bpb REAL,
    artifact_bytes INTEGER,
    model_bytes INTEGER,
    code_bytes INTEGER,
    steps INTEGER,
    step_avg_ms REAL,
    train_time_s REAL,
    eval_time_s REAL,
    hardware TEXT,
    preset TEXT,
    config_digest TEXT,
    engine_version TEXT,
    engine_digest TEXT,
    log_sha256 TEXT,
    ledger_sha256 TEXT,
    audit_verdict TEXT,
    run_folder TEXT,
    UNIQUE (submission_id, seed)
);
CREATE TABLE metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    family TEXT NOT NULL,
    val_loss REAL,
    val_bpb REAL,
    PRIMARY KEY (run_id, family)
);
CREATE TABLE findings (
    id INTEGER PRIMARY KEY,
    submission_id INTEGER NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
    run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('info', 'warn', 'fail')),
    message TEXT NOT NULL,
    evidence TEXT
);
CREATE INDEX runs_by_submission ON runs(submission_id);
CREATE INDEX findings_by_submission ON findings(submission_id);
CREATE INDEX findings_by_run ON findings(run_id);
CREATE INDEX submissions_by_track_date ON submissions(track, date);
)sql";

// Migration k (index k − 1) brings user_version k − 1 to k. Append only: a released migration is never edited, since
// databases in the field already ran it.
constexpr std::array<const char*, store_schema_version> migrations = {schema_v1};

std::string format_seconds(double seconds) {
    std::ostringstream text;
    text << seconds;
    return text.str();
}

// The busy timeout the connection was opened with; Store keeps no copy of it, the connection does.
double busy_timeout_seconds(sqlite3* db) {
    sqlite3_stmt* statement = nullptr;
    double seconds = 0.0;
    if (sqlite3_prepare_v2(db, "PRAGMA busy_timeout", -1, &statement, nullptr) == SQLITE_OK &&
        sqlite3_step(statement) == SQLITE_ROW) {
        seconds = sqlite3_column_int64(statement, 0) / 1000.0;
    }
    sqlite3_finalize(statement);
    return seconds;
}

// The one place SQLite failures become pgolf::Error: a lock held past the busy timeout gets its own advice, anything
// else names SQLite's message and what the store was doing.
[[noreturn]] void throw_sqlite_error(sqlite3* db, const std::string& path, int code, const std::string& doing) {
    const std::string message = sqlite3_errmsg(db);  // read first: the busy-timeout query below replaces it
    if ((code & 0xff) == SQLITE_BUSY) {
        throw Error(path + ": database is locked by another writer (waited " +
                    format_seconds(busy_timeout_seconds(db)) + " s); try again when it finishes");
    }
    if ((code & 0xff) == SQLITE_NOTADB) throw Error(path + ": not a pgolf database (" + message + ")");
    throw Error(path + ": sqlite: " + message + " (" + doing + ")");
}

// A prepared statement, finalized on scope exit. Values are always bound, never spliced into SQL. The optional_*
// binds and the column reads implement the store's "unknown" convention: NaN / −1 / "" <-> NULL.
class Statement {
public:
    Statement(sqlite3* db, const std::string& path, const char* sql, const std::string& doing)
        : db_(db), path_(path), doing_(doing) {
        const int code = sqlite3_prepare_v2(db, sql, -1, &statement_, nullptr);
        if (code != SQLITE_OK) throw_sqlite_error(db_, path_, code, doing_);
    }
    ~Statement() { sqlite3_finalize(statement_); }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    void bind_int(int index, std::int64_t value) { check(sqlite3_bind_int64(statement_, index, value)); }
    void bind_text(int index, const std::string& value) {
        check(sqlite3_bind_text(statement_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT));
    }
    void bind_null(int index) { check(sqlite3_bind_null(statement_, index)); }
    void bind_optional_int(int index, std::int64_t value) {
        if (value == -1) return bind_null(index);
        bind_int(index, value);
    }
    void bind_optional_real(int index, double value) {
        if (std::isnan(value)) return bind_null(index);
        check(sqlite3_bind_double(statement_, index, value));
    }
    void bind_optional_text(int index, const std::string& value) {
        if (value.empty()) return bind_null(index);
        bind_text(index, value);
    }

    // The raw step code, for callers that turn one specific failure into a better message.
    int step_code() { return sqlite3_step(statement_); }
    // True while there is a row; false when done; throws on failure.
    bool step() {
        const int code = step_code();
        if (code == SQLITE_ROW) return true;
        if (code == SQLITE_DONE) return false;
        throw_sqlite_error(db_, path_, code, doing_);
    }
    // For statements that return no rows (or whose rows do not matter).
    void run() {
        while (step()) {
        }
    }
    // Ready to run again with new bindings (statements reused in loops are prepared once).
    void reset() {
        sqlite3_reset(statement_);
        sqlite3_clear_bindings(statement_);
    }
    [[noreturn]] void fail(int code) const { throw_sqlite_error(db_, path_, code, doing_); }

    std::int64_t column_int(int column) const {
        return sqlite3_column_type(statement_, column) == SQLITE_NULL ? -1 : sqlite3_column_int64(statement_, column);
    }
    double column_real(int column) const {
        return sqlite3_column_type(statement_, column) == SQLITE_NULL ? std::numeric_limits<double>::quiet_NaN()
                                                                      : sqlite3_column_double(statement_, column);
    }
    std::string column_text(int column) const {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement_, column));
        if (text == nullptr) return {};
        return std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(statement_, column)));
    }

private:
    void check(int code) const {
        if (code != SQLITE_OK) throw_sqlite_error(db_, path_, code, doing_);
    }

    sqlite3* db_;
    const std::string& path_;
    std::string doing_;
    sqlite3_stmt* statement_ = nullptr;
};

// Statements without values (pragmas, transaction control, migration scripts).
void execute(sqlite3* db, const std::string& path, const char* sql, const std::string& doing) {
    const int code = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
    if (code != SQLITE_OK) throw_sqlite_error(db, path, code, doing);
}

std::int64_t query_int(sqlite3* db, const std::string& path, const char* sql, const std::string& doing) {
    Statement statement(db, path, sql, doing);
    if (!statement.step()) throw Error(path + ": sqlite: no result from " + sql + " (" + doing + ")");
    return statement.column_int(0);
}

// One transaction: BEGIN IMMEDIATE for writes (the write lock is taken up front, so a busy database fails at BEGIN
// after the busy timeout instead of midway, and WAL cannot refuse a read-to-write upgrade), plain BEGIN for reads (one
// consistent snapshot across the several SELECTs that rebuild a submission). Rolled back unless committed, so an
// exception anywhere leaves the database as it was.
class Transaction {
public:
    Transaction(sqlite3* db, const std::string& path, bool write, const std::string& doing)
        : db_(db), path_(path), doing_(doing) {
        execute(db_, path_, write ? "BEGIN IMMEDIATE" : "BEGIN", doing_);
    }
    ~Transaction() {
        // A failed COMMIT may already have rolled back (then autocommit is on again and there is nothing to undo).
        if (!committed_ && sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

    void commit() {
        execute(db_, path_, "COMMIT", doing_);
        committed_ = true;
    }

private:
    sqlite3* db_;
    const std::string& path_;
    std::string doing_;
    bool committed_ = false;
};

constexpr const char* submission_columns =
    "id, folder, origin, name, author, github_id, date, track, preset, hardware, engine_version, config_digest";

StoredSubmission read_submission_row(const Statement& row) {
    StoredSubmission submission;
    submission.id = row.column_int(0);
    submission.folder = row.column_text(1);
    submission.origin = row.column_text(2);
    submission.name = row.column_text(3);
    submission.author = row.column_text(4);
    submission.github_id = row.column_text(5);
    submission.date = row.column_text(6);
    submission.track = row.column_text(7);
    submission.preset = row.column_text(8);
    submission.hardware = row.column_text(9);
    submission.engine_version = row.column_text(10);
    submission.config_digest = row.column_text(11);
    return submission;
}

// Fills in the findings and runs of submissions read from the submissions table. Its statements are prepared once
// and reused for every submission of a listing.
class SubmissionDetails {
public:
    SubmissionDetails(sqlite3* db, const std::string& path, const std::string& doing)
        : submission_findings_(db, path,
                               "SELECT rule, severity, message, evidence FROM findings "
                               "WHERE submission_id = ?1 AND run_id IS NULL ORDER BY id",
                               doing),
          runs_(db, path,
                "SELECT id, seed, val_loss, val_bpb, artifact_bytes, model_bytes, code_bytes, steps, step_avg_ms, "
                "train_time_s, eval_time_s, hardware, preset, config_digest, engine_version, engine_digest, "
                "log_sha256, ledger_sha256, audit_verdict, run_folder FROM runs WHERE submission_id = ?1 "
                "ORDER BY seed",
                doing),
          metrics_(db, path, "SELECT family, val_loss, val_bpb FROM metrics WHERE run_id = ?1 ORDER BY family", doing),
          run_findings_(db, path,
                        "SELECT rule, severity, message, evidence FROM findings WHERE run_id = ?1 ORDER BY id", doing) {
    }

    void fill(StoredSubmission& submission) {
        submission.findings = read_findings(submission_findings_, submission.id);
        submission.runs.clear();
        runs_.reset();
        runs_.bind_int(1, submission.id);
        while (runs_.step()) submission.runs.push_back(read_run_row(runs_));
        for (StoredRun& run : submission.runs) {
            metrics_.reset();
            metrics_.bind_int(1, run.id);
            while (metrics_.step()) {
                run.metrics.push_back({metrics_.column_text(0), metrics_.column_real(1), metrics_.column_real(2)});
            }
            run.findings = read_findings(run_findings_, run.id);
        }
    }

private:
    static std::vector<StoredFinding> read_findings(Statement& statement, std::int64_t owner_id) {
        std::vector<StoredFinding> findings;
        statement.reset();
        statement.bind_int(1, owner_id);
        while (statement.step()) {
            findings.push_back({statement.column_text(0), statement.column_text(1), statement.column_text(2),
                                statement.column_text(3)});
        }
        return findings;
    }

    static StoredRun read_run_row(const Statement& row) {
        StoredRun run;
        run.id = row.column_int(0);
        run.seed = row.column_int(1);
        run.val_loss = row.column_real(2);
        run.val_bpb = row.column_real(3);
        run.artifact_bytes = row.column_int(4);
        run.model_bytes = row.column_int(5);
        run.code_bytes = row.column_int(6);
        run.steps = row.column_int(7);
        run.step_avg_ms = row.column_real(8);
        run.train_time_s = row.column_real(9);
        run.eval_time_s = row.column_real(10);
        run.hardware = row.column_text(11);
        run.preset = row.column_text(12);
        run.config_digest = row.column_text(13);
        run.engine_version = row.column_text(14);
        run.engine_digest = row.column_text(15);
        run.log_sha256 = row.column_text(16);
        run.ledger_sha256 = row.column_text(17);
        run.audit_verdict = row.column_text(18);
        run.run_folder = row.column_text(19);
        return run;
    }

    Statement submission_findings_;
    Statement runs_;
    Statement metrics_;
    Statement run_findings_;
};

// Runs a SELECT over submissions (its columns: submission_columns; bind adds its values) and rebuilds each row in
// full, all in one read transaction.
std::vector<StoredSubmission> read_submissions(sqlite3* db, const std::string& path, const std::string& sql,
                                               const std::function<void(Statement&)>& bind, const std::string& doing) {
    Transaction transaction(db, path, false, doing);
    std::vector<StoredSubmission> submissions;
    {
        Statement select(db, path, sql.c_str(), doing);
        bind(select);
        while (select.step()) submissions.push_back(read_submission_row(select));
        SubmissionDetails details(db, path, doing);
        for (StoredSubmission& submission : submissions) details.fill(submission);
    }  // statements finish before COMMIT
    transaction.commit();
    return submissions;
}

void insert_findings(sqlite3* db, const std::string& path, std::int64_t submission_id, std::int64_t run_id,
                     const std::vector<StoredFinding>& findings, const std::string& doing) {
    if (findings.empty()) return;
    Statement insert(db, path,
                     "INSERT INTO findings (submission_id, run_id, rule, severity, message, evidence) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                     doing);
    for (const StoredFinding& finding : findings) {
        insert.reset();
        insert.bind_int(1, submission_id);
        if (run_id > 0) {
            insert.bind_int(2, run_id);
        } else {
            insert.bind_null(2);  // a submission-level finding
        }
        insert.bind_text(3, finding.rule);
        insert.bind_text(4, finding.severity);
        insert.bind_text(5, finding.message);
        insert.bind_optional_text(6, finding.evidence);
        insert.run();
    }
}

// Escapes LIKE's wildcards so searched text matches literally (ESCAPE '\').
std::string like_pattern(const std::string& text) {
    std::string pattern = "%";
    for (char c : text) {
        if (c == '%' || c == '_' || c == '\\') pattern += '\\';
        pattern += c;
    }
    return pattern + "%";
}

// Applies every migration past the database's user_version. Each runs in its own write transaction with its
// user_version bump, so a crash leaves the database at a whole version; the version is re-read under the write lock
// because another process may have migrated since it was first read.
void migrate(sqlite3* db, const std::string& path) {
    const std::string doing = "migrating the schema";
    // Read without a lock first: a current database (the usual case) takes no write lock just to be opened.
    while (query_int(db, path, "PRAGMA user_version", doing) < store_schema_version) {
        Transaction transaction(db, path, true, doing);
        const std::int64_t version = query_int(db, path, "PRAGMA user_version", doing);
        if (version < store_schema_version) {
            const std::string target = std::to_string(version + 1);
            execute(db, path, migrations[static_cast<std::size_t>(version)],
                    "migrating the schema to version " + target);
            // PRAGMA takes no bound parameters; the value is our own integer, not user input.
            execute(db, path, ("PRAGMA user_version = " + target).c_str(), doing);
        }
        transaction.commit();
    }
}

}  // namespace

Store Store::open(const std::string& path, double busy_timeout_s, bool create) {
    if (path.empty()) throw Error("cannot open database: no path given");
    if (!create && !std::filesystem::exists(path)) {
        throw Error(path + ": no such database (pgolf reproduce writes one; --db names another)");
    }
    Store store;  // owns the handle from here on, so every throw below closes it
    store.path_ = path;
    const int open_code =
        sqlite3_open_v2(path.c_str(), &store.db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    if (open_code != SQLITE_OK) {
        std::string reason = store.db_ != nullptr ? sqlite3_errmsg(store.db_) : sqlite3_errstr(open_code);
        const int system_error = store.db_ != nullptr ? sqlite3_system_errno(store.db_) : 0;
        if (system_error != 0) reason += std::string(" (") + std::strerror(system_error) + ")";
        throw Error(path + ": cannot open database: " + reason);
    }
    sqlite3_extended_result_codes(store.db_, 1);
    const double timeout_ms = std::isfinite(busy_timeout_s) ? std::max(0.0, busy_timeout_s * 1000.0) : 0.0;
    sqlite3_busy_timeout(store.db_, static_cast<int>(std::min(timeout_ms, static_cast<double>(INT_MAX))));

    // Per-connection settings first: they read nothing from the file. FULL syncs the WAL at every commit, so a
    // committed write survives power loss (NORMAL could lose the last commits); results are small, speed is no issue.
    const std::string setup = "setting up the connection";
    execute(store.db_, path, "PRAGMA foreign_keys = ON", setup);
    execute(store.db_, path, "PRAGMA synchronous = FULL", setup);

    // Look before changing anything, so a file we refuse is left exactly as it was. The first read of the header is
    // where SQLite notices a file that is not a database (SQLITE_NOTADB, reported by throw_sqlite_error).
    const std::string checking = "reading the schema version";
    const std::int64_t version = query_int(store.db_, path, "PRAGMA user_version", checking);
    if (version > store_schema_version) {
        throw Error(path + ": database schema version " + std::to_string(version) + " is newer than this pgolf's (" +
                    std::to_string(store_schema_version) + "); use a newer pgolf");
    }
    if (version == 0 && query_int(store.db_, path, "SELECT count(*) FROM sqlite_master", checking) > 0) {
        throw Error(path + ": not a pgolf database (an SQLite database with other tables and no pgolf schema version)");
    }
    if (query_int(store.db_, path, "PRAGMA foreign_keys", setup) != 1) {
        throw Error(path + ": sqlite: this SQLite was built without foreign keys, which the store needs for cascades");
    }

    // WAL lets readers proceed while one process writes. The mode is persistent in the file; on a filesystem without
    // shared memory SQLite keeps the rollback journal, which is just as crash-safe, so the answer is not checked.
    execute(store.db_, path, "PRAGMA journal_mode = WAL", setup);
    migrate(store.db_, path);
    return store;
}

Store::~Store() {
    // Every Statement is finalized when its scope ends, so the handle closes fully (and WAL checkpoints) here.
    if (db_ != nullptr) sqlite3_close_v2(db_);
}

Store::Store(Store&& other) noexcept : path_(std::move(other.path_)), db_(std::exchange(other.db_, nullptr)) {}

Store& Store::operator=(Store&& other) noexcept {
    if (this != &other) {
        if (db_ != nullptr) sqlite3_close_v2(db_);
        path_ = std::move(other.path_);
        db_ = std::exchange(other.db_, nullptr);
    }
    return *this;
}

int Store::schema_version() const {
    return static_cast<int>(query_int(db_, path_, "PRAGMA user_version", "reading the schema version"));
}

namespace {

// The bodies of the writes, run inside a transaction the caller holds (one write may store several rows at once).
std::int64_t store_write_submission(sqlite3* db, const std::string& path, const StoredSubmission& submission,
                                    const std::string& doing) {
    std::int64_t id = 0;
    {
        // An upsert rather than INSERT OR REPLACE: REPLACE deletes the old row first, which would give a new id and
        // cascade away the submission's runs.
        Statement upsert(db, path,
                         "INSERT INTO submissions (folder, origin, name, author, github_id, date, track, preset, "
                         "hardware, engine_version, config_digest) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                         "?11) ON CONFLICT (folder) DO UPDATE SET origin = excluded.origin, name = excluded.name, "
                         "author = excluded.author, github_id = excluded.github_id, date = excluded.date, "
                         "track = excluded.track, preset = excluded.preset, hardware = excluded.hardware, "
                         "engine_version = excluded.engine_version, config_digest = excluded.config_digest, "
                         "updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
                         doing);
        upsert.bind_text(1, submission.folder);
        upsert.bind_text(2, submission.origin);
        upsert.bind_text(3, submission.name);
        upsert.bind_optional_text(4, submission.author);
        upsert.bind_optional_text(5, submission.github_id);
        upsert.bind_text(6, submission.date);
        upsert.bind_text(7, submission.track);
        upsert.bind_optional_text(8, submission.preset);
        upsert.bind_optional_text(9, submission.hardware);
        upsert.bind_optional_text(10, submission.engine_version);
        upsert.bind_optional_text(11, submission.config_digest);
        upsert.run();

        // last_insert_rowid is not set by the update branch of an upsert, so the id is looked up by the key.
        Statement select(db, path, "SELECT id FROM submissions WHERE folder = ?1", doing);
        select.bind_text(1, submission.folder);
        if (!select.step()) throw Error(path + ": sqlite: submission vanished after its upsert (" + doing + ")");
        id = select.column_int(0);

        Statement remove(db, path, "DELETE FROM findings WHERE submission_id = ?1 AND run_id IS NULL", doing);
        remove.bind_int(1, id);
        remove.run();
        insert_findings(db, path, id, 0, submission.findings, doing);
    }
    return id;
}

std::int64_t store_write_run(sqlite3* db, const std::string& path, std::int64_t submission_id, const StoredRun& run,
                             const std::string& doing) {
    std::int64_t run_id = 0;
    {
        // An upsert keeps the run's id (and so the rows that point at it) stable across re-imports.
        Statement upsert(db, path,
                         "INSERT INTO runs (submission_id, seed, val_loss, val_bpb, artifact_bytes, model_bytes, "
                         "code_bytes, steps, step_avg_ms, train_time_s, eval_time_s, hardware, preset, config_digest, "
                         "engine_version, engine_digest, log_sha256, ledger_sha256, audit_verdict, run_folder) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
                         "?19, ?20) ON CONFLICT (submission_id, seed) DO UPDATE SET val_loss = excluded.val_loss, "
                         "val_bpb = excluded.val_bpb, artifact_bytes = excluded.artifact_bytes, "
                         "model_bytes = excluded.model_bytes, code_bytes = excluded.code_bytes, "
                         "steps = excluded.steps, step_avg_ms = excluded.step_avg_ms, "
                         "train_time_s = excluded.train_time_s, eval_time_s = excluded.eval_time_s, "
                         "hardware = excluded.hardware, preset = excluded.preset, "
                         "config_digest = excluded.config_digest, engine_version = excluded.engine_version, "
                         "engine_digest = excluded.engine_digest, log_sha256 = excluded.log_sha256, "
                         "ledger_sha256 = excluded.ledger_sha256, audit_verdict = excluded.audit_verdict, "
                         "run_folder = excluded.run_folder",
                         doing);
        upsert.bind_int(1, submission_id);
        upsert.bind_int(2, run.seed);
        upsert.bind_optional_real(3, run.val_loss);
        upsert.bind_optional_real(4, run.val_bpb);
        upsert.bind_optional_int(5, run.artifact_bytes);
        upsert.bind_optional_int(6, run.model_bytes);
        upsert.bind_optional_int(7, run.code_bytes);
        upsert.bind_optional_int(8, run.steps);
        upsert.bind_optional_real(9, run.step_avg_ms);
        upsert.bind_optional_real(10, run.train_time_s);
        upsert.bind_optional_real(11, run.eval_time_s);
        upsert.bind_optional_text(12, run.hardware);
        upsert.bind_optional_text(13, run.preset);
        upsert.bind_optional_text(14, run.config_digest);
        upsert.bind_optional_text(15, run.engine_version);
        upsert.bind_optional_text(16, run.engine_digest);
        upsert.bind_optional_text(17, run.log_sha256);
        upsert.bind_optional_text(18, run.ledger_sha256);
        upsert.bind_optional_text(19, run.audit_verdict);
        upsert.bind_optional_text(20, run.run_folder);
        // The foreign key is what catches a missing submission; its generic message becomes one that names the id.
        const int code = upsert.step_code();
        if (code == SQLITE_CONSTRAINT_FOREIGNKEY) {
            throw Error(path + ": no submission with id " + std::to_string(submission_id) + " (" + doing + ")");
        }
        if (code != SQLITE_DONE) upsert.fail(code);

        Statement select(db, path, "SELECT id FROM runs WHERE submission_id = ?1 AND seed = ?2", doing);
        select.bind_int(1, submission_id);
        select.bind_int(2, run.seed);
        if (!select.step()) throw Error(path + ": sqlite: run vanished after its upsert (" + doing + ")");
        run_id = select.column_int(0);

        Statement remove_metrics(db, path, "DELETE FROM metrics WHERE run_id = ?1", doing);
        remove_metrics.bind_int(1, run_id);
        remove_metrics.run();
        Statement insert_metric(
            db, path, "INSERT INTO metrics (run_id, family, val_loss, val_bpb) VALUES (?1, ?2, ?3, ?4)", doing);
        for (const StoredMetric& metric : run.metrics) {
            insert_metric.reset();
            insert_metric.bind_int(1, run_id);
            insert_metric.bind_text(2, metric.family);
            insert_metric.bind_optional_real(3, metric.val_loss);
            insert_metric.bind_optional_real(4, metric.val_bpb);
            insert_metric.run();
        }

        Statement remove_findings(db, path, "DELETE FROM findings WHERE run_id = ?1", doing);
        remove_findings.bind_int(1, run_id);
        remove_findings.run();
        insert_findings(db, path, submission_id, run_id, run.findings, doing);
    }
    return run_id;
}

}  // namespace

std::int64_t Store::put_submission(const StoredSubmission& submission) {
    if (submission.folder.empty()) throw Error(path_ + ": a submission needs a folder (its key in the store)");
    const std::string doing = "storing submission " + submission.folder;
    Transaction transaction(db_, path_, true, doing);
    const std::int64_t id = store_write_submission(db_, path_, submission, doing);
    transaction.commit();
    return id;
}

std::int64_t Store::put_run(std::int64_t submission_id, const StoredRun& run) {
    const std::string doing =
        "storing run seed " + std::to_string(run.seed) + " of submission " + std::to_string(submission_id);
    Transaction transaction(db_, path_, true, doing);
    const std::int64_t run_id = store_write_run(db_, path_, submission_id, run, doing);
    transaction.commit();
    return run_id;
}

std::int64_t Store::put_submission_with_runs(const StoredSubmission& submission) {
    if (submission.folder.empty()) throw Error(path_ + ": a submission needs a folder (its key in the store)");
    const std::string doing = "storing submission " + submission.folder + " with its runs";
    Transaction transaction(db_, path_, true, doing);
    const std::int64_t id = store_write_submission(db_, path_, submission, doing);
    {
        // Runs the submission no longer has go (their metrics and findings cascade); the others are upserted.
        std::string keep;
        for (const StoredRun& run : submission.runs) keep += (keep.empty() ? "" : ",") + std::to_string(run.seed);
        const std::string sql = "DELETE FROM runs WHERE submission_id = ?1 AND seed NOT IN (" + keep + ")";
        Statement remove(db_, path_, sql.c_str(), doing);
        remove.bind_int(1, id);
        remove.run();
    }
    for (const StoredRun& run : submission.runs) store_write_run(db_, path_, id, run, doing);
    transaction.commit();
    return id;
}

void Store::remove_submission(std::int64_t submission_id) {
    const std::string doing = "removing submission " + std::to_string(submission_id);
    Transaction transaction(db_, path_, true, doing);
    {
        Statement remove(db_, path_, "DELETE FROM submissions WHERE id = ?1", doing);
        remove.bind_int(1, submission_id);
        remove.run();
        // A wrong id is reported rather than ignored: a removal that did nothing is almost always a mistake.
        if (sqlite3_changes(db_) == 0) throw Error(path_ + ": no submission with id " + std::to_string(submission_id));
    }
    transaction.commit();
}

std::optional<StoredSubmission> Store::find_submission(std::int64_t id) const {
    std::vector<StoredSubmission> found = read_submissions(
        db_, path_, std::string("SELECT ") + submission_columns + " FROM submissions WHERE id = ?1",
        [&](Statement& select) { select.bind_int(1, id); }, "reading submission " + std::to_string(id));
    if (found.empty()) return std::nullopt;
    return std::move(found.front());
}

std::optional<StoredSubmission> Store::find_submission_by_folder(const std::string& folder) const {
    std::vector<StoredSubmission> found = read_submissions(
        db_, path_, std::string("SELECT ") + submission_columns + " FROM submissions WHERE folder = ?1",
        [&](Statement& select) { select.bind_text(1, folder); }, "reading submission " + folder);
    if (found.empty()) return std::nullopt;
    return std::move(found.front());
}

bool Store::has_run(std::int64_t submission_id, std::int64_t seed) const {
    Statement select(db_, path_, "SELECT 1 FROM runs WHERE submission_id = ?1 AND seed = ?2",
                     "looking up run seed " + std::to_string(seed) + " of submission " + std::to_string(submission_id));
    select.bind_int(1, submission_id);
    select.bind_int(2, seed);
    return select.step();
}

std::vector<StoredSubmission> Store::list_submissions(const std::string& track) const {
    // ISO 8601 dates order correctly as text; id breaks ties in insertion order.
    return read_submissions(
        db_, path_,
        std::string("SELECT ") + submission_columns + " FROM submissions WHERE ?1 = '' OR track = ?1 ORDER BY date, id",
        [&](Statement& select) { select.bind_text(1, track); }, "listing submissions");
}

std::vector<StoredSubmission> Store::search_submissions(const std::string& text) const {
    // LIKE is case-insensitive for ASCII letters only (SQLite's default, without ICU).
    return read_submissions(
        db_, path_,
        std::string("SELECT ") + submission_columns +
            " FROM submissions WHERE name LIKE ?1 ESCAPE '\\' OR author LIKE ?1 ESCAPE '\\' "
            "OR github_id LIKE ?1 ESCAPE '\\' ORDER BY date, id",
        [&](Statement& select) { select.bind_text(1, like_pattern(text)); }, "searching submissions");
}

}  // namespace pgolf
