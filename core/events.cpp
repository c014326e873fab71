// The process's current event sink.
#include "core/events.h"

namespace pgolf {

namespace {
EventSink* current_sink = nullptr;
}

bool events_active() { return current_sink != nullptr; }

void events_emit(const std::string& name, const nlohmann::json& payload) {
    if (current_sink != nullptr) (*current_sink)(name, payload);
}

EventScope::EventScope(EventSink sink) : sink_(std::move(sink)), previous_(current_sink) { current_sink = &sink_; }

EventScope::~EventScope() { current_sink = previous_; }

}  // namespace pgolf
