// Tests for leaderboard/store: the schema and its migrations, every field round-tripping (unknowns included),
// idempotent upserts, listings and searches, cascades, and the guarantees that matter most: a failed or killed write
// leaves the previous state, and a locked database fails with a one-line message instead of hanging.
#include "leaderboard/store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using namespace pgolf::test;

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A plain SQLite connection beside the store's, to look at (and lock, and corrupt) the file directly.
class RawDb {
public:
    explicit RawDb(const std::string& path) {
        if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) ADD_FAILURE() << "raw open failed: " << path;
    }
    ~RawDb() { sqlite3_close(db_); }
    RawDb(const RawDb&) = delete;
    RawDb& operator=(const RawDb&) = delete;

    void exec(const std::string& sql) {
        char* message = nullptr;
        if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
            ADD_FAILURE() << sql << ": " << (message != nullptr ? message : "?");
        }
        sqlite3_free(message);
    }
    // The first column of the first row, as text ("" when there is no row or it is NULL).
    std::string text(const std::string& sql) {
        sqlite3_stmt* statement = nullptr;
        std::string value;
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &statement, nullptr) != SQLITE_OK) {
            ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
        } else if (sqlite3_step(statement) == SQLITE_ROW && sqlite3_column_text(statement, 0) != nullptr) {
            value = reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
        }
        sqlite3_finalize(statement);
        return value;
    }
    std::int64_t integer(const std::string& sql) { return std::stoll(text(sql)); }
    std::set<std::string> names(const std::string& type) {
        std::set<std::string> found;
        sqlite3_stmt* statement = nullptr;
        const std::string sql = "SELECT name FROM sqlite_master WHERE type = '" + type + "'";
        sqlite3_prepare_v2(db_, sql.c_str(), -1, &statement, nullptr);
        while (sqlite3_step(statement) == SQLITE_ROW) {
            found.insert(reinterpret_cast<const char*>(sqlite3_column_text(statement, 0)));
        }
        sqlite3_finalize(statement);
        return found;
    }

private:
    sqlite3* db_ = nullptr;
};

StoredFinding finding(const std::string& rule, const std::string& severity, const std::string& message,
                      const std::string& evidence = "") {
    return {rule, severity, message, evidence};
}

StoredSubmission make_submission(const std::string& folder, const std::string& name = "Baseline",
                                 const std::string& date = "2025-03-18", const std::string& track = "10min_16mb") {
    StoredSubmission submission;
    submission.folder = folder;
    submission.origin = "import";
    submission.name = name;
    submission.author = "Ada Lovelace";
    submission.github_id = "ada";
    submission.date = date;
    submission.track = track;
    submission.preset = "baseline";
    submission.hardware = "8xH100";
    submission.engine_version = "0.4.0";
    submission.config_digest = "sha256:abc";
    return submission;
}

StoredRun make_run(std::int64_t seed, double loss) {
    StoredRun run;
    run.seed = seed;
    run.val_loss = loss;
    run.val_bpb = loss / 1.7;
    run.artifact_bytes = 15'900'000;
    run.model_bytes = 15'850'000;
    run.code_bytes = 50'000;
    run.steps = 13'780;
    run.step_avg_ms = 43.54;
    run.train_time_s = 599.9;
    run.eval_time_s = 71.25;
    run.hardware = "8xH100 SXM";
    run.preset = "baseline";
    run.config_digest = "sha256:cfg";
    run.engine_version = "0.4.0";
    run.engine_digest = "sha256:engine";
    run.log_sha256 = "0123abcd";
    run.ledger_sha256 = "4567ef01";
    run.audit_verdict = "PASS";
    run.run_folder = "runs/seed-" + std::to_string(seed);
    run.metrics = {{"int6_sliding_window", loss - 0.01, (loss - 0.01) / 1.7}, {"int8_zlib_roundtrip", loss, nan}};
    run.findings = {finding("T4", "warn", "training ran close to its budget", "{\"train_time_s\":599.9}"),
                    finding("A1", "info", "artifact under the cap")};
    return run;
}

// Every field known as unknown: NaN, −1 and "".
StoredRun unknown_run(std::int64_t seed) {
    StoredRun run;
    run.seed = seed;
    return run;
}

void expect_same_number(double expected, double actual, const std::string& field) {
    if (std::isnan(expected)) {
        EXPECT_TRUE(std::isnan(actual)) << field << " should be unknown, is " << actual;
    } else {
        EXPECT_EQ(expected, actual) << field;
    }
}

void expect_same_findings(const std::vector<StoredFinding>& expected, const std::vector<StoredFinding>& actual) {
    ASSERT_EQ(expected.size(), actual.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(expected[i].rule, actual[i].rule);
        EXPECT_EQ(expected[i].severity, actual[i].severity);
        EXPECT_EQ(expected[i].message, actual[i].message);
        EXPECT_EQ(expected[i].evidence, actual[i].evidence);
    }
}

// Compares every stored field; metrics are expected in family order (the order the store reads them back in).
void expect_same_run(const StoredRun& expected, const StoredRun& actual) {
    SCOPED_TRACE("seed " + std::to_string(expected.seed));
    EXPECT_EQ(expected.seed, actual.seed);
    expect_same_number(expected.val_loss, actual.val_loss, "val_loss");
    expect_same_number(expected.val_bpb, actual.val_bpb, "val_bpb");
    EXPECT_EQ(expected.artifact_bytes, actual.artifact_bytes);
    EXPECT_EQ(expected.model_bytes, actual.model_bytes);
    EXPECT_EQ(expected.code_bytes, actual.code_bytes);
    EXPECT_EQ(expected.steps, actual.steps);
    expect_same_number(expected.step_avg_ms, actual.step_avg_ms, "step_avg_ms");
    expect_same_number(expected.train_time_s, actual.train_time_s, "train_time_s");
    expect_same_number(expected.eval_time_s, actual.eval_time_s, "eval_time_s");
    EXPECT_EQ(expected.hardware, actual.hardware);
    EXPECT_EQ(expected.preset, actual.preset);
    EXPECT_EQ(expected.config_digest, actual.config_digest);
    EXPECT_EQ(expected.engine_version, actual.engine_version);
    EXPECT_EQ(expected.engine_digest, actual.engine_digest);
    EXPECT_EQ(expected.log_sha256, actual.log_sha256);
    EXPECT_EQ(expected.ledger_sha256, actual.ledger_sha256);
    EXPECT_EQ(expected.audit_verdict, actual.audit_verdict);
    EXPECT_EQ(expected.run_folder, actual.run_folder);
    ASSERT_EQ(expected.metrics.size(), actual.metrics.size());
    for (std::size_t i = 0; i < expected.metrics.size(); ++i) {
        EXPECT_EQ(expected.metrics[i].family, actual.metrics[i].family);
        expect_same_number(expected.metrics[i].val_loss, actual.metrics[i].val_loss, "metric val_loss");
        expect_same_number(expected.metrics[i].val_bpb, actual.metrics[i].val_bpb, "metric val_bpb");
    }
    expect_same_findings(expected.findings, actual.findings);
}

void expect_same_submission_fields(const StoredSubmission& expected, const StoredSubmission& actual) {
    EXPECT_EQ(expected.folder, actual.folder);
    EXPECT_EQ(expected.origin, actual.origin);
    EXPECT_EQ(expected.name, actual.name);
    EXPECT_EQ(expected.author, actual.author);
    EXPECT_EQ(expected.github_id, actual.github_id);
    EXPECT_EQ(expected.date, actual.date);
    EXPECT_EQ(expected.track, actual.track);
    EXPECT_EQ(expected.preset, actual.preset);
    EXPECT_EQ(expected.hardware, actual.hardware);
    EXPECT_EQ(expected.engine_version, actual.engine_version);
    EXPECT_EQ(expected.config_digest, actual.config_digest);
    expect_same_findings(expected.findings, actual.findings);
}

std::vector<std::string> folders_of(const std::vector<StoredSubmission>& submissions) {
    std::vector<std::string> folders;
    for (const StoredSubmission& submission : submissions) folders.push_back(submission.folder);
    return folders;
}

void expect_one_line_naming(const std::string& message, const std::string& path) {
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_TRUE(contains(message, path)) << message;
    EXPECT_NE(message, "(no error)");
}

// --- opening and migrations ---

TEST(Store, OpenCreatesAWalDatabaseAtTheCurrentSchemaVersion) {
    TemporaryFolder folder;
    const std::string path = folder.path("results.db");
    ASSERT_FALSE(std::filesystem::exists(path));
    {
        Store store = Store::open(path);
        EXPECT_TRUE(std::filesystem::exists(path));
        EXPECT_EQ(store.path(), path);
        EXPECT_EQ(store.schema_version(), 1);
        EXPECT_EQ(store_schema_version, 1);
        store.put_submission(make_submission("records/a"));
    }
    RawDb raw(path);
    EXPECT_EQ(raw.text("PRAGMA journal_mode"), "wal");  // persistent in the file
    EXPECT_EQ(raw.integer("PRAGMA user_version"), 1);
    EXPECT_EQ(raw.names("table"), (std::set<std::string>{"findings", "metrics", "runs", "submissions"}));
    const std::set<std::string> indexes = raw.names("index");
    for (const char* index : {"runs_by_submission", "findings_by_submission", "submissions_by_track_date"}) {
        EXPECT_TRUE(indexes.count(index)) << index;
    }
    // foreign_keys is a per-connection setting, so a raw connection reports its own (off) value; what the schema
    // carries is the foreign keys themselves. That the store's connection enforces them is shown by the cascade and
    // missing-submission tests below.
    EXPECT_EQ(raw.integer("SELECT count(*) FROM pragma_foreign_key_list('runs')"), 1);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM pragma_foreign_key_list('findings')"), 2);

    Store reopened = Store::open(path);  // no second migration: the data is still there
    EXPECT_EQ(reopened.schema_version(), 1);
    EXPECT_EQ(reopened.list_submissions().size(), 1u);
}

TEST(Store, MigratesAnEmptyVersionZeroDatabase) {
    TemporaryFolder folder;
    const std::string path = folder.path("old.db");
    {
        RawDb raw(path);
        raw.exec("PRAGMA user_version = 0");
    }
    Store store = Store::open(path);
    EXPECT_EQ(store.schema_version(), 1);
    RawDb raw(path);
    EXPECT_EQ(raw.names("table"), (std::set<std::string>{"findings", "metrics", "runs", "submissions"}));
    EXPECT_EQ(store.put_submission(make_submission("records/a")), 1);
}

TEST(Store, RefusesADatabaseFromANewerPgolfAndLeavesItAlone) {
    TemporaryFolder folder;
    const std::string path = folder.path("future.db");
    {
        RawDb raw(path);
        raw.exec("CREATE TABLE future (x); PRAGMA user_version = 99");
    }
    EXPECT_EQ(error_message([&] { Store::open(path); }),
              path + ": database schema version 99 is newer than this pgolf's (1); use a newer pgolf");
    RawDb raw(path);
    EXPECT_EQ(raw.text("PRAGMA journal_mode"), "delete");  // not switched to WAL
    EXPECT_EQ(raw.integer("PRAGMA user_version"), 99);
}

TEST(Store, RefusesAnotherApplicationsSqliteDatabase) {
    TemporaryFolder folder;
    const std::string path = folder.path("other.db");
    {
        RawDb raw(path);
        raw.exec("CREATE TABLE submissions (whatever TEXT)");
    }
    const std::string message = error_message([&] { Store::open(path); });
    expect_one_line_naming(message, path);
    EXPECT_TRUE(contains(message, "not a pgolf database")) << message;
    RawDb raw(path);
    EXPECT_EQ(raw.names("table"), std::set<std::string>{"submissions"});
    EXPECT_EQ(raw.text("PRAGMA journal_mode"), "delete");
}

TEST(Store, RefusesAFileThatIsNotADatabaseWithoutTouchingIt) {
    TemporaryFolder folder;
    const std::string path = folder.path("noise.db");
    std::mt19937 random(7);
    std::vector<std::uint8_t> bytes(4096);
    for (std::uint8_t& byte : bytes) byte = static_cast<std::uint8_t>(random());
    test_write_file(path, bytes);

    const std::string message = error_message([&] { Store::open(path); });
    EXPECT_EQ(message, path + ": not a pgolf database (file is not a database)");
    expect_one_line_naming(message, path);
    EXPECT_EQ(test_read_file(path), bytes);
    EXPECT_FALSE(std::filesystem::exists(path + "-wal"));
}

TEST(Store, ReportsAPathItCannotOpen) {
    TemporaryFolder folder;
    const std::string path = folder.path("missing-folder/results.db");
    const std::string message = error_message([&] { Store::open(path); });
    expect_one_line_naming(message, path);
    EXPECT_TRUE(contains(message, path + ": cannot open database: ")) << message;
}

TEST(Store, MovesTransferTheConnection) {
    TemporaryFolder folder;
    Store first = Store::open(folder.path("a.db"));
    first.put_submission(make_submission("records/a"));
    Store moved(std::move(first));
    EXPECT_EQ(moved.path(), folder.path("a.db"));
    EXPECT_EQ(moved.list_submissions().size(), 1u);

    Store other = Store::open(folder.path("b.db"));
    other = std::move(moved);
    EXPECT_EQ(other.path(), folder.path("a.db"));
    EXPECT_EQ(other.list_submissions().size(), 1u);
    other.put_submission(make_submission("records/b"));
    EXPECT_EQ(other.list_submissions().size(), 2u);
}

// --- round trips and idempotent writes ---

TEST(Store, EveryFieldRoundTripsIncludingUnknowns) {
    TemporaryFolder folder;
    Store store = Store::open(folder.path("results.db"));
    StoredSubmission submission = make_submission("records/track_10min_16mb/2025-03-18_Baseline");
    submission.findings = {finding("I2", "warn", "README lacks the seed list", "{\"file\":\"README.md\"}"),
                           finding("I7", "fail", "no train log for seed 3")};
    const std::int64_t id = store.put_submission(submission);
    EXPECT_GT(id, 0);

    const StoredRun full = make_run(1337, 1.2244);
    StoredRun empty = unknown_run(0);
    const std::int64_t full_id = store.put_run(id, full);
    const std::int64_t empty_id = store.put_run(id, empty);
    EXPECT_NE(full_id, empty_id);

    const std::optional<StoredSubmission> read = store.find_submission(id);
    ASSERT_TRUE(read.has_value());
    EXPECT_EQ(read->id, id);
    expect_same_submission_fields(submission, *read);
    ASSERT_EQ(read->runs.size(), 2u);  // by seed: 0 before 1337
    EXPECT_EQ(read->runs[0].id, empty_id);
    expect_same_run(empty, read->runs[0]);
    EXPECT_EQ(read->runs[1].id, full_id);
    expect_same_run(full, read->runs[1]);
    EXPECT_EQ(read->runs[1].artifact_bytes, 15'900'000);
    EXPECT_EQ(read->runs[0].artifact_bytes, -1);
    EXPECT_TRUE(std::isnan(read->runs[0].val_bpb));
    EXPECT_EQ(read->runs[0].audit_verdict, "");

    // Unknown optional fields are NULL in the file, not "" or −1 or NaN.
    RawDb raw(folder.path("results.db"));
    EXPECT_EQ(raw.integer("SELECT count(*) FROM runs WHERE seed = 0 AND val_loss IS NULL AND artifact_bytes IS NULL "
                          "AND steps IS NULL AND hardware IS NULL AND audit_verdict IS NULL"),
              1);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM metrics WHERE val_bpb IS NULL"), 1);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM findings WHERE evidence IS NULL"), 2);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM findings WHERE run_id IS NULL"), 2);

    const std::optional<StoredSubmission> by_folder = store.find_submission_by_folder(submission.folder);
    ASSERT_TRUE(by_folder.has_value());
    EXPECT_EQ(by_folder->id, id);
    EXPECT_EQ(by_folder->runs.size(), 2u);
    EXPECT_FALSE(store.find_submission(id + 100).has_value());
    EXPECT_FALSE(store.find_submission_by_folder("records/nowhere").has_value());
}

TEST(Store, WritesAreIdempotentAndReplaceTheirChildren) {
    TemporaryFolder folder;
    const std::string path = folder.path("results.db");
    Store store = Store::open(path);
    StoredSubmission submission = make_submission("records/a");
    submission.findings = {finding("I2", "warn", "first"), finding("I3", "info", "second")};
    const std::int64_t id = store.put_submission(submission);
    const std::int64_t run_id = store.put_run(id, make_run(42, 1.25));

    submission.name = "Baseline, renamed";
    submission.author = "";  // now unknown
    submission.findings = {finding("I9", "fail", "replaced")};
    EXPECT_EQ(store.put_submission(submission), id);

    StoredRun second = make_run(42, 1.19);
    second.steps = 20'000;
    second.audit_verdict = "WARN";
    second.metrics = {{"ttt_sliding", 1.18, 0.69}};
    second.findings = {finding("L6", "fail", "pre-quant TTT")};
    EXPECT_EQ(store.put_run(id, second), run_id);  // the run keeps its id

    RawDb raw(path);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM submissions"), 1);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM runs"), 1);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM metrics"), 1);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM findings"), 2);  // one submission-level, one run-level
    EXPECT_NE(raw.text("SELECT created_at FROM submissions"), "");
    EXPECT_NE(raw.text("SELECT updated_at FROM submissions"), "");

    const std::optional<StoredSubmission> read = store.find_submission(id);
    ASSERT_TRUE(read.has_value());
    expect_same_submission_fields(submission, *read);
    ASSERT_EQ(read->runs.size(), 1u);  // put_submission left the run alone
    EXPECT_EQ(read->runs[0].id, run_id);
    expect_same_run(second, read->runs[0]);
}

// --- queries and removal ---

TEST(Store, ListsByTrackAndDateSearchesAndRemovesWithCascade) {
    TemporaryFolder folder;
    const std::string path = folder.path("results.db");
    Store store = Store::open(path);
    const std::int64_t late = store.put_submission(make_submission("records/late", "Late", "2025-06-01"));
    StoredSubmission tied_a = make_submission("records/tied-a", "Tied A", "2025-04-01");
    tied_a.author = "Grace HOPPER";
    tied_a.github_id = "";
    const std::int64_t tied_a_id = store.put_submission(tied_a);
    StoredSubmission tied_b = make_submission("records/tied-b", "Tied B", "2025-04-01");
    tied_b.github_id = "hopper-fan";
    store.put_submission(tied_b);
    store.put_submission(make_submission("records/early", "Early 50% Run", "2025-03-20"));
    store.put_submission(make_submission("records/other", "Other", "2025-01-01", "unlimited"));

    EXPECT_EQ(folders_of(store.list_submissions("10min_16mb")),
              (std::vector<std::string>{"records/early", "records/tied-a", "records/tied-b", "records/late"}));
    EXPECT_EQ(folders_of(store.list_submissions()),
              (std::vector<std::string>{"records/other", "records/early", "records/tied-a", "records/tied-b",
                                        "records/late"}));
    EXPECT_TRUE(store.list_submissions("no_such_track").empty());

    EXPECT_EQ(folders_of(store.search_submissions("hopper")),
              (std::vector<std::string>{"records/tied-a", "records/tied-b"}));  // author, github_id; any case
    EXPECT_EQ(folders_of(store.search_submissions("tIeD")),
              (std::vector<std::string>{"records/tied-a", "records/tied-b"}));                          // name
    EXPECT_EQ(folders_of(store.search_submissions("50%")), std::vector<std::string>{"records/early"});  // literal %
    EXPECT_TRUE(store.search_submissions("a_a").empty());  // "_" is literal too, not a wildcard
    EXPECT_TRUE(store.search_submissions("nobody").empty());

    store.put_run(late, make_run(1, 1.3));
    store.put_run(late, make_run(2, 1.31));
    const std::int64_t kept_run = store.put_run(tied_a_id, make_run(1, 1.4));
    EXPECT_TRUE(store.has_run(late, 1));
    EXPECT_TRUE(store.has_run(late, 2));
    EXPECT_FALSE(store.has_run(late, 3));
    EXPECT_FALSE(store.has_run(tied_a_id, 2));
    EXPECT_EQ(store.list_submissions("10min_16mb").back().runs.size(), 2u);  // listings carry runs

    RawDb raw(path);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM metrics"), 6);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM findings"), 6);
    store.remove_submission(late);
    EXPECT_FALSE(store.find_submission(late).has_value());
    EXPECT_FALSE(store.has_run(late, 1));
    EXPECT_EQ(raw.integer("SELECT count(*) FROM submissions"), 4);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM runs"), 1);      // the cascade took both of its runs...
    EXPECT_EQ(raw.integer("SELECT count(*) FROM metrics"), 2);   // ...their metrics...
    EXPECT_EQ(raw.integer("SELECT count(*) FROM findings"), 2);  // ...and their findings, and no one else's
    EXPECT_EQ(raw.integer("SELECT id FROM runs"), kept_run);

    const std::string message = error_message([&] { store.remove_submission(late); });
    expect_one_line_naming(message, path);
    EXPECT_TRUE(contains(message, "no submission with id")) << message;
}

TEST(Store, PutRunForAMissingSubmissionFailsWithOneLine) {
    TemporaryFolder folder;
    const std::string path = folder.path("results.db");
    Store store = Store::open(path);
    const std::string message = error_message([&] { store.put_run(12345, make_run(1, 1.2)); });
    EXPECT_EQ(message, path + ": no submission with id 12345 (storing run seed 1 of submission 12345)");
    RawDb raw(path);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM runs"), 0);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM findings"), 0);
}

// --- crash safety ---

TEST(Store, AFailedWriteLeavesThePreviousState) {
    TemporaryFolder folder;
    const std::string path = folder.path("results.db");
    Store store = Store::open(path);
    StoredSubmission submission = make_submission("records/a");
    submission.findings = {finding("I2", "warn", "kept")};
    const std::int64_t id = store.put_submission(submission);
    const StoredRun first = make_run(7, 1.25);
    const std::int64_t run_id = store.put_run(id, first);

    // The run's row is updated and its metrics replaced before the bad finding trips the CHECK constraint.
    StoredRun bad = make_run(7, 9.99);
    bad.metrics = {{"other_family", 9.0, 9.0}};
    bad.findings.push_back(finding("X1", "fatal", "no such severity"));
    std::string message = error_message([&] { store.put_run(id, bad); });
    expect_one_line_naming(message, path);
    EXPECT_TRUE(contains(message, "CHECK constraint failed")) << message;

    StoredSubmission bad_submission = submission;
    bad_submission.name = "should not stick";
    bad_submission.findings = {finding("I1", "panic", "no such severity")};
    message = error_message([&] { store.put_submission(bad_submission); });
    expect_one_line_naming(message, path);
    EXPECT_TRUE(contains(message, "CHECK constraint failed")) << message;

    const std::optional<StoredSubmission> read = store.find_submission(id);
    ASSERT_TRUE(read.has_value());
    expect_same_submission_fields(submission, *read);
    ASSERT_EQ(read->runs.size(), 1u);
    EXPECT_EQ(read->runs[0].id, run_id);
    expect_same_run(first, read->runs[0]);

    // The connection is usable again: nothing of the failed transactions is left open.
    StoredRun second = make_run(7, 1.2);
    EXPECT_EQ(store.put_run(id, second), run_id);
    expect_same_run(second, store.find_submission(id)->runs.at(0));
}

// Forks a writer that opens the database raw, inserts enough in one uncommitted transaction to spill pages into the
// WAL, and then dies: by _exit(9), or by SIGKILL. Returns its wait status.
int run_dying_writer(const std::string& path, bool kill_itself) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        sqlite3* db = nullptr;
        if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) ::_exit(2);
        // A tiny page cache forces the uncommitted pages out to the WAL before the "crash".
        if (sqlite3_exec(db, "PRAGMA cache_size = 4; BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
            ::_exit(3);
        }
        const char* insert =
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) "
            "INSERT INTO submissions (folder, origin, name, date, track) "
            "SELECT 'records/crash-' || i, 'import', hex(randomblob(4000)), '2030-01-01', 'crash' FROM n";
        if (sqlite3_exec(db, insert, nullptr, nullptr, nullptr) != SQLITE_OK) ::_exit(4);
        if (kill_itself) ::raise(SIGKILL);
        ::_exit(9);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
}

TEST(Store, AWriterKilledMidTransactionLeavesThePreviousState) {
    TemporaryFolder folder;
    const std::string path = folder.path("results.db");
    StoredSubmission submission = make_submission("records/a");
    const StoredRun run = make_run(1, 1.25);
    {
        // Closed before forking: an SQLite connection must not be carried across fork().
        Store store = Store::open(path);
        store.put_run(store.put_submission(submission), run);
    }
    for (const bool kill_itself : {false, true}) {
        SCOPED_TRACE(kill_itself ? "SIGKILL" : "_exit(9)");
        const int status = run_dying_writer(path, kill_itself);
        if (kill_itself) {
            ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
        } else {
            ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 9) << "status " << status;
        }
        // The uncommitted frames really reached the WAL, so recovery had something to ignore.
        ASSERT_TRUE(std::filesystem::exists(path + "-wal"));
        EXPECT_GT(std::filesystem::file_size(path + "-wal"), 1'000'000u);

        {
            Store store = Store::open(path);
            const std::vector<StoredSubmission> all = store.list_submissions();
            ASSERT_EQ(all.size(), 1u);
            expect_same_submission_fields(submission, all[0]);
            ASSERT_EQ(all[0].runs.size(), 1u);
            expect_same_run(run, all[0].runs[0]);
            EXPECT_TRUE(store.search_submissions("crash").empty());
        }
        RawDb raw(path);
        EXPECT_EQ(raw.text("PRAGMA integrity_check"), "ok");
        EXPECT_EQ(raw.integer("SELECT count(*) FROM submissions"), 1);
    }
}

// --- concurrency ---

TEST(Store, ALockedDatabaseFailsAfterTheBusyTimeoutThenWorks) {
    TemporaryFolder folder;
    const std::string path = folder.path("results.db");
    Store::open(path).put_submission(make_submission("records/a"));

    RawDb other(path);
    other.exec("BEGIN IMMEDIATE");                   // holds the write lock
    Store store = Store::open(path, 0.2);            // opening a current database needs no write lock
    EXPECT_EQ(store.list_submissions().size(), 1u);  // and WAL readers are not blocked by the writer

    const auto start = std::chrono::steady_clock::now();
    const std::string message = error_message([&] { store.put_submission(make_submission("records/b")); });
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(message, path + ": database is locked by another writer (waited 0.2 s); try again when it finishes");
    EXPECT_GE(waited, 0.15);
    EXPECT_LE(waited, 2.0);

    other.exec("COMMIT");
    EXPECT_GT(store.put_submission(make_submission("records/b")), 0);
    EXPECT_EQ(store.list_submissions().size(), 2u);
}

// Queries open without creating: a database missing from the folder is an error, not an empty answer.
TEST(Store, OpeningWithoutCreateRefusesAMissingFile) {
    TemporaryFolder folder;
    const std::string path = folder.path("absent.db");
    const std::string message = error_message([&] { Store::open(path, 1.0, false); });
    EXPECT_NE(message.find(path + ": no such database"), std::string::npos) << message;
    EXPECT_FALSE(std::filesystem::exists(path));
    Store::open(path);  // creating is the default
    EXPECT_EQ(Store::open(path, 1.0, false).schema_version(), store_schema_version);
}

}  // namespace
}  // namespace pgolf
