// The export pipeline: per-tensor quantizer choice per seed, GPTQ calibration, pruning to a byte target, the
// artifact and code bundle on disk, byte accounting from the written files, and the round-trip evaluation.
#include "model/export.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "core/clock.h"
#include "core/codec.h"
#include "core/digest.h"
#include "core/engine_sources.h"
#include "core/error.h"
#include "core/events.h"
#include "core/file_util.h"
#include "core/progress.h"
#include "core/shard.h"
#include "core/text_format.h"
#include "core/token_stream.h"
#include "core/tokenizer.h"
#include "model/evaluate.h"
#include "model/gpt.h"
#include "model/gptq.h"
#include "model/quantize.h"
#include "model/random.h"
#include "model/ttt.h"

#ifdef PGOLF_WITH_CUDA
#include "core/cuda/gemm.h"
#endif

namespace pgolf {

namespace {

std::string config_string_or(const Config& config, const std::string& key, const std::string& fallback) {
    return config.has(key) ? config.get_string(key) : fallback;
}
std::int64_t config_int_or(const Config& config, const std::string& key, std::int64_t fallback) {
    return config.has(key) ? config.get_int(key) : fallback;
}
double config_double_or(const Config& config, const std::string& key, double fallback) {
    return config.has(key) ? config.get_double(key) : fallback;
}

// Attention and MLP matrices of the blocks, the tensors GPTQ and the int6 searches are for.
bool export_is_block_matrix(const std::string& name) {
    return name.rfind("blocks.", 0) == 0 &&
           (name.find(".attn.c_") != std::string::npos || name.find(".attn.proj.weight") != std::string::npos ||
            name.find(".mlp.fc.weight") != std::string::npos || name.find(".mlp.proj.weight") != std::string::npos);
}

// What a tensor is for the byte report.
std::string export_part_name(const std::string& name, std::int64_t elements, std::int64_t small_limit) {
    if (elements <= small_limit) return "small tensors (passthrough)";
    if (export_is_block_matrix(name)) return "block matrices";
    return "embeddings and other large tensors";
}

struct QuantizeSettings {
    std::int64_t small_limit = quantize_keep_float_max_numel;
    double gptq_damp = 0.01;
    std::int64_t gptq_block_size = 128;
    double sdclip_k = 12.85;
};

// One tensor under a scheme, as the seed's export treats it.
QuantizedTensor export_quantize_tensor(const ExportScheme& scheme, const std::string& name, const Tensor& weight,
                                       const std::map<std::string, Tensor>& hessians,
                                       const QuantizeSettings& settings) {
    const std::int64_t elements = weight.numel();
    const bool matrix = weight.dim() == 2;
    if (elements <= settings.small_limit) {
        // Baseline and S1 keep control tensors in fp32; S2–S4 store every small tensor in fp16.
        const bool keep_f32 =
            (scheme.name == "int8" || scheme.name == "int6-row-search") && quantize_is_control_name(name);
        return quantize_passthrough(name, weight, keep_f32 ? DType::f32 : DType::f16);
    }
    if (scheme.name == "int8") return quantize_int8_clip(name, weight);
    if (!matrix) {
        throw Error("export: " + name + " is a large tensor that is not a matrix; scheme " + scheme.name +
                    " quantizes matrices only");
    }
    const bool block = export_is_block_matrix(name);
    if (scheme.name == "int6-row-search") {
        // Block matrices and the bigram projection as int6 in int8 containers; the embeddings as int8; both searched.
        if (block || name == "bigram.proj.weight") return quantize_row_search(name, weight);
        return quantize_row_search(name, weight, quantize_row_search_quantiles, -128, 127, 127.0);
    }
    if (scheme.name == "int6-tensor-search") {
        return block ? quantize_tensor_search(name, weight) : quantize_int8_clip_rows(name, weight);
    }
    if (scheme.name == "gptq-sdclip" || scheme.name == "gptq-search") {
        const bool sdclip = scheme.name == "gptq-sdclip";
        if (!block) {
            return sdclip ? quantize_sdclip_rows(name, weight, settings.sdclip_k)
                          : quantize_int8_clip_rows(name, weight);
        }
        const auto hessian = hessians.find(name);
        if (hessian == hessians.end()) throw Error("export: no calibration Hessian for " + name);
        GptqOptions options = sdclip ? gptq_options_s3() : gptq_options_s4();
        options.damp = settings.gptq_damp;
        options.block_size = settings.gptq_block_size;
        options.sdclip_k = settings.sdclip_k;
        return gptq_quantize(name, weight, hessian->second, options);
    }
    throw Error("export: unknown scheme " + scheme.name);
}

std::vector<std::string> export_shard_paths(const std::string& data_directory) {
    return shard_glob(data_directory + "/fineweb_train_*.bin");
}

}  // namespace

std::map<std::string, Tensor> export_calibration_hessians(const ExportScheme& scheme, const Config& config, Gpt& model,
                                                          const std::string& data_directory, std::int64_t trained_steps,
                                                          std::int64_t small_limit, double damp,
                                                          const std::function<void(const std::string&)>& log) {
    std::map<std::string, std::unique_ptr<HessianAccumulator>> accumulators;
    for (const auto& [name, tensor] : model.named_tensors()) {
        if (export_is_block_matrix(name) && tensor.numel() > small_limit) {
            accumulators[name] = std::make_unique<HessianAccumulator>(tensor.size(1));
        }
    }
    if (accumulators.empty()) return {};
    // Each input a matrix sees is added as it comes. A block that runs twice in a pass (S3's crawler loops) adds
    // twice, so its sum is divided by twice the batches; GPTQ is invariant to the scale of H (damping is relative to
    // its mean diagonal), so this changes nothing but keeps the inputs from piling up in memory. Matrices fed the same
    // tensor (Q, K and V read one normalised input) share one accumulator: the sums would be identical.
    std::map<std::string, std::string> shares;  // matrix -> the matrix whose accumulator holds its sum
    Tensor previous_input;  // held, so its storage cannot be reused for another tensor while we compare against it
    std::string previous_matrix;
    model.set_matrix_input_observer([&](const std::string& matrix, const Tensor& input, bool repeat) {
        if (repeat && !scheme.hessian_repeats) return;
        const auto found = accumulators.find(matrix);
        if (found == accumulators.end()) return;
        if (previous_input.defined() && input.same_storage(previous_input) &&
            input.raw_data() == previous_input.raw_data() && input.shape() == previous_input.shape()) {
            const std::string& owner = shares.count(previous_matrix) ? shares.at(previous_matrix) : previous_matrix;
            shares[matrix] = owner;
            return;
        }
        previous_input = input;
        previous_matrix = matrix;
        if (shares.count(matrix) == 0) found->second->add(input);
    });
    auto run_batch = [&](const Tensor& inputs, const Tensor& targets) { model.token_losses(nullptr, inputs, targets); };

    const std::int64_t seq_len = config.get_int("TRAIN_SEQ_LEN");
    const std::vector<std::string> shards = export_shard_paths(data_directory);
    if (scheme.calibration == CalibrationSource::random_train_sequences) {
        const std::int64_t sequences = config_int_or(config, "GPTQ_CALIBRATION_SEQUENCES", 64);
        RandomStream random(static_cast<std::uint64_t>(config.get_int("SEED")));
        Progress progress("calibrate", sequences, "sequences");
        for (std::int64_t i = 0; i < sequences; ++i) {
            const std::string& path = shards[random.next_u64() % shards.size()];
            const ShardFile shard = ShardFile::open(path);
            if (shard.token_count() < seq_len + 1) throw Error(path + ": shorter than one calibration sequence");
            const auto offset = static_cast<std::int64_t>(random.next_u64() %
                                                          static_cast<std::uint64_t>(shard.token_count() - seq_len));
            std::vector<std::int64_t> x(static_cast<std::size_t>(seq_len)), y(static_cast<std::size_t>(seq_len));
            const std::span<const std::uint16_t> tokens = shard.tokens();
            token_stream_report_read(path, offset, offset + seq_len + 1);
            for (std::int64_t t = 0; t < seq_len; ++t) {
                x[static_cast<std::size_t>(t)] = tokens[static_cast<std::size_t>(offset + t)];
                y[static_cast<std::size_t>(t)] = tokens[static_cast<std::size_t>(offset + t + 1)];
            }
            run_batch(Tensor::from_ids(x, {1, seq_len}), Tensor::from_ids(y, {1, seq_len}));
            progress.update(i + 1);
        }
        progress.clear();
        if (log)
            log(text_format("gptq:calibration random_train_sequences:%lld seq_len:%lld",
                            static_cast<long long>(sequences), static_cast<long long>(seq_len + 1)));
    } else if (scheme.calibration == CalibrationSource::train_loader) {
        const std::int64_t batches = config_int_or(config, "GPTQ_CALIBRATION_BATCHES", 256);
        const std::int64_t batch_tokens = config.get_int("TRAIN_BATCH_TOKENS");
        const std::int64_t grad_accum = config.get_int("GRAD_ACCUM_STEPS");
        DistributedTokenLoader loader(shards, 0, 1);
        // The seed's loader continues after training: skip the micro-batches training consumed.
        for (std::int64_t i = 0; i < trained_steps * grad_accum; ++i)
            loader.next_batch(batch_tokens, seq_len, grad_accum);
        Progress progress("calibrate", batches, "batches");
        std::int64_t rows = 0;
        for (std::int64_t i = 0; i < batches; ++i) {
            const TokenBatch batch = loader.next_batch(batch_tokens, seq_len, grad_accum);
            run_batch(Tensor::from_ids(batch.inputs, {batch.rows, batch.seq_len}),
                      Tensor::from_ids(batch.targets, {batch.rows, batch.seq_len}));
            rows = batch.rows;
            progress.update(i + 1);
        }
        progress.clear();
        if (log)
            log(text_format("gptq:calibration train_loader_batches:%lld sequences_per_batch:%lld after_steps:%lld",
                            static_cast<long long>(batches), static_cast<long long>(rows),
                            static_cast<long long>(trained_steps)));
    } else {
        throw Error("export: scheme " + scheme.name + " needs calibration data but names no source");
    }
    model.set_matrix_input_observer({});
    std::map<std::string, Tensor> hessians;
    for (const auto& [name, accumulator] : accumulators) {
        if (shares.count(name) == 0) hessians[name] = accumulator->hessian(damp, DType::f32);
    }
    for (const auto& [name, owner] : shares) hessians[name] = hessians.at(owner);
    return hessians;
}

const std::vector<ExportScheme>& export_schemes() {
    static const std::vector<ExportScheme> schemes = {
        {"int8", "baseline", "per-row int8, 99.99984th-percentile clip; small tensors fp32 (control) / fp16", "zlib-9",
         "int8", CalibrationSource::none, false},
        {"int6-row-search", "S1",
         "int6 in int8 containers, per-row 5-quantile search; other large tensors int8 searched; small fp32/fp16",
         "zstd-22", "int6", CalibrationSource::none, false},
        {"int6-tensor-search", "S2",
         "block matrices int6 ±31 with one searched quantile per tensor; embeddings int8 clip; small fp16", "xz-6",
         "int6", CalibrationSource::none, false},
        {"gptq-sdclip", "S3",
         "GPTQ with SDClip row scales (k·std) on block matrices, int6 SDClip elsewhere; small fp16; ±1 pruning",
         "brotli-11", "int6", CalibrationSource::random_train_sequences, true},
        {"gptq-search", "S4",
         "GPTQ with a per-tensor quantile search on block matrices; embeddings int8 clip; small fp16; ±1 pruning",
         "xz-9", "int6", CalibrationSource::train_loader, false},
    };
    return schemes;
}

const ExportScheme& export_find_scheme(const std::string& name) {
    std::string known;
    for (const ExportScheme& scheme : export_schemes()) {
        if (scheme.name == name) return scheme;
        known += (known.empty() ? "" : ", ") + scheme.name;
    }
    throw Error("unknown export scheme '" + name + "' (known: " + known + ")");
}

NamedTensors export_dequantize(const Artifact& artifact) {
    NamedTensors weights;
    for (const QuantizedTensor& tensor : artifact.tensors)
        weights.emplace_back(tensor.name, quantized_dequantize(tensor));
    return weights;
}

ExportResult export_run(const ExportOptions& options) {
    const Config& config = options.config;
    auto log = [&](const std::string& line) {
        if (options.log) options.log(line);
    };
    const ExportScheme& scheme =
        export_find_scheme(options.scheme.empty() ? config_string_or(config, "EXPORT_SCHEME", "int8") : options.scheme);
    const std::string codec_text = !options.codec.empty()   ? options.codec
                                   : options.scheme.empty() ? config_string_or(config, "EXPORT_CODEC", scheme.codec)
                                                            : scheme.codec;
    const CodecSpec codec = codec_parse_spec(codec_text);
    // The run's own scheme takes the run's EXPORT_PRUNE_TARGET and GPTQ_DAMP; another scheme tried on the run takes
    // that seed's damping and no pruning target.
    const bool own_scheme = options.scheme.empty() || options.scheme == config_string_or(config, "EXPORT_SCHEME", "");
    const double scheme_damp = scheme.name == "gptq-search" ? gptq_damp_s4 : gptq_damp_s3;
    QuantizeSettings settings;
    settings.small_limit = config_int_or(config, "EXPORT_MIN_NUMEL", quantize_keep_float_max_numel);
    settings.gptq_damp = own_scheme ? config_double_or(config, "GPTQ_DAMP", scheme_damp) : scheme_damp;
    settings.gptq_block_size = config_int_or(config, "GPTQ_BLOCK_SIZE", 128);
    settings.sdclip_k = config_double_or(config, "SDCLIP_K", quantize_sdclip_k);
    const std::int64_t prune_target = own_scheme ? config_int_or(config, "EXPORT_PRUNE_TARGET", 0) : 0;
    if (options.output_directory.empty()) throw Error("export: an output folder is required");
    std::filesystem::create_directories(options.output_directory);

    ExportResult result;
    result.scheme = scheme.name;
    result.codec = codec.name();
    const std::string format_label = scheme.bits_label + "+" + codec_kind_name(codec.kind);
    log("export:scheme " + scheme.name + " (" + scheme.seed + ") codec:" + codec.name() +
        " small_tensor_limit:" + std::to_string(settings.small_limit));

    Gpt model(GptConfig::from_config(config));
    model.load_named_tensors(options.weights);

    // S4's "discriminative pre-quant TTT" (SEED-SYSTEMS.md §5.3) trains on the validation stream before anything is
    // scored: the gate refuses it in enforce mode before any update and records it in observe mode.
    const std::int64_t prequant_epochs = config_int_or(config, "PREQUANT_TTT_EPOCHS", 0);
    if (prequant_epochs > 0) {
        events_emit(event_names::stage, {{"stage", "prequant_ttt"}, {"epochs", prequant_epochs}});
        const std::int64_t seq_len = config.get_int("TRAIN_SEQ_LEN");
        ValidationGate gate(
            validation_tokens_load(shard_glob(options.data_directory + "/fineweb_val_*.bin"), seq_len),
            Tokenizer::load(options.tokenizer_path).byte_tables(static_cast<int>(model.config().vocab_size)),
            options.gate);
        PrequantTttOptions prequant;
        prequant.epochs = prequant_epochs;
        prequant.lr = config_double_or(config, "PREQUANT_TTT_LR", 5e-4);
        prequant.seq_len = seq_len;
        const Stopwatch stopwatch;
        const PrequantTttResult adapted = ttt_prequant_adamw(model, gate, prequant, log);
        result.violations = gate.violations();
        for (const GateViolation& violation : result.violations) {
            log("gate_violation rule:" + violation.rule + " " + violation.message);
        }
        log(text_format(
            "prequant_ttt: epochs:%lld steps:%lld time:%.0fms (trained on validation tokens before scoring "
            "them: not compliant, COMPLIANCE.md L6)",
            static_cast<long long>(adapted.epochs_run), static_cast<long long>(adapted.steps), stopwatch.elapsed_ms()));
    }

    // Calibration (GPTQ schemes) reads training data, never validation data.
    std::map<std::string, Tensor> hessians;
    if (scheme.calibration != CalibrationSource::none) {
        events_emit(event_names::stage, {{"stage", "calibrate"}, {"scheme", scheme.name}});
        const Stopwatch stopwatch;
        hessians = export_calibration_hessians(scheme, config, model, options.data_directory, options.trained_steps,
                                               settings.small_limit, settings.gptq_damp, log);
        log(text_format("gptq:hessians matrices:%zu damp:%g time:%.0fms", hessians.size(), settings.gptq_damp,
                        stopwatch.elapsed_ms()));
    }

    events_emit(event_names::stage, {{"stage", "serialize"}, {"scheme", scheme.name}, {"codec", codec.name()}});
    const NamedTensors weights = model.named_tensors();
    Artifact artifact;
    artifact.scheme = scheme.name;
    artifact.metadata = {{"format_label", format_label},
                         {"config", config.values().dump()},
                         {"config_digest", config.digest()},
                         {"engine_digest", engine_code_size().digest},
                         {"source", options.source_description}};
    {
        const Stopwatch stopwatch;
        Progress progress("quantize", static_cast<std::int64_t>(weights.size()), "tensors");
        for (const auto& [name, weight] : weights) {
            artifact.tensors.push_back(export_quantize_tensor(scheme, name, weight.to(DType::f32), hessians, settings));
            progress.update(static_cast<std::int64_t>(artifact.tensors.size()));
        }
        progress.clear();
        log(text_format("quantize:done tensors:%zu time:%.0fms", artifact.tensors.size(), stopwatch.elapsed_ms()));
    }

    // The counted code ships next to the artifact; its size comes from the file written.
    const EngineCodeSize& code = engine_code_size();
    result.code_bundle_path = options.output_directory + "/engine-source.tar.xz";
    const std::vector<std::uint8_t>& bundle = engine_source_bundle();
    file_write_bytes(result.code_bundle_path, bundle.data(), bundle.size());
    result.code_raw_bytes = code.raw_bytes;
    result.code_bytes = static_cast<std::int64_t>(std::filesystem::file_size(result.code_bundle_path));

    if (prune_target > 0) {
        const PruneResult prune = quantize_prune_to_target(
            artifact.tensors,
            [&](const std::vector<QuantizedTensor>& tensors) {
                Artifact candidate = artifact;
                candidate.tensors = tensors;
                return static_cast<std::int64_t>(artifact_compress(candidate, codec).size()) + result.code_bytes;
            },
            prune_target);
        result.pruned = prune.pruned;
        log(text_format("prune:target %lld bytes before:%lld after:%lld pruned:%lld%s",
                        static_cast<long long>(prune_target), static_cast<long long>(prune.bytes_before),
                        static_cast<long long>(prune.bytes_after), static_cast<long long>(prune.pruned),
                        prune.reached ? "" : " (target not reached)"));
    }

    const std::vector<ArtifactTensorBytes> tensor_bytes = artifact_tensor_bytes(artifact);
    for (std::size_t t = 0; t < artifact.tensors.size(); ++t) {
        const QuantizedTensor& tensor = artifact.tensors[t];
        const std::string part = export_part_name(tensor.name, shape_numel(tensor.shape), settings.small_limit);
        auto found =
            std::find_if(result.parts.begin(), result.parts.end(), [&](const ExportPart& p) { return p.name == part; });
        if (found == result.parts.end()) {
            result.parts.push_back(ExportPart{part, 0, 0, 0});
            found = result.parts.end() - 1;
        }
        found->tensors += 1;
        found->elements += shape_numel(tensor.shape);
        found->raw_bytes += tensor_bytes[t].values_bytes + tensor_bytes[t].scales_bytes;
    }

    result.container_bytes = static_cast<std::int64_t>(artifact_encode(artifact).size());
    result.artifact_path = options.output_directory + "/final_model." + scheme.name + ".pga";
    artifact_write(result.artifact_path, artifact, codec);
    result.model_bytes = static_cast<std::int64_t>(std::filesystem::file_size(result.artifact_path));
    result.total_bytes = result.model_bytes + result.code_bytes;
    result.margin_bytes = artifact_cap_bytes - result.total_bytes;
    log("Serialized model: " + std::to_string(result.container_bytes) + " bytes (container)");
    log("Serialized model " + format_label + ": " + std::to_string(result.model_bytes) + " bytes");
    log("Code size (uncompressed): " + std::to_string(result.code_raw_bytes) + " bytes (" + std::to_string(code.files) +
        " engine source files)");
    log("Code size (compressed): " + std::to_string(result.code_bytes) + " bytes (" + engine_source_codec + ")");
    log("Total submission size " + format_label + ": " + std::to_string(result.total_bytes) + " bytes");
    log(text_format("artifact_margin: %lld bytes %s the 16,000,000-byte cap",
                    static_cast<long long>(result.margin_bytes), result.margin_bytes >= 0 ? "under" : "OVER"));

    if (options.evaluate) {
        events_emit(event_names::stage, {{"stage", "evaluate"}});
        // Both scores go through the validation gate with plain windows, as the reference's eval_val.
        ArtifactEvalOptions plain;
        plain.mode = EvalMode::plain;
        const ArtifactEvaluation before = export_evaluate_model(model, config, options.data_directory,
                                                                options.tokenizer_path, plain, "prequant", {}, {});
        result.prequant_val_loss = before.val_loss;
        result.prequant_val_bpb = before.val_bpb;
        log(text_format("diagnostic pre-quantization val_loss:%.4f val_bpb:%.4f", before.val_loss, before.val_bpb));

        // The round trip reads the artifact back from disk: what is scored is what ships.
        const Stopwatch stopwatch;
        const ArtifactFile file = artifact_read(result.artifact_path);
        model.load_named_tensors(export_dequantize(file.artifact));
        const std::string label = scheme.name == "int8" ? "int8_" + codec_kind_name(codec.kind) : scheme.bits_label;
        const ArtifactEvaluation after =
            export_evaluate_model(model, config, options.data_directory, options.tokenizer_path, plain, label, {}, log);
        result.roundtrip_eval_ms = stopwatch.elapsed_ms();
        result.roundtrip_val_loss = after.val_loss;
        result.roundtrip_val_bpb = after.val_bpb;
        result.evaluated = true;
        log(text_format("quantization_gap val_bpb:%+.6f val_loss:%+.6f", after.val_bpb - before.val_bpb,
                        after.val_loss - before.val_loss));
    }

    nlohmann::json report = {{"scheme", result.scheme},
                             {"codec", result.codec},
                             {"format_label", format_label},
                             {"artifact", std::filesystem::path(result.artifact_path).filename().string()},
                             {"code_bundle", std::filesystem::path(result.code_bundle_path).filename().string()},
                             {"container_bytes", result.container_bytes},
                             {"model_bytes", result.model_bytes},
                             {"code_raw_bytes", result.code_raw_bytes},
                             {"code_bytes", result.code_bytes},
                             {"code_files", code.files},
                             {"engine_digest", code.digest},
                             {"total_bytes", result.total_bytes},
                             {"cap_bytes", artifact_cap_bytes},
                             {"margin_bytes", result.margin_bytes},
                             {"pruned", result.pruned},
                             {"gate_violations", nlohmann::json::array()},
                             {"parts", nlohmann::json::array()}};
    for (const GateViolation& violation : result.violations) {
        report["gate_violations"].push_back({{"rule", violation.rule},
                                             {"message", violation.message},
                                             {"begin", violation.begin},
                                             {"end", violation.end}});
    }
    for (const ExportPart& part : result.parts) {
        report["parts"].push_back({{"name", part.name},
                                   {"tensors", part.tensors},
                                   {"elements", part.elements},
                                   {"raw_bytes", part.raw_bytes}});
    }
    if (result.evaluated) {
        report["prequant"] = {{"val_loss", result.prequant_val_loss}, {"val_bpb", result.prequant_val_bpb}};
        report["roundtrip"] = {{"val_loss", result.roundtrip_val_loss},
                               {"val_bpb", result.roundtrip_val_bpb},
                               {"eval_ms", result.roundtrip_eval_ms}};
    }
    const std::string text = report.dump(2) + "\n";
    file_write_bytes(options.output_directory + "/export.json", text.data(), text.size());
    return result;
}

EvalMode eval_mode_parse(const std::string& name) {
    if (name == "plain") return EvalMode::plain;
    if (name == "sliding") return EvalMode::sliding;
    if (name == "ttt") return EvalMode::ttt;
    throw Error("unknown evaluation mode '" + name + "' (known: plain, sliding, ttt)");
}

std::string export_artifact_label(const Artifact& artifact) {
    const auto format = artifact.metadata.find("format_label");
    if (format == artifact.metadata.end()) return "artifact";
    if (format->second == "int8+zlib") return "int8_zlib";
    return format->second.substr(0, format->second.find('+'));
}

Gpt export_load_artifact_model(const ArtifactFile& file, const Config& config) {
    Gpt model(GptConfig::from_config(config));
    model.load_named_tensors(export_dequantize(file.artifact));
    return model;
}

ArtifactEvaluation export_evaluate_model(Gpt& model, const Config& config, const std::string& data_directory,
                                         const std::string& tokenizer_path, const ArtifactEvalOptions& options,
                                         const std::string& label, const std::vector<std::uint16_t>& tokens,
                                         const std::function<void(const std::string&)>& log) {
#ifdef PGOLF_WITH_CUDA
    // On the GPU, scoring (and TTT) multiply with bf16 products as the reference's autocast evaluation does.
    const CudaMatmulPrecisionGuard precision(model.device() == Device::cuda ? CudaMatmulPrecision::bf16
                                                                            : cuda_matmul_precision());
#endif
    const std::int64_t seq_len = config.get_int("TRAIN_SEQ_LEN");
    const TokenizerByteTables tables =
        Tokenizer::load(tokenizer_path).byte_tables(static_cast<int>(model.config().vocab_size));
    std::vector<std::uint16_t> stream = tokens;
    if (stream.empty()) {
        // Plain windows score the stream truncated to whole sequences (eval_val); sliding windows the whole stream.
        stream = validation_tokens_load(shard_glob(data_directory + "/fineweb_val_*.bin"),
                                        options.mode == EvalMode::plain ? seq_len : 1);
    }
    if (options.max_tokens > 0 && static_cast<std::int64_t>(stream.size()) > options.max_tokens) {
        stream.resize(static_cast<std::size_t>(options.max_tokens));
    }
    SlidingWindowOptions windows;
    windows.window = options.mode == EvalMode::plain || options.window <= 0 ? seq_len : options.window;
    windows.stride = options.mode == EvalMode::plain ? windows.window
                     : options.stride > 0            ? options.stride
                                                     : config_int_or(config, "EVAL_STRIDE", 64);
    windows.batch_windows =
        std::max<std::int64_t>(1, config.get_int("VAL_BATCH_SIZE") /
                                      (config.get_int("WORLD_SIZE") * config.get_int("GRAD_ACCUM_STEPS")) / seq_len);
    windows.reference_end_quirk = options.reference_end_quirk;

    const std::string digest = ttt_digest_weights(model);  // names the weights in the gate's score events
    ValidationGate gate(std::move(stream), tables, options.gate);
    const Stopwatch stopwatch;
    SlidingWindowResult result;
    std::string ttt_summary;
    if (options.mode == EvalMode::ttt) {
        TttOptions ttt;
        ttt.chunk_tokens = config_int_or(config, "TTT_CHUNK_TOKENS", 32768);
        ttt.epochs = config_int_or(config, "TTT_EPOCHS", 3);
        ttt.lr = config_double_or(config, "TTT_LR", 0.002);
        ttt.momentum = config_double_or(config, "TTT_MOMENTUM", 0.9);
        ttt.batch_sequences = config_int_or(config, "TTT_BATCH_SEQS", 32);
        ttt.seq_len = seq_len;
        ttt.grad_clip = config_double_or(config, "TTT_GRAD_CLIP", 1.0);
        const std::string frozen = config_string_or(config, "TTT_FREEZE_BLOCKS", "");
        ttt.frozen_blocks = config_parse_int_list("TTT_FREEZE_BLOCKS", frozen);
        const std::string optimizer = config_string_or(config, "TTT_OPTIMIZER", "sgd");
        if (optimizer != "sgd" && optimizer != "muon_style")
            throw Error("config: TTT_OPTIMIZER must be sgd or muon_style");
        ttt.optimizer = optimizer == "sgd" ? TttOptimizerKind::sgd : TttOptimizerKind::muon_style;
        const std::string entropy = config_string_or(config, "TTT_ENTROPY_EPOCHS", "off");
        if (entropy != "off" && entropy != "as_ran" && entropy != "intended") {
            throw Error("config: TTT_ENTROPY_EPOCHS must be off, as_ran or intended");
        }
        ttt.entropy_epochs = entropy == "off"      ? TttEntropyEpochs::off
                             : entropy == "as_ran" ? TttEntropyEpochs::as_ran
                                                   : TttEntropyEpochs::intended;
        ttt.sliding = windows;
        const TttResult adapted = ttt_score_first(model, gate, ttt);
        result.totals = adapted.totals;
        result.windows = adapted.windows;
        ttt_summary = text_format(
            "ttt:score_first optimizer:%s chunks:%lld adapted:%lld epochs:%lld steps:%lld "
            "frozen_blocks:[%s] scoring_time:%.0fms adaptation_time:%.0fms",
            optimizer.c_str(), static_cast<long long>(adapted.chunks), static_cast<long long>(adapted.chunks_adapted),
            static_cast<long long>(adapted.epochs_run), static_cast<long long>(adapted.steps), frozen.c_str(),
            adapted.scoring_ms, adapted.adaptation_ms);
    } else {
        Progress progress("evaluate", 0, "windows");
        result = evaluate_sliding_window(model, gate, windows, digest,
                                         [&progress](std::int64_t done, std::int64_t) { progress.update(done); });
        progress.clear();
    }
    ArtifactEvaluation evaluation;
    evaluation.eval_ms = stopwatch.elapsed_ms();
    evaluation.val_loss = result.totals.val_loss();
    evaluation.val_bpb = result.totals.val_bpb();
    evaluation.targets = result.totals.targets;
    evaluation.bytes = result.totals.bytes;
    evaluation.rescored = result.totals.rescored;
    evaluation.unscored = result.totals.unscored;
    evaluation.windows = result.windows;
    evaluation.violations = gate.violations();
    evaluation.target_nll = gate.target_nll();
    if (log) {
        const std::string name = options.mode == EvalMode::plain     ? label + "_roundtrip"
                                 : options.mode == EvalMode::sliding ? label + "_sliding_window"
                                                                     : std::string("ttt_sliding");
        if (!ttt_summary.empty()) log(ttt_summary);
        log(
            text_format("final_eval_mode:%s window:%lld stride:%lld gate:%s windows:%lld scored_targets:%lld "
                        "rescored:%lld unscored:%lld bytes:%lld",
                        options.mode == EvalMode::plain     ? "plain"
                        : options.mode == EvalMode::sliding ? "sliding_window"
                                                            : "score_first_ttt",
                        static_cast<long long>(windows.window), static_cast<long long>(windows.stride),
                        gate_mode_name(options.gate).c_str(), static_cast<long long>(result.windows),
                        static_cast<long long>(evaluation.targets), static_cast<long long>(evaluation.rescored),
                        static_cast<long long>(evaluation.unscored), static_cast<long long>(evaluation.bytes)));
        for (const GateViolation& violation : evaluation.violations) {
            log("gate_violation rule:" + violation.rule + " " + violation.message);
        }
        // The reference's shapes: eval_val's line has no stride, the sliding one names it.
        const std::string stride = options.mode == EvalMode::plain ? "" : " stride:" + std::to_string(windows.stride);
        log(text_format("final_%s val_loss:%.4f val_bpb:%.4f%s eval_time:%.0fms", name.c_str(), evaluation.val_loss,
                        evaluation.val_bpb, stride.c_str(), evaluation.eval_ms));
        log(text_format("final_%s_exact val_loss:%.8f val_bpb:%.8f", name.c_str(), evaluation.val_loss,
                        evaluation.val_bpb));
    }
    return evaluation;
}

ArtifactEvaluation export_evaluate_artifact(const std::string& artifact_path, const Config& config,
                                            const std::string& data_directory, const std::string& tokenizer_path,
                                            const ArtifactEvalOptions& options,
                                            const std::function<void(const std::string&)>& log) {
    const Stopwatch stopwatch;
    const ArtifactFile file = artifact_read(artifact_path);
    Gpt model = export_load_artifact_model(file, config);
    model.to_device(options.device);
    const double deserialize_ms = stopwatch.elapsed_ms();
    if (log) {
        log(text_format("artifact: %s scheme:%s codec:%s bytes:%lld tensors:%zu deserialize_time:%.0fms",
                        artifact_path.c_str(), file.artifact.scheme.c_str(), codec_kind_name(file.codec).c_str(),
                        static_cast<long long>(file.file_bytes), file.artifact.tensors.size(), deserialize_ms));
    }
    ArtifactEvaluation evaluation = export_evaluate_model(model, config, data_directory, tokenizer_path, options,
                                                          export_artifact_label(file.artifact), {}, log);
    evaluation.deserialize_ms = deserialize_ms;
    if (log) {
        // The CPU engine compiles nothing and captures no graph, so there is no warm-up; no diagnostic evaluation runs.
        log(text_format("eval_timing: deserialize:%.0fms warmup:0ms timed_eval:%.0fms diagnostics:0ms",
                        evaluation.deserialize_ms, evaluation.eval_ms));
    }
    return evaluation;
}

}  // namespace pgolf
