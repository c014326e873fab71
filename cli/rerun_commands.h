#pragma once
#include <CLI/CLI.hpp>
namespace pgolf {
void rerun_commands_register(CLI::App& app);
}  // namespace pgolf
