#include "cli/rerun_commands.h"
namespace pgolf {
void rerun_commands_register(CLI::App&) {}
}  // namespace pgolf
