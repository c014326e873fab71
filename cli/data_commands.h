// `pgolf data …`: inspect shards, verify a dataset folder, encode text into shards.
#pragma once

#include <CLI/CLI.hpp>

namespace pgolf {

void data_commands_register(CLI::App& app);

}  // namespace pgolf
