// The options of the audited pipeline shared by `pgolf run` and `pgolf reproduce`: the preset, data, budgets, cap,
// gate, scheme and codec, turned into the supervisor's RunOptions; and the --seeds list of reproduce and rerun.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "audit/supervisor.h"
#include "cli/preset_options.h"
#include "core/tensor.h"

namespace pgolf {

struct RunArguments {
    PresetArguments preset;
    std::string data;
    std::string tokenizer;
    double train_budget = 600.0;
    double eval_budget = 600.0;
    std::int64_t cap_bytes = 16'000'000;
    std::string gate = "enforce";
    std::string scheme;
    std::string codec;
    std::string device = "cpu";

    // The preset loaded with every --set; data and tokenizer default to its DATA_PATH and TOKENIZER_PATH.
    RunOptions options() const;
};

void run_add_options(CLI::App* command, RunArguments& args);

// --device cpu|cuda of the commands that train or evaluate (default cpu).
void run_add_device_option(CLI::App* command, std::string& device);
// The parsed device, or one line for an unknown name or a device this build or machine lacks (device_require).
Device run_require_device(const std::string& device);

// "1337,42,2024" -> {1337, 42, 2024}; anything but a comma-separated list of non-negative integers is a one-line
// error naming the bad item (--seeds of reproduce and rerun).
std::vector<std::int64_t> run_parse_seeds(const std::string& text);

}  // namespace pgolf
