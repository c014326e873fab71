// Argument parsing and printing for reproduce, compare, leaderboard, history and show; the work is done by audit/,
// leaderboard/ and records/.
#include "cli/records_commands.h"

#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>

#include "audit/ledger.h"
#include "audit/reproduce.h"
#include "audit/verifier.h"
#include "cli/run_options.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/text_format.h"
#include "leaderboard/queries.h"
#include "leaderboard/stats.h"
#include "leaderboard/store.h"
#include "records/submission.h"

namespace pgolf {

namespace {

// Where the results database is when --db is not given.
std::string records_default_db() { return "pgolf.db"; }

struct ReproduceArguments {
    RunArguments run;
    std::string seeds = "1337,42,2024";
    std::string out;
    std::string db;
    std::string name, author, github_id, date, track, blurb;
    bool force = false;
};

void records_reproduce_command(const ReproduceArguments& args) {
    ReproduceOptions options;
    options.run = args.run.options();
    options.seeds = run_parse_seeds(args.seeds);
    options.out = args.out;
    const std::filesystem::path parent = std::filesystem::path(args.out).lexically_normal().parent_path();
    options.db_path =
        !args.db.empty() ? args.db : ((parent.empty() ? std::filesystem::path(".") : parent) / "pgolf.db").string();
    options.name = args.name;
    options.author = args.author;
    options.github_id = args.github_id;
    options.date = args.date;
    options.track = args.track;
    options.blurb = args.blurb;
    options.force = args.force;
    options.command = "pgolf reproduce --preset " + args.run.preset.preset + " --scale " + args.run.preset.scale +
                      " --seeds " + args.seeds + " --out " + args.out;
    for (const std::string& assignment : args.run.preset.overrides) options.command += " --set " + assignment;
    auto progress = std::make_shared<Progress>("train", options.run.config.get_int("ITERATIONS"), "steps");
    // The runs' own lines go to each run's train.log; the terminal shows one line per seed and the training progress.
    options.run.progress = [progress](std::int64_t step, std::int64_t) { progress->update(step); };
    options.note = [progress](const std::string& line) {
        progress->interrupt();
        std::cout << "reproduce: " << line << std::endl;
    };
    const ReproduceResult result = reproduce_run(options);
    progress->clear();
    const Submission& s = result.submission;
    std::cout << text_format(
        "\nrecord folder: %s\nsubmission %lld in %s: %s, val_bpb %.8f ± %.8f over %zu seeds, "
        "max artifact %lld bytes (margin %lld), audit %s\n",
        result.folder.c_str(), static_cast<long long>(result.submission_id), options.db_path.c_str(), s.name.c_str(),
        s.val_bpb, s.val_bpb_std, s.seeds.size(), static_cast<long long>(s.bytes_total),
        static_cast<long long>(s.margin_bytes), s.audit_verdict.c_str());
    if (s.significance) {
        for (const SignificanceTest& test : s.significance->tests) {
            std::cout << text_format("  vs %s: %-16s t %.4f df %.4f p %.6g %s\n", s.significance->against_name.c_str(),
                                     test.name.c_str(), test.t, test.df, test.p,
                                     test.significant ? "significant" : "not significant");
        }
    } else {
        std::cout << "  no earlier record of track " << s.track << " to compare with\n";
    }
}

// Per-seed samples of one side of a comparison.
struct Samples {
    std::string label;
    std::vector<double> bpb;
    std::vector<double> nats;
};

// A submission id in the database, a record folder (canonical submission.json), or run folders (comma-separated).
Samples records_resolve_samples(const std::string& spec, const std::string& db) {
    Samples samples;
    samples.label = spec;
    std::size_t used = 0;
    std::int64_t id = -1;
    try {
        id = std::stoll(spec, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == spec.size() && !spec.empty() && !std::filesystem::exists(spec)) {
        const Store store = Store::open(db, 10.0, false);
        const auto submission = store.find_submission(id);
        if (!submission) throw Error(db + ": no submission " + spec);
        const SubmissionSummary summary = leaderboard_summarize(*submission);
        samples.label = submission->name + " (#" + spec + ")";
        samples.bpb = summary.bpb;
        samples.nats = summary.nats;
        return samples;
    }
    if (std::filesystem::exists(spec + "/submission.json")) {
        const Submission submission = submission_read(spec + "/submission.json");
        samples.label = submission.name;
        for (const auto& [seed, result] : submission.seed_results) {
            samples.bpb.push_back(result.val_bpb);
            samples.nats.push_back(result.val_loss);
        }
        return samples;
    }
    std::size_t start = 0;
    while (start <= spec.size()) {
        const std::size_t comma = std::min(spec.find(',', start), spec.size());
        const std::string folder = spec.substr(start, comma - start);
        if (!std::filesystem::exists(folder + "/" + ledger_file_name)) {
            throw Error(folder + ": not a submission id, a record folder (submission.json) or a run folder (ledger)");
        }
        const AuditReport report = audit_run(folder);
        if (!report.measures.contains("val_bpb") || !report.measures.contains("val_loss")) {
            throw Error(folder + ": the run has no score (audit " + report.verdict + ")");
        }
        samples.bpb.push_back(report.measures["val_bpb"].get<double>());
        samples.nats.push_back(report.measures["val_loss"].get<double>());
        start = comma + 1;
    }
    return samples;
}

void records_compare_command(const std::string& a_spec, const std::string& b_spec, const std::string& db, bool json) {
    const Samples a = records_resolve_samples(a_spec, db);
    const Samples b = records_resolve_samples(b_spec, db);
    const Significance significance = stats_compare(a.bpb, a.nats, b.bpb, b.nats);
    const SampleSummary a_summary = stats_summary(a.bpb), b_summary = stats_summary(b.bpb);
    if (json) {
        nlohmann::ordered_json out = {
            {"a", {{"label", a.label}, {"val_bpb", a.bpb}, {"val_loss", a.nats}, {"mean_bpb", a_summary.mean}}},
            {"b", {{"label", b.label}, {"val_bpb", b.bpb}, {"val_loss", b.nats}, {"mean_bpb", b_summary.mean}}},
            {"tests",
             {significance_test_to_json(leaderboard_significance_test(significance.one_sample_nats)),
              significance_test_to_json(leaderboard_significance_test(significance.welch_nats)),
              significance_test_to_json(leaderboard_significance_test(significance.welch_bpb))}},
            {"gate", significance.gate},
            {"passes", significance.passes}};
        std::cout << out.dump(2) << "\n";
        return;
    }
    std::cout << text_format("A %s: val_bpb %.8f ± %.8f (%lld seeds)\n", a.label.c_str(), a_summary.mean, a_summary.std,
                             static_cast<long long>(a_summary.n));
    std::cout << text_format("B %s: val_bpb %.8f ± %.8f (%lld seeds)\n\n", b.label.c_str(), b_summary.mean,
                             b_summary.std, static_cast<long long>(b_summary.n));
    std::cout << "test              units  margin   t          df        one-sided p   rule      verdict\n";
    const char* units[] = {"nats", "nats", "bpb"};
    const TTest tests[] = {significance.one_sample_nats, significance.welch_nats, significance.welch_bpb};
    for (int i = 0; i < 3; ++i) {
        const TTest& test = tests[i];
        std::cout << text_format("%-17s %-6s %-8g %-10.4f %-9.4f %-13.6g p < %-5g %s%s\n", test.name.c_str(), units[i],
                                 test.margin, test.t, test.df, test.p, test.alpha,
                                 test.significant ? "significant" : "not significant",
                                 test.name == significance.gate ? "  (the gate)" : "");
    }
    std::cout << "\nThe gate is the maintainers' progression rule (one-sided Welch on per-seed val_bpb, no margin, "
                 "p < 0.25): A "
              << (significance.passes ? "passes" : "does not pass") << ".\n";
}

void records_print_frontier(const Frontier& frontier) {
    std::cout << "track " << frontier.track << (frontier.as_of.empty() ? "" : " as of " + frontier.as_of)
              << ": the frontier (chronological; each row beats the previous one at p < 0.25, Welch on val_bpb)\n";
    std::cout << text_format("%-5s %-10s %-32s %-16s %12s %11s %5s %10s  %s\n", "id", "date", "name", "author",
                             "val_bpb", "std", "seeds", "bytes", "p vs previous");
    for (const FrontierRow& row : frontier.rows) {
        const StoredSubmission& s = row.summary.submission;
        std::cout << text_format(
            "%-5lld %-10s %-32s %-16s %12.8f %11.8f %5zu %10lld  %s\n", static_cast<long long>(s.id),
            s.date.substr(0, 10).c_str(), s.name.c_str(), s.author.c_str(), row.summary.bpb_summary.mean,
            row.summary.bpb_summary.std, row.summary.bpb.size(), static_cast<long long>(row.summary.bytes_max),
            row.against_previous ? text_format("%.4g vs %s", row.against_previous->p, row.previous_name.c_str()).c_str()
                                 : "(first)");
    }
    for (const ExcludedRow& row : frontier.excluded) {
        std::cout << text_format("  not on the frontier: #%lld %s: %s\n",
                                 static_cast<long long>(row.summary.submission.id), row.summary.submission.name.c_str(),
                                 row.reason.c_str());
    }
}

void records_print_summary_line(const SubmissionSummary& summary) {
    const StoredSubmission& s = summary.submission;
    std::cout << text_format(
        "#%-4lld %-10s %-24s %-32s %-16s %s\n", static_cast<long long>(s.id), s.date.substr(0, 10).c_str(),
        s.track.c_str(), s.name.c_str(), s.author.c_str(),
        summary.bpb.empty() ? "no scored seed"
                            : text_format("val_bpb %.8f ± %.8f (%zu seeds)%s", summary.bpb_summary.mean,
                                          summary.bpb_summary.std, summary.bpb.size(), summary.failed ? " FAILED" : "")
                                  .c_str());
}

void records_show_command(std::int64_t id, const std::string& db, bool json) {
    const Store store = Store::open(db, 10.0, false);
    const auto submission = store.find_submission(id);
    if (!submission) throw Error(db + ": no submission " + std::to_string(id));
    const SubmissionSummary summary = leaderboard_summarize(*submission);
    if (json) {
        std::cout << leaderboard_summary_json(summary, true).dump(2) << "\n";
        return;
    }
    records_print_summary_line(summary);
    const StoredSubmission& s = *submission;
    std::cout << "  folder " << s.folder << " (" << s.origin << "), preset " << s.preset << ", config "
              << s.config_digest.substr(0, 16) << ", pgolf " << s.engine_version << ", " << s.hardware << "\n";
    for (const StoredFinding& f : s.findings) {
        std::cout << "  " << f.severity << " " << f.rule << " " << f.message << "\n";
    }
    for (const StoredRun& run : s.runs) {
        std::cout << text_format(
            "  seed %lld: val_bpb %.8f val_loss %.8f, %lld bytes (model %lld + code %lld), "
            "%lld steps at %.2f ms, train %.1f s, eval %.1f s, audit %s, %s\n",
            static_cast<long long>(run.seed), run.val_bpb, run.val_loss, static_cast<long long>(run.artifact_bytes),
            static_cast<long long>(run.model_bytes), static_cast<long long>(run.code_bytes),
            static_cast<long long>(run.steps), run.step_avg_ms, run.train_time_s, run.eval_time_s,
            run.audit_verdict.c_str(), run.run_folder.c_str());
        for (const StoredMetric& m : run.metrics) {
            std::cout << text_format("    %-28s val_loss %.8f val_bpb %.8f\n", m.family.c_str(), m.val_loss, m.val_bpb);
        }
        for (const StoredFinding& f : run.findings) {
            std::cout << "    " << f.severity << " " << f.rule << " " << f.message << "\n";
        }
    }
}

}  // namespace

void records_commands_register(CLI::App& app) {
    auto reproduce = std::make_shared<ReproduceArguments>();
    CLI::App* reproduce_command =
        app.add_subcommand("reproduce",
                           "Run several seeds of a preset through the audited pipeline, store each, and write a "
                           "leaderboard-ready record folder");
    run_add_options(reproduce_command, reproduce->run);
    reproduce_command->add_option("--seeds", reproduce->seeds, "Comma-separated seeds")->capture_default_str();
    reproduce_command->add_option("--out", reproduce->out, "Record folder (seed N runs in OUT/runs/seed_N)")
        ->required();
    reproduce_command->add_option("--db", reproduce->db, "Results database (default: pgolf.db next to OUT)");
    reproduce_command->add_option("--name", reproduce->name, "Submission name (default: PRESET-SCALE)");
    reproduce_command->add_option("--author", reproduce->author, "Author");
    reproduce_command->add_option("--github-id", reproduce->github_id, "GitHub id");
    reproduce_command->add_option("--date", reproduce->date, "Date YYYY-MM-DD (default: today, UTC)");
    reproduce_command->add_option("--track", reproduce->track,
                                  "Track (default: track_10min_16mb at full scale, smoke otherwise)");
    reproduce_command->add_option("--blurb", reproduce->blurb, "One paragraph for the README and submission.json");
    reproduce_command->add_flag("--force", reproduce->force, "Run stored seeds again (and replace another config)");
    reproduce_command->callback([reproduce] { records_reproduce_command(*reproduce); });

    struct CompareArguments {
        std::string a, b, db = records_default_db();
        bool json = false;
    };
    auto compare = std::make_shared<CompareArguments>();
    CLI::App* compare_command = app.add_subcommand(
        "compare", "Significance of A over B from per-seed samples: the three tests of COMPLIANCE.md section 7");
    compare_command->add_option("a", compare->a, "Submission id, record folder, or run folders (comma-separated)")
        ->required();
    compare_command->add_option("b", compare->b, "The same, for the record to beat")->required();
    compare_command->add_option("--db", compare->db, "Results database")->capture_default_str();
    compare_command->add_flag("--json", compare->json, "Print JSON");
    compare_command->callback(
        [compare] { records_compare_command(compare->a, compare->b, compare->db, compare->json); });

    struct LeaderboardArguments {
        std::string track = "track_10min_16mb", as_of, db = records_default_db();
        bool json = false;
    };
    auto leaderboard = std::make_shared<LeaderboardArguments>();
    CLI::App* leaderboard_command =
        app.add_subcommand("leaderboard", "The frontier of a track, as the maintainers build it, with p-values");
    leaderboard_command->add_option("--track", leaderboard->track, "Track")->capture_default_str();
    leaderboard_command->add_option("--as-of", leaderboard->as_of, "Only submissions dated up to YYYY-MM-DD");
    leaderboard_command->add_option("--db", leaderboard->db, "Results database")->capture_default_str();
    leaderboard_command->add_flag("--json", leaderboard->json, "Print JSON");
    leaderboard_command->require_subcommand(0, 1);
    leaderboard_command->callback([leaderboard, leaderboard_command] {
        // `pgolf leaderboard import` (check_commands, when the harness tools are built) does its own work.
        if (!leaderboard_command->get_subcommands().empty()) return;
        const Store store = Store::open(leaderboard->db, 10.0, false);
        const Frontier frontier = leaderboard_frontier(store, leaderboard->track, leaderboard->as_of);
        if (leaderboard->json) {
            std::cout << leaderboard_frontier_json(frontier).dump(2) << "\n";
        } else {
            records_print_frontier(frontier);
        }
    });

    struct HistoryArguments {
        std::string text, db = records_default_db();
        bool json = false;
    };
    auto history = std::make_shared<HistoryArguments>();
    CLI::App* history_command =
        app.add_subcommand("history", "Every stored submission whose name, author or GitHub id matches, by date");
    history_command->add_option("text", history->text, "Name or author (case-insensitive substring)")->required();
    history_command->add_option("--db", history->db, "Results database")->capture_default_str();
    history_command->add_flag("--json", history->json, "Print JSON");
    history_command->callback([history] {
        const Store store = Store::open(history->db, 10.0, false);
        nlohmann::ordered_json rows = nlohmann::ordered_json::array();
        const std::vector<StoredSubmission> found = store.search_submissions(history->text);
        for (const StoredSubmission& submission : found) {
            const SubmissionSummary summary = leaderboard_summarize(submission);
            if (history->json) {
                rows.push_back(leaderboard_summary_json(summary, false));
            } else {
                records_print_summary_line(summary);
            }
        }
        if (history->json) std::cout << rows.dump(2) << "\n";
        if (!history->json && found.empty()) std::cout << "no submission matches '" << history->text << "'\n";
    });

    struct ShowArguments {
        std::int64_t id = 0;
        std::string db = records_default_db();
        bool json = false;
    };
    auto show = std::make_shared<ShowArguments>();
    CLI::App* show_command = app.add_subcommand("show", "One stored submission: every run, metric and finding");
    show_command->add_option("id", show->id, "Submission id")->required();
    show_command->add_option("--db", show->db, "Results database")->capture_default_str();
    show_command->add_flag("--json", show->json, "Print JSON");
    show_command->callback([show] { records_show_command(show->id, show->db, show->json); });
}

}  // namespace pgolf
