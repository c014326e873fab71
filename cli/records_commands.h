// `pgolf reproduce`, `pgolf compare`, `pgolf leaderboard`, `pgolf history`, `pgolf show`.
#pragma once

#include <CLI/CLI.hpp>

namespace pgolf {

void records_commands_register(CLI::App& app);

}  // namespace pgolf
