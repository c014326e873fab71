// `pgolf check FOLDER` and `pgolf leaderboard import PATH`: argument parsing and printing; the work is done by
// audit/checker and leaderboard/importer.
#include "cli/check_commands.h"

#include <iostream>
#include <memory>

#include "audit/checker.h"
#include "core/error.h"
#include "core/progress.h"
#include "leaderboard/importer.h"
#include "leaderboard/store.h"

namespace pgolf {

namespace {

struct CheckArguments {
    std::string folder, db = "pgolf.db";
    std::int64_t against = -1;
    bool json = false;
};

void check_run_command(const CheckArguments& args) {
    CheckOptions options;
    options.folder = args.folder;
    options.db_path = args.db;
    if (args.against >= 0) options.against = args.against;
    const CheckReport report = check_folder(options);
    if (args.json) {
        std::cout << check_report_json(report).dump(2) << "\n";
    } else {
        std::cout << check_report_text(report);
    }
    const int status = check_exit_status(report);
    if (status != 0) throw CLI::RuntimeError(status);
}

struct ImportArguments {
    std::string root, db = "pgolf.db";
    bool json = false;
};

void import_command(const ImportArguments& args) {
    Store store = Store::open(args.db);
    auto progress = std::make_shared<Progress>("import", 0, "folders");
    bool started = false;
    const ImportResult result = leaderboard_import_tree(
        store, args.root, [&](const ImportedFolder& folder, std::size_t index, std::size_t count) {
            if (!started) {
                progress = std::make_shared<Progress>("import", static_cast<std::int64_t>(count), "folders");
                started = true;
            }
            progress->update(static_cast<std::int64_t>(index + 1));
            (void)folder;
        });
    progress->clear();
    int runs = 0, fails = 0, warnings = 0, flagged = 0;
    for (const ImportedFolder& folder : result.folders) {
        runs += folder.runs;
        fails += folder.fails;
        warnings += folder.warnings;
        flagged += folder.fails > 0;
    }
    if (args.json) {
        nlohmann::ordered_json folders = nlohmann::ordered_json::array();
        for (const ImportedFolder& folder : result.folders) {
            folders.push_back({{"folder", folder.key},
                               {"id", folder.submission_id},
                               {"runs", folder.runs},
                               {"fail", folder.fails},
                               {"warn", folder.warnings},
                               {"error", folder.error.empty() ? nlohmann::ordered_json(nullptr)
                                                              : nlohmann::ordered_json(folder.error)}});
        }
        std::cout << nlohmann::ordered_json{{"db", args.db},
                                            {"folders", folders},
                                            {"runs", runs},
                                            {"unreadable", result.unreadable}}
                         .dump(2)
                  << "\n";
    } else {
        std::cout << "id    runs  fail  warn  folder\n";
        for (const ImportedFolder& folder : result.folders) {
            char line[64];
            std::snprintf(line, sizeof line, "%-5lld %4d  %4d  %4d  ", static_cast<long long>(folder.submission_id),
                          folder.runs, folder.fails, folder.warnings);
            std::cout << line << folder.key << (folder.error.empty() ? "" : "  (unreadable: " + folder.error + ")")
                      << "\n";
        }
        std::cout << "imported " << result.folders.size() << " folders, " << runs << " runs into " << args.db << ": "
                  << flagged << " with failing findings (excluded from the frontier), " << fails << " fail and "
                  << warnings << " warn findings in all; `pgolf show ID` lists them\n";
    }
}

}  // namespace

void check_commands_register(CLI::App& app) {
    auto check = std::make_shared<CheckArguments>();
    CLI::App* check_command = app.add_subcommand(
        "check",
        "Check a participant's record folder before a PR: files, seeds, means, caps, wallclock, tokens per byte, "
        "significance and a static scan of its Python; PASS/WARN/FAIL (exit 0/1/2)");
    check_command->add_option("folder", check->folder, "Record folder (README.md, submission.json, logs, train_gpt.py)")
        ->required();
    check_command->add_option("--db", check->db, "Results database for significance")->capture_default_str();
    check_command->add_option("--against", check->against,
                              "Stored submission id to test against (default: the track's frontier)");
    check_command->add_flag("--json", check->json, "Print JSON");
    check_command->callback([check] { check_run_command(*check); });

    CLI::App* leaderboard_command = app.get_subcommand("leaderboard");
    auto import = std::make_shared<ImportArguments>();
    CLI::App* import_subcommand = leaderboard_command->add_subcommand(
        "import",
        "Import a records tree of the challenge repository (records/track_*/FOLDER): one submission per "
        "folder, one run per seed, every metric family, findings; idempotent");
    import_subcommand->add_option("path", import->root, "The records/ folder (or one track folder)")->required();
    import_subcommand->add_option("--db", import->db, "Results database (created when missing)")->capture_default_str();
    import_subcommand->add_flag("--json", import->json, "Print JSON");
    import_subcommand->callback([import] { import_command(*import); });
}

}  // namespace pgolf
