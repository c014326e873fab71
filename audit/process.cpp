// The supervisor: fork, a new process group, the log on stdout and stderr, execvp; a 20 ms poll on a monotonic clock
// with SIGTERM then SIGKILL to the group at the limit, and a sweep of the group's leftovers after the main process
// ends. A close-on-exec pipe tells the parent whether exec succeeded, so "command not found" is never confused with a
// script that exits 127 itself.
#include "audit/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.h"

extern char** environ;

namespace pgolf {

namespace {

// What the child reports through the pipe when it cannot exec: which step failed and errno.
struct SpawnFailure {
    int step = 0;  // 1: working directory, 2: exec
    int error = 0;
};

volatile std::sig_atomic_t process_interrupt_signal = 0;

void process_on_interrupt(int signal) { process_interrupt_signal = signal; }

constexpr int process_forwarded_signals[] = {SIGINT, SIGTERM, SIGHUP};

// Installs the interrupt handlers for the supervisor's lifetime and restores the previous ones.
class InterruptGuard {
public:
    InterruptGuard() {
        process_interrupt_signal = 0;
        struct sigaction action {};
        action.sa_handler = process_on_interrupt;
        sigemptyset(&action.sa_mask);
        for (int i = 0; i < 3; ++i) sigaction(process_forwarded_signals[i], &action, &previous_[i]);
    }
    ~InterruptGuard() { restore(); }
    void restore() {
        if (restored_) return;
        for (int i = 0; i < 3; ++i) sigaction(process_forwarded_signals[i], &previous_[i], nullptr);
        restored_ = true;
    }
    InterruptGuard(const InterruptGuard&) = delete;
    InterruptGuard& operator=(const InterruptGuard&) = delete;

private:
    struct sigaction previous_[3]{};
    bool restored_ = false;
};

// The environment of the child: the inherited one with the additions replacing variables of the same name.
std::vector<std::string> process_environment(const std::vector<std::pair<std::string, std::string>>& additions) {
    std::vector<std::string> entries;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        const std::string text(*entry);
        const std::string name = text.substr(0, text.find('='));
        bool replaced = false;
        for (const auto& [key, value] : additions) replaced |= key == name;
        if (!replaced) entries.push_back(text);
    }
    for (const auto& [key, value] : additions) {
        // A repeated key: the last one wins, as with setenv.
        std::erase_if(entries, [&](const std::string& e) { return e.starts_with(key + "="); });
        entries.push_back(key + "=" + value);
    }
    return entries;
}

// Members of process group pgid that are alive (not zombies), from /proc; -1 when /proc cannot be read.
int process_group_live_members(pid_t pgid) {
    DIR* proc = opendir("/proc");
    if (proc == nullptr) return -1;
    int live = 0;
    while (const dirent* entry = readdir(proc)) {
        const char* name = entry->d_name;
        if (name[0] < '0' || name[0] > '9') continue;
        std::ifstream stat_file(std::string("/proc/") + name + "/stat");
        std::string stat;
        if (!std::getline(stat_file, stat)) continue;
        // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so parse after the last ')'.
        const std::size_t close = stat.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream fields(stat.substr(close + 1));
        char state = 0;
        long ppid = 0, pgrp = 0;
        if (!(fields >> state >> ppid >> pgrp)) continue;
        if (pgrp == pgid && state != 'Z' && state != 'X') ++live;
    }
    closedir(proc);
    return live;
}

bool process_group_has_live_members(pid_t pgid) {
    const int live = process_group_live_members(pgid);
    if (live >= 0) return live > 0;
    return kill(-pgid, 0) == 0;  // no /proc: any member, zombies included
}

double process_seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void process_append_line(int fd, const std::string& line) {
    const std::string text = line + "\n";
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        done += static_cast<std::size_t>(n);
    }
}

}  // namespace

ProcessResult process_run_supervised(const ProcessOptions& options) {
    if (options.argv.empty() || options.argv[0].empty()) throw Error("process: no command to run");
    if (options.log_path.empty()) throw Error("process: no log file given");

    // Everything the child needs is built before the fork: after it, the child only makes async-signal-safe calls.
    std::vector<std::string> environment = process_environment(options.environment);
    std::vector<char*> envp;
    for (std::string& entry : environment) envp.push_back(entry.data());
    envp.push_back(nullptr);
    std::vector<std::string> arguments = options.argv;
    std::vector<char*> argv;
    for (std::string& argument : arguments) argv.push_back(argument.data());
    argv.push_back(nullptr);
    const char* directory = options.working_directory.empty() ? nullptr : options.working_directory.c_str();

    const int log_fd = open(options.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) throw Error("cannot open log " + options.log_path + ": " + std::strerror(errno));
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        close(log_fd);
        throw Error(std::string("process: cannot create a pipe: ") + std::strerror(errno));
    }

    InterruptGuard interrupts;
    const auto start = std::chrono::steady_clock::now();
    const pid_t pid = fork();
    if (pid < 0) {
        const int error = errno;
        close(log_fd);
        close(report[0]);
        close(report[1]);
        throw Error(std::string("process: fork failed: ") + std::strerror(error));
    }
    if (pid == 0) {
        // The child: its own group, the log on 1 and 2, /dev/null on 0, no other descriptor but the report pipe.
        setpgid(0, 0);
        for (const int signal : process_forwarded_signals) std::signal(signal, SIG_DFL);
        SpawnFailure failure;
        if (directory != nullptr && chdir(directory) != 0) {
            failure = {1, errno};
        } else {
            const int null_fd = open("/dev/null", O_RDONLY);
            if (null_fd >= 0) dup2(null_fd, 0);
            dup2(log_fd, 1);
            dup2(log_fd, 2);
            const unsigned keep = static_cast<unsigned>(report[1]);
            if (keep > 3) close_range(3, keep - 1, 0);
            close_range(keep + 1, ~0U, 0);
            execvpe(argv[0], argv.data(), envp.data());
            failure = {2, errno};
        }
        const ssize_t written = write(report[1], &failure, sizeof(failure));
        (void)written;
        _exit(127);
    }
    setpgid(pid, pid);  // also from the parent, so the group exists before any kill(-pid) (the child may not run yet)
    close(report[1]);

    ProcessResult result;
    SpawnFailure failure;
    ssize_t got = 0;
    do {
        got = read(report[0], &failure, sizeof(failure));  // 0 bytes: exec succeeded and closed the pipe
    } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == static_cast<ssize_t>(sizeof(failure))) {
        result.spawn_error =
            failure.step == 1
                ? "cannot enter " + options.working_directory + ": " + std::strerror(failure.error)
                : "cannot run '" + options.argv[0] + "': " +
                      (failure.error == ENOENT ? std::string("command not found") : std::strerror(failure.error));
        process_append_line(log_fd, "pgolf: " + result.spawn_error);
    }
    close(log_fd);

    bool term_sent = false, kill_sent = false;
    double term_at = 0.0, next_progress = 1.0;
    int status = 0;
    while (true) {
        const pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid) break;
        if (done < 0 && errno != EINTR) {
            status = -1;
            break;
        }
        const double elapsed = process_seconds_since(start);
        const bool limit_reached = options.limit_s > 0.0 && elapsed >= options.limit_s;
        if (!term_sent && (limit_reached || process_interrupt_signal != 0)) {
            result.killed_at_limit = limit_reached;
            result.interrupted_by = limit_reached ? 0 : static_cast<int>(process_interrupt_signal);
            kill(-pid, SIGTERM);
            term_sent = true;
            term_at = elapsed;
        }
        if (term_sent && !kill_sent && elapsed - term_at >= options.grace_s) {
            kill(-pid, SIGKILL);
            kill_sent = true;
        }
        if (options.progress && elapsed >= next_progress) {
            options.progress(elapsed);
            next_progress = elapsed + 1.0;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    result.wall_s = process_seconds_since(start);
    if (status != -1) {
        if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
        if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
    }
    if (process_interrupt_signal != 0 && result.interrupted_by == 0 && !result.killed_at_limit) {
        result.interrupted_by = static_cast<int>(process_interrupt_signal);
    }

    // Leftovers: background children of the command, still in its group after it ended.
    if (process_group_has_live_members(pid)) {
        kill(-pid, SIGKILL);
        result.strays_killed = true;
        const auto swept = std::chrono::steady_clock::now();
        while (process_group_has_live_members(pid) && process_seconds_since(swept) < 2.0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    if (result.interrupted_by != 0) {
        // The group is gone: now the signal does to the supervisor what it would have done without us.
        interrupts.restore();
        raise(result.interrupted_by);
    }
    return result;
}

std::string process_describe_result(const ProcessResult& result) {
    if (!result.spawn_error.empty()) return "not started: " + result.spawn_error;
    std::string text;
    if (result.killed_at_limit) {
        text = "killed at the limit";
    } else if (result.signal != 0) {
        const char* name = strsignal(result.signal);
        text = "signal " + std::to_string(result.signal) + " (" + (name != nullptr ? name : "?") + ")";
    } else {
        text = "exit " + std::to_string(result.exit_code);
    }
    if (result.strays_killed) text += ", leftover processes killed";
    return text;
}

}  // namespace pgolf
