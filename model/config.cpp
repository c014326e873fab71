// Config values, preset lookup and --set overrides.
#include "model/config.h"

#include <cmath>
#include <sstream>

#include "core/digest.h"
#include "core/error.h"
#include "model/presets_embedded.h"

namespace pgolf {

Config::Config(nlohmann::json values) : values_(std::move(values)) {
    if (!values_.is_object()) throw Error("config: expected a JSON object of KEY: value");
}

bool Config::has(const std::string& key) const { return values_.contains(key); }

const nlohmann::json& Config::at(const std::string& key) const {
    const auto found = values_.find(key);
    if (found == values_.end()) throw Error("config: missing key " + key);
    return *found;
}

std::int64_t Config::get_int(const std::string& key) const {
    const nlohmann::json& value = at(key);
    if (value.is_number_integer()) return value.get<std::int64_t>();
    if (value.is_boolean()) return value.get<bool>() ? 1 : 0;
    if (value.is_number_float()) {
        const double number = value.get<double>();
        if (std::floor(number) == number) return static_cast<std::int64_t>(number);
    }
    throw Error("config: " + key + " must be an integer, got " + value.dump());
}

double Config::get_double(const std::string& key) const {
    const nlohmann::json& value = at(key);
    if (value.is_number()) return value.get<double>();
    throw Error("config: " + key + " must be a number, got " + value.dump());
}

bool Config::get_bool(const std::string& key) const {
    const nlohmann::json& value = at(key);
    if (value.is_boolean()) return value.get<bool>();
    if (value.is_number_integer() && (value.get<std::int64_t>() == 0 || value.get<std::int64_t>() == 1)) {
        return value.get<std::int64_t>() == 1;
    }
    throw Error("config: " + key + " must be 0/1 or true/false, got " + value.dump());
}

std::string Config::get_string(const std::string& key) const {
    const nlohmann::json& value = at(key);
    if (value.is_string()) return value.get<std::string>();
    throw Error("config: " + key + " must be a string, got " + value.dump());
}

void Config::set(const std::string& key, nlohmann::json value) { values_[key] = std::move(value); }

void Config::apply_override(const std::string& assignment) {
    const auto equals = assignment.find('=');
    if (equals == std::string::npos || equals == 0) {
        throw Error("--set expects KEY=VALUE, got '" + assignment + "'");
    }
    const std::string key = assignment.substr(0, equals);
    const std::string text = assignment.substr(equals + 1);
    if (!has(key)) throw Error("--set: unknown config key " + key + " (pgolf model info lists the keys)");
    const nlohmann::json& current = at(key);
    try {
        std::size_t used = 0;
        if (current.is_string()) {
            values_[key] = text;
        } else if (current.is_number_integer() || current.is_boolean()) {
            const long long number = std::stoll(text, &used);
            if (used != text.size()) throw std::invalid_argument(text);
            values_[key] = current.is_boolean() ? nlohmann::json(number != 0) : nlohmann::json(number);
        } else {
            const double number = std::stod(text, &used);
            if (used != text.size()) throw std::invalid_argument(text);
            values_[key] = number;
        }
    } catch (const std::logic_error&) {
        throw Error("--set " + key + ": '" + text + "' is not a valid " +
                    (current.is_number_integer() ? "integer" : "number"));
    }
}

std::string Config::digest() const { return digest_sha256_hex(values_.dump()); }  // nlohmann sorts object keys

namespace {

nlohmann::json config_parse_preset(std::string_view name, std::string_view text) {
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& error) {
        throw Error("preset " + std::string(name) + ": invalid JSON: " + error.what());
    }
}

Preset config_describe_preset(const nlohmann::json& json) {
    Preset preset;
    preset.name = json.at("name").get<std::string>();
    preset.description = json.value("description", "");
    preset.source = json.value("source", "");
    preset.published_parameters = json.value("published_parameters", std::int64_t{0});
    preset.published_exclude_prefix = json.value("published_parameters_exclude_prefix", "");
    preset.published_note = json.value("published_note", "");
    preset.scales.push_back("full");
    for (const auto& [scale, overrides] : json.at("scales").items()) {
        if (scale != "full") preset.scales.push_back(scale);
    }
    return preset;
}

nlohmann::json config_preset_json(const std::string& name) {
    for (const auto& [stem, text] : presets_embedded_files()) {
        if (stem == name) return config_parse_preset(stem, text);
    }
    std::string known;
    for (const auto& [stem, text] : presets_embedded_files()) known += (known.empty() ? "" : ", ") + std::string(stem);
    throw Error("unknown preset '" + name + "' (known: " + known + ")");
}

}  // namespace

std::vector<Preset> config_list_presets() {
    std::vector<Preset> presets;
    for (const auto& [stem, text] : presets_embedded_files()) {
        presets.push_back(config_describe_preset(config_parse_preset(stem, text)));
    }
    return presets;
}

Preset config_find_preset(const std::string& name) { return config_describe_preset(config_preset_json(name)); }

Config config_load_preset(const std::string& name, const std::string& scale) {
    const nlohmann::json json = config_preset_json(name);
    Config config(json.at("config"));
    const auto& scales = json.at("scales");
    if (!scales.contains(scale)) {
        std::string known;
        for (const auto& [key, value] : scales.items()) known += (known.empty() ? "" : ", ") + key;
        throw Error("preset " + name + " has no scale '" + scale + "' (scales: " + known + ")");
    }
    for (const auto& [key, value] : scales.at(scale).items()) {
        if (!config.has(key)) throw Error("preset " + name + " scale " + scale + " sets unknown key " + key);
        config.set(key, value);
    }
    config.set("PRESET", name);
    config.set("SCALE", scale);
    return config;
}

// "0,1,2" -> {0, 1, 2}; "" -> {}.
std::vector<std::int64_t> config_parse_int_list(const std::string& key, const std::string& text) {
    std::vector<std::int64_t> values;
    std::stringstream stream(text);
    std::string item;
    while (std::getline(stream, item, ',')) {
        if (item.empty()) continue;
        try {
            std::size_t used = 0;
            values.push_back(std::stoll(item, &used));
            if (used != item.size()) throw std::invalid_argument(item);
        } catch (const std::logic_error&) {
            throw Error("config: " + key + " must be a comma-separated list of integers, got '" + text + "'");
        }
    }
    return values;
}

}  // namespace pgolf
