// The profile table: a small map guarded by a mutex (scopes close on the calling thread, outside parallel regions).
#include "core/profile.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>

namespace pgolf {

namespace {
std::atomic<bool> profile_on{false};
std::mutex profile_mutex;
std::map<std::string, ProfileEntry>& profile_table() {
    static std::map<std::string, ProfileEntry> table;
    return table;
}
}  // namespace

void profile_enable(bool enabled) { profile_on.store(enabled); }
bool profile_enabled() { return profile_on.load(std::memory_order_relaxed); }

void profile_reset() {
    std::lock_guard<std::mutex> lock(profile_mutex);
    profile_table().clear();
}

void profile_add(const char* name, double seconds, double flops) {
    std::lock_guard<std::mutex> lock(profile_mutex);
    ProfileEntry& entry = profile_table()[name];
    entry.name = name;
    entry.seconds += seconds;
    entry.flops += flops;
    ++entry.calls;
}

std::vector<ProfileEntry> profile_entries() {
    std::lock_guard<std::mutex> lock(profile_mutex);
    std::vector<ProfileEntry> entries;
    for (const auto& [name, entry] : profile_table()) entries.push_back(entry);
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.seconds > b.seconds; });
    return entries;
}

}  // namespace pgolf
