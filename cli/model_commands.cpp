// Argument parsing and printing for the model commands; the work is done by model/.
#include "cli/model_commands.h"

#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/preset_options.h"
#include "cli/run_options.h"
#include "core/device.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/kernel_bench.h"
#include "core/ops/linear.h"
#include "core/profile.h"
#include "core/progress.h"
#include "core/text_format.h"
#include "model/config.h"
#include "model/gpt.h"
#include "model/trainer.h"

namespace pgolf {

namespace {

struct InfoArguments {
    PresetArguments preset;
    bool json = false;
    bool keys = false;
};

void model_run_info(const InfoArguments& args) {
    const Config config = args.preset.load();
    const Preset preset = config_find_preset(args.preset.preset);
    const Gpt model(GptConfig::from_config(config));
    const std::int64_t seq_len = config.get_int("TRAIN_SEQ_LEN");
    const std::int64_t passes = model.config().eval_passes;
    const double flops = model.training_flops_per_token(seq_len, passes);
    const std::vector<VirtualLayer> plan = model.layer_plan(passes);

    struct GroupSummary {
        std::int64_t elements = 0;
        std::int64_t tensors = 0;
    };
    std::map<std::string, GroupSummary> groups;
    for (const Parameter& parameter : model.parameters()) {
        GroupSummary& group = groups[parameter_group_name(parameter.group)];
        group.elements += parameter.var.value().numel();
        ++group.tensors;
    }
    const std::map<std::string, std::string> optimizer_of = {
        {"embedding", "Adam, lr " + format_fixed(config.get_bool("TIE_EMBEDDINGS") ? config.get_double("TIED_EMBED_LR")
                                                                                   : config.get_double("EMBED_LR"),
                                                 3)},
        {"head", "Adam, lr " + format_fixed(config.get_double("HEAD_LR"), 3)},
        {"matrix", "Muon, lr " + format_fixed(config.get_double("MATRIX_LR"), 3)},
        {"scalar", "Adam, lr " + format_fixed(config.get_double("SCALAR_LR"), 3)},
        {"frozen", "in no optimizer: keeps its initial value"}};
    // The published count, and what the preset says it leaves out (S2's feedback parameters).
    std::int64_t excluded = 0;
    if (!preset.published_exclude_prefix.empty()) {
        for (const Parameter& parameter : model.parameters()) {
            if (parameter.name.rfind(preset.published_exclude_prefix, 0) == 0)
                excluded += parameter.var.value().numel();
        }
    }
    const std::int64_t comparable = model.parameter_count() - excluded;

    if (args.json) {
        nlohmann::json out = {{"preset", args.preset.preset},
                              {"scale", args.preset.scale},
                              {"parameters", model.parameter_count()},
                              {"parameters_compared", comparable},
                              {"published_parameters", preset.published_parameters},
                              {"layer_schedule", nlohmann::json::array()},
                              {"training_flops_per_token", flops},
                              {"config_digest", config.digest()},
                              {"config", config.values()},
                              {"groups", nlohmann::json::object()}};
        for (const auto& [name, group] : groups) {
            out["groups"][name] = {{"parameters", group.elements}, {"tensors", group.tensors}};
        }
        for (const VirtualLayer& layer : plan) {
            out["layer_schedule"].push_back({{"block", layer.block},
                                             {"push_skip", layer.push_skip},
                                             {"pop_skip_row", layer.pop_skip_row},
                                             {"xsa", layer.xsa},
                                             {"value_embedding", layer.ve_index >= 0},
                                             {"alpha", layer.alpha_index},
                                             {"core_pass", layer.core_pass}});
        }
        std::cout << out.dump(2) << "\n";
        return;
    }
    std::cout << "preset       " << args.preset.preset << " (" << args.preset.scale << ")\n"
              << "description  " << preset.description << "\n"
              << "parameters   " << format_count(comparable);
    if (excluded > 0) std::cout << " plus " << format_count(excluded) << " " << preset.published_exclude_prefix << "*";
    if (args.preset.scale == "full" && preset.published_parameters > 0) {
        std::cout << (comparable == preset.published_parameters ? " (matches the published "
                                                                : " (DIFFERS from the published ")
                  << format_count(preset.published_parameters)
                  << (preset.published_note.empty() ? "" : " " + preset.published_note) << ")";
    }
    std::cout << "\n";
    for (const auto& [name, group] : groups) {
        std::printf("  %-10s %12s in %lld tensors (%s)\n", name.c_str(), format_count(group.elements).c_str(),
                    static_cast<long long>(group.tensors), optimizer_of.at(name).c_str());
    }
    std::cout << "schedule     [";
    for (std::size_t i = 0; i < plan.size(); ++i) std::cout << (i ? ", " : "") << plan[i].block;
    std::cout << "] (virtual layer -> physical block"
              << (model.config().recurrent_core.empty() ? "" : ", at EVAL_PASSES") << ")\n";
    for (std::size_t v = 0; v < plan.size(); ++v) {
        const VirtualLayer& layer = plan[v];
        std::string notes;
        if (layer.push_skip) notes += " push-skip";
        if (layer.pop_skip_row >= 0) notes += " pop-skip[" + std::to_string(layer.pop_skip_row) + "]";
        if (layer.xsa) notes += " xsa";
        if (layer.ve_index >= 0) notes += " value-embedding";
        if (layer.alpha_index >= 0) notes += " alpha[" + std::to_string(layer.alpha_index) + "]";
        if (layer.core_pass >= 0) notes += " core-pass " + std::to_string(layer.core_pass);
        std::printf("  v%-3zu block %-3lld%s\n", v, static_cast<long long>(layer.block), notes.c_str());
    }
    std::cout << std::flush;
    std::cout << "flops/token  " << format_count(static_cast<std::int64_t>(flops))
              << " (training, 6N + attention at T=" << seq_len << ")\n"
              << "config       " << config.digest() << "\n";
    if (args.keys) {
        for (const auto& [key, value] : config.values().items())
            std::cout << "  " << key << "=" << value.dump() << "\n";
    }
}

struct TrainArguments {
    PresetArguments preset;
    std::int64_t seed = -1;
    std::string data;
    std::string tokenizer;
    std::string out;
    std::string device = "cpu";
};

TrainResult model_run_training(Config config, const std::string& data, const std::string& tokenizer,
                               const std::string& out, bool validate, bool print_log, Device device = Device::cpu) {
    TrainOptions options;
    options.device = device;
    options.tokenizer_path = tokenizer.empty() ? config.get_string("TOKENIZER_PATH") : tokenizer;
    options.data_directory = data.empty() ? config.get_string("DATA_PATH") : data;
    options.config = std::move(config);
    options.output_directory = out;
    options.validate = validate;
    auto progress = std::make_shared<Progress>("train", options.config.get_int("ITERATIONS"), "steps");
    if (print_log) {
        options.log = [progress](const std::string& line) {
            progress->interrupt();  // log lines go to stdout; keep them off the progress line on a terminal
            std::cout << line << std::endl;
        };
    }
    options.progress = [progress](std::int64_t step, std::int64_t) { progress->update(step); };
    TrainResult result = trainer_run(options);
    progress->clear();
    return result;
}

void model_run_train(const TrainArguments& args) {
    const Device device = run_require_device(args.device);
    Config config = args.preset.load();
    if (args.seed >= 0) config.set("SEED", args.seed);
    model_run_training(config, args.data, args.tokenizer, args.out, true, true, device);
}

struct BenchArguments {
    PresetArguments preset;
    std::string data;
    std::string tokenizer;
    std::int64_t steps = 10;
};

// sgemm rate at one shape: c (M, N) = a (M, K) · bᵀ (N, K), best of 20 repeats after 3 unmeasured ones (the first
// calls pay for page faults and frequency ramp-up).
double bench_sgemm_gflops(std::int64_t m, std::int64_t n, std::int64_t k) {
    const Tensor a = Tensor::full({m, k}, 0.5);
    const Tensor b = Tensor::full({n, k}, 0.25);
    for (int warmup = 0; warmup < 3; ++warmup) matmul(a, b, false, true);
    double best = 0.0;
    for (int repeat = 0; repeat < 20; ++repeat) {
        const auto start = std::chrono::steady_clock::now();
        const Tensor c = matmul(a, b, false, true);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        best = std::max(best, 2.0 * static_cast<double>(m * n * k) / seconds / 1e9);
    }
    return best;
}

void model_run_bench(const BenchArguments& args) {
    Config config = args.preset.load();
    config.set("ITERATIONS", args.steps);
    config.set("WARMUP_STEPS", 0);
    config.set("MAX_WALLCLOCK_SECONDS", 0.0);
    config.set("TRAIN_LOG_EVERY", 0);
    const GptConfig shape = GptConfig::from_config(config);
    const std::int64_t micro_tokens = config.get_int("TRAIN_BATCH_TOKENS") / config.get_int("GRAD_ACCUM_STEPS");
    const double sgemm = bench_sgemm_gflops(micro_tokens, shape.mlp_mult * shape.model_dim, shape.model_dim);
    profile_reset();
    profile_enable(true);
    const TrainResult result = model_run_training(config, args.data, args.tokenizer, "", false, false);
    profile_enable(false);
    double total_seconds = 0.0;
    double matmul_seconds = 0.0;
    double matmul_flops = 0.0;
    const std::vector<ProfileEntry> entries = profile_entries();
    for (const ProfileEntry& entry : entries) {
        total_seconds += entry.seconds;
        if (entry.name == "linear" || entry.name == "linear backward") {
            matmul_seconds += entry.seconds;
            matmul_flops += entry.flops;
        }
    }
    std::cout << "preset         " << args.preset.preset << " (" << args.preset.scale << "), " << args.steps
              << " steps\n"
              << "tokens/s       " << format_count(static_cast<std::int64_t>(result.tokens_per_second)) << "\n"
              << "model GFLOP/s  " << format_fixed(result.model_gflops_per_second, 2)
              << " (training FLOPs per token x tokens/s)\n"
              << "sgemm GFLOP/s  " << format_fixed(sgemm, 2) << " (this machine, " << micro_tokens << "x"
              << shape.mlp_mult * shape.model_dim << "x" << shape.model_dim << ", measured in this run)\n"
              << "whole step     " << format_fixed(100.0 * result.model_gflops_per_second / sgemm, 1) << "% of sgemm\n";
    if (matmul_seconds > 0) {
        const double matmul_gflops = matmul_flops / matmul_seconds / 1e9;
        std::cout << "matmul part    " << format_fixed(matmul_gflops, 2)
                  << " GFLOP/s = " << format_fixed(100.0 * matmul_gflops / sgemm, 1)
                  << "% of sgemm (linear forward + backward)\n";
    }
    std::cout << "\nwhere the time goes (profiled ops, " << format_fixed(total_seconds, 2) << " s):\n";
    for (const ProfileEntry& entry : entries) {
        std::printf("  %-24s %6.1f%%  %8.3f s  %7lld calls", entry.name.c_str(), 100.0 * entry.seconds / total_seconds,
                    entry.seconds, static_cast<long long>(entry.calls));
        if (entry.flops > 0) std::printf("  %7.2f GFLOP/s", entry.flops / entry.seconds / 1e9);
        std::printf("\n");
    }
}

struct KernelBenchArguments {
    std::string device = "cpu";
    std::int64_t tokens = 0;
    std::string filter;
    double min_seconds = 0.05;
    std::string json;
    bool acceptance = false;
};

void model_run_bench_kernels(const KernelBenchArguments& args) {
    KernelBenchOptions options;
    options.device = device_parse(args.device);
    options.tokens = args.tokens;
    options.filter = args.filter;
    options.min_seconds = args.min_seconds;
    const std::vector<KernelBenchRow> rows = kernel_bench_run(options);
    std::cout << kernel_bench_table(rows, options.device);
    if (!args.json.empty()) {
        const std::string json = kernel_bench_json(rows, options.device);
        file_write_bytes(args.json, json.data(), json.size());
    }
    if (!args.acceptance) return;
    const std::vector<std::string> shortfalls =
        kernel_bench_shortfalls(rows, kKernelBenchGemmShareRequired, kKernelBenchMemoryShareRequired);
    for (const std::string& shortfall : shortfalls) std::cout << "below acceptance: " << shortfall << "\n";
    if (!shortfalls.empty()) {
        throw Error("bench kernels: " + std::to_string(shortfalls.size()) + " ops below the acceptance shares");
    }
    std::cout << "acceptance: every GEMM >= 80% of its vendor GEMM, every memory-bound op >= 60% of the copy\n";
}

}  // namespace

void model_commands_register(CLI::App& app) {
    CLI::App* model = app.add_subcommand("model", "Model presets: shapes, parameter counts, FLOPs");
    model->require_subcommand(1);
    auto info = std::make_shared<InfoArguments>();
    CLI::App* info_command = model->add_subcommand(
        "info", "Parameters per optimizer group, virtual-layer schedule and FLOPs per token of a preset");
    preset_add_options(info_command, info->preset);
    info_command->add_flag("--json", info->json, "Print JSON instead of text");
    info_command->add_flag("--keys", info->keys, "Also list every config key and value");
    info_command->callback([info] { model_run_info(*info); });

    auto train = std::make_shared<TrainArguments>();
    CLI::App* train_command = app.add_subcommand(
        "train", "Train a preset on the CPU engine; writes OUT/train.log and OUT/final_model.safetensors");
    preset_add_options(train_command, train->preset);
    train_command->add_option("--seed", train->seed, "Random seed (default: the preset's SEED)");
    train_command->add_option("--data", train->data,
                              "Dataset folder with fineweb_{train,val}_*.bin (default: the preset's DATA_PATH)");
    train_command->add_option("--tokenizer", train->tokenizer, "SentencePiece model (default: TOKENIZER_PATH)");
    train_command->add_option("--out", train->out, "Run folder")->required();
    run_add_device_option(train_command, train->device);
    train_command->callback([train] { model_run_train(*train); });

    CLI::App* bench = app.add_subcommand("bench", "Benchmarks (ratios measured in one run)");
    bench->require_subcommand(1);
    auto bench_train = std::make_shared<BenchArguments>();
    CLI::App* bench_train_command =
        bench->add_subcommand("train", "Training throughput (tokens/s, GFLOP/s) next to this machine's sgemm rate");
    preset_add_options(bench_train_command, bench_train->preset);
    bench_train_command->add_option("--data", bench_train->data, "Dataset folder (default: the preset's DATA_PATH)");
    bench_train_command->add_option("--tokenizer", bench_train->tokenizer, "SentencePiece model");
    bench_train_command->add_option("--steps", bench_train->steps, "Training steps to time")->capture_default_str();
    bench_train_command->callback([bench_train] { model_run_bench(*bench_train); });

    auto kernels = std::make_shared<KernelBenchArguments>();
    CLI::App* kernels_command = bench->add_subcommand(
        "kernels", "Each op at the golf shapes, timed against a copy and the vendor GEMM measured in the same run");
    kernels_command->add_option("--device", kernels->device, "cpu or cuda")->capture_default_str();
    kernels_command->add_option("--tokens", kernels->tokens, "Activation rows (default: 65,536 on cuda, 2,048 on cpu)");
    kernels_command->add_option("--filter", kernels->filter, "Only ops whose name contains this text");
    kernels_command->add_option("--min-seconds", kernels->min_seconds, "Time each op at least this long")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    kernels_command->add_option("--json", kernels->json, "Also write the rows as JSON to this file");
    kernels_command->add_flag("--acceptance", kernels->acceptance,
                              "Exit 1 unless GEMMs reach 80% of the vendor GEMM and memory-bound ops 60% of the copy");
    kernels_command->callback([kernels] { model_run_bench_kernels(*kernels); });
}

}  // namespace pgolf
