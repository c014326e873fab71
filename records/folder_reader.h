// Reads one real record folder as a whole (RECORDS-FORMATS.md section 7): its submission*.json in any variant, every
// log in it and its sub-folders, its code files, joined per seed with provenance, and the findings of what does not add
// up (headline not backed by the logs, a mean that does not match the seeds, seed labels, duplicate logs, totals over
// the cap, model-only JSON bytes, missing files, tokens per byte). Used by the importer and by `pgolf check`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "records/log_reader.h"
#include "records/submission_reader.h"

namespace pgolf {

inline constexpr std::int64_t record_artifact_cap_bytes = 16'000'000;
inline constexpr double record_train_cap_ms = 600'000.0;
inline constexpr double record_eval_cap_s = 600.0;
// What a log's training stop time may exceed the cap by beyond one step: the timer's synchronize overhead (#769 puts it
// at 60-120 ms; merged records log up to 600,137 ms).
inline constexpr double record_train_overhead_ms = 200.0;

// A finding about a folder. kind names what was found (one of record_finding_kinds below), rule its COMPLIANCE.md id,
// severity "info", "warn" or "fail"; evidence is "file:line" (or "file:key") of what backs it, "" when none.
struct RecordFinding {
    std::string kind;
    std::string rule;
    std::string severity;
    std::string message;
    std::string evidence;
};

// Every kind a folder reader can report, for documentation and tests.
inline constexpr const char* record_finding_kinds[] = {
    "missing_file",         // F: README.md, submission*.json, logs or a non-empty train_gpt.py is missing (section 9)
    "requirements",         // F: third-party imports and no requirements.txt (section 9, A7)
    "headline_unbacked",    // S6: the JSON headline is neither the logs' mean, nor any seed's score, nor any metric
    "headline_not_mean",    // S6: the JSON headline is the best seed or another family, not the mean of the seeds
    "mean_mismatch",        // S6: the JSON headline is not the mean of the JSON's own per-seed values
    "seed_value_mismatch",  // S6: a JSON per-seed value differs from that seed's log
    "seed_mismatch",        // S5: the seed in a log's name differs from the seed printed inside it
    "seed_without_log",     // S5: a seed the JSON reports has no log
    "duplicate_log",        // S5: two logs with identical content (counted once)
    "runs_appended",        // S5: several runs appended in one log (the last is used)
    "too_few_seeds",        // S1: fewer than 3 seeds with evidence
    "over_cap",             // A1: a log's compressed total is over 16,000,000 bytes
    "model_only_bytes",     // A5: the JSON bytes_total is the model alone (code not counted)
    "bytes_disagree",       // A9: the JSON bytes are not what the logs print
    "train_over_cap",       // T1: a log's training stop time is over 600 s (record track)
    "eval_over_cap",        // E1: a log's total_eval_time is over 600 s
    "tokens_per_byte",      // K6: val_bpb*ln2/val_loss is off the tokenizer's constant
    "val_tokens",           // D5: the validation token count is not the full split of the tokenizer
    "json_note",            // the JSON reader's notes (competing headlines, ignored values)
    "log_note",             // the log reader's notes (compat alias, failed TTT, suspicious labels)
};

// One log file of the folder.
struct FolderLog {
    std::string path;  // relative to the folder, '/' separated ("logs/train_seed42.txt")
    std::string sha256;
    std::int64_t bytes = 0;
    LogFacts facts;
    std::optional<std::int64_t> name_seed;  // from the file name (train_seed42.log, seed_42.txt, s42.log, _42.log)
    std::optional<std::int64_t> seed;       // the log's text first, the file name second (section 7, item 4)
    std::string seed_from;                  // "path:line" of the seed line, or "path (file name)"
    std::string duplicate_of;               // an earlier log with identical bytes; such a log is counted once
};

// One seed joined across the JSON and the logs.
struct FolderSeed {
    std::optional<std::int64_t> seed;  // absent for a log that names no seed anywhere
    int log = -1;                      // index into RecordFolderFacts::logs, -1 when no log
    int json = -1;                     // index into submission->seeds, -1 when the JSON does not list it
    // The seed's score: the log's headline family when there is a log, else the JSON's per-seed value.
    double val_bpb = 0.0;
    double val_loss = 0.0;  // NaN when unknown
    std::string family;     // the log family ("final_int6_sliding_window", ...) or "json"
    std::string eval_mode;  // the log's final_eval_mode before the scored line ("sliding_window"), "" when none
    std::string from;       // "path:line" or "submission.json:key"
    std::optional<std::int64_t> total_bytes;  // the log's compressed total, else the JSON's per-seed artifact bytes
    std::optional<double> train_time_ms;
    std::optional<double> eval_time_s;   // total_eval_time, else the scored line's eval_time, else the JSON's
    std::vector<std::string> from_json;  // which of total_bytes, train_time, eval_time came from the JSON, not a log
};

struct CodeFile {
    std::string path;  // relative to the folder
    std::int64_t bytes = 0;
};

struct RecordFolderFacts {
    std::string folder;  // as given
    std::string name;    // the folder's own name
    std::string track;   // the parent folder ("track_10min_16mb"), else "track_" + the JSON's track key, else ""
    std::string date;    // the JSON date, else the folder's YYYY-MM-DD prefix, else ""
    std::optional<SubmissionFile> submission;
    std::vector<std::string> files;  // every regular file, relative, sorted
    std::vector<FolderLog> logs;
    std::vector<CodeFile> code_files;  // every source file that ships (.py, .c, .cc, .cpp, .cu, .h, .hpp, .cuh, .sh)
    std::int64_t code_bytes = 0;       // their sum (A2, A5, A6: all code that runs counts)
    std::vector<std::string> third_party_imports;  // top-level modules imported by the .py files, not in the stdlib
    std::string tokenizer;  // "sp1024", "sp4096", "sp8192", "caseops", "byte" or "" (from the logs or folder name)
    std::vector<FolderSeed> seeds;  // ordered by seed; logs without a seed last, in path order
    // Over the seeds: mean and n-1 standard deviation of val_bpb (std NaN below 2 seeds), count.
    double mean_bpb = 0.0, std_bpb = 0.0, mean_loss = 0.0;
    int seed_count = 0;
    std::vector<RecordFinding> findings;
};

// Reads a folder. Throws pgolf::Error (one line) only when folder is not a readable directory or its JSON is
// unreadable or invalid; everything else becomes a finding.
RecordFolderFacts record_folder_read(const std::string& folder);

// Record folders of a records tree (the challenge repository's records/ or any folder of track_* folders): every
// directory directly under a track folder, sorted. A folder given that is itself a track folder lists its children.
// Throws when root is not a directory.
std::vector<std::string> record_tree_folders(const std::string& root);

// The source files of a folder that ship (see CodeFile), recursively, sorted by path; hidden folders, __pycache__ and
// logs are not code.
std::vector<CodeFile> record_code_files(const std::string& folder);

// Whether a track is held to the 10-minute caps and significance: not a non-record or unlimited-compute track.
bool record_is_record_track(const std::string& track);
// Logs that are not byte-for-byte duplicates of an earlier one (the evidence a folder really has).
int record_unique_log_count(const RecordFolderFacts& facts);

// Tokens per byte implied by one metric (val_bpb * ln 2 / val_loss), and the tokenizer constants of COMPLIANCE.md K6.
double record_tokens_per_byte(double val_bpb, double val_loss);
std::optional<double> record_tokenizer_tokens_per_byte(const std::string& tokenizer);

}  // namespace pgolf
