// The process supervisor behind `pgolf rerun`: runs a participant's command in its own process group with stdout and
// stderr appended to a log, kills the whole group at a hard wallclock limit (SIGTERM, then SIGKILL after a grace
// period), and kills any member of the group still alive when the main process has exited (a background child left
// behind), so nothing a run starts outlives it.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace pgolf {

struct ProcessOptions {
    std::vector<std::string> argv;                                 // argv[0] is looked up in PATH (execvp rules)
    std::string working_directory;                                 // empty: the current directory
    std::vector<std::pair<std::string, std::string>> environment;  // added to (or replacing in) the inherited one
    std::string log_path;                            // stdout and stderr are both appended to it; created when missing
    double limit_s = 0.0;                            // hard wallclock limit; 0 or less: none
    double grace_s = 10.0;                           // after SIGTERM at the limit, SIGKILL this much later
    std::function<void(double elapsed_s)> progress;  // about once a second while the command runs; optional
};

struct ProcessResult {
    int exit_code = -1;  // the main process's exit status, -1 when it did not exit normally
    int signal = 0;      // the signal that ended it, 0 when it exited
    bool killed_at_limit = false;
    bool strays_killed = false;  // members of the group were still alive after the main process ended, and were killed
    int interrupted_by = 0;      // SIGINT/SIGTERM/SIGHUP that reached the supervisor (the group was killed first)
    double wall_s = 0.0;         // from the fork to the main process's end (monotonic clock)
    std::string spawn_error;     // the command could not be started (not found, not executable, bad directory)
};

// Runs the command to its end or to the limit. Throws pgolf::Error only when the log cannot be opened or fork fails;
// a command that cannot be started is a ProcessResult with spawn_error set (and the message appended to the log).
// While it runs, SIGINT, SIGTERM and SIGHUP to the supervisor kill the group first, then are delivered as usual.
ProcessResult process_run_supervised(const ProcessOptions& options);

// "exit 0", "exit 3", "signal 9 (Killed)", "killed at the 1260 s limit", "not started: ...".
std::string process_describe_result(const ProcessResult& result);

}  // namespace pgolf
