// Argument parsing and printing for export and eval; the work is done by model/export.
#include "cli/export_commands.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/preset_options.h"
#include "cli/run_options.h"
#include "core/device.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/shard.h"
#include "core/text_format.h"
#include "core/token_stream.h"
#include "model/evaluate.h"
#include "model/export.h"
#include "model/gpt.h"

namespace pgolf {

namespace {

struct ExportArguments {
    std::string run;
    PresetArguments preset;
    std::int64_t init_seed = -1;
    std::string out;
    std::string scheme;
    std::string codec;
    std::string data;
    std::string tokenizer;
    bool no_eval = false;
    bool eval = false;
    std::string gate = "enforce";
};

// Log lines go to stdout and to a log file (progress lines are cleared before the exporter logs).
std::function<void(const std::string&)> export_logger(const std::string& path) {
    auto file = std::make_shared<std::ofstream>(path, std::ios::trunc);
    if (!*file) throw Error(path + ": cannot create");
    return [file](const std::string& line) {
        std::cout << line << std::endl;
        *file << line << '\n' << std::flush;
    };
}

void export_print_report(const ExportResult& result) {
    std::cout << "\nbytes of each part (" << result.scheme << ", " << result.codec << ")\n";
    for (const ExportPart& part : result.parts) {
        std::printf("  %-38s %12s raw (%lld tensors, %s elements)\n", part.name.c_str(),
                    format_count(part.raw_bytes).c_str(), static_cast<long long>(part.tensors),
                    format_count(part.elements).c_str());
    }
    std::printf("  %-38s %12s raw\n", "container (with header and checksum)",
                format_count(result.container_bytes).c_str());
    std::printf("  %-38s %12s  %s\n", "model (compressed artifact)", format_count(result.model_bytes).c_str(),
                std::filesystem::path(result.artifact_path).filename().c_str());
    std::printf("  %-38s %12s\n", "code (engine sources, uncompressed)", format_count(result.code_raw_bytes).c_str());
    std::printf("  %-38s %12s  %s (counted)\n", "code (engine-source.tar.xz)", format_count(result.code_bytes).c_str(),
                std::filesystem::path(result.code_bundle_path).filename().c_str());
    std::printf("  %-38s %12s\n", "total = model + code", format_count(result.total_bytes).c_str());
    std::printf("  %-38s %12s  (%s)\n", "margin to 16,000,000", format_count(result.margin_bytes).c_str(),
                result.margin_bytes >= 0 ? "fits" : "OVER THE CAP");
    if (result.evaluated) {
        std::printf("  val_bpb %.6f before, %.6f after the round trip (%+.6f)\n", result.prequant_val_bpb,
                    result.roundtrip_val_bpb, result.roundtrip_val_bpb - result.prequant_val_bpb);
    }
}

void export_run_command(const ExportArguments& args) {
    ExportOptions options;
    if (!args.run.empty()) {
        const std::string checkpoint = args.run + "/final_model.safetensors";
        const SafetensorsFile file = safetensors_read(checkpoint);
        const auto config = file.metadata.find("config");
        if (config == file.metadata.end()) throw Error(checkpoint + ": no config in its metadata");
        options.config = Config(nlohmann::json::parse(config->second));
        for (const std::string& assignment : args.preset.overrides) options.config.apply_override(assignment);
        const auto steps = file.metadata.find("steps");
        options.trained_steps = steps == file.metadata.end() ? 0 : std::stoll(steps->second);
        options.weights = file.tensors;
        options.output_directory = args.out.empty() ? args.run : args.out;
        options.source_description = checkpoint;
        options.evaluate = !args.no_eval;
    } else {
        // Freshly initialised weights of a preset: the byte accounting of its shapes, before any training.
        options.config = args.preset.load();
        const std::int64_t seed = args.init_seed >= 0 ? args.init_seed : options.config.get_int("SEED");
        Gpt model(GptConfig::from_config(options.config));
        model.initialize(static_cast<std::uint64_t>(seed));
        for (const auto& [name, tensor] : model.named_tensors()) options.weights.emplace_back(name, tensor.clone());
        if (args.out.empty()) throw Error("export --preset needs --out FOLDER");
        options.output_directory = args.out;
        options.source_description = "preset " + args.preset.preset + " (" + args.preset.scale +
                                     ") initialised with seed " + std::to_string(seed);
        options.evaluate = args.eval;
    }
    options.scheme = args.scheme;
    options.codec = args.codec;
    options.gate = gate_mode_parse(args.gate);
    options.data_directory = args.data.empty() ? options.config.get_string("DATA_PATH") : args.data;
    options.tokenizer_path = args.tokenizer.empty() ? options.config.get_string("TOKENIZER_PATH") : args.tokenizer;
    std::filesystem::create_directories(options.output_directory);
    options.log = export_logger(options.output_directory + "/export.log");
    export_print_report(export_run(options));
}

struct EvalArguments {
    std::string artifact;
    PresetArguments preset;
    bool preset_given = false;
    std::string data;
    std::string tokenizer;
    std::string mode = "sliding";
    std::string gate = "enforce";
    std::int64_t window = 0;
    std::int64_t stride = 0;
    bool reference_end_quirk = false;
    std::int64_t max_tokens = 0;
    std::int64_t position = -1;  // probe
    std::string device = "cpu";

    ArtifactEvalOptions options() const {
        ArtifactEvalOptions result;
        result.mode = eval_mode_parse(mode);
        result.gate = gate_mode_parse(gate);
        result.window = window;
        result.stride = stride;
        result.reference_end_quirk = reference_end_quirk;
        result.max_tokens = max_tokens;
        result.device = device_parse(device);
        return result;
    }
};

// The config to rebuild the artifact's model with: the preset when given (reporting keys that differ from the config
// recorded in the artifact), else the recorded config; --set applies to either.
Config export_eval_config(const EvalArguments& args, const ArtifactFile& file) {
    const auto embedded = file.artifact.metadata.find("config");
    Config config;
    if (args.preset_given) {
        config = args.preset.load();
        if (embedded != file.artifact.metadata.end()) {
            const Config artifact_config(nlohmann::json::parse(embedded->second));
            std::string differing;
            for (const auto& [key, value] : config.values().items()) {
                if (!artifact_config.values().contains(key) || artifact_config.values().at(key) != value)
                    differing += (differing.empty() ? "" : ", ") + key;
            }
            if (!differing.empty())
                std::cout << "note: the preset differs from the config recorded in the artifact in: " << differing
                          << "\n";
        }
    } else {
        if (embedded == file.artifact.metadata.end())
            throw Error(args.artifact + ": no config recorded in the artifact; pass --preset");
        config = Config(nlohmann::json::parse(embedded->second));
        for (const std::string& assignment : args.preset.overrides) config.apply_override(assignment);
    }
    return config;
}

void export_print_line(const std::string& line) { std::cout << line << std::endl; }

void export_run_eval(const EvalArguments& args) {
    run_require_device(args.device);
    const ArtifactFile file = artifact_read(args.artifact);
    const Config config = export_eval_config(args, file);
    const std::string data = args.data.empty() ? config.get_string("DATA_PATH") : args.data;
    const std::string tokenizer = args.tokenizer.empty() ? config.get_string("TOKENIZER_PATH") : args.tokenizer;
    const ArtifactEvaluation evaluation =
        export_evaluate_artifact(args.artifact, config, data, tokenizer, args.options(), export_print_line);
    if (!evaluation.violations.empty()) {
        std::cout << "gate: " << evaluation.violations.size()
                  << " violation(s) recorded in observe mode; this score is not compliant\n";
    }
}

// Scores the first --tokens tokens twice, the second time with every token after --position replaced: targets up to
// the position must keep bit-identical NLLs.
void export_run_probe(const EvalArguments& args) {
    const ArtifactFile file = artifact_read(args.artifact);
    const Config config = export_eval_config(args, file);
    const std::string data = args.data.empty() ? config.get_string("DATA_PATH") : args.data;
    const std::string tokenizer = args.tokenizer.empty() ? config.get_string("TOKENIZER_PATH") : args.tokenizer;
    const ArtifactEvalOptions options = args.options();
    std::vector<std::uint16_t> stream = validation_tokens_load(shard_glob(data + "/fineweb_val_*.bin"), 1);
    if (options.max_tokens > 0 && stream.size() > static_cast<std::size_t>(options.max_tokens)) {
        stream.resize(static_cast<std::size_t>(options.max_tokens));
    }
    const std::int64_t position = args.position >= 0 ? args.position : static_cast<std::int64_t>(stream.size()) / 2;
    const CausalityProbeResult probe = evaluate_causality_probe(
        stream, position, config.get_int("VOCAB_SIZE"), [&](const std::vector<std::uint16_t>& tokens) {
            // A fresh model each time: TTT adapts the one it scores with.
            Gpt model = export_load_artifact_model(file, config);
            return export_evaluate_model(model, config, data, tokenizer, options, "probe", tokens, {}).target_nll;
        });
    std::cout << "causality probe: " << (probe.passed() ? "PASS" : "FAIL") << " (mode " << args.mode << ", "
              << stream.size() << " tokens, every token after position " << position << " replaced)\n"
              << "  targets 1.." << position << " compared: " << probe.checked
              << ", NLLs changed: " << probe.mismatches;
    if (probe.first_mismatch >= 0) std::cout << " (first at " << probe.first_mismatch << ")";
    std::cout << "\n  targets after the position whose NLL changed: " << probe.changed_after << "\n";
    if (!probe.passed()) {
        throw Error("causality probe failed: target " + std::to_string(probe.first_mismatch) +
                    " depends on tokens after position " + std::to_string(position) + " (C1)");
    }
}

void export_add_eval_options(CLI::App* command, EvalArguments& args) {
    command->add_option("--artifact", args.artifact, "Artifact file (final_model.<scheme>.pga)")->required();
    command->add_option("--scale", args.preset.scale, "full or smoke")->capture_default_str();
    command->add_option("--set", args.preset.overrides, "Override a config key: KEY=VALUE (repeatable)");
    command->add_option("--data", args.data, "Dataset folder (default: DATA_PATH)");
    command->add_option("--tokenizer", args.tokenizer, "SentencePiece model (default: TOKENIZER_PATH)");
    run_add_device_option(command, args.device);
    command
        ->add_option(
            "--mode", args.mode,
            "sliding (window T, stride S), ttt (score-first TTT over sliding windows, TTT_* keys) or plain (eval_val)")
        ->capture_default_str();
    command->add_option("--window", args.window, "Sliding window T (default: TRAIN_SEQ_LEN)");
    command->add_option("--stride", args.stride, "Sliding stride S (default: EVAL_STRIDE, 64)");
    command
        ->add_option("--gate", args.gate,
                     "enforce (a violation is an error) or observe (it runs and is recorded, to flag a record)")
        ->capture_default_str();
    command->add_flag("--reference-end-quirk", args.reference_end_quirk,
                      "Score the stream's end as the reference does (its last S targets counted again; observe only)");
}

}  // namespace

void export_commands_register(CLI::App& app) {
    auto exporting = std::make_shared<ExportArguments>();
    CLI::App* export_command = app.add_subcommand(
        "export",
        "Quantize a run's weights into a compressed artifact, ship the engine sources as the counted code, report "
        "every byte and the round-trip score");
    export_command->add_option("--run", exporting->run, "Run folder with final_model.safetensors (from pgolf train)");
    preset_add_options(export_command, exporting->preset);
    export_command->add_option("--init-seed", exporting->init_seed,
                               "Without --run: export the preset's freshly initialised weights (default seed: SEED)");
    export_command->add_option("--out", exporting->out, "Output folder (default: the run folder)");
    export_command->add_option("--scheme", exporting->scheme,
                               "int8, int6-row-search, int6-tensor-search, gptq-sdclip or gptq-search "
                               "(default: the config's EXPORT_SCHEME)");
    export_command->add_option("--codec", exporting->codec,
                               "zstd-22, xz-6 (lzma-6), xz-9, brotli-11, zlib-9, … (default: the scheme's)");
    export_command->add_option("--data", exporting->data,
                               "Dataset folder: training shards for calibration, validation for the round trip");
    export_command->add_option("--tokenizer", exporting->tokenizer, "SentencePiece model (default: TOKENIZER_PATH)");
    export_command
        ->add_option("--gate", exporting->gate,
                     "enforce (S4's pre-quant TTT on validation tokens is refused) or observe (it runs and "
                     "is recorded as a violation, to reproduce and flag the record)")
        ->capture_default_str();
    export_command->add_flag("--no-eval", exporting->no_eval, "Skip the pre-quantization and round-trip evaluations");
    export_command->add_flag("--eval", exporting->eval, "With --preset: evaluate the initialised weights too");
    export_command->callback([exporting, export_command] {
        const bool preset_given =
            export_command->get_option("--preset")->count() > 0 || export_command->get_option("--scale")->count() > 0;
        if (!exporting->run.empty() && (exporting->init_seed >= 0 || preset_given)) {
            throw Error(
                "export: --run exports the run with its own config; --preset, --scale and --init-seed are for "
                "freshly initialised weights");
        }
        export_run_command(*exporting);
    });

    auto evaluating = std::make_shared<EvalArguments>();
    CLI::App* eval_command = app.add_subcommand(
        "eval",
        "Score an artifact on the validation split through the validation gate (sliding windows or plain), with a "
        "model built from its config or a preset");
    export_add_eval_options(eval_command, *evaluating);
    CLI::Option* preset_option = eval_command->add_option("--preset", evaluating->preset.preset,
                                                          "Preset (default: the config recorded in the artifact)");
    eval_command->add_option("--max-tokens", evaluating->max_tokens, "Score only the first N tokens (0: all)");
    eval_command->callback([evaluating, preset_option] {
        evaluating->preset_given = preset_option->count() > 0;
        export_run_eval(*evaluating);
    });

    auto probing = std::make_shared<EvalArguments>();
    probing->max_tokens = 4096;
    CLI::App* probe_command = app.add_subcommand(
        "probe",
        "Causality probe: score twice, the second time with every token after a position replaced; the "
        "NLLs up to it must not change (C1)");
    export_add_eval_options(probe_command, *probing);
    CLI::Option* probe_preset = probe_command->add_option("--preset", probing->preset.preset,
                                                          "Preset (default: the config recorded in the artifact)");
    probe_command->add_option("--tokens", probing->max_tokens, "Tokens of the validation stream to probe")
        ->capture_default_str();
    probe_command->add_option("--position", probing->position, "Replace every token after it (default: the middle)");
    probe_command->callback([probing, probe_preset] {
        probing->preset_given = probe_preset->count() > 0;
        export_run_probe(*probing);
    });
}

}  // namespace pgolf
