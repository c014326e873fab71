// Argument parsing and printing for run and audit; the work is done by audit/.
#include "cli/audit_commands.h"

#include <iostream>
#include <memory>

#include "audit/supervisor.h"
#include "audit/verifier.h"
#include "cli/run_options.h"
#include "core/progress.h"

namespace pgolf {

namespace {

struct RunCommandArguments {
    RunArguments run;
    std::int64_t seed = -1;
    std::string out;
};

// Verifies the run folder, prints the report, writes RUN/audit.json; the exit status follows the verdict.
int audit_print_and_store(const std::string& run, std::int64_t cap_bytes) {
    AuditOptions options;
    options.cap_bytes = cap_bytes;
    const AuditReport report = audit_run(run, options);
    audit_write_json(report, run + "/audit.json");
    std::cout << audit_report_text(report);
    return audit_exit_status(report);
}

void audit_run_command(const RunCommandArguments& args) {
    RunOptions options = args.run.options();
    if (args.seed >= 0) options.config.set("SEED", args.seed);
    options.output_directory = args.out;
    auto progress = std::make_shared<Progress>("train", options.config.get_int("ITERATIONS"), "steps");
    options.log = [progress](const std::string& line) {
        progress->interrupt();  // log lines go to stdout; keep them off the progress line on a terminal
        std::cout << line << std::endl;
    };
    options.progress = [progress](std::int64_t step, std::int64_t) { progress->update(step); };
    const RunSummary summary = run_supervised(options);
    progress->clear();
    std::cout << "\nrun " << summary.status << (summary.stop_rule.empty() ? "" : " (" + summary.stop_rule + ")")
              << ": ledger " << summary.ledger_path << ", log " << summary.log_path << "\n";
    const int status = audit_print_and_store(args.out, 0);
    if (status >= 2) throw CLI::RuntimeError(status);
}

}  // namespace

void audit_commands_register(CLI::App& app) {
    auto run = std::make_shared<RunCommandArguments>();
    CLI::App* run_command = app.add_subcommand(
        "run",
        "The audited pipeline: train, calibrate, serialize and evaluate a preset under budgets, with a "
        "hash-chained ledger; ends with the audit");
    run_add_options(run_command, run->run);
    run_command->add_option("--seed", run->seed, "Random seed (default: the preset's SEED)");
    run_command->add_option("--out", run->out, "Run folder (new: a folder holding a ledger is refused)")->required();
    run_command->callback([run] { audit_run_command(*run); });

    auto audit_run_folder = std::make_shared<std::string>();
    auto audit_cap = std::make_shared<std::int64_t>(0);
    CLI::App* audit_command = app.add_subcommand(
        "audit",
        "Verify a run folder from its files: ledger chain, sizes, clocks, data access, score-before-adapt; "
        "PASS/WARN/FAIL/INCOMPLETE (exit 0/1/2/3), RUN/audit.json");
    audit_command->add_option("run", *audit_run_folder, "Run folder written by pgolf run")->required();
    audit_command->add_option("--cap-bytes", *audit_cap,
                              "Artifact cap in bytes (default: the run's, never above 16,000,000)");
    audit_command->callback([audit_run_folder, audit_cap] {
        const int status = audit_print_and_store(*audit_run_folder, *audit_cap);
        if (status != 0) throw CLI::RuntimeError(status);
    });
}

}  // namespace pgolf
