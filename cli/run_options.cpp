// Run options: parsing only; the pipeline lives in audit/.
#include "cli/run_options.h"

#include <algorithm>
#include <exception>

#include "core/device.h"
#include "core/error.h"

namespace pgolf {

RunOptions RunArguments::options() const {
    RunOptions options;
    options.device = run_require_device(device);
    options.config = preset.load();
    options.preset = preset.preset;
    options.scale = preset.scale;
    options.overrides = preset.overrides;
    options.data_directory = data.empty() ? options.config.get_string("DATA_PATH") : data;
    options.tokenizer_path = tokenizer.empty() ? options.config.get_string("TOKENIZER_PATH") : tokenizer;
    options.train_budget_s = train_budget;
    options.eval_budget_s = eval_budget;
    options.cap_bytes = cap_bytes;
    options.gate = gate_mode_parse(gate);
    options.scheme = scheme;
    options.codec = codec;
    return options;
}

void run_add_options(CLI::App* command, RunArguments& args) {
    preset_add_options(command, args.preset);
    command->add_option("--data", args.data, "Dataset folder (default: the preset's DATA_PATH)");
    command->add_option("--tokenizer", args.tokenizer, "SentencePiece model (default: TOKENIZER_PATH)");
    command->add_option("--train-budget", args.train_budget, "Training budget in seconds (loop + data reads)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    command->add_option("--eval-budget", args.eval_budget, "Timed evaluation budget in seconds")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    command->add_option("--cap-bytes", args.cap_bytes, "Artifact cap in bytes (code + compressed model)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    command->add_option("--gate", args.gate, "Validation gate: enforce (refuse) or observe (record violations)")
        ->capture_default_str();
    command->add_option("--scheme", args.scheme, "Export scheme (default: the preset's EXPORT_SCHEME)");
    command->add_option("--codec", args.codec, "Artifact codec (default: the preset's EXPORT_CODEC)");
    run_add_device_option(command, args.device);
}

void run_add_device_option(CLI::App* command, std::string& device) {
    command->add_option("--device", device, "cpu or cuda")->capture_default_str();
}

Device run_require_device(const std::string& device) {
    const Device parsed = device_parse(device);
    device_require(parsed);
    return parsed;
}

std::vector<std::int64_t> run_parse_seeds(const std::string& text) {
    std::vector<std::int64_t> seeds;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t comma = std::min(text.find(',', start), text.size());
        const std::string item = text.substr(start, comma - start);
        std::size_t used = 0;
        std::int64_t seed = -1;
        try {
            seed = std::stoll(item, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (item.empty() || used != item.size() || seed < 0) {
            throw Error("--seeds: '" + item + "' is not a seed (a comma-separated list of non-negative integers)");
        }
        seeds.push_back(seed);
        start = comma + 1;
    }
    return seeds;
}

}  // namespace pgolf
