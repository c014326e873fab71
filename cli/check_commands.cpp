#include "cli/check_commands.h"
namespace pgolf {
void check_commands_register(CLI::App&) {}
}  // namespace pgolf
