// Monotonic time for budgets: a Stopwatch that can pause (the reference excludes validation from training time) and a
// Deadline that says when a budget is spent. Never the wall clock, which can jump; the one wall-clock reading here is
// today's date, for the records a command writes.
#pragma once

#include <chrono>
#include <ctime>
#include <string>

namespace pgolf {

class Stopwatch {
public:
    using Clock = std::chrono::steady_clock;

    // Starts running.
    Stopwatch() : started_(Clock::now()) {}
    void pause() {
        if (running_) accumulated_ += Clock::now() - started_;
        running_ = false;
    }
    void resume() {
        if (!running_) started_ = Clock::now();
        running_ = true;
    }
    double elapsed_ms() const {
        auto total = accumulated_;
        if (running_) total += Clock::now() - started_;
        return std::chrono::duration<double, std::milli>(total).count();
    }

private:
    Clock::time_point started_;
    Clock::duration accumulated_{};
    bool running_ = true;
};

// A budget in milliseconds over a Stopwatch's elapsed time; budget <= 0 means no limit.
class Deadline {
public:
    explicit Deadline(double budget_ms) : budget_ms_(budget_ms) {}
    bool limited() const { return budget_ms_ > 0; }
    double budget_ms() const { return budget_ms_; }
    bool expired(double elapsed_ms) const { return limited() && elapsed_ms >= budget_ms_; }

private:
    double budget_ms_;
};

// Today's date in UTC, "YYYY-MM-DD" (the date of a record folder or a re-run).
inline std::string clock_utc_date() {
    const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm utc{};
    gmtime_r(&now, &utc);
    char text[16];
    std::strftime(text, sizeof(text), "%Y-%m-%d", &utc);
    return text;
}

}  // namespace pgolf
