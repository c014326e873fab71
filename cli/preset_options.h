// The --preset / --scale / --set options shared by the commands that build a model from a preset.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "model/config.h"

namespace pgolf {

struct PresetArguments {
    std::string preset = "baseline";
    std::string scale = "full";
    std::vector<std::string> overrides;

    Config load() const;  // the preset at its scale with every --set applied
};

void preset_add_options(CLI::App* command, PresetArguments& args);

}  // namespace pgolf
