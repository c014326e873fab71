// Duplicate-key-refusing JSON parse and quoting for messages.
#include "core/json_util.h"

#include <set>
#include <vector>

#include "core/error.h"

namespace pgolf {

nlohmann::ordered_json json_parse_unique_keys(std::string_view text, const std::string& what) {
    using OrderedJson = nlohmann::ordered_json;
    std::vector<std::set<std::string>> open_objects;  // the keys seen in each object still open
    auto callback = [&](int /*depth*/, OrderedJson::parse_event_t event, OrderedJson& parsed) {
        switch (event) {
            case OrderedJson::parse_event_t::object_start:
                open_objects.emplace_back();
                break;
            case OrderedJson::parse_event_t::object_end:
                if (!open_objects.empty()) open_objects.pop_back();
                break;
            case OrderedJson::parse_event_t::key: {
                const auto& key = parsed.get_ref<const std::string&>();
                if (!open_objects.empty() && !open_objects.back().insert(key).second) {
                    throw Error("duplicate key " + json_quote(key) + " in " + what);
                }
                break;
            }
            default:
                break;
        }
        return true;
    };
    try {
        return OrderedJson::parse(text, callback);
    } catch (const nlohmann::json::exception& error) {
        throw Error("invalid JSON " + what + ": " + error.what());
    }
}

std::string json_quote(const std::string& text) {
    return nlohmann::ordered_json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace pgolf
