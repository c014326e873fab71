// Terminal progress line, throttled to a few redraws a second.
#include "core/progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace pgolf {

bool progress_terminal_enabled() {
    const char* ci = std::getenv("CI");
    if (ci != nullptr && *ci != '\0') return false;
    return ::isatty(STDERR_FILENO) == 1;
}

Progress::Progress(std::string label, std::int64_t total, std::string unit)
    : Progress(std::move(label), total, std::move(unit), progress_terminal_enabled()) {}

Progress::Progress(std::string label, std::int64_t total, std::string unit, bool enabled)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      enabled_(enabled),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
    // No finish() from the destructor: an exception is unwinding and its message should not share a line with ours.
    if (enabled_ && !finished_ && done_ > 0) std::fputc('\n', stderr);
}

void Progress::update(std::int64_t done) {
    done_ = done;
    draw(false);
}

void Progress::finish() {
    if (finished_) return;
    draw(true);
    if (enabled_) std::fputc('\n', stderr);
    finished_ = true;
}

void Progress::clear() {
    if (finished_) return;
    if (enabled_ && done_ > 0) {
        std::fputs("\r\033[K", stderr);
        std::fflush(stderr);
    }
    finished_ = true;
}

void Progress::interrupt() {
    if (!enabled_ || finished_ || done_ == 0) return;
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    last_draw_ = start_;  // redraw at the next update
}

void Progress::draw(bool force) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - last_draw_ < std::chrono::milliseconds(200)) return;
    last_draw_ = now;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(done_) / seconds : 0.0;
    if (total_ > 0) {
        const double percent = 100.0 * static_cast<double>(done_) / static_cast<double>(total_);
        std::fprintf(stderr, "\r%s: %lld/%lld %s (%.1f%%, %.0f %s/s)\033[K", label_.c_str(),
                     static_cast<long long>(done_), static_cast<long long>(total_), unit_.c_str(), percent, rate,
                     unit_.c_str());
    } else {
        std::fprintf(stderr, "\r%s: %lld %s (%.0f %s/s)\033[K", label_.c_str(), static_cast<long long>(done_),
                     unit_.c_str(), rate, unit_.c_str());
    }
    std::fflush(stderr);
}

}  // namespace pgolf
