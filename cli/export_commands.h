// `pgolf export` and `pgolf eval`: a run's weights to an artifact with its byte accounting, and an artifact scored.
#pragma once

#include <CLI/CLI.hpp>

namespace pgolf {

void export_commands_register(CLI::App& app);

}  // namespace pgolf
