// The configurable GPT, at present the challenge baseline (SEED-SYSTEMS.md §1.2): tied embeddings, RMSNorm without
// gain, GQA attention with q/k RMSNorm, RoPE and a per-head q gain, relu² MLP, residual mix with x0, per-channel
// attention/MLP scales, U-Net skips, softcapped logits. Parameter names are the reference's state_dict names.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "model/config.h"

namespace pgolf {

struct GptConfig {
    std::int64_t vocab_size = 1024;
    std::int64_t num_layers = 9;
    std::int64_t model_dim = 512;
    std::int64_t num_heads = 8;
    std::int64_t num_kv_heads = 4;
    std::int64_t mlp_mult = 2;
    bool tie_embeddings = true;
    double rope_base = 10000.0;
    double logit_softcap = 30.0;
    double qk_gain_init = 1.5;
    double tied_embed_init_std = 0.005;
    DType dtype = DType::f32;  // f64 for gradient checks

    std::int64_t head_dim() const { return model_dim / num_heads; }
    std::int64_t kv_dim() const { return num_kv_heads * head_dim(); }
    static GptConfig from_config(const Config& config);  // validates the shape (divisibility, even head dim)
};

// Optimizer group of a parameter, as the reference splits them.
enum class ParameterGroup { embedding, head, matrix, scalar };
std::string parameter_group_name(ParameterGroup group);

struct Parameter {
    std::string name;
    Var var;
    ParameterGroup group;
};

class Gpt {
public:
    explicit Gpt(const GptConfig& config);

    // The reference's initialisation: tok_emb ~ N(0, TIED_EMBED_INIT_STD²), other matrices U(±1/√fan_in) (torch's
    // Linear default), output projections zero, q_gain QK_GAIN_INIT, scales 1, resid_mix (1, 0), skip weights 1.
    void initialize(std::uint64_t seed);

    const GptConfig& config() const { return config_; }
    const std::vector<Parameter>& parameters() const { return parameters_; }
    const Parameter& parameter(const std::string& name) const;  // throws naming the missing parameter
    std::int64_t parameter_count() const;
    // Virtual layer -> physical block (the baseline runs each block once, in order).
    std::vector<std::int64_t> layer_schedule() const;
    // Training FLOPs per token: 6 x matmul parameters (the tied head included) + 6·L·T·D for causal attention.
    double training_flops_per_token(std::int64_t seq_len) const;

    // Per-token NLL, (B·T,), of targets given inputs (both (B, T) i64). With a tape, the graph is recorded.
    Var token_losses(Tape* tape, const Tensor& inputs, const Tensor& targets) const;
    // Mean NLL over all targets: the training loss (a () tensor).
    Var loss(Tape* tape, const Tensor& inputs, const Tensor& targets) const;

    void zero_grad();

private:
    const Var& param(std::size_t index) const { return parameters_[index].var; }
    std::size_t add_parameter(const std::string& name, const Shape& shape, ParameterGroup group);

    struct BlockIndices {
        std::size_t c_q, c_k, c_v, proj, q_gain, fc, mlp_proj, attn_scale, mlp_scale, resid_mix;
    };
    GptConfig config_;
    std::vector<Parameter> parameters_;
    std::size_t tok_emb_ = 0;
    std::size_t lm_head_ = 0;  // only when embeddings are untied
    std::size_t skip_weights_ = 0;
    std::int64_t num_skips_ = 0;
    std::vector<BlockIndices> blocks_;
};

}  // namespace pgolf
