// Baseline GPT forward pass over the autograd ops, and its initialisation.
#include "model/gpt.h"

#include <cmath>
#include <numbers>

#include "core/autograd_ops.h"
#include "core/error.h"
#include "core/ops/norm.h"
#include "model/random.h"

namespace pgolf {

GptConfig GptConfig::from_config(const Config& config) {
    GptConfig gpt;
    gpt.vocab_size = config.get_int("VOCAB_SIZE");
    gpt.num_layers = config.get_int("NUM_LAYERS");
    gpt.model_dim = config.get_int("MODEL_DIM");
    gpt.num_heads = config.get_int("NUM_HEADS");
    gpt.num_kv_heads = config.get_int("NUM_KV_HEADS");
    gpt.mlp_mult = config.get_int("MLP_MULT");
    gpt.tie_embeddings = config.get_bool("TIE_EMBEDDINGS");
    gpt.rope_base = config.get_double("ROPE_BASE");
    gpt.logit_softcap = config.get_double("LOGIT_SOFTCAP");
    gpt.qk_gain_init = config.get_double("QK_GAIN_INIT");
    gpt.tied_embed_init_std = config.get_double("TIED_EMBED_INIT_STD");
    if (gpt.vocab_size <= 0 || gpt.num_layers <= 0 || gpt.model_dim <= 0 || gpt.num_heads <= 0 ||
        gpt.num_kv_heads <= 0 || gpt.mlp_mult <= 0) {
        throw Error("model: VOCAB_SIZE, NUM_LAYERS, MODEL_DIM, NUM_HEADS, NUM_KV_HEADS and MLP_MULT must be positive");
    }
    if (gpt.model_dim % gpt.num_heads != 0) throw Error("model: MODEL_DIM must be divisible by NUM_HEADS");
    if (gpt.num_heads % gpt.num_kv_heads != 0) throw Error("model: NUM_HEADS must be divisible by NUM_KV_HEADS");
    if (gpt.head_dim() % 2 != 0) throw Error("model: head dim MODEL_DIM/NUM_HEADS must be even for RoPE");
    if (gpt.logit_softcap <= 0) throw Error("model: LOGIT_SOFTCAP must be positive");
    return gpt;
}

std::string parameter_group_name(ParameterGroup group) {
    switch (group) {
        case ParameterGroup::embedding: return "embedding";
        case ParameterGroup::head: return "head";
        case ParameterGroup::matrix: return "matrix";
        case ParameterGroup::scalar: return "scalar";
    }
    return "?";
}

std::size_t Gpt::add_parameter(const std::string& name, const Shape& shape, ParameterGroup group) {
    parameters_.push_back(Parameter{name, Var(Tensor::zeros(shape, config_.dtype), true), group});
    return parameters_.size() - 1;
}

Gpt::Gpt(const GptConfig& config) : config_(config) {
    const std::int64_t d = config.model_dim;
    const std::int64_t hidden = config.mlp_mult * d;
    tok_emb_ = add_parameter("tok_emb.weight", {config.vocab_size, d}, ParameterGroup::embedding);
    const std::int64_t encoders = config.num_layers / 2;
    num_skips_ = std::min(encoders, config.num_layers - encoders);
    skip_weights_ = add_parameter("skip_weights", {num_skips_, d}, ParameterGroup::scalar);
    for (std::int64_t i = 0; i < config.num_layers; ++i) {
        const std::string prefix = "blocks." + std::to_string(i) + ".";
        BlockIndices block{};
        block.c_q = add_parameter(prefix + "attn.c_q.weight", {d, d}, ParameterGroup::matrix);
        block.c_k = add_parameter(prefix + "attn.c_k.weight", {config.kv_dim(), d}, ParameterGroup::matrix);
        block.c_v = add_parameter(prefix + "attn.c_v.weight", {config.kv_dim(), d}, ParameterGroup::matrix);
        block.proj = add_parameter(prefix + "attn.proj.weight", {d, d}, ParameterGroup::matrix);
        block.q_gain = add_parameter(prefix + "attn.q_gain", {config.num_heads}, ParameterGroup::scalar);
        block.fc = add_parameter(prefix + "mlp.fc.weight", {hidden, d}, ParameterGroup::matrix);
        block.mlp_proj = add_parameter(prefix + "mlp.proj.weight", {d, hidden}, ParameterGroup::matrix);
        block.attn_scale = add_parameter(prefix + "attn_scale", {d}, ParameterGroup::scalar);
        block.mlp_scale = add_parameter(prefix + "mlp_scale", {d}, ParameterGroup::scalar);
        block.resid_mix = add_parameter(prefix + "resid_mix", {2, d}, ParameterGroup::scalar);
        blocks_.push_back(block);
    }
    if (!config.tie_embeddings) lm_head_ = add_parameter("lm_head.weight", {config.vocab_size, d}, ParameterGroup::head);
}

void Gpt::initialize(std::uint64_t seed) {
    RandomStream random(seed);
    auto uniform_fan_in = [&](std::size_t index) {
        Tensor& w = parameters_[index].var.value();
        const double bound = 1.0 / std::sqrt(static_cast<double>(w.size(1)));
        for (std::int64_t i = 0; i < w.numel(); ++i) w.set_item(i, random.uniform(-bound, bound));
    };
    Tensor& embedding = parameters_[tok_emb_].var.value();
    for (std::int64_t i = 0; i < embedding.numel(); ++i) {
        embedding.set_item(i, config_.tied_embed_init_std * random.normal());
    }
    parameters_[skip_weights_].var.value().fill(1.0);
    for (const BlockIndices& block : blocks_) {
        uniform_fan_in(block.c_q);
        uniform_fan_in(block.c_k);
        uniform_fan_in(block.c_v);
        parameters_[block.proj].var.value().zero();
        parameters_[block.q_gain].var.value().fill(config_.qk_gain_init);
        uniform_fan_in(block.fc);
        parameters_[block.mlp_proj].var.value().zero();
        parameters_[block.attn_scale].var.value().fill(1.0);
        parameters_[block.mlp_scale].var.value().fill(1.0);
        Tensor& mix = parameters_[block.resid_mix].var.value();
        mix.rows(0, 1).fill(1.0);
        mix.rows(1, 2).zero();
    }
    if (!config_.tie_embeddings) parameters_[lm_head_].var.value().zero();
}

const Parameter& Gpt::parameter(const std::string& name) const {
    for (const Parameter& parameter : parameters_) {
        if (parameter.name == name) return parameter;
    }
    throw Error("model has no parameter named " + name);
}

std::int64_t Gpt::parameter_count() const {
    std::int64_t count = 0;
    for (const Parameter& parameter : parameters_) count += parameter.var.value().numel();
    return count;
}

std::vector<std::int64_t> Gpt::layer_schedule() const {
    std::vector<std::int64_t> schedule;
    for (std::int64_t i = 0; i < config_.num_layers; ++i) schedule.push_back(i);
    return schedule;
}

double Gpt::training_flops_per_token(std::int64_t seq_len) const {
    double matmul_parameters = 0;
    for (const Parameter& parameter : parameters_) {
        if (parameter.group == ParameterGroup::matrix || parameter.group == ParameterGroup::head) {
            matmul_parameters += static_cast<double>(parameter.var.value().numel());
        }
    }
    if (config_.tie_embeddings) matmul_parameters += static_cast<double>(config_.vocab_size * config_.model_dim);
    const double attention = 6.0 * static_cast<double>(config_.num_layers * seq_len * config_.model_dim);
    return 6.0 * matmul_parameters + attention;
}

Var Gpt::token_losses(Tape* tape, const Tensor& inputs, const Tensor& targets) const {
    if (inputs.dim() != 2 || inputs.dtype() != DType::i64 || targets.shape() != inputs.shape() ||
        targets.dtype() != DType::i64) {
        throw Error("model: inputs and targets must be (B, T) i64 tensors of one shape");
    }
    const std::int64_t batch = inputs.size(0);
    const std::int64_t seq = inputs.size(1);
    const std::int64_t d = config_.model_dim;
    const std::int64_t heads = config_.num_heads;
    const std::int64_t kv_heads = config_.num_kv_heads;
    const std::int64_t head_dim = config_.head_dim();
    const double eps = kRmsNormEpsF32;
    RopeSpec rope;
    rope.rotary_dims = head_dim;
    rope.base = config_.rope_base;

    auto block_forward = [&](const BlockIndices& block, const Var& x_in, const Var& x0) {
        // x = m0 ⊙ x + m1 ⊙ x0
        const Var& mix = param(block.resid_mix);
        Var x = ag::add(tape, ag::mul_broadcast(tape, x_in, ag::row(tape, mix, 0), -1),
                        ag::mul_broadcast(tape, x0, ag::row(tape, mix, 1), -1));
        // attention on RMSNorm(x); q, k, v: (B, T, heads, Dh) -> (B, heads, T, Dh)
        Var n = ag::rmsnorm(tape, x, eps);
        Var q = ag::permute_0213(tape, ag::reshape(tape, ag::linear(tape, n, param(block.c_q)),
                                                   {batch, seq, heads, head_dim}));
        Var k = ag::permute_0213(tape, ag::reshape(tape, ag::linear(tape, n, param(block.c_k)),
                                                   {batch, seq, kv_heads, head_dim}));
        Var v = ag::permute_0213(tape, ag::reshape(tape, ag::linear(tape, n, param(block.c_v)),
                                                   {batch, seq, kv_heads, head_dim}));
        q = ag::rope(tape, ag::rmsnorm(tape, q, eps), rope);
        k = ag::rope(tape, ag::rmsnorm(tape, k, eps), rope);
        q = ag::mul_broadcast(tape, q, param(block.q_gain), 1);
        Var y = ag::attention(tape, q, k, v);
        y = ag::reshape(tape, ag::permute_0213(tape, y), {batch, seq, d});
        Var attn_out = ag::linear(tape, y, param(block.proj));
        x = ag::add(tape, x, ag::mul_broadcast(tape, attn_out, param(block.attn_scale), -1));
        // MLP: proj(relu(fc(RMSNorm(x)))²)
        Var hidden = ag::relu_squared(tape, ag::linear(tape, ag::rmsnorm(tape, x, eps), param(block.fc)));
        Var mlp_out = ag::linear(tape, hidden, param(block.mlp_proj));
        return ag::add(tape, x, ag::mul_broadcast(tape, mlp_out, param(block.mlp_scale), -1));
    };

    Var x = ag::rmsnorm(tape, ag::embedding(tape, param(tok_emb_), inputs), eps);
    const Var x0 = x;
    const std::int64_t encoders = config_.num_layers / 2;
    std::vector<Var> skips;
    for (std::int64_t i = 0; i < encoders; ++i) {
        x = block_forward(blocks_[static_cast<std::size_t>(i)], x, x0);
        skips.push_back(x);
    }
    for (std::int64_t i = 0; i < config_.num_layers - encoders; ++i) {
        if (!skips.empty()) {
            x = ag::add(tape, x, ag::mul_broadcast(tape, skips.back(), ag::row(tape, param(skip_weights_), i), -1));
            skips.pop_back();
        }
        x = block_forward(blocks_[static_cast<std::size_t>(encoders + i)], x, x0);
    }
    x = ag::reshape(tape, ag::rmsnorm(tape, x, eps), {batch * seq, d});
    const Var& head = config_.tie_embeddings ? param(tok_emb_) : param(lm_head_);
    Var logits = ag::linear(tape, x, head);
    return ag::softcap_cross_entropy(tape, logits, targets.reshape({batch * seq}), config_.logit_softcap);
}

Var Gpt::loss(Tape* tape, const Tensor& inputs, const Tensor& targets) const {
    return ag::mean(tape, token_losses(tape, inputs, targets));
}

void Gpt::zero_grad() {
    for (Parameter& parameter : parameters_) parameter.var.zero_grad();
}

}  // namespace pgolf
