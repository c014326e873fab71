// Preset options: parsing only; the presets live in model/.
#include "cli/preset_options.h"

namespace pgolf {

Config PresetArguments::load() const {
    Config config = config_load_preset(preset, scale);
    for (const std::string& assignment : overrides) config.apply_override(assignment);
    return config;
}

void preset_add_options(CLI::App* command, PresetArguments& args) {
    command->add_option("--preset", args.preset, "Preset name (model/presets/*.json)")->capture_default_str();
    command->add_option("--scale", args.scale, "full (published shapes) or smoke (tiny, CPU-sized)")
        ->capture_default_str();
    command->add_option("--set", args.overrides, "Override a config key: KEY=VALUE (repeatable)");
}

}  // namespace pgolf
