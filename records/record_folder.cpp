// The record folder's files.
#include "records/record_folder.h"

#include <filesystem>

#include "core/error.h"
#include "core/file_util.h"
#include "core/text_format.h"

namespace pgolf {

std::string record_readme_text(const RecordFolder& record) {
    const Submission& s = record.submission;
    std::string text = "# " + s.name + "\n\n";
    if (!s.blurb.empty()) text += s.blurb + "\n\n";
    text += text_format(
        "**val_bpb %.8f ± %.8f** (mean ± sample std over %zu seeds; val_loss %.8f ± %.8f nats), "
        "%s, track `%s`, %s.\n\n",
        s.val_bpb, s.val_bpb_std, s.seeds.size(), s.val_loss, s.val_loss_std, s.metric_family.c_str(), s.track.c_str(),
        s.date.c_str());
    text += "Author: " + (s.author.empty() ? std::string("(not given)") : s.author) +
            (s.github_id.empty() ? "" : " (@" + s.github_id + ")") + ". Hardware: " + s.hardware + ".\n\n";
    text += "## What ran\n\n";
    text += "pgolf " + s.engine_version + " (engine digest `" + s.engine_digest + "`), preset `" + s.preset +
            "` at scale `" + s.scale + "`, config digest `" + s.config_digest + "`, evaluation mode `" + s.eval_mode +
            "`. Every seed ran the same config through the audited pipeline (`pgolf run`):\n\n";
    text += "```sh\n" + record.command + "\n```\n\n";
    text += "## Seeds\n\n";
    text += "| seed | val_bpb | val_loss | artifact bytes | steps | step avg (ms) | train (s) | eval (s) | audit |\n";
    text += "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n";
    for (const auto& [seed, r] : s.seed_results) {
        text += text_format("| %lld | %.8f | %.8f | %lld | %lld | %.2f | %.1f | %.1f | %s |\n",
                            static_cast<long long>(seed), r.val_bpb, r.val_loss,
                            static_cast<long long>(r.artifact_bytes), static_cast<long long>(r.steps), r.step_avg_ms,
                            r.train_time_s, r.eval_time_s, r.audit_verdict.c_str());
    }
    text += text_format("| **mean ± std** | **%.8f ± %.8f** | %.8f ± %.8f | max %lld | | | | | %s |\n\n", s.val_bpb,
                        s.val_bpb_std, s.val_loss, s.val_loss_std, static_cast<long long>(s.bytes_total),
                        s.audit_verdict.c_str());
    text += text_format(
        "## Size\n\nLargest artifact over the seeds: %lld bytes (code %lld, the engine's source bundle; "
        "the rest the compressed model), %lld bytes %s the %lld-byte cap.\n\n",
        static_cast<long long>(s.bytes_total), static_cast<long long>(s.bytes_code),
        static_cast<long long>(s.margin_bytes >= 0 ? s.margin_bytes : -s.margin_bytes),
        s.margin_bytes >= 0 ? "under" : "OVER", static_cast<long long>(s.cap_bytes));
    text +=
        "## Audit\n\nEach seed's run folder holds its hash-chained ledger and `audit.json`; `pgolf audit` re-checks "
        "them from the files:\n\n";
    for (const auto& [seed, r] : s.seed_results) {
        const auto run = record.seed_runs.find(seed);
        text += "- seed " + std::to_string(seed) + ": **" + r.audit_verdict + "**" +
                (run == record.seed_runs.end() ? "" : " (`pgolf audit " + run->second + "`)") + "\n";
    }
    text += "\n## Significance\n\n";
    if (!s.significance) {
        text += "No earlier record of track `" + s.track + "` was stored to compare with.\n";
    } else {
        const SubmissionSignificance& g = *s.significance;
        text +=
            text_format("Against the best stored record of the track, **%s** (val_bpb %.8f over %lld seeds, `%s`):\n\n",
                        g.against_name.c_str(), g.against_val_bpb, static_cast<long long>(g.against_seeds),
                        g.against_folder.c_str());
        text +=
            "| test | t | df | one-sided p | margin | threshold | verdict |\n| --- | ---: | ---: | ---: | ---: | ---: "
            "| --- |\n";
        for (const SignificanceTest& test : g.tests) {
            text += text_format("| %s%s | %.4f | %.4f | %.6g | %g | p < %g | %s |\n", test.name.c_str(),
                                test.name == g.gate ? " (gate)" : "", test.t, test.df, test.p, test.margin, test.alpha,
                                test.significant ? "significant" : "not significant");
        }
        text += std::string(
                    "\nThe gate is the maintainers' progression rule (one-sided Welch test on per-seed val_bpb, "
                    "no margin, p < 0.25, COMPLIANCE.md §7): **") +
                (g.passes ? "passes" : "does not pass") +
                "**. The README's text rule (0.005 nats at p < 0.01) is the other two rows.\n";
    }
    return text;
}

void record_folder_write(const RecordFolder& record) {
    if (record.folder.empty()) throw Error("record folder: no folder given");
    std::filesystem::create_directories(record.folder);
    for (const auto& [seed, log] : record.seed_logs) {
        const std::vector<std::uint8_t> bytes = file_read_bytes(log);
        file_write_bytes(record.folder + "/train_seed" + std::to_string(seed) + ".log", bytes.data(), bytes.size());
    }
    submission_write(record.folder + "/submission.json", record.submission);
    const std::string readme = record_readme_text(record);
    file_write_bytes(record.folder + "/README.md", readme.data(), readme.size());
}

}  // namespace pgolf
