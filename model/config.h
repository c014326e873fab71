// Run configuration: a flat map of keys named like the reference's environment variables (NUM_LAYERS, MODEL_DIM,
// MATRIX_LR, …) so participants carry their settings over. Presets are JSON files compiled into the binary; a scale
// ("full" or "smoke") picks the published shapes or a tiny CPU-sized variant; --set KEY=VALUE overrides any key.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace pgolf {

class Config {
public:
    Config() = default;
    explicit Config(nlohmann::json values);  // a JSON object of key -> number, bool or string

    bool has(const std::string& key) const;
    std::int64_t get_int(const std::string& key) const;  // throws naming the key when missing or not an integer
    double get_double(const std::string& key) const;
    bool get_bool(const std::string& key) const;  // accepts true/false and 0/1
    std::string get_string(const std::string& key) const;

    // KEY=VALUE, VALUE parsed as the key's current type. An unknown key is an error (a typo must not be silent).
    void apply_override(const std::string& assignment);
    void set(const std::string& key, nlohmann::json value);

    const nlohmann::json& values() const { return values_; }
    // SHA-256 of the canonical JSON (sorted keys): the config digest recorded with every run.
    std::string digest() const;

private:
    const nlohmann::json& at(const std::string& key) const;
    nlohmann::json values_ = nlohmann::json::object();
};

struct Preset {
    std::string name;
    std::string description;
    std::string source;
    std::int64_t published_parameters = 0;  // at full scale; 0 when none was published
    // Parameters whose names start with this are counted apart from the published figure (S2's feedback).
    std::string published_exclude_prefix;
    std::string published_note;
    std::vector<std::string> scales;  // "full" first
};

// "0,1,2" -> {0, 1, 2}; "" -> {}. key names the setting in the error.
std::vector<std::int64_t> config_parse_int_list(const std::string& key, const std::string& text);

std::vector<Preset> config_list_presets();
Preset config_find_preset(const std::string& name);  // throws listing the known names
// The preset's full config with the scale's overrides applied.
Config config_load_preset(const std::string& name, const std::string& scale);

}  // namespace pgolf
