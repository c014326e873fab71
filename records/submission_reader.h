// Reader of the submission.json files real record folders carry (RECORDS-FORMATS.md section 2): every alias and
// per-seed shape they use, each value kept with the key it came from so the importer can weigh it against the logs.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace pgolf {

// Where a value came from: the file and the alias as a JSON key path ("seed_results.42.val_bpb", "seeds.42.val_bpb",
// "seed_scores[1]"). Both empty when there is no value.
struct Provenance {
    std::string file;
    std::string key;
};

// A field that may be missing: real files omit keys or write null, and both mean "not reported".
template <class T>
struct Sourced {
    std::optional<T> value;
    Provenance from;
};

struct SubmissionSeed {
    std::string label;                 // the key or list entry as written ("42")
    std::optional<std::int64_t> seed;  // the label as an integer, when it is one
    Sourced<double> val_bpb, val_loss;
    Sourced<std::int64_t> artifact_bytes, steps;
    Sourced<double> step_avg_ms, train_time_s, eval_time_s;
};

struct SubmissionFile {
    std::string path;  // the JSON file read (submission.json, submission_ternary.json, …)
    Sourced<std::string> name, author, github_id, date, track, blurb;
    Sourced<double> val_bpb, val_loss, val_bpb_std;
    Sourced<std::int64_t> bytes_total, bytes_code, bytes_model, artifact_bytes_max, artifact_bytes_mean;
    std::vector<SubmissionSeed> seeds;  // per-seed results in any of the five shapes, in file order
    // "seeds+seed_results", "seed_results", "seeds_dict", "seeds+seed_scores", "single_seed", "seeds_only", "none"
    std::string seed_shape;
    std::optional<double> p_value;  // when written as a number
    std::string p_value_text;       // when written as a string ("<0.001"), as written
    std::optional<double> t_statistic, welch_df;
    std::map<std::string, nlohmann::json> compliance;  // the self-report as written (key spellings vary)
    // What a reader should know: mis-filed or competing headline values, ignored values of the wrong type, seed lists
    // that disagree.
    std::vector<std::string> notes;
    bool has_nested_compliance_rerun = false;  // 04-29: a second set of seed results, kept apart, not merged
};

// Finds submission*.json in folder (submission.json first, then the first submission_*.json by name); nullopt when
// there is none or the folder cannot be listed.
std::optional<std::string> submission_find(const std::string& folder);

// Reads any real-world variant. Throws pgolf::Error (one line, naming the path) only on an unreadable file, invalid
// JSON (duplicate keys included) or a top level that is not an object; every other oddity becomes a note.
SubmissionFile submission_read_variant(const std::string& path);

}  // namespace pgolf
