// Argument parsing and printing for `pgolf rerun`; the work is done by audit/rerun.
#include "cli/rerun_commands.h"

#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>

#include "audit/rerun.h"
#include "cli/run_options.h"
#include "core/error.h"
#include "core/text_format.h"

namespace pgolf {

namespace {

struct RerunArguments {
    std::string folder;
    std::string seeds = "1337,42,2024";
    std::string out;
    std::string db;
    double limit_s = rerun_default_limit_s;
    double grace_s = rerun_default_grace_s;
    std::string artifact;
    std::vector<std::string> env;
    double tolerance_bpb = rerun_default_tolerance_bpb;
    bool force = false;
    bool json = false;
    std::vector<std::string> command;
};

std::vector<std::pair<std::string, std::string>> rerun_parse_environment(const std::vector<std::string>& items) {
    std::vector<std::pair<std::string, std::string>> environment;
    for (const std::string& item : items) {
        const std::size_t equals = item.find('=');
        if (equals == std::string::npos || equals == 0) throw Error("--env: '" + item + "' is not KEY=VALUE");
        environment.emplace_back(item.substr(0, equals), item.substr(equals + 1));
    }
    return environment;
}

std::string rerun_signed(double value, int decimals) {
    return std::isfinite(value) ? (value >= 0 ? "+" : "") + format_fixed(value, decimals) : "-";
}

std::string rerun_bytes(std::int64_t bytes) { return bytes >= 0 ? format_count(bytes) : "-"; }

void rerun_print_table(const RerunResult& result) {
    std::cout << text_format("\n%-8s %-22s %7s  %-44s %-11s %-12s %11s %11s  %s\n", "seed", "exit", "wall s",
                             "val_bpb (family)", "submitted", "delta", "artifact", "total", "result");
    for (const RerunSeedResult& s : result.seeds) {
        std::string findings;
        for (const StoredFinding& f : s.findings) findings += (findings.empty() ? "" : " ") + f.rule;
        const std::string exit = s.skipped ? "stored" : process_describe_result(s.process).substr(0, 22);
        const std::string score =
            std::isfinite(s.val_bpb) ? format_fixed(s.val_bpb, 8) + " (" + s.family + ")" : std::string("-");
        std::cout << text_format(
            "%-8lld %-22s %7s  %-44s %-11s %-12s %11s %11s  %s %s\n", static_cast<long long>(s.seed), exit.c_str(),
            s.skipped ? "-" : format_fixed(s.process.wall_s, 1).c_str(), score.c_str(),
            s.submitted_bpb ? format_fixed(*s.submitted_bpb, 8).c_str() : "-", rerun_signed(s.delta_bpb, 8).c_str(),
            rerun_bytes(s.artifact_bytes).c_str(), rerun_bytes(s.total_bytes).c_str(), s.verdict.c_str(),
            findings.empty() ? "" : findings.c_str());
    }
    for (const RerunSeedResult& s : result.seeds) {
        for (const StoredFinding& f : s.findings) {
            std::cout << "  seed " << s.seed << " " << f.rule << " " << f.severity << ": " << f.message << "\n";
        }
    }
    const RerunComparison& c = result.comparison;
    std::cout << "\n";
    if (c.rerun.n == 0) {
        std::cout << "re-run: no seed has a score";
    } else {
        std::cout << "re-run val_bpb " << format_fixed(c.rerun.mean, 8)
                  << (c.rerun.n > 1 ? " ± " + format_fixed(c.rerun.std, 8) : std::string()) << " over " << c.rerun.n
                  << (c.rerun.n == 1 ? " seed" : " seeds");
    }
    if (c.submitted_mean) {
        std::cout << " vs submitted " << format_fixed(*c.submitted_mean, 8) << " (" << c.submitted_from << ")";
        if (std::isfinite(c.mean_delta)) std::cout << ": delta " << rerun_signed(c.mean_delta, 8);
    } else {
        std::cout << "; no submitted val_bpb to compare with";
    }
    if (c.welch) {
        std::cout << text_format("; Welch t %.4f df %.2f p %.4g (two-sided, against %zu submitted seeds)", c.welch->t,
                                 c.welch->df, c.welch_p_two_sided, c.submitted_values.size());
    }
    std::cout << "\n";
    std::cout << "verdict " << result.verdict << "; " << result.json_path << "; submission " << result.submission_id
              << " in " << result.db_path << "\n";
}

void rerun_command(const RerunArguments& args) {
    RerunOptions options;
    options.folder = args.folder;
    if (!std::filesystem::is_directory(options.folder)) throw Error("rerun: " + args.folder + " is not a folder");
    options.seeds = run_parse_seeds(args.seeds);
    options.command = args.command;
    if (options.command.empty()) {
        throw Error("rerun: no command given (put it after --, e.g. -- torchrun --nproc_per_node=8 train_gpt.py)");
    }
    options.out = args.out;
    if (options.out.empty()) {
        const std::string name = std::filesystem::weakly_canonical(args.folder).filename().string();
        options.out = "rerun-" + name;
    }
    options.db_path = args.db;
    options.limit_s = args.limit_s;
    options.grace_s = args.grace_s;
    if (!(options.limit_s > 0.0)) throw Error("--limit: must be positive seconds");
    if (!(options.grace_s >= 0.0)) throw Error("--grace: must be zero or positive seconds");
    options.artifact = args.artifact;
    options.environment = rerun_parse_environment(args.env);
    options.tolerance_bpb = args.tolerance_bpb;
    if (!(options.tolerance_bpb >= 0.0)) throw Error("--tolerance: must be zero or positive");
    options.force = args.force;
    std::ostream& notes = args.json ? std::cerr : std::cout;
    options.note = [&notes](const std::string& line) { notes << "rerun: " << line << std::endl; };
    const RerunResult result = rerun_run(options);
    if (args.json) {
        std::cout << rerun_json_text(result, options);
    } else {
        rerun_print_table(result);
    }
    const int status = rerun_exit_status(result);
    if (status != 0) throw CLI::RuntimeError(status);
}

}  // namespace

void rerun_commands_register(CLI::App& app) {
    auto args = std::make_shared<RerunArguments>();
    CLI::App* command = app.add_subcommand(
        "rerun",
        "Run a submission's own training command once per seed (SEED set) in a scratch copy of its folder under a "
        "hard wallclock limit; measure the artifact, store each run, compare with the submitted numbers "
        "(exit 0 match, 1 differs, 2 fail)");
    command->add_option("folder", args->folder, "The submitted record folder")->required();
    command->add_option("--seeds", args->seeds, "Comma-separated seeds")->capture_default_str();
    command->add_option("--out", args->out,
                        "Output folder: OUT/seed_N/work (scratch copy), OUT/seed_N/rerun.log, OUT/rerun.json "
                        "(default: ./rerun-<folder name>)");
    command->add_option("--db", args->db, "Results database (default: pgolf.db next to OUT)");
    command
        ->add_option("--limit", args->limit_s,
                     "Hard wallclock limit per seed in seconds (600 train + 600 eval + 60 startup)")
        ->capture_default_str();
    command->add_option("--grace", args->grace_s, "Seconds between SIGTERM and SIGKILL at the limit")
        ->capture_default_str();
    command->add_option("--artifact", args->artifact,
                        "The artifact's file name or relative path (default: the newest file the run wrote ending in "
                        ".ptz/.pt.xz/.bin.zst/.lzma/.brotli/.zst/.xz/.br, or final_model* but not .pt)");
    command->add_option("--env", args->env, "KEY=VALUE added to the command's environment (repeatable)")
        ->allow_extra_args(false);  // one value per --env, so a folder after it stays the folder
    command->add_option("--tolerance", args->tolerance_bpb, "Largest per-seed val_bpb difference that still matches")
        ->capture_default_str();
    command->add_flag("--force", args->force, "Run seeds already stored again (and replace another command's re-run)");
    command->add_flag("--json", args->json, "Print rerun.json (progress lines go to stderr)");
    command->add_option("command", args->command,
                        "The command after --, e.g. -- torchrun --nproc_per_node=8 "
                        "train_gpt.py");
    command->callback([args] { rerun_command(*args); });
}

}  // namespace pgolf
