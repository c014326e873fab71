// `pgolf reproduce`: several seeds of one config through the audited pipeline, each stored in the results database as
// it finishes (a crash keeps the finished seeds; a re-run skips them unless forced), then a leaderboard-ready record
// folder with means, standard deviations, the largest artifact and significance against the best stored record of
// its track.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "audit/supervisor.h"
#include "records/submission.h"

namespace pgolf {

struct ReproduceOptions {
    RunOptions run;  // the template of every seed's run: config without SEED, budgets, cap, gate, data, logging
    std::vector<std::int64_t> seeds;
    std::string out;      // the record folder; seed N runs in OUT/runs/seed_N
    std::string db_path;  // the results database
    std::string name;     // default "<preset>-<scale>"
    std::string author;
    std::string github_id;
    std::string date;   // default today (UTC)
    std::string track;  // default track_10min_16mb at full scale, "smoke" otherwise
    std::string blurb;
    bool force = false;   // re-run seeds already stored (and replace a stored submission of another config)
    std::string command;  // how it was invoked, for the README
    std::function<void(const std::string&)> note;  // one line per seed started, skipped or stored
};

struct ReproduceResult {
    std::string folder;
    std::int64_t submission_id = 0;
    Submission submission;
    std::vector<std::int64_t> ran;
    std::vector<std::int64_t> skipped;
};

ReproduceResult reproduce_run(const ReproduceOptions& options);

// The config digest of a submission: the run config's without SEED, so every seed of one config shares it (S2).
std::string reproduce_config_digest(const Config& config);

}  // namespace pgolf
