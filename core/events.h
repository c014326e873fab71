// The engine's event sink: what the engine does that an auditor must see (data reads, stages, gate events) is
// reported here by name with a JSON payload. The layers above install a sink for the length of a run (EventScope);
// with none installed, reporting costs one pointer test, so callers check events_active() before building payloads.
// Events are emitted from the thread that runs the engine; a sink may throw to stop the run (a spent budget).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace pgolf {

using EventSink = std::function<void(const std::string& name, const nlohmann::json& payload)>;

bool events_active();
void events_emit(const std::string& name, const nlohmann::json& payload);

// Installs a sink until destroyed; scopes nest (the previous sink returns when the inner scope ends).
class EventScope {
public:
    explicit EventScope(EventSink sink);
    ~EventScope();
    EventScope(const EventScope&) = delete;
    EventScope& operator=(const EventScope&) = delete;

private:
    EventSink sink_;
    EventSink* previous_;
};

// The engine's event names, so emitters and the audit layer agree.
namespace event_names {
inline constexpr const char* data_read = "data_read";                // {path, begin, end}: tokens [begin, end)
inline constexpr const char* stage = "stage";                        // {stage}: the engine enters a stage
inline constexpr const char* validation_begin = "validation_begin";  // periodic validation (excluded from time)
inline constexpr const char* validation_end = "validation_end";
inline constexpr const char* train_end = "train_end";  // {steps, train_time_ms, last_step_ms, max_step_ms, ...}
inline constexpr const char* gate_open = "gate_open";  // {gate, targets, mode}
inline constexpr const char* gate = "gate";            // {gate, kind, begin, end, ...}: one ValidationGate event
}  // namespace event_names

}  // namespace pgolf
