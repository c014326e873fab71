// `pgolf model info`, `pgolf train`, `pgolf bench train`: the engine's commands.
#pragma once

#include <CLI/CLI.hpp>

namespace pgolf {

void model_commands_register(CLI::App& app);

}  // namespace pgolf
