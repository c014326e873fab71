// Tests of the process supervisor: exit codes, signals, the hard limit with its grace, a command that ignores SIGTERM,
// leftover background children, the environment, the captured log, a missing command, and an interrupt.
#include "audit/process.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// Alive and not a zombie (an orphan's zombie may wait a moment for its new parent to reap it).
bool process_alive(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return false;
    const std::size_t close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z' && line[close + 2] != 'X';
}

ProcessResult run_sh(const test::TemporaryFolder& folder, const std::string& script, double limit_s = 0.0,
                     double grace_s = 1.0) {
    ProcessOptions options;
    options.argv = {"/bin/sh", "-c", script};
    options.working_directory = folder.root();
    options.log_path = folder.path("run.log");
    options.limit_s = limit_s;
    options.grace_s = grace_s;
    return process_run_supervised(options);
}

TEST(ProcessTest, NormalExitIsZero) {
    test::TemporaryFolder folder;
    const ProcessResult result = run_sh(folder, "true");
    EXPECT_EQ(result.exit_code, 0);
    EXPECT_EQ(result.signal, 0);
    EXPECT_FALSE(result.killed_at_limit);
    EXPECT_FALSE(result.strays_killed);
    EXPECT_TRUE(result.spawn_error.empty());
    EXPECT_LT(result.wall_s, 5.0);
    EXPECT_EQ(process_describe_result(result), "exit 0");
}

TEST(ProcessTest, NonZeroExitCodeIsReported) {
    test::TemporaryFolder folder;
    const ProcessResult result = run_sh(folder, "exit 3");
    EXPECT_EQ(result.exit_code, 3);
    EXPECT_EQ(result.signal, 0);
    EXPECT_TRUE(result.spawn_error.empty());
}

TEST(ProcessTest, ScriptExiting127IsNotASpawnError) {
    test::TemporaryFolder folder;
    const ProcessResult result = run_sh(folder, "exit 127");
    EXPECT_EQ(result.exit_code, 127);
    EXPECT_TRUE(result.spawn_error.empty());
}

TEST(ProcessTest, DeathBySignalIsReported) {
    test::TemporaryFolder folder;
    const ProcessResult result = run_sh(folder, "kill -SEGV $$");
    EXPECT_EQ(result.exit_code, -1);
    EXPECT_EQ(result.signal, SIGSEGV);
    EXPECT_FALSE(result.killed_at_limit);
    EXPECT_NE(process_describe_result(result).find("signal 11"), std::string::npos);
}

TEST(ProcessTest, SleepIsKilledAtTheLimit) {
    test::TemporaryFolder folder;
    const ProcessResult result = run_sh(folder, "sleep 30", 0.5, 1.0);
    EXPECT_TRUE(result.killed_at_limit);
    EXPECT_EQ(result.signal, SIGTERM);
    EXPECT_GE(result.wall_s, 0.5);
    EXPECT_LT(result.wall_s, 0.5 + 1.0 + 1.0);
    EXPECT_EQ(process_describe_result(result), "killed at the limit");
}

TEST(ProcessTest, IgnoringSigtermStillDiesBySigkillAfterGrace) {
    test::TemporaryFolder folder;
    const ProcessResult result = run_sh(folder, "trap '' TERM; sleep 30", 0.3, 0.5);
    EXPECT_TRUE(result.killed_at_limit);
    EXPECT_EQ(result.signal, SIGKILL);
    EXPECT_GE(result.wall_s, 0.3 + 0.5);
    EXPECT_LT(result.wall_s, 0.3 + 0.5 + 1.5);
}

TEST(ProcessTest, BackgroundChildLeftBehindIsKilled) {
    test::TemporaryFolder folder;
    const ProcessResult result = run_sh(folder, "sleep 30 & echo $! > stray.pid; exit 0");
    EXPECT_EQ(result.exit_code, 0);
    EXPECT_TRUE(result.strays_killed);
    EXPECT_NE(process_describe_result(result).find("leftover processes killed"), std::string::npos);
    const pid_t stray = static_cast<pid_t>(std::stol(read_text(folder.path("stray.pid"))));
    ASSERT_GT(stray, 1);
    EXPECT_FALSE(process_alive(stray));
}

TEST(ProcessTest, EnvironmentAdditionsAreVisible) {
    test::TemporaryFolder folder;
    ProcessOptions options;
    options.argv = {"sh", "-c", "echo seed=$SEED extra=$EXTRA"};
    options.working_directory = folder.root();
    options.log_path = folder.path("run.log");
    options.environment = {{"SEED", "1337"}, {"EXTRA", "a b"}, {"SEED", "42"}};
    const ProcessResult result = process_run_supervised(options);
    EXPECT_EQ(result.exit_code, 0);
    EXPECT_EQ(read_text(folder.path("run.log")), "seed=42 extra=a b\n");
}

TEST(ProcessTest, StdoutAndStderrAreAppendedToTheLog) {
    test::TemporaryFolder folder;
    {
        std::ofstream earlier(folder.path("run.log"));
        earlier << "earlier\n";
    }
    run_sh(folder, "echo out; echo err >&2; pwd");
    const std::string log = read_text(folder.path("run.log"));
    EXPECT_EQ(log.rfind("earlier\nout\nerr\n", 0), 0u) << log;
    EXPECT_NE(log.find(folder.root()), std::string::npos) << log;  // ran in the working directory
}

TEST(ProcessTest, MissingCommandIsASpawnError) {
    test::TemporaryFolder folder;
    ProcessOptions options;
    options.argv = {"pgolf-no-such-command-xyz", "--flag"};
    options.log_path = folder.path("run.log");
    const ProcessResult result = process_run_supervised(options);
    EXPECT_EQ(result.exit_code, 127);
    EXPECT_EQ(result.spawn_error, "cannot run 'pgolf-no-such-command-xyz': command not found");
    EXPECT_NE(read_text(folder.path("run.log")).find("command not found"), std::string::npos);
    EXPECT_EQ(process_describe_result(result).rfind("not started: ", 0), 0u);
}

TEST(ProcessTest, MissingWorkingDirectoryIsASpawnError) {
    test::TemporaryFolder folder;
    ProcessOptions options;
    options.argv = {"true"};
    options.working_directory = folder.path("absent");
    options.log_path = folder.path("run.log");
    const ProcessResult result = process_run_supervised(options);
    EXPECT_NE(result.spawn_error.find("cannot enter"), std::string::npos) << result.spawn_error;
}

TEST(ProcessTest, UnwritableLogThrows) {
    ProcessOptions options;
    options.argv = {"true"};
    options.log_path = "/nonexistent-folder-xyz/run.log";
    EXPECT_NE(test::error_message([&] { process_run_supervised(options); }).find("cannot open log"), std::string::npos);
}

TEST(ProcessTest, ProgressIsCalledWhileRunning) {
    test::TemporaryFolder folder;
    ProcessOptions options;
    options.argv = {"sleep", "1.3"};
    options.log_path = folder.path("run.log");
    int calls = 0;
    options.progress = [&](double elapsed) {
        EXPECT_GE(elapsed, 1.0);
        ++calls;
    };
    process_run_supervised(options);
    EXPECT_GE(calls, 1);  // once a second: one call for 1.3 s, more on a slow machine
}

// SIGINT to the supervisor kills the command's group before the supervisor itself dies of it. Run in a forked child
// so the test binary survives.
TEST(ProcessTest, InterruptKillsTheGroupFirst) {
    test::TemporaryFolder folder;
    const pid_t supervisor = fork();
    ASSERT_GE(supervisor, 0);
    if (supervisor == 0) {
        run_sh(folder, "sleep 30 & echo $! > stray.pid; sleep 30", 0.0, 0.5);
        _exit(0);
    }
    pid_t stray = 0;
    for (int i = 0; i < 250 && stray == 0; ++i) {
        const std::string text = read_text(folder.path("stray.pid"));
        if (!text.empty() && text.back() == '\n') stray = static_cast<pid_t>(std::stol(text));
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_GT(stray, 1);
    kill(supervisor, SIGINT);
    int status = 0;
    ASSERT_EQ(waitpid(supervisor, &status, 0), supervisor);
    EXPECT_TRUE(WIFSIGNALED(status));
    if (WIFSIGNALED(status)) {
        EXPECT_EQ(WTERMSIG(status), SIGINT);
    }
    for (int i = 0; i < 100 && process_alive(stray); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_FALSE(process_alive(stray));
}

}  // namespace
}  // namespace pgolf
