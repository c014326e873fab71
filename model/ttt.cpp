// Test-time training through the validation gate: score-first chunked TTT and S4's pre-quant AdamW TTT (see ttt.h).
#include "model/ttt.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numbers>
#include <span>

#include "core/autograd.h"
#include "core/digest.h"
#include "core/error.h"
#include "core/text_format.h"

namespace pgolf {

namespace {

using Clock = std::chrono::steady_clock;

double ttt_elapsed_ms(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// The physical block a parameter belongs to by name ("blocks.<i>.…"), or -1.
std::int64_t ttt_parse_block(const std::string& name) {
    static const std::string prefix = "blocks.";
    if (name.rfind(prefix, 0) != 0) return -1;
    const std::size_t dot = name.find('.', prefix.size());
    if (dot == std::string::npos || dot == prefix.size()) return -1;
    std::int64_t block = 0;
    for (std::size_t i = prefix.size(); i < dot; ++i) {
        if (name[i] < '0' || name[i] > '9') return -1;
        block = block * 10 + (name[i] - '0');
    }
    return block;
}

// The slices of a bank (axis 0) that hold block `block`'s matrices: Q/out and K/V banks stack 2n slices (block i at
// i and n + i), the MLP banks n.
std::vector<std::int64_t> ttt_bank_slices(const std::string& name, std::int64_t block, std::int64_t layers) {
    if (name == "qo_bank" || name == "kv_bank") return {block, layers + block};
    if (name == "mlp_up_bank" || name == "mlp_down_bank") return {block};
    return {};
}

// One trainable tensor: the model's Var (whose grad the backward pass fills) and the bank slices that stay fixed.
struct TttParam {
    std::string name;
    const Var* var = nullptr;
    std::int64_t block = -1;
    std::vector<std::int64_t> frozen_slices;
};

// Every parameter TTT may update, frozen blocks left out (their bank slices recorded instead).
std::vector<TttParam> ttt_collect_params(const Gpt& model, const std::vector<std::int64_t>& frozen_blocks) {
    const std::int64_t layers = model.config().num_layers;
    for (const std::int64_t block : frozen_blocks) {
        if (block < 0 || block >= layers) {
            throw Error(text_format("ttt: frozen block %lld out of range (%lld blocks)", static_cast<long long>(block),
                                    static_cast<long long>(layers)));
        }
    }
    auto frozen = [&](std::int64_t block) {
        return std::find(frozen_blocks.begin(), frozen_blocks.end(), block) != frozen_blocks.end();
    };
    std::vector<TttParam> params;
    for (const Parameter& parameter : model.parameters()) {
        // S3's α is in no optimizer group during training; it has no gradient and stays out here too.
        if (parameter.group == ParameterGroup::frozen) continue;
        TttParam param{parameter.name, &parameter.var, ttt_parse_block(parameter.name), {}};
        if (param.block >= 0 && frozen(param.block)) continue;
        for (const std::int64_t block : frozen_blocks) {
            for (const std::int64_t slice : ttt_bank_slices(parameter.name, block, layers)) {
                param.frozen_slices.push_back(slice);
            }
        }
        params.push_back(std::move(param));
    }
    return params;
}

// The current gradient of each parameter (undefined when the backward pass did not reach it), with frozen bank slices
// zeroed so they neither move nor count towards the clip norm, as a requires_grad=False tensor would not.
std::vector<Tensor> ttt_gather_grads(const std::vector<TttParam>& params) {
    std::vector<Tensor> grads;
    grads.reserve(params.size());
    for (const TttParam& param : params) {
        Tensor grad = param.var->has_grad() ? param.var->grad() : Tensor();
        if (grad.defined()) {
            for (const std::int64_t slice : param.frozen_slices) grad.rows(slice, slice + 1).zero();
        }
        grads.push_back(grad);
    }
    return grads;
}

void ttt_clip(const std::vector<Tensor>& grads, double max_norm) {
    if (max_norm <= 0) return;
    std::vector<Tensor> defined;
    for (const Tensor& grad : grads) {
        if (grad.defined()) defined.push_back(grad);
    }
    optim_clip_grad_norm(defined, max_norm);
}

// value −= lr·direction, elementwise over f32 tensors of equal size.
void ttt_subtract_scaled(Tensor value, const Tensor& direction, double lr) {
    if (value.dtype() != DType::f32 || direction.dtype() != DType::f32 || value.numel() != direction.numel()) {
        throw Error("ttt: muon-style step needs f32 parameters");
    }
    float* p = value.data<float>();
    const float* g = direction.data<float>();
    const auto eta = static_cast<float>(lr);
    for (std::int64_t i = 0; i < value.numel(); ++i) p[i] -= eta * g[i];
}

// S4's Muon-style update: matrices (and each bank slice) move along their Newton–Schulz orthogonalised gradient, every
// other tensor along its raw gradient; no momentum, no state.
void ttt_muon_style_step(const std::vector<TttParam>& params, const std::vector<Tensor>& grads, double lr, int steps,
                         MuonPrecision precision) {
    if (!params.empty() && params.front().var->value().device() != Device::cpu) {
        throw Error(
            "ttt: the Muon-style step (S4's dTTT) runs on the CPU only; use the sgd or adamw TTT optimizer on "
            "cuda");
    }
    for (std::size_t k = 0; k < params.size(); ++k) {
        const Tensor& grad = grads[k];
        if (!grad.defined()) continue;
        Tensor value = params[k].var->value();
        if (grad.dim() == 2) {
            ttt_subtract_scaled(value, optim_newton_schulz(grad, steps, precision), lr);
        } else if (grad.dim() == 3) {
            const std::vector<std::int64_t>& frozen = params[k].frozen_slices;
            for (std::int64_t s = 0; s < grad.size(0); ++s) {
                if (std::find(frozen.begin(), frozen.end(), s) != frozen.end()) continue;
                const Tensor slice = grad.rows(s, s + 1).reshape({grad.size(1), grad.size(2)});
                ttt_subtract_scaled(value.rows(s, s + 1), optim_newton_schulz(slice, steps, precision), lr);
            }
        } else {
            ttt_subtract_scaled(value, grad, lr);
        }
    }
}

// One pass over `sequences` non-overlapping seq_len sequences of tokens (inputs and targets shifted by one), one
// micro-batch of ≤ batch_sequences per optimizer step: step() runs after each backward pass. Returns the mean loss.
double ttt_train_epoch(Gpt& model, Tape& tape, const std::vector<std::int64_t>& tokens, std::int64_t sequences,
                       std::int64_t seq_len, std::int64_t batch_sequences, const std::function<void()>& step,
                       std::int64_t& steps) {
    double loss_sum = 0.0;
    std::int64_t batches = 0;
    for (std::int64_t first = 0; first < sequences; first += batch_sequences) {
        const std::int64_t rows = std::min(batch_sequences, sequences - first);
        const auto begin = tokens.begin() + first * seq_len;
        const std::vector<std::int64_t> inputs(begin, begin + rows * seq_len);
        const std::vector<std::int64_t> targets(begin + 1, begin + rows * seq_len + 1);
        model.zero_grad();
        const Var loss =
            model.loss(&tape, Tensor::from_ids(inputs, {rows, seq_len}), Tensor::from_ids(targets, {rows, seq_len}));
        loss_sum += loss.value().host().item(0);
        tape.backward(loss);
        step();
        model.zero_grad();
        ++batches;
        ++steps;
    }
    return batches > 0 ? loss_sum / static_cast<double>(batches) : 0.0;
}

void ttt_check_training_options(std::int64_t seq_len, std::int64_t batch_sequences, const char* what) {
    if (seq_len < 1 || batch_sequences < 1) {
        throw Error(text_format("%s: seq_len and batch_sequences must be positive, got %lld and %lld", what,
                                static_cast<long long>(seq_len), static_cast<long long>(batch_sequences)));
    }
}

}  // namespace

std::string ttt_optimizer_kind_name(TttOptimizerKind kind) {
    return kind == TttOptimizerKind::sgd ? "sgd" : "muon_style";
}

std::string ttt_entropy_epochs_name(TttEntropyEpochs mode) {
    switch (mode) {
        case TttEntropyEpochs::off:
            return "off";
        case TttEntropyEpochs::as_ran:
            return "as_ran";
        case TttEntropyEpochs::intended:
            return "intended";
    }
    return "off";
}

std::string ttt_digest_weights(const Gpt& model) {
    // Per-tensor digests chained by name and shape: no copy of the whole model is needed.
    std::string chain;
    for (const auto& [name, named] : model.named_tensors()) {
        // Weights on cuda are digested from a host copy of their bytes (the same bytes, so the same digest).
        const Tensor tensor = named.host();
        const auto* bytes = static_cast<const std::uint8_t*>(tensor.raw_data());
        chain += name + " " + shape_string(tensor.shape()) + " " +
                 digest_sha256_hex(std::span<const std::uint8_t>(bytes, tensor.nbytes())) + "\n";
    }
    return digest_sha256_hex(chain);
}

TttResult ttt_score_first(Gpt& model, ValidationGate& gate, const TttOptions& options,
                          const std::function<void(const std::string&)>& log) {
    if (options.chunk_tokens < 1) throw Error("ttt: chunk_tokens must be positive");
    ttt_check_training_options(options.seq_len, options.batch_sequences, "ttt");
    const std::int64_t targets = gate.target_count();
    if (targets < 1) throw Error("ttt: the validation stream has no targets");

    // Chunks partition the reference's token indices 0 … n − 2 (n − 1 of them); a window joins the chunk holding the
    // input index of its first scored target (score_begin − 1), the last chunk taking any overflow.
    const std::vector<SlidingWindow> plan = sliding_window_plan(gate.token_count(), options.sliding);
    const std::int64_t chunks = (targets + options.chunk_tokens - 1) / options.chunk_tokens;
    std::vector<std::vector<SlidingWindow>> chunk_windows(static_cast<std::size_t>(chunks));
    for (const SlidingWindow& window : plan) {
        const std::int64_t chunk = std::min((window.score_begin - 1) / options.chunk_tokens, chunks - 1);
        chunk_windows[static_cast<std::size_t>(chunk)].push_back(window);
    }

    const std::vector<TttParam> params = ttt_collect_params(model, options.frozen_blocks);
    // Created once: the momentum buffers carry across chunks, as the reference's optimizer does.
    Sgd sgd;
    if (options.optimizer == TttOptimizerKind::sgd) {
        std::vector<OptimParam> optim_params;
        for (const TttParam& param : params) optim_params.push_back({param.name, param.var->value(), Tensor()});
        SgdOptions sgd_options;
        sgd_options.lr = options.lr;
        sgd_options.momentum = options.momentum;
        sgd.add_group(std::move(optim_params), sgd_options);
    }

    TttResult result;
    result.chunks = chunks;
    Tape tape;
    double lr = options.lr;
    // The gate names the weights of every score and adapt call. Hashing them costs a full copy of the model (from the
    // GPU on cuda) per call, so the digest is recomputed only after the weights move (one per adapted chunk).
    std::string weights_digest;
    bool weights_moved = true;
    auto current_weights_digest = [&]() -> const std::string& {
        if (weights_moved) {
            weights_digest = ttt_digest_weights(model);
            weights_moved = false;
        }
        return weights_digest;
    };
    auto step = [&] {
        const std::vector<Tensor> grads = ttt_gather_grads(params);
        ttt_clip(grads, options.grad_clip);
        if (options.optimizer == TttOptimizerKind::sgd) {
            std::vector<OptimParam>& bound = sgd.group_params(0);
            for (std::size_t k = 0; k < bound.size(); ++k) bound[k].grad = grads[k];
            sgd.set_lr(0, lr);
            sgd.step();
            sgd.zero_grad();
        } else {
            ttt_muon_style_step(params, grads, lr, options.newton_schulz_steps, options.newton_schulz_precision);
        }
    };

    for (std::int64_t c = 0; c < chunks; ++c) {
        const std::vector<SlidingWindow>& windows = chunk_windows[static_cast<std::size_t>(c)];
        // The reference skips a chunk without windows entirely, training included.
        if (windows.empty()) continue;
        const std::int64_t chunk_start = c * options.chunk_tokens;
        const std::int64_t chunk_end = std::min((c + 1) * options.chunk_tokens, targets);

        const Clock::time_point score_start = Clock::now();
        const GateTotals before = gate.totals();
        evaluate_score_windows(model, gate, windows, options.sliding.batch_windows, current_weights_digest());
        const GateTotals after = gate.totals();
        result.windows += static_cast<std::int64_t>(windows.size());
        result.scoring_ms += ttt_elapsed_ms(score_start);

        std::int64_t epochs = options.epochs;
        const std::int64_t chunk_targets = after.targets - before.targets;
        const double chunk_nll = chunk_targets > 0 ? (after.nll_sum - before.nll_sum) / chunk_targets : 0.0;
        if (options.entropy_epochs == TttEntropyEpochs::intended) {
            if (chunk_nll > options.entropy_high) epochs += 1;
            if (chunk_nll < options.entropy_low) epochs = std::max<std::int64_t>(epochs - 1, 0);
        }

        const bool last = c == chunks - 1;
        const std::int64_t sequences = (chunk_end - chunk_start) / options.seq_len;
        if (!last && epochs > 0 && sequences > 0) {
            const Clock::time_point adapt_start = Clock::now();
            lr = chunks > 1
                     ? options.lr * 0.5 *
                           (1.0 + std::cos(std::numbers::pi * static_cast<double>(c) / static_cast<double>(chunks - 1)))
                     : options.lr;
            // Tokens chunk_start … chunk_end: the targets up to chunk_end were all committed by this chunk's windows.
            const std::vector<std::int64_t> all = gate.adapt(chunk_start, chunk_end + 1, current_weights_digest());
            const std::vector<std::int64_t> tokens(all.begin(), all.begin() + sequences * options.seq_len + 1);
            for (std::int64_t epoch = 0; epoch < epochs; ++epoch) {
                ttt_train_epoch(model, tape, tokens, sequences, options.seq_len, options.batch_sequences, step,
                                result.steps);
            }
            weights_moved = true;
            ++result.chunks_adapted;
            result.epochs_run += epochs;
            result.adaptation_ms += ttt_elapsed_ms(adapt_start);
        }
        if (log) {
            const GateTotals totals = gate.totals();
            log(text_format("ttt_chunk [%lld/%lld] nll=%.6f bpb=%.6f epochs=%lld lr=%.6g",
                            static_cast<long long>(c + 1), static_cast<long long>(chunks), chunk_nll,
                            totals.bytes > 0 ? totals.val_bpb() : 0.0, static_cast<long long>(last ? 0 : epochs), lr));
        }
    }
    result.totals = gate.totals();
    return result;
}

PrequantTttResult ttt_prequant_adamw(Gpt& model, ValidationGate& gate, const PrequantTttOptions& options,
                                     const std::function<void(const std::string&)>& log) {
    ttt_check_training_options(options.seq_len, options.batch_sequences, "prequant ttt");
    const std::int64_t n = gate.token_count();
    const std::int64_t sequences = (n - 1) / options.seq_len;
    if (sequences < 1) throw Error("prequant ttt: the validation stream is shorter than one sequence");

    // Every token is read before any is scored: the gate throws here in enforce mode, before any weight moves.
    const std::vector<std::int64_t> tokens = gate.adapt(0, n, ttt_digest_weights(model));

    // Groups as S4 builds them: each block's own parameters (in banked models only its vectors: attn_scale, mlp_scale,
    // resid_mix, q_gain) at lr·(0.3 + 0.7·i/(L − 1)), everything else at lr.
    const std::vector<TttParam> params = ttt_collect_params(model, {});
    const std::int64_t layers = model.config().num_layers;
    std::vector<std::vector<std::size_t>> block_members(static_cast<std::size_t>(layers));
    std::vector<std::size_t> other_members;
    for (std::size_t k = 0; k < params.size(); ++k) {
        if (params[k].block >= 0 && params[k].block < layers) {
            block_members[static_cast<std::size_t>(params[k].block)].push_back(k);
        } else {
            other_members.push_back(k);
        }
    }
    Adam adam;
    std::vector<std::vector<std::size_t>> group_members;
    std::vector<double> group_base_lr;
    auto add_group = [&](const std::vector<std::size_t>& members, double lr) {
        if (members.empty()) return;
        std::vector<OptimParam> optim_params;
        for (const std::size_t k : members) optim_params.push_back({params[k].name, params[k].var->value(), Tensor()});
        AdamOptions adam_options;
        adam_options.lr = lr;
        adam_options.beta1 = options.beta1;
        adam_options.beta2 = options.beta2;
        adam_options.weight_decay = options.weight_decay;
        adam_options.decoupled_weight_decay = true;
        adam.add_group(std::move(optim_params), adam_options);
        group_members.push_back(members);
        group_base_lr.push_back(lr);
    };
    for (std::int64_t i = 0; i < layers; ++i) {
        const double scale = layers > 1 ? 0.3 + 0.7 * static_cast<double>(i) / static_cast<double>(layers - 1) : 1.0;
        add_group(block_members[static_cast<std::size_t>(i)], options.lr * scale);
    }
    add_group(other_members, options.lr);

    PrequantTttResult result;
    const Clock::time_point start = Clock::now();
    Tape tape;
    auto step = [&] {
        const std::vector<Tensor> grads = ttt_gather_grads(params);
        ttt_clip(grads, options.grad_clip);
        for (std::size_t g = 0; g < group_members.size(); ++g) {
            std::vector<OptimParam>& bound = adam.group_params(g);
            for (std::size_t j = 0; j < bound.size(); ++j) bound[j].grad = grads[group_members[g][j]];
        }
        adam.step();
        adam.zero_grad();
    };
    for (std::int64_t epoch = 0; epoch < options.epochs; ++epoch) {
        // Cosine per epoch towards an absolute floor shared by every group (CosineAnnealingLR, T_max = epochs).
        const double cosine =
            0.5 * (1.0 + std::cos(std::numbers::pi * static_cast<double>(epoch) / static_cast<double>(options.epochs)));
        for (std::size_t g = 0; g < group_base_lr.size(); ++g) {
            adam.set_lr(g, options.lr_min + (group_base_lr[g] - options.lr_min) * cosine);
        }
        const double loss = ttt_train_epoch(model, tape, tokens, sequences, options.seq_len, options.batch_sequences,
                                            step, result.steps);
        result.epoch_loss.push_back(loss);
        ++result.epochs_run;
        if (log) {
            log(text_format("prequant_ttt:epoch %lld/%lld loss:%.4f", static_cast<long long>(epoch + 1),
                            static_cast<long long>(options.epochs), loss));
        }
    }
    result.adaptation_ms = ttt_elapsed_ms(start);
    return result;
}

}  // namespace pgolf
