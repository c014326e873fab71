// The preset JSON files of model/presets/, compiled into the binary by CMake (presets_embedded.cpp is generated).
#pragma once

#include <string_view>
#include <utility>
#include <vector>

namespace pgolf {

// (file stem, JSON text) for every model/presets/*.json, sorted by name.
const std::vector<std::pair<std::string_view, std::string_view>>& presets_embedded_files();

}  // namespace pgolf
