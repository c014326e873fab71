// `pgolf run` (the audited pipeline) and `pgolf audit` (the verifier).
#pragma once

#include <CLI/CLI.hpp>

namespace pgolf {

void audit_commands_register(CLI::App& app);

}  // namespace pgolf
