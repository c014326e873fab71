// Export: a trained model becomes the artifact a submission ships. Each seed's scheme (SEED-SYSTEMS.md §1.4, §2.4,
// §3.4, §4.4, §5.4) picks a quantizer per tensor, calibrates GPTQ where the seed did, prunes to a byte target where
// it did, writes the versioned container with the seed's codec, ships the engine's source bundle as the counted
// code, and evaluates the round trip. Sizes are measured from the files written (docs/code-bytes.md).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "model/artifact.h"
#include "model/config.h"
#include "model/gpt.h"
#include "model/optim.h"
#include "model/validation_gate.h"

namespace pgolf {

// The challenge's cap on code bytes + compressed model bytes (decimal; COMPLIANCE.md A1).
inline constexpr std::int64_t artifact_cap_bytes = 16'000'000;

enum class CalibrationSource {
    none,
    random_train_sequences,  // S3: sequences of T+1 tokens at random offsets in random training shards
    train_loader,            // S4: batches from the training loader, continuing where training stopped
};

struct ExportScheme {
    std::string name;         // "int8", "int6-row-search", "int6-tensor-search", "gptq-sdclip", "gptq-search"
    std::string seed;         // whose export it is
    std::string description;  // one line
    std::string codec;        // the seed's codec
    std::string bits_label;   // "int8" or "int6": the log lines' format label
    CalibrationSource calibration = CalibrationSource::none;
    bool hessian_repeats = false;  // whether re-runs of a block add to its Hessian (S3 yes, S4 no)
};

const std::vector<ExportScheme>& export_schemes();
const ExportScheme& export_find_scheme(const std::string& name);  // throws listing the known names

struct ExportOptions {
    Config config;         // the run's config (EXPORT_* and GPTQ_* keys, model shape, SEED, data keys)
    NamedTensors weights;  // the trained weights under Gpt::named_tensors() names
    std::string scheme;    // empty: the config's EXPORT_SCHEME
    std::string codec;     // empty: the config's EXPORT_CODEC
    std::string data_directory;
    std::string tokenizer_path;
    std::string output_directory;    // gets the artifact, the code bundle, export.log and export.json
    std::string source_description;  // recorded in the artifact's metadata (the checkpoint it came from)
    std::int64_t trained_steps = 0;  // the training loader continues after steps × GRAD_ACCUM_STEPS micro-batches
    bool evaluate = true;            // pre-quantization and round-trip validation
    // Gate mode for S4's pre-quant TTT (PREQUANT_TTT_EPOCHS > 0), which trains on validation tokens before scoring
    // them: enforce refuses it before any update; observe runs it and records the C3 violation.
    GateMode gate = GateMode::enforce;
    std::function<void(const std::string&)> log;
};

// Raw bytes of one kind of tensor in the container (before compression).
struct ExportPart {
    std::string name;  // "block matrices", "embeddings and other large tensors", "small tensors (passthrough)"
    std::int64_t tensors = 0;
    std::int64_t elements = 0;
    std::int64_t raw_bytes = 0;  // values + scales
};

struct ExportResult {
    std::string scheme;
    std::string codec;
    std::string artifact_path;
    std::string code_bundle_path;
    std::int64_t container_bytes = 0;  // uncompressed container
    std::int64_t model_bytes = 0;      // the artifact file
    std::int64_t code_raw_bytes = 0;   // the engine sources, uncompressed
    std::int64_t code_bytes = 0;       // the code bundle file (counted)
    std::int64_t total_bytes = 0;      // model_bytes + code_bytes
    std::int64_t margin_bytes = 0;     // artifact_cap_bytes − total_bytes (negative: over the cap)
    std::vector<ExportPart> parts;
    std::int64_t pruned = 0;                // ±1 entries set to zero
    std::vector<GateViolation> violations;  // observe mode: what the gate recorded (pre-quant TTT)
    bool evaluated = false;
    double prequant_val_loss = 0.0, prequant_val_bpb = 0.0;
    double roundtrip_val_loss = 0.0, roundtrip_val_bpb = 0.0;
    double roundtrip_eval_ms = 0.0;
};

ExportResult export_run(const ExportOptions& options);

// GPTQ's Hessians for the block matrices with more than small_limit elements: the model runs forward over the
// scheme's calibration data from the training shards in data_directory (S3: GPTQ_CALIBRATION_SEQUENCES random
// sequences; S4: GPTQ_CALIBRATION_BATCHES batches of the training stream after trained_steps steps) while an observer
// adds each matrix input's XᵀX; then damp·mean(diag) is added. Matrices fed the same input share one Hessian.
std::map<std::string, Tensor> export_calibration_hessians(const ExportScheme& scheme, const Config& config, Gpt& model,
                                                          const std::string& data_directory, std::int64_t trained_steps,
                                                          std::int64_t small_limit, double damp,
                                                          const std::function<void(const std::string&)>& log);

// The weights an artifact restores, f32, under the tensors' names.
NamedTensors export_dequantize(const Artifact& artifact);

enum class EvalMode { plain, sliding, ttt };
EvalMode eval_mode_parse(const std::string& name);  // "plain", "sliding", "ttt" (score-first TTT + sliding windows)

struct ArtifactEvalOptions {
    EvalMode mode = EvalMode::sliding;
    std::int64_t window = 0;  // 0: TRAIN_SEQ_LEN (plain windows are always TRAIN_SEQ_LEN)
    std::int64_t stride = 0;  // 0: EVAL_STRIDE (64)
    GateMode gate = GateMode::enforce;
    bool reference_end_quirk = false;  // sliding: the reference's end-of-stream double counting (observe only)
    std::int64_t max_tokens = 0;       // > 0: only the first tokens of the stream (probes, quick looks)
    Device device = Device::cpu;       // where the model scores (and adapts, for TTT)
};

struct ArtifactEvaluation {
    double val_loss = 0.0;
    double val_bpb = 0.0;
    std::int64_t targets = 0;  // committed target terms
    std::int64_t bytes = 0;
    std::int64_t rescored = 0;  // targets scored more than once (the reference's end quirk)
    std::int64_t unscored = 0;
    std::int64_t windows = 0;
    std::vector<GateViolation> violations;
    std::vector<float> target_nll;  // per position, as the gate recorded it
    double deserialize_ms = 0.0;
    double eval_ms = 0.0;
};

// The label of the reference's final lines for an artifact: int8_zlib for the baseline's export, else the bit width
// ("int6"), from the format label in its metadata; "artifact" when it has none.
std::string export_artifact_label(const Artifact& artifact);

// The model an artifact restores, built from config.
Gpt export_load_artifact_model(const ArtifactFile& file, const Config& config);

// Scores a model on the validation split through the validation gate: plain non-overlapping TRAIN_SEQ_LEN windows on
// the stream truncated as the reference's eval_val does, sliding windows (T, S) on the whole stream, or score-first
// TTT over sliding windows with the config's TTT_* keys (which adapts the model). Logs the reference's final lines
// (final_<label>_roundtrip, final_<label>_sliding_window, final_ttt_sliding, each with an _exact twin) and the
// scored-target count. tokens: the stream to score (empty: load the split from data_directory).
ArtifactEvaluation export_evaluate_model(Gpt& model, const Config& config, const std::string& data_directory,
                                         const std::string& tokenizer_path, const ArtifactEvalOptions& options,
                                         const std::string& label, const std::vector<std::uint16_t>& tokens,
                                         const std::function<void(const std::string&)>& log);

// Loads an artifact file into a model built from config and scores it (export_evaluate_model).
ArtifactEvaluation export_evaluate_artifact(const std::string& artifact_path, const Config& config,
                                            const std::string& data_directory, const std::string& tokenizer_path,
                                            const ArtifactEvalOptions& options,
                                            const std::function<void(const std::string&)>& log);

}  // namespace pgolf
