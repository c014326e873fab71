// Progress on a terminal for long work (encoding, later training and evaluation): a single rewritten stderr line when
// stderr is a TTY and CI is unset; silent otherwise, so logs and CI output stay clean.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace pgolf {

bool progress_terminal_enabled();

class Progress {
public:
    // total <= 0 means unknown. enabled defaults to progress_terminal_enabled().
    Progress(std::string label, std::int64_t total, std::string unit);
    Progress(std::string label, std::int64_t total, std::string unit, bool enabled);
    ~Progress();
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    void update(std::int64_t done);
    void finish();  // draws the final state and ends the line
    void clear();   // erases the line for good (a transient progress display)
    // Erases the line so another line can be printed; the next update draws it again.
    void interrupt();

private:
    void draw(bool force);

    std::string label_;
    std::int64_t total_;
    std::string unit_;
    bool enabled_;
    bool finished_ = false;
    std::int64_t done_ = 0;
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace pgolf
