// Writes a leaderboard-ready record folder (docs/submission-schema.md): README.md (what ran, the per-seed table,
// mean ± std, the largest artifact and its margin, the audit verdicts, significance against the track's best),
// submission.json in the canonical schema, and train_seed<N>.log per seed. Every file is written atomically.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "records/submission.h"

namespace pgolf {

struct RecordFolder {
    std::string folder;
    Submission submission;
    std::map<std::int64_t, std::string> seed_logs;  // seed → the run's log file, copied as train_seed<N>.log
    std::map<std::int64_t, std::string> seed_runs;  // seed → the run folder (relative to folder) with its ledger
    std::string command;                            // how to reproduce it
};

void record_folder_write(const RecordFolder& record);
std::string record_readme_text(const RecordFolder& record);

}  // namespace pgolf
