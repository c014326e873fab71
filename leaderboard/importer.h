// `pgolf leaderboard import`: a real records tree of the challenge repository into the store, one submission per
// folder (origin "import", keyed by its records-tree path), one run per seed with every metric family of its log, and
// the folder reader's findings. Idempotent: each folder is written in one transaction that leaves exactly what the
// folder now holds.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "leaderboard/store.h"
#include "records/folder_reader.h"

namespace pgolf {

struct ImportedFolder {
    std::string key;  // "records/track_10min_16mb/2026-03-17_NaiveBaseline"
    std::int64_t submission_id = 0;
    int runs = 0;
    int fails = 0, warnings = 0;  // findings by severity, submission and runs together
    std::string error;            // set when the folder could not be read (stored with an F1 finding, no runs)
};

struct ImportResult {
    std::vector<ImportedFolder> folders;
    int unreadable = 0;
};

// The store key of a record folder path: "records/<track folder>/<name>".
std::string leaderboard_import_key(const std::string& folder);

// The submission (with its runs) that stands for a folder in the store.
StoredSubmission leaderboard_submission_from_folder(const RecordFolderFacts& facts);

// Imports every record folder under root (record_tree_folders). note, when set, gets one line per folder.
ImportResult leaderboard_import_tree(
    Store& store, const std::string& root,
    const std::function<void(const ImportedFolder&, std::size_t index, std::size_t count)>& note = {});

}  // namespace pgolf
