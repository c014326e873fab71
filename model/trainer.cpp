// The reference training loop, step for step, on the CPU engine or one GPU.
#include "model/trainer.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "core/clock.h"
#include "core/device.h"
#include "core/device_ops.h"
#include "core/error.h"
#include "core/events.h"
#include "core/profile.h"
#include "core/progress.h"
#include "core/safetensors.h"
#include "core/shard.h"
#include "core/text_format.h"
#include "core/token_stream.h"
#include "core/tokenizer.h"
#include "model/averaging.h"
#include "model/evaluate.h"
#include "model/gpt.h"
#include "model/optim.h"
#include "model/schedule.h"

#ifdef PGOLF_WITH_CUDA
#include "core/cuda/gemm.h"
#endif

namespace pgolf {

namespace {

// MFU's denominator: the dense bf16 tensor-core peak of one H100/H200 SXM (989 TFLOP/s, PERFORMANCE.md). The numerator
// is Gpt::training_flops_per_token (6 × matmul parameters run per token, re-runs counted, + 6·layers·T·D for causal
// attention) × tokens/s.
constexpr double kGpuBf16PeakFlopsPerSecond = 989e12;

// The reference's optimizer split: token embedding and untied head on Adam, block matrices on Muon, vectors and
// control tensors (resid_mix, scales, q_gain, skip weights) on Adam with SCALAR_LR.
struct OptimizerSet {
    Adam embedding;
    Adam head;
    Muon matrices;
    Adam scalars;
    // Per optimizer parameter, the model parameter it mirrors (gradients are rebound before every step).
    std::vector<std::pair<OptimParam*, const Var*>> bindings;
    std::vector<std::pair<Optimizer*, double>> base_lrs;  // (optimizer, base lr) for group 0 of each used optimizer

    std::vector<Optimizer*> all() { return {&embedding, &head, &matrices, &scalars}; }

    void bind_gradients() {
        for (auto& [param, var] : bindings) param->grad = var->has_grad() ? var->grad() : Tensor();
    }
};

std::unique_ptr<OptimizerSet> trainer_make_optimizers(const Gpt& model, const Config& config) {
    auto set = std::make_unique<OptimizerSet>();
    std::vector<OptimParam> embedding, head, matrices, scalars;
    std::vector<const Var*> embedding_vars, head_vars, matrix_vars, scalar_vars;
    for (const Parameter& parameter : model.parameters()) {
        OptimParam param{parameter.name, parameter.var.value(), Tensor()};
        switch (parameter.group) {
            case ParameterGroup::embedding:
                embedding.push_back(param);
                embedding_vars.push_back(&parameter.var);
                break;
            case ParameterGroup::head:
                head.push_back(param);
                head_vars.push_back(&parameter.var);
                break;
            case ParameterGroup::matrix:
                matrices.push_back(param);
                matrix_vars.push_back(&parameter.var);
                break;
            case ParameterGroup::scalar:
                scalars.push_back(param);
                scalar_vars.push_back(&parameter.var);
                break;
            case ParameterGroup::frozen:
                break;  // in no optimizer, as S3's α
        }
    }
    AdamOptions adam;
    adam.beta1 = config.get_double("BETA1");
    adam.beta2 = config.get_double("BETA2");
    adam.eps = config.get_double("ADAM_EPS");
    // The seeds' AdamW groups (decoupled decay); the baseline's plain Adam has none.
    adam.weight_decay = config.has("ADAM_WD") ? config.get_double("ADAM_WD") : 0.0;
    adam.decoupled_weight_decay = adam.weight_decay > 0;

    adam.lr = config.get_bool("TIE_EMBEDDINGS") ? config.get_double("TIED_EMBED_LR") : config.get_double("EMBED_LR");
    set->embedding.add_group(embedding, adam);
    set->base_lrs.emplace_back(&set->embedding, adam.lr);
    if (!head.empty()) {
        adam.lr = config.get_double("HEAD_LR");
        set->head.add_group(head, adam);
        set->base_lrs.emplace_back(&set->head, adam.lr);
    }
    MuonOptions muon;
    muon.lr = config.get_double("MATRIX_LR");
    muon.momentum = config.get_double("MUON_MOMENTUM");
    muon.backend_steps = static_cast<int>(config.get_int("MUON_BACKEND_STEPS"));
    const std::string precision = config.get_string("MUON_PRECISION");
    if (precision != "bf16" && precision != "f32") throw Error("config: MUON_PRECISION must be bf16 or f32");
    muon.precision = precision == "bf16" ? MuonPrecision::bf16 : MuonPrecision::f32;
    muon.weight_decay = config.has("MUON_WD") ? config.get_double("MUON_WD") : 0.0;
    muon.bf16_state = config.has("MUON_BF16_STATE") && config.get_bool("MUON_BF16_STATE");
    const std::string order = config.has("MUON_WD_ORDER") ? config.get_string("MUON_WD_ORDER") : "before";
    if (order != "before" && order != "after") throw Error("config: MUON_WD_ORDER must be before or after");
    muon.decay_order = order == "after" ? WeightDecayOrder::after_update : WeightDecayOrder::before_update;
    set->matrices.add_group(matrices, muon);
    set->base_lrs.emplace_back(&set->matrices, muon.lr);
    adam.lr = config.get_double("SCALAR_LR");
    set->scalars.add_group(scalars, adam);
    set->base_lrs.emplace_back(&set->scalars, adam.lr);

    auto bind = [&](Optimizer& optimizer, const std::vector<const Var*>& vars) {
        if (optimizer.group_count() == 0) return;
        std::vector<OptimParam>& params = optimizer.group_params(0);
        for (std::size_t i = 0; i < params.size(); ++i) set->bindings.emplace_back(&params[i], vars[i]);
    };
    bind(set->embedding, embedding_vars);
    bind(set->head, head_vars);
    bind(set->matrices, matrix_vars);
    bind(set->scalars, scalar_vars);
    return set;
}

// The seeds' QAT scopes (SEED-SYSTEMS.md §2.3, §4.3, §5.2): from step 0, every matrix with more than 65,536
// elements on [−32, 31] with a 1e-8 scale floor (S1/S3); late, the small projections (bigram.proj, ve.proj) on
// [−32, 31] and, with a recurrent core, the core blocks' matrices on [−31, 31], both floored at 1/31 (S2/S4).
// min_numel is the reference's 65,536 (QAT_MIN_NUMEL lets the smoke scales exercise QAT on small matrices).
std::vector<std::pair<std::string, FakeQuantSpec>> trainer_qat_targets(const Gpt& model, bool late,
                                                                       std::int64_t min_numel) {
    std::vector<std::pair<std::string, FakeQuantSpec>> targets;
    if (!late) {
        const FakeQuantSpec spec{-32, 31, 31.0, 1e-8};
        for (const auto& [name, elements] : model.weight_matrices()) {
            if (elements > min_numel) targets.emplace_back(name, spec);
        }
        return targets;
    }
    const FakeQuantSpec small{-32, 31, 31.0, 1.0 / 31.0};
    for (const auto& [name, elements] : model.weight_matrices()) {
        if (name == "bigram.proj.weight" || name == "ve.proj.weight") targets.emplace_back(name, small);
    }
    const FakeQuantSpec core{-31, 31, 31.0, 1.0 / 31.0};
    for (const std::int64_t block : model.config().recurrent_core) {
        const std::string prefix = "blocks." + std::to_string(block) + ".";
        for (const char* matrix : {"attn.c_q.weight", "attn.c_k.weight", "attn.c_v.weight", "attn.proj.weight",
                                   "mlp.fc.weight", "mlp.proj.weight"}) {
            targets.emplace_back(prefix + matrix, core);
        }
    }
    return targets;
}

NamedTensors trainer_named_weights(const Gpt& model) {
    NamedTensors weights;
    for (const Parameter& parameter : model.parameters()) weights.emplace_back(parameter.name, parameter.var.value());
    return weights;
}

}  // namespace

TrainResult trainer_run(const TrainOptions& options) {
    const Config& config = options.config;
    std::ofstream log_file;
    if (!options.output_directory.empty()) std::filesystem::create_directories(options.output_directory);
    if (!options.output_directory.empty() && options.write_log) {
        log_file.open(options.output_directory + "/train.log", std::ios::trunc);
        if (!log_file) throw Error(options.output_directory + "/train.log: cannot create");
    }
    auto log = [&](const std::string& line) {
        if (options.log) options.log(line);
        if (log_file.is_open()) log_file << line << '\n' << std::flush;
    };

    const GptConfig model_config = GptConfig::from_config(config);
    const std::int64_t seq_len = config.get_int("TRAIN_SEQ_LEN");
    const std::int64_t world_size = config.get_int("WORLD_SIZE");
    const std::int64_t grad_accum = config.get_int("GRAD_ACCUM_STEPS");
    const std::int64_t batch_tokens = config.get_int("TRAIN_BATCH_TOKENS");
    const std::int64_t iterations = config.get_int("ITERATIONS");
    const std::int64_t warmup_steps = config.get_int("WARMUP_STEPS");
    const std::int64_t warmdown_iters = config.get_int("WARMDOWN_ITERS");
    const std::int64_t val_loss_every = config.get_int("VAL_LOSS_EVERY");
    const std::int64_t train_log_every = config.get_int("TRAIN_LOG_EVERY");
    const double max_wallclock_ms = 1000.0 * config.get_double("MAX_WALLCLOCK_SECONDS");
    const double grad_clip = config.get_double("GRAD_CLIP_NORM");
    const std::uint64_t seed = static_cast<std::uint64_t>(config.get_int("SEED"));
    if (world_size != 1) throw Error("train: the CPU engine runs one process (WORLD_SIZE=1); multi-GPU needs CUDA");
    if (grad_accum <= 0 || iterations < 0 || warmup_steps < 0) {
        throw Error("train: GRAD_ACCUM_STEPS must be positive and ITERATIONS, WARMUP_STEPS non-negative");
    }

    events_emit(event_names::stage, {{"stage", "build"}});
    const ValidationData validation = validation_data_load(config, options.data_directory, options.tokenizer_path);
    const std::string train_pattern = options.data_directory + "/fineweb_train_*.bin";
    const std::vector<std::string> train_files = shard_glob(train_pattern);
    log("val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path=" + options.tokenizer_path);
    log("train_loader:dataset:" + std::filesystem::path(options.data_directory).filename().string() +
        " train_shards:" + std::to_string(train_files.size()));
    log("val_loader:shards pattern=" + validation.pattern + " tokens:" + std::to_string(validation.tokens.size() - 1));

    device_require(options.device);
#ifdef PGOLF_WITH_CUDA
    // The reference trains under bf16 autocast: GEMMs with bf16 products and fp32 accumulation.
    const CudaMatmulPrecisionGuard precision(options.device == Device::cuda ? CudaMatmulPrecision::bf16
                                                                            : cuda_matmul_precision());
#endif
    Gpt model(model_config);  // mutable: QAT switches the forward pass during training
    model.initialize(seed);
    model.to_device(options.device);  // before the optimizers and averages, which hold handles on the weights
    std::unique_ptr<OptimizerSet> optimizers = trainer_make_optimizers(model, config);
    const double flops_per_token = model.training_flops_per_token(seq_len, model.config().eval_passes);
    log("model_params:" + std::to_string(model.parameter_count()));
    log("world_size:" + std::to_string(world_size) + " grad_accum_steps:" + std::to_string(grad_accum));
    log(text_format("tie_embeddings:%s embed_lr:%g head_lr:%g matrix_lr:%g scalar_lr:%g",
                    model_config.tie_embeddings ? "True" : "False",
                    model_config.tie_embeddings ? config.get_double("TIED_EMBED_LR") : config.get_double("EMBED_LR"),
                    model_config.tie_embeddings ? 0.0 : config.get_double("HEAD_LR"), config.get_double("MATRIX_LR"),
                    config.get_double("SCALAR_LR")));
    log(text_format(
        "train_batch_tokens:%lld train_seq_len:%lld iterations:%lld warmup_steps:%lld max_wallclock_seconds:%.3f",
        static_cast<long long>(batch_tokens), static_cast<long long>(seq_len), static_cast<long long>(iterations),
        static_cast<long long>(warmup_steps), max_wallclock_ms / 1000.0));
    log("seed:" + std::to_string(seed));
    if (options.device != Device::cpu) log("device:" + device_name(options.device));

    const double grad_scale = 1.0 / static_cast<double>(grad_accum);
    Tape tape;
    // One optimizer step's worth of micro-batches; returns the mean training loss. The losses are summed where they
    // are computed and read once per step (on cuda, one synchronisation per step).
    auto train_step = [&](DistributedTokenLoader& loader, std::int64_t passes) {
        model.zero_grad();
        double train_loss = 0.0;
        Tensor device_loss_sum;  // cuda: summed on the device
        for (std::int64_t micro = 0; micro < grad_accum; ++micro) {
            const TokenBatch batch = [&] {
                ProfileScope scope("data");
                return loader.next_batch(batch_tokens, seq_len, grad_accum);
            }();
            const Tensor inputs = Tensor::from_ids(batch.inputs, {batch.rows, batch.seq_len});
            const Tensor targets = Tensor::from_ids(batch.targets, {batch.rows, batch.seq_len});
            const Var loss = model.loss(&tape, inputs, targets, passes);
            if (loss.value().device() == Device::cpu) {
                train_loss += loss.value().item(0);
            } else {
                device_loss_sum =
                    device_loss_sum.defined() ? device_add(device_loss_sum, loss.value()) : loss.value().clone();
            }
            tape.backward(loss, grad_scale);
        }
        optimizers->bind_gradients();
        if (device_loss_sum.defined()) train_loss = device_loss_sum.host().item(0);
        return train_loss / static_cast<double>(grad_accum);
    };
    auto apply_step = [&](double lr_scale, double muon_momentum, bool set_hyperparameters) {
        if (set_hyperparameters) {
            optimizers->matrices.set_momentum(0, muon_momentum);
            for (auto& [optimizer, base_lr] : optimizers->base_lrs) optimizer->set_lr(0, base_lr * lr_scale);
        }
        if (grad_clip > 0) {
            std::vector<Tensor> grads;
            for (Optimizer* optimizer : optimizers->all()) {
                for (const Tensor& grad : optimizer->grads()) grads.push_back(grad);
            }
            optim_clip_grad_norm(grads, grad_clip);
        }
        ProfileScope scope("optimizer step");
        for (Optimizer* optimizer : optimizers->all()) {
            if (optimizer->group_count() > 0) optimizer->step();
        }
        for (Optimizer* optimizer : optimizers->all()) optimizer->zero_grad();
        model.zero_grad();
    };

    // Warmup-then-restore: the reference primes its compiled graph with real steps, then restores the initial
    // weights and optimizer state and restarts the data stream. Kept so the token stream and states match it exactly.
    if (warmup_steps > 0) {
        events_emit(event_names::stage, {{"stage", "warmup"}, {"steps", warmup_steps}});
        std::vector<Tensor> initial_weights;
        for (const Parameter& parameter : model.parameters()) initial_weights.push_back(parameter.var.value().clone());
        std::vector<NamedTensors> initial_states;
        for (Optimizer* optimizer : optimizers->all()) initial_states.push_back(optimizer->state_tensors());
        DistributedTokenLoader warmup_loader(train_files, 0, 1);
        for (std::int64_t step = 0; step < warmup_steps; ++step) {
            train_step(warmup_loader, model.passes_at_step(0));
            apply_step(1.0, 0.0, false);
            if (warmup_steps <= 20 || (step + 1) % 10 == 0 || step + 1 == warmup_steps) {
                log("warmup_step:" + std::to_string(step + 1) + "/" + std::to_string(warmup_steps));
            }
        }
        for (std::size_t i = 0; i < initial_weights.size(); ++i) {
            Tensor weights = model.parameters()[i].var.value();  // a handle on the parameter's storage
            weights.copy_from(initial_weights[i]);
        }
        const std::vector<Optimizer*> all = optimizers->all();
        for (std::size_t i = 0; i < all.size(); ++i) all[i]->load_state(initial_states[i]);
    }
    DistributedTokenLoader loader(train_files, 0, 1);

    // Validation over the whole split can take minutes on the CPU: shown on a terminal (silent in logs and CI).
    // A supervisor excludes the pauses from the training budget, as the reference's timer does.
    auto validate = [&](std::int64_t at_step) {
        events_emit(event_names::validation_begin, {{"step", at_step}});
        const ValidationResult val = evaluate_validation(model, validation, "validate");
        events_emit(event_names::validation_end, {{"val_loss", val.val_loss}, {"val_bpb", val.val_bpb}});
        return val;
    };

    const Deadline deadline(max_wallclock_ms);
    // The reference uses the wallclock warmdown whenever a cap is set, the iteration form otherwise; S3 warms down
    // over a fraction of the wallclock budget instead.
    const double warmdown_fraction = config.has("WARMDOWN_FRACTION") ? config.get_double("WARMDOWN_FRACTION") : 0.0;
    LrSchedule lr_schedule;
    lr_schedule.kind = !deadline.limited()       ? WarmdownKind::iterations
                       : warmdown_fraction > 0.0 ? WarmdownKind::wallclock_fraction
                                                 : WarmdownKind::wallclock;
    lr_schedule.warmdown_fraction = warmdown_fraction;
    lr_schedule.iterations = iterations;
    lr_schedule.warmdown_iters = warmdown_iters;
    lr_schedule.max_wallclock_ms = max_wallclock_ms;
    // Weight averaging and QAT, as each seed ran them.
    const std::int64_t swa_every = config.has("SWA_EVERY") ? config.get_int("SWA_EVERY") : 0;
    const double swa_threshold = config.has("SWA_LR_THRESHOLD") ? config.get_double("SWA_LR_THRESHOLD") : 0.2;
    const double ema_decay = config.has("EMA_DECAY") ? config.get_double("EMA_DECAY") : 0.0;
    const std::string qat_mode = config.has("QAT_MODE") ? config.get_string("QAT_MODE") : "off";
    const double qat_threshold = config.has("QAT_LR_THRESHOLD") ? config.get_double("QAT_LR_THRESHOLD") : 0.15;
    const std::int64_t qat_min_numel = config.has("QAT_MIN_NUMEL") ? config.get_int("QAT_MIN_NUMEL") : 65536;
    if (qat_mode != "off" && qat_mode != "from_start" && qat_mode != "late") {
        throw Error("config: QAT_MODE must be off, from_start or late");
    }
    std::unique_ptr<WeightAverage> swa;
    if (swa_every > 0) swa = std::make_unique<WeightAverage>(trainer_named_weights(model));
    std::unique_ptr<ExponentialAverage> ema;
    if (ema_decay > 0) ema = std::make_unique<ExponentialAverage>(trainer_named_weights(model), ema_decay);
    if (qat_mode == "from_start") {
        model.set_fake_quant(trainer_qat_targets(model, false, qat_min_numel));
        log("qat:enabled from step 0 matrices:" + std::to_string(model.fake_quant_count()));
    }
    bool late_qat_on = false;

    events_emit(event_names::stage, {{"stage", "train"}, {"iterations", iterations}});
    Stopwatch stopwatch;
    const Deadline budget(options.budget_ms);
    double last_step_ms = 0.0, max_step_ms = 0.0;
    TrainResult result;
    result.parameters = model.parameter_count();
    std::int64_t step = 0;
    std::int64_t stop_after_step = -1;
    for (;;) {
        const bool last_step = step == iterations || (stop_after_step >= 0 && step >= stop_after_step);
        if (options.validate && (last_step || (val_loss_every > 0 && step % val_loss_every == 0))) {
            stopwatch.pause();
            const double train_time_ms = stopwatch.elapsed_ms();
            const ValidationResult val = validate(step);
            log(text_format("step:%lld/%lld val_loss:%.4f val_bpb:%.4f train_time:%.0fms step_avg:%.2fms",
                            static_cast<long long>(step), static_cast<long long>(iterations), val.val_loss, val.val_bpb,
                            train_time_ms, train_time_ms / static_cast<double>(std::max<std::int64_t>(step, 1))));
            result.final_val_loss = val.val_loss;
            result.final_val_bpb = val.val_bpb;
            stopwatch.resume();
        }
        if (last_step) {
            if (stop_after_step >= 0 && step < iterations) {
                result.stopped_early = !result.stopped_by_budget;
                log(text_format("stopping_early: %s train_time:%.0fms step:%lld/%lld",
                                result.stopped_by_budget ? "train_budget" : "wallclock_cap", stopwatch.elapsed_ms(),
                                static_cast<long long>(step), static_cast<long long>(iterations)));
            }
            break;
        }
        const double step_start_ms = stopwatch.elapsed_ms();
        const double elapsed_ms = stopwatch.elapsed_ms();
        const double lr_scale = schedule_lr_mul(lr_schedule, step, elapsed_ms);
        const double muon_momentum =
            schedule_muon_momentum(step, config.get_double("MUON_MOMENTUM_WARMUP_START"),
                                   config.get_double("MUON_MOMENTUM"), config.get_int("MUON_MOMENTUM_WARMUP_STEPS"));
        if (qat_mode == "late" && !late_qat_on && lr_scale < qat_threshold && step > 100) {
            model.set_fake_quant(trainer_qat_targets(model, true, qat_min_numel));
            late_qat_on = true;
            log("qat:enabled at step:" + std::to_string(step) +
                " matrices:" + std::to_string(model.fake_quant_count()));
        }
        const double train_loss = train_step(loader, model.passes_at_step(step));
        apply_step(lr_scale, muon_momentum, true);
        if (ema) ema->update();
        if (swa && averaging_swa_should_snapshot(step, lr_scale, swa_every, swa_threshold)) swa->snapshot();
        // The clocks below (step time, the wallclock cap, a supervisor's budget) see the step's GPU work finished.
        device_synchronize(options.device);
        ++step;
        if (options.progress) options.progress(step, iterations);

        const double approx_ms = stopwatch.elapsed_ms();
        last_step_ms = approx_ms - step_start_ms;
        max_step_ms = std::max(max_step_ms, last_step_ms);
        const bool log_now = train_log_every > 0 && (step <= 10 || step % train_log_every == 0 || stop_after_step >= 0);
        if (log_now) {
            log(text_format("step:%lld/%lld train_loss:%.4f train_time:%.0fms step_avg:%.2fms",
                            static_cast<long long>(step), static_cast<long long>(iterations), train_loss, approx_ms,
                            approx_ms / static_cast<double>(step)));
            if (options.device == Device::cuda) {
                const double tokens_per_second = static_cast<double>(step * batch_tokens) / (approx_ms / 1000.0);
                log(text_format("throughput step:%lld tokens_per_s:%.0f mfu:%.4f", static_cast<long long>(step),
                                tokens_per_second, tokens_per_second * flops_per_token / kGpuBf16PeakFlopsPerSecond));
            }
        }
        if (stop_after_step < 0 && deadline.expired(approx_ms)) stop_after_step = step;
        if (stop_after_step < 0 && budget.expired(approx_ms)) {
            stop_after_step = step;
            result.stopped_by_budget = true;
        }
    }

    result.steps = step;
    result.train_time_ms = stopwatch.elapsed_ms();
    events_emit(event_names::train_end, {{"steps", step},
                                         {"iterations", iterations},
                                         {"train_time_ms", result.train_time_ms},
                                         {"last_step_ms", last_step_ms},
                                         {"max_step_ms", max_step_ms},
                                         {"stopped_early", result.stopped_early},
                                         {"stopped_by_budget", result.stopped_by_budget}});
    if (step > 0 && result.train_time_ms > 0) {
        result.tokens_per_second = static_cast<double>(step * batch_tokens) / (result.train_time_ms / 1000.0);
        result.model_gflops_per_second = result.tokens_per_second * flops_per_token / 1e9;
    }
    log(text_format("throughput: tokens_per_s:%.0f model_gflops_per_s:%.2f flops_per_token:%.0f",
                    result.tokens_per_second, result.model_gflops_per_second, flops_per_token));
    if (options.device == Device::cuda) {
        result.mfu = result.model_gflops_per_second * 1e9 / kGpuBf16PeakFlopsPerSecond;
        log(text_format("train_throughput tokens_per_second:%.1f step_avg_ms:%.3f mfu:%.4f", result.tokens_per_second,
                        step > 0 ? result.train_time_ms / static_cast<double>(step) : 0.0, result.mfu));
    }

    // QAT ends with training; the exported weights are the average when the seed used one (EMA wins over SWA,
    // as in the reference where the EMA is loaded last).
    model.set_fake_quant({});
    std::string averaged;
    if (swa && swa->count() > 0) {
        swa->apply_mean();
        averaged = "swa";
        log("swa:applied snapshots:" + std::to_string(swa->count()));
    }
    if (ema) {
        ema->apply();
        averaged = "ema";
        log(text_format("ema:applied decay:%g", ema_decay));
    }
    if (!averaged.empty() && options.validate) {
        const ValidationResult val = validate(step);
        log(text_format("final_%s val_loss:%.4f val_bpb:%.4f", averaged.c_str(), val.val_loss, val.val_bpb));
        result.final_val_loss = val.val_loss;
        result.final_val_bpb = val.val_bpb;
    }

    model.to_device(Device::cpu);  // the checkpoint is written from host memory
    if (!options.output_directory.empty()) {
        std::vector<std::pair<std::string, Tensor>> tensors;
        for (const Parameter& parameter : model.parameters())
            tensors.emplace_back(parameter.name, parameter.var.value());
        const std::string path = options.output_directory + "/final_model.safetensors";
        safetensors_write(path, tensors, {{"config", config.values().dump()}, {"steps", std::to_string(step)}});
        log("Serialized model: " + std::to_string(std::filesystem::file_size(path)) + " bytes (safetensors)");
    }
    return result;
}

}  // namespace pgolf
