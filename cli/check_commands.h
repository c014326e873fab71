#pragma once
#include <CLI/CLI.hpp>
namespace pgolf {
void check_commands_register(CLI::App& app);
}  // namespace pgolf
