// Opt-in time and FLOP accounting per op family, for benchmarks: `pgolf bench train` turns it on and prints where a
// training step spends its time. Off by default, when a ProfileScope costs one branch.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace pgolf {

struct ProfileEntry {
    std::string name;
    double seconds = 0.0;
    double flops = 0.0;
    std::int64_t calls = 0;
};

void profile_enable(bool enabled);
bool profile_enabled();
void profile_reset();
std::vector<ProfileEntry> profile_entries();  // sorted by time, largest first
void profile_add(const char* name, double seconds, double flops);

// Times its own lifetime under name (a string literal). Not nested-aware: scopes must not overlap.
class ProfileScope {
public:
    explicit ProfileScope(const char* name, double flops = 0.0)
        : name_(profile_enabled() ? name : nullptr), flops_(flops) {
        if (name_ != nullptr) start_ = std::chrono::steady_clock::now();
    }
    ~ProfileScope() {
        if (name_ != nullptr) {
            profile_add(name_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(),
                        flops_);
        }
    }
    ProfileScope(const ProfileScope&) = delete;
    ProfileScope& operator=(const ProfileScope&) = delete;

private:
    const char* name_;
    double flops_;
    std::chrono::steady_clock::time_point start_;
};

}  // namespace pgolf
