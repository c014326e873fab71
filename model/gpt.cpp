// The configurable GPT: schedule planning, parameters, initialisation and the forward pass over the autograd ops.
#include "model/gpt.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "core/autograd_ops.h"
#include "core/error.h"
#include "core/ops/norm.h"
#include "model/init.h"
#include "model/random.h"

namespace pgolf {

namespace {

std::vector<std::int64_t> parse_list(const std::string& key, const std::string& text) {
    return config_parse_int_list(key, text);
}

// "3:0,4:1" -> {(3, 0), (4, 1)}.
std::vector<std::pair<std::int64_t, std::int64_t>> parse_pairs(const std::string& key, const std::string& text) {
    std::vector<std::pair<std::int64_t, std::int64_t>> pairs;
    std::stringstream stream(text);
    std::string item;
    while (std::getline(stream, item, ',')) {
        if (item.empty()) continue;
        const auto colon = item.find(':');
        if (colon == std::string::npos) throw Error("config: " + key + " must look like 'a:b,c:d', got '" + text + "'");
        const auto left = parse_list(key, item.substr(0, colon));
        const auto right = parse_list(key, item.substr(colon + 1));
        if (left.size() != 1 || right.size() != 1) {
            throw Error("config: " + key + " must look like 'a:b,c:d', got '" + text + "'");
        }
        pairs.emplace_back(left[0], right[0]);
    }
    return pairs;
}

std::int64_t int_or(const Config& config, const std::string& key, std::int64_t fallback) {
    return config.has(key) ? config.get_int(key) : fallback;
}
double double_or(const Config& config, const std::string& key, double fallback) {
    return config.has(key) ? config.get_double(key) : fallback;
}
std::string string_or(const Config& config, const std::string& key, const std::string& fallback) {
    return config.has(key) ? config.get_string(key) : fallback;
}
bool contains(const std::vector<std::int64_t>& values, std::int64_t value) {
    return std::find(values.begin(), values.end(), value) != values.end();
}

}  // namespace

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

    gpt.layer_schedule = parse_list("LAYER_SCHEDULE", string_or(config, "LAYER_SCHEDULE", ""));
    gpt.recurrent_core = parse_list("RECURRENT_CORE", string_or(config, "RECURRENT_CORE", ""));
    gpt.passes_schedule = parse_pairs("PASSES_SCHEDULE", string_or(config, "PASSES_SCHEDULE", ""));
    gpt.eval_passes = int_or(config, "EVAL_PASSES", 1);
    gpt.scales_per_virtual_layer = int_or(config, "SCALES_PER_VIRTUAL_LAYER", 0) != 0;
    const std::string skip_mode = string_or(config, "SKIP_MODE", "unet");
    if (skip_mode == "unet") {
        gpt.skip_mode = SkipMode::unet;
    } else if (skip_mode == "explicit") {
        gpt.skip_mode = SkipMode::explicit_layers;
    } else if (skip_mode == "stem_tail") {
        gpt.skip_mode = SkipMode::stem_tail;
    } else {
        throw Error("config: SKIP_MODE must be unet, explicit or stem_tail");
    }
    gpt.skip_push = parse_list("SKIP_PUSH", string_or(config, "SKIP_PUSH", ""));
    gpt.skip_pop = parse_pairs("SKIP_POP", string_or(config, "SKIP_POP", ""));
    gpt.num_skip_weights = int_or(config, "NUM_SKIP_WEIGHTS", -1);
    gpt.xsa_blocks = parse_list("XSA_BLOCKS", string_or(config, "XSA_BLOCKS", ""));
    gpt.xsa_virtual = parse_list("XSA_VIRTUAL", string_or(config, "XSA_VIRTUAL", ""));
    gpt.ve_dim = int_or(config, "VE_DIM", 0);
    gpt.ve_virtual = parse_list("VE_VIRTUAL", string_or(config, "VE_VIRTUAL", ""));
    gpt.ve_blocks = parse_list("VE_BLOCKS", string_or(config, "VE_BLOCKS", ""));
    gpt.ve_shared_scale_init = double_or(config, "VE_SHARED_SCALE_INIT", 0.0);
    gpt.ve_proj_gain = double_or(config, "VE_PROJ_GAIN", 1.0);
    gpt.bigram_buckets = int_or(config, "BIGRAM_BUCKETS", 0);
    gpt.bigram_dim = int_or(config, "BIGRAM_DIM", 128);
    const std::string hash = string_or(config, "BIGRAM_HASH", "multiply_add");
    if (hash != "multiply_add" && hash != "xor_mod") throw Error("config: BIGRAM_HASH must be multiply_add or xor_mod");
    gpt.bigram_hash = hash == "xor_mod" ? BigramHashKind::xor_mod : BigramHashKind::multiply_add;
    gpt.bigram_scale_init = double_or(config, "BIGRAM_SCALE_INIT", 0.0);
    gpt.bigram_table_std = double_or(config, "BIGRAM_TABLE_STD", 0.01);
    gpt.bigram_proj_orthogonal = string_or(config, "BIGRAM_PROJ_INIT", "zero") == "orthogonal";
    gpt.smear_gate = int_or(config, "SMEAR_GATE", 0) != 0;
    gpt.rope_dims = int_or(config, "ROPE_DIMS", 0);
    gpt.rope_frequency_dims = int_or(config, "ROPE_FREQ_DIMS", 0);
    gpt.rope_ntk_train_seq_len = int_or(config, "ROPE_NTK_TRAIN_SEQ_LEN", 0);
    gpt.ln_scale = int_or(config, "LN_SCALE", 0) != 0;
    const std::string activation = string_or(config, "MLP_ACTIVATION", "relu2");
    if (activation != "relu2" && activation != "leaky_relu2") {
        throw Error("config: MLP_ACTIVATION must be relu2 or leaky_relu2");
    }
    gpt.leaky_relu = activation == "leaky_relu2";
    gpt.matrix_init =
        string_or(config, "MATRIX_INIT", "uniform") == "orthogonal" ? MatrixInit::orthogonal : MatrixInit::uniform;
    gpt.residual_alpha_size = int_or(config, "RESIDUAL_ALPHA_SIZE", 0);
    gpt.residual_alpha_init = double_or(config, "RESIDUAL_ALPHA_INIT", 0.5);
    gpt.residual_alpha_trained = int_or(config, "RESIDUAL_ALPHA_TRAINED", 1) != 0;
    gpt.alpha_layers = parse_pairs("ALPHA_LAYERS", string_or(config, "ALPHA_LAYERS", ""));
    gpt.feedback_rank = int_or(config, "FEEDBACK_RANK", 0);
    gpt.jacobian_lambda = double_or(config, "JACOBIAN_LAMBDA", 0.0);
    gpt.feedback_init_std = double_or(config, "FEEDBACK_INIT_STD", 0.0);
    gpt.parameter_banks = int_or(config, "PARAMETER_BANKS", 0) != 0;

    // Schedule checks.
    for (const std::int64_t block : gpt.layer_schedule) {
        if (block < 0 || block >= gpt.num_layers) throw Error("config: LAYER_SCHEDULE names a block past NUM_LAYERS");
    }
    if (!gpt.recurrent_core.empty()) {
        if (!gpt.layer_schedule.empty()) throw Error("config: use LAYER_SCHEDULE or RECURRENT_CORE, not both");
        for (std::size_t i = 0; i < gpt.recurrent_core.size(); ++i) {
            if (gpt.recurrent_core[i] != gpt.recurrent_core[0] + static_cast<std::int64_t>(i) ||
                gpt.recurrent_core[i] < 0 || gpt.recurrent_core[i] >= gpt.num_layers) {
                throw Error("config: RECURRENT_CORE must be consecutive blocks inside NUM_LAYERS");
            }
        }
        if (gpt.scales_per_virtual_layer) throw Error("config: a recurrent core needs per-block scales");
        if (gpt.eval_passes < 1) throw Error("config: EVAL_PASSES must be at least 1");
        if (gpt.residual_alpha_size > 0 && gpt.residual_alpha_size < gpt.eval_passes) {
            throw Error("config: RESIDUAL_ALPHA_SIZE must cover EVAL_PASSES");
        }
    } else if (!gpt.passes_schedule.empty()) {
        throw Error("config: PASSES_SCHEDULE needs a RECURRENT_CORE");
    }
    std::sort(gpt.passes_schedule.begin(), gpt.passes_schedule.end());
    if (gpt.skip_mode == SkipMode::explicit_layers && gpt.num_skip_weights < 0) {
        throw Error("config: SKIP_MODE=explicit needs NUM_SKIP_WEIGHTS");
    }
    if (gpt.skip_mode == SkipMode::stem_tail && gpt.recurrent_core.empty()) {
        throw Error("config: SKIP_MODE=stem_tail needs a RECURRENT_CORE");
    }
    const std::int64_t rotary = gpt.rope_dims == 0 ? gpt.head_dim() : gpt.rope_dims;
    if (rotary % 2 != 0 || rotary > gpt.head_dim()) throw Error("config: ROPE_DIMS must be even and ≤ the head dim");
    if (gpt.rope_ntk_train_seq_len > 0 && rotary <= 2)
        throw Error("config: NTK RoPE scaling needs more than 2 rotated dims");
    for (const auto& [layer, index] : gpt.alpha_layers) {
        if (index < 0 || index >= gpt.residual_alpha_size)
            throw Error("config: ALPHA_LAYERS index past RESIDUAL_ALPHA_SIZE");
        (void)layer;
    }
    if ((!gpt.ve_virtual.empty() || !gpt.ve_blocks.empty()) && gpt.ve_dim <= 0) {
        throw Error("config: VE_VIRTUAL/VE_BLOCKS need VE_DIM > 0");
    }
    return gpt;
}

std::string parameter_group_name(ParameterGroup group) {
    switch (group) {
        case ParameterGroup::embedding:
            return "embedding";
        case ParameterGroup::head:
            return "head";
        case ParameterGroup::matrix:
            return "matrix";
        case ParameterGroup::scalar:
            return "scalar";
        case ParameterGroup::frozen:
            return "frozen";
    }
    return "?";
}

std::vector<VirtualLayer> Gpt::layer_plan(std::int64_t passes) const {
    const GptConfig& c = config_;
    std::vector<VirtualLayer> plan;
    if (!c.recurrent_core.empty()) {
        const std::int64_t first = c.recurrent_core.front();
        const std::int64_t last = c.recurrent_core.back();
        for (std::int64_t b = 0; b < first; ++b) plan.push_back(VirtualLayer{b, b});
        for (std::int64_t pass = 0; pass < passes; ++pass) {
            for (std::int64_t b = first; b <= last; ++b) {
                VirtualLayer layer{b, b};
                layer.core_pass = pass;
                plan.push_back(layer);
            }
        }
        for (std::int64_t b = last + 1; b < c.num_layers; ++b) plan.push_back(VirtualLayer{b, b});
    } else if (!c.layer_schedule.empty()) {
        for (const std::int64_t b : c.layer_schedule) plan.push_back(VirtualLayer{b, b});
    } else {
        for (std::int64_t b = 0; b < c.num_layers; ++b) plan.push_back(VirtualLayer{b, b});
    }
    const auto count = static_cast<std::int64_t>(plan.size());
    std::vector<bool> seen(static_cast<std::size_t>(c.num_layers), false);
    for (std::int64_t v = 0; v < count; ++v) {
        VirtualLayer& layer = plan[static_cast<std::size_t>(v)];
        if (c.scales_per_virtual_layer) layer.scale_index = v;
        layer.xsa = c.xsa_virtual.empty() ? contains(c.xsa_blocks, layer.block) : contains(c.xsa_virtual, v);
        const bool first_run = !seen[static_cast<std::size_t>(layer.block)];
        seen[static_cast<std::size_t>(layer.block)] = true;
        for (std::size_t i = 0; i < c.ve_virtual.size(); ++i) {
            if (c.ve_virtual[i] == v) layer.ve_index = static_cast<std::int64_t>(i);
        }
        for (std::size_t i = 0; i < c.ve_blocks.size(); ++i) {
            if (c.ve_blocks[i] == layer.block && first_run) layer.ve_index = static_cast<std::int64_t>(i);
        }
        for (const auto& [alpha_layer, index] : c.alpha_layers) {
            if (alpha_layer == v) layer.alpha_index = index;
        }
    }
    switch (c.skip_mode) {
        case SkipMode::unet: {
            const std::int64_t encoders = count / 2;
            for (std::int64_t v = 0; v < count; ++v) {
                if (v < encoders) {
                    plan[static_cast<std::size_t>(v)].push_skip = true;
                } else if (v - encoders < encoders) {
                    plan[static_cast<std::size_t>(v)].pop_skip_row = v - encoders;
                }
            }
            break;
        }
        case SkipMode::explicit_layers:
            for (const std::int64_t v : c.skip_push) {
                if (v < count) plan[static_cast<std::size_t>(v)].push_skip = true;
            }
            for (const auto& [v, row] : c.skip_pop) {
                if (v < count) plan[static_cast<std::size_t>(v)].pop_skip_row = row;
            }
            break;
        case SkipMode::stem_tail: {
            const std::int64_t stem = c.recurrent_core.front();
            const std::int64_t tail_start = count - (c.num_layers - 1 - c.recurrent_core.back());
            for (std::int64_t v = 0; v < stem; ++v) plan[static_cast<std::size_t>(v)].push_skip = true;
            for (std::int64_t v = tail_start; v < count; ++v) {
                if (v - tail_start < stem) plan[static_cast<std::size_t>(v)].pop_skip_row = v - tail_start;
            }
            break;
        }
    }
    return plan;
}

std::int64_t Gpt::passes_at_step(std::int64_t step) const {
    if (config_.passes_schedule.empty()) return config_.eval_passes;
    std::int64_t passes = config_.passes_schedule.front().second;
    for (const auto& [from, count] : config_.passes_schedule) {
        if (step >= from) passes = count;
    }
    return passes;
}

RopeSpec Gpt::rope_spec(std::int64_t seq_len) const {
    const GptConfig& c = config_;
    RopeSpec rope;
    rope.rotary_dims = c.rope_dims == 0 ? c.head_dim() : c.rope_dims;
    rope.frequency_dims = c.rope_frequency_dims;
    rope.base = c.rope_base;
    if (c.rope_ntk_train_seq_len > 0 && seq_len > c.rope_ntk_train_seq_len) {
        // NTK-aware scaling as the S2/S4 Rotary does past its training length: base · s^(r/(r−2)).
        const double r = static_cast<double>(rope.rotary_dims);
        rope.base = c.rope_base *
                    std::pow(static_cast<double>(seq_len) / static_cast<double>(c.rope_ntk_train_seq_len), r / (r - 2));
    }
    return rope;
}

std::size_t Gpt::add_parameter(const std::string& name, const Shape& shape, ParameterGroup group) {
    parameters_.push_back(
        Parameter{name, Var(Tensor::zeros(shape, config_.dtype), group != ParameterGroup::frozen), group});
    return parameters_.size() - 1;
}

Gpt::Gpt(const GptConfig& config) : config_(config) {
    const GptConfig& c = config_;
    const std::int64_t d = c.model_dim;
    const std::int64_t hidden = c.mlp_mult * d;
    // Auxiliary projections (bigram.proj, ve.proj) train with Muon in S1/S3 and with the scalar AdamW in S2/S4.
    tok_emb_ = add_parameter("tok_emb.weight", {c.vocab_size, d}, ParameterGroup::embedding);
    const std::vector<VirtualLayer> plan = layer_plan(c.eval_passes);
    const auto virtual_layers = static_cast<std::int64_t>(plan.size());
    switch (c.skip_mode) {
        case SkipMode::unet:
            num_skips_ = std::min(virtual_layers / 2, virtual_layers - virtual_layers / 2);
            break;
        case SkipMode::explicit_layers:
            num_skips_ = c.num_skip_weights;
            break;
        case SkipMode::stem_tail:
            num_skips_ = std::min(c.recurrent_core.front(), c.num_layers - 1 - c.recurrent_core.back());
            break;
    }
    skip_weights_ = add_parameter("skip_weights", {num_skips_, d}, ParameterGroup::scalar);
    if (c.smear_gate) smear_ = add_parameter("smear.gate", {d}, ParameterGroup::scalar);
    if (c.bigram_buckets > 0) {
        bigram_table_ =
            add_parameter("bigram.table.weight", {c.bigram_buckets, c.bigram_dim}, ParameterGroup::embedding);
        bigram_proj_ = add_parameter("bigram.proj.weight", {d, c.bigram_dim},
                                     c.bigram_scale_init > 0 ? ParameterGroup::scalar : ParameterGroup::matrix);
        bigram_proj_matrix_ = add_matrix("bigram.proj.weight", bigram_proj_, -1);
        if (c.bigram_scale_init > 0) bigram_scale_ = add_parameter("bigram.scale", {1}, ParameterGroup::scalar);
    }
    if (c.ve_dim > 0) {
        ve_table_ = add_parameter("ve.table.weight", {c.vocab_size, c.ve_dim}, ParameterGroup::embedding);
        ve_proj_ = add_parameter("ve.proj.weight", {c.kv_dim(), c.ve_dim},
                                 c.ve_shared_scale_init > 0 ? ParameterGroup::scalar : ParameterGroup::matrix);
        ve_proj_matrix_ = add_matrix("ve.proj.weight", ve_proj_, -1);
        if (c.ve_shared_scale_init > 0) ve_shared_scale_ = add_parameter("ve.scale", {1}, ParameterGroup::scalar);
        const std::size_t layers = std::max(c.ve_virtual.size(), c.ve_blocks.size());
        for (std::size_t i = 0; i < layers; ++i) {
            ve_scales_.push_back(add_parameter("ve.layer_scales." + std::to_string(i), {1}, ParameterGroup::scalar));
        }
    }
    if (c.scales_per_virtual_layer) {
        num_scale_rows_ = virtual_layers;
        attn_scales_ = add_parameter("attn_scales", {num_scale_rows_, d}, ParameterGroup::scalar);
        mlp_scales_ = add_parameter("mlp_scales", {num_scale_rows_, d}, ParameterGroup::scalar);
        resid_mixes_ = add_parameter("resid_mixes", {2 * num_scale_rows_, d}, ParameterGroup::scalar);
    }
    std::size_t qo_bank = 0, kv_bank = 0, up_bank = 0, down_bank = 0;
    const std::int64_t n = c.num_layers;
    if (c.parameter_banks) {
        qo_bank = add_parameter("qo_bank", {2 * n, d, d}, ParameterGroup::matrix);
        kv_bank = add_parameter("kv_bank", {2 * n, c.kv_dim(), d}, ParameterGroup::matrix);
        up_bank = add_parameter("mlp_up_bank", {n, hidden, d}, ParameterGroup::matrix);
        down_bank = add_parameter("mlp_down_bank", {n, d, hidden}, ParameterGroup::matrix);
    }
    for (std::int64_t i = 0; i < n; ++i) {
        const std::string prefix = "blocks." + std::to_string(i) + ".";
        auto matrix = [&](const std::string& name, const Shape& shape, std::size_t bank, std::int64_t slice) {
            if (c.parameter_banks) return add_matrix(prefix + name, bank, slice);
            return add_matrix(prefix + name, add_parameter(prefix + name, shape, ParameterGroup::matrix), -1);
        };
        BlockIndices block{};
        block.c_q = matrix("attn.c_q.weight", {d, d}, qo_bank, i);
        block.c_k = matrix("attn.c_k.weight", {c.kv_dim(), d}, kv_bank, i);
        block.c_v = matrix("attn.c_v.weight", {c.kv_dim(), d}, kv_bank, n + i);
        block.proj = matrix("attn.proj.weight", {d, d}, qo_bank, n + i);
        block.q_gain = add_parameter(prefix + "attn.q_gain", {c.num_heads}, ParameterGroup::scalar);
        block.fc = matrix("mlp.fc.weight", {hidden, d}, up_bank, i);
        block.mlp_proj = matrix("mlp.proj.weight", {d, hidden}, down_bank, i);
        if (!c.scales_per_virtual_layer) {
            block.attn_scale = add_parameter(prefix + "attn_scale", {d}, ParameterGroup::scalar);
            block.mlp_scale = add_parameter(prefix + "mlp_scale", {d}, ParameterGroup::scalar);
            block.resid_mix = add_parameter(prefix + "resid_mix", {2, d}, ParameterGroup::scalar);
        }
        blocks_.push_back(block);
    }
    if (c.residual_alpha_size > 0) {
        // S3's α sits in no optimizer group, so it keeps its initial value (SEED-SYSTEMS.md §3.2).
        alpha_ = add_parameter("residual_alpha", {c.residual_alpha_size},
                               c.residual_alpha_trained ? ParameterGroup::scalar : ParameterGroup::frozen);
    }
    if (c.feedback_rank > 0) {
        // e = (h V) Uᵀ with V, U ∈ R^{d×r}; V is stored transposed (r, d) so both products are linear layers.
        feedback_v_ = add_parameter("feedback.V", {c.feedback_rank, d}, ParameterGroup::scalar);
        feedback_u_ = add_parameter("feedback.U", {d, c.feedback_rank}, ParameterGroup::scalar);
        feedback_d_ = add_parameter("feedback.diag", {d}, ParameterGroup::scalar);
    }
    if (!c.tie_embeddings) lm_head_ = add_parameter("lm_head.weight", {c.vocab_size, d}, ParameterGroup::head);
    fake_quant_.assign(matrices_.size(), false);
    fake_quant_specs_.resize(matrices_.size());
}

std::size_t Gpt::add_matrix(const std::string& name, std::size_t parameter, std::int64_t slice) {
    matrices_.push_back(MatrixRef{name, parameter, slice});
    return matrices_.size() - 1;
}

Tensor Gpt::matrix_value(std::size_t matrix) const {
    const MatrixRef& ref = matrices_[matrix];
    const Tensor& value = parameters_[ref.parameter].var.value();
    if (ref.slice < 0) return value;
    return value.rows(ref.slice, ref.slice + 1).reshape({value.size(1), value.size(2)});
}

void Gpt::initialize(std::uint64_t seed) {
    if (device_ != Device::cpu) throw Error("model: initialize on the CPU, then move the model with to_device");
    const GptConfig& c = config_;
    RandomStream random(seed);
    auto value = [&](std::size_t index) -> Tensor { return parameters_[index].var.value(); };  // storage handle
    auto init_matrix = [&](std::size_t matrix) {
        Tensor w = matrix_value(matrix);
        if (c.matrix_init == MatrixInit::orthogonal) {
            init_orthogonal(w, random);
        } else {
            init_uniform_fan_in(w, random);
        }
    };
    Tensor embedding = value(tok_emb_);
    init_normal(embedding, random, c.tied_embed_init_std);
    value(skip_weights_).fill(1.0);
    if (c.smear_gate) value(smear_).zero();  // σ(0) = ½: an even mix at the start
    if (c.bigram_buckets > 0) {
        Tensor table = value(bigram_table_);
        if (c.bigram_table_std > 0) {
            init_normal(table, random, c.bigram_table_std);
        } else {
            table.zero();
        }
        Tensor proj = value(bigram_proj_);
        if (c.bigram_proj_orthogonal) {
            init_orthogonal(proj, random);
        } else {
            proj.zero();
        }
        if (c.bigram_scale_init > 0) value(bigram_scale_).fill(c.bigram_scale_init);
    }
    if (c.ve_dim > 0) {
        Tensor table = value(ve_table_);
        init_normal(table, random, 0.01);
        Tensor proj = value(ve_proj_);
        init_orthogonal(proj, random, c.ve_proj_gain);
        if (c.ve_shared_scale_init > 0) value(ve_shared_scale_).fill(c.ve_shared_scale_init);
        for (const std::size_t index : ve_scales_) value(index).fill(1.0);
    }
    auto init_mix = [](Tensor mix) {
        for (std::int64_t r = 0; r < mix.size(0); ++r) mix.rows(r, r + 1).fill(r % 2 == 0 ? 1.0 : 0.0);
    };
    if (c.scales_per_virtual_layer) {
        value(attn_scales_).fill(1.0);
        value(mlp_scales_).fill(1.0);
        init_mix(value(resid_mixes_));
    }
    for (const BlockIndices& block : blocks_) {
        init_matrix(block.c_q);
        init_matrix(block.c_k);
        init_matrix(block.c_v);
        matrix_value(block.proj).zero();
        value(block.q_gain).fill(c.qk_gain_init);
        init_matrix(block.fc);
        matrix_value(block.mlp_proj).zero();
        if (!c.scales_per_virtual_layer) {
            value(block.attn_scale).fill(1.0);
            value(block.mlp_scale).fill(1.0);
            init_mix(value(block.resid_mix));
        }
    }
    if (c.residual_alpha_size > 0) value(alpha_).fill(c.residual_alpha_init);
    if (c.feedback_rank > 0) {
        // Zero, as S2 ran it, which keeps the branch inert (SEED-SYSTEMS.md §4.2); FEEDBACK_INIT_STD > 0 gives the
        // README's live feedback.
        Tensor v = value(feedback_v_);
        Tensor u = value(feedback_u_);
        if (c.feedback_init_std > 0) {
            init_normal(v, random, c.feedback_init_std);
            init_normal(u, random, c.feedback_init_std);
            value(feedback_d_).fill(1.0);
        } else {
            v.zero();
            u.zero();
            value(feedback_d_).zero();
        }
    }
    if (!c.tie_embeddings) value(lm_head_).zero();
}

const Parameter& Gpt::parameter(const std::string& name) const {
    for (const Parameter& parameter : parameters_) {
        if (parameter.name == name) return parameter;
    }
    throw Error("model has no parameter named " + name);
}

bool Gpt::has_parameter(const std::string& name) const {
    return std::any_of(parameters_.begin(), parameters_.end(), [&](const Parameter& p) { return p.name == name; });
}

std::int64_t Gpt::parameter_count() const {
    std::int64_t count = 0;
    for (const Parameter& parameter : parameters_) count += parameter.var.value().numel();
    return count;
}

std::int64_t Gpt::parameter_count(ParameterGroup group) const {
    std::int64_t count = 0;
    for (const Parameter& parameter : parameters_) {
        if (parameter.group == group) count += parameter.var.value().numel();
    }
    return count;
}

double Gpt::training_flops_per_token(std::int64_t seq_len, std::int64_t passes) const {
    const std::vector<VirtualLayer> plan = layer_plan(passes);
    const GptConfig& c = config_;
    const double d = static_cast<double>(c.model_dim);
    const double block =
        2 * d * d + 2 * d * static_cast<double>(c.kv_dim()) + 2 * d * d * static_cast<double>(c.mlp_mult);
    double matmul = static_cast<double>(plan.size()) * block + static_cast<double>(c.vocab_size) * d;
    if (c.bigram_buckets > 0) matmul += d * static_cast<double>(c.bigram_dim);
    if (c.ve_dim > 0) matmul += static_cast<double>(c.kv_dim() * c.ve_dim);
    const double attention = 6.0 * static_cast<double>(plan.size()) * static_cast<double>(seq_len) * d;
    return 6.0 * matmul + attention;
}

void Gpt::set_fake_quant(const std::vector<std::pair<std::string, FakeQuantSpec>>& targets) {
    std::vector<bool> enabled(matrices_.size(), false);
    std::vector<FakeQuantSpec> specs(matrices_.size());
    for (const auto& [name, spec] : targets) {
        bool found = false;
        for (std::size_t i = 0; i < matrices_.size(); ++i) {
            if (matrices_[i].name != name) continue;
            enabled[i] = true;
            specs[i] = spec;
            found = true;
        }
        if (!found) throw Error("fake quant: model has no weight matrix named " + name);
    }
    fake_quant_ = std::move(enabled);
    fake_quant_specs_ = std::move(specs);
}

std::vector<std::pair<std::string, std::int64_t>> Gpt::weight_matrices() const {
    std::vector<std::pair<std::string, std::int64_t>> matrices;
    for (std::size_t i = 0; i < matrices_.size(); ++i)
        matrices.emplace_back(matrices_[i].name, matrix_value(i).numel());
    return matrices;
}

std::size_t Gpt::fake_quant_count() const {
    return static_cast<std::size_t>(std::count(fake_quant_.begin(), fake_quant_.end(), true));
}

Var Gpt::weight(Tape* tape, std::size_t matrix) const {
    const MatrixRef& ref = matrices_[matrix];
    Var w = ref.slice < 0 ? param(ref.parameter) : ag::row(tape, param(ref.parameter), ref.slice);
    if (fake_quant_[matrix]) return ag::fake_quantize(tape, w, fake_quant_specs_[matrix]);
    return w;
}

Var Gpt::project(Tape* tape, const Var& x, std::size_t matrix, bool repeat) const {
    if (observer_) {
        // The observers (GPTQ calibration) read the rows on the host.
        if (device_ != Device::cpu) throw Error("model: the matrix input observer runs on the CPU only");
        const Tensor& input = x.value();
        observer_(matrices_[matrix].name, input.reshape({-1, input.size(-1)}), repeat);
    }
    return ag::linear(tape, x, weight(tape, matrix));
}

std::vector<std::pair<std::string, Tensor>> Gpt::named_tensors() const {
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (std::size_t p = 0; p < parameters_.size(); ++p) {
        bool banked = false;
        for (std::size_t m = 0; m < matrices_.size(); ++m) {
            if (matrices_[m].parameter == p && matrices_[m].slice >= 0) banked = true;
        }
        if (!banked) {
            tensors.emplace_back(parameters_[p].name, parameters_[p].var.value());
            continue;
        }
        // A bank's slices in slice order (Q then out, K then V, …), under their per-layer names.
        std::vector<std::size_t> slices;
        for (std::size_t m = 0; m < matrices_.size(); ++m) {
            if (matrices_[m].parameter == p) slices.push_back(m);
        }
        std::sort(slices.begin(), slices.end(),
                  [&](std::size_t a, std::size_t b) { return matrices_[a].slice < matrices_[b].slice; });
        for (const std::size_t m : slices) tensors.emplace_back(matrices_[m].name, matrix_value(m));
    }
    return tensors;
}

void Gpt::load_named_tensors(const std::vector<std::pair<std::string, Tensor>>& tensors) {
    // A checkpoint names the parameters themselves (banks whole); an artifact names the unbanked matrices.
    bool parameter_names = tensors.size() == parameters_.size();
    for (const auto& entry : tensors) parameter_names = parameter_names && has_parameter(entry.first);
    std::vector<std::pair<std::string, Tensor>> targets;
    if (parameter_names) {
        for (const Parameter& parameter : parameters_) targets.emplace_back(parameter.name, parameter.var.value());
    } else {
        targets = named_tensors();
    }
    std::map<std::string, const Tensor*> given;
    for (const auto& [name, tensor] : tensors) {
        if (!given.emplace(name, &tensor).second) throw Error("model weights: duplicate tensor " + name);
    }
    for (const auto& [name, target] : targets) {
        const auto found = given.find(name);
        if (found == given.end()) throw Error("model weights: missing tensor " + name);
        if (found->second->shape() != target.shape()) {
            throw Error("model weights: " + name + " has shape " + shape_string(found->second->shape()) +
                        ", the model needs " + shape_string(target.shape()));
        }
        given.erase(found);
    }
    if (!given.empty()) throw Error("model weights: unexpected tensor " + given.begin()->first);
    std::map<std::string, const Tensor*> by_name;
    for (const auto& [name, tensor] : tensors) by_name[name] = &tensor;
    for (auto& [name, target] : targets) target.copy_from(by_name.at(name)->to(target.dtype()));
}

namespace {

// Element i of a vector as a one-element Var (its gradient lands in that element).
Var element(Tape* tape, const Var& vector, std::int64_t index) {
    return ag::row(tape, ag::reshape(tape, vector, {-1, 1}), index);
}

// x ⊙ s for a one-element parameter s.
Var scale_by(Tape* tape, const Var& x, const Var& s) {
    const Shape shape = x.shape();
    return ag::reshape(tape, ag::mul_broadcast(tape, ag::reshape(tape, x, {-1, 1}), s, -1), shape);
}

}  // namespace

Var Gpt::forward_hidden(Tape* tape, const Tensor& inputs, std::int64_t passes, Var* core_in, Var* core_out) const {
    const GptConfig& c = config_;
    const std::int64_t batch = inputs.size(0);
    const std::int64_t seq = inputs.size(1);
    const std::int64_t d = c.model_dim;
    const std::int64_t head_dim = c.head_dim();
    const double eps = kRmsNormEpsF32;
    const RopeSpec rope = rope_spec(seq);

    // Embedding (+ BigramHash), RMSNorm, SmearGate: x0.
    const Tensor ids = device_ids(inputs, c.vocab_size, "input");
    Var x = ag::embedding(tape, param(tok_emb_), ids);
    if (c.bigram_buckets > 0) {
        const Tensor buckets =
            device_ids(bigram_hash_ids(inputs, c.bigram_buckets, c.bigram_hash), c.bigram_buckets, "bigram bucket");
        Var bigram = project(tape, ag::embedding(tape, param(bigram_table_), buckets), bigram_proj_matrix_, false);
        if (c.bigram_scale_init > 0) bigram = scale_by(tape, bigram, param(bigram_scale_));
        x = ag::add(tape, x, bigram);
    }
    x = ag::rmsnorm(tape, x, eps);
    if (c.smear_gate) x = ag::smear(tape, x, param(smear_));
    const Var x0 = x;
    Var value_embedding;
    if (c.ve_dim > 0) {
        value_embedding = project(tape, ag::embedding(tape, param(ve_table_), ids), ve_proj_matrix_, false);
        if (c.ve_shared_scale_init > 0) value_embedding = scale_by(tape, value_embedding, param(ve_shared_scale_));
    }

    std::vector<bool> block_ran(blocks_.size(), false);
    auto block_forward = [&](const VirtualLayer& layer, const Var& x_in) {
        const BlockIndices& block = blocks_[static_cast<std::size_t>(layer.block)];
        const bool repeat = block_ran[static_cast<std::size_t>(layer.block)];
        block_ran[static_cast<std::size_t>(layer.block)] = true;
        const bool per_virtual = c.scales_per_virtual_layer;
        const Var attn_scale =
            per_virtual ? ag::row(tape, param(attn_scales_), layer.scale_index) : param(block.attn_scale);
        const Var mlp_scale =
            per_virtual ? ag::row(tape, param(mlp_scales_), layer.scale_index) : param(block.mlp_scale);
        // The (2, D) mix of this layer: rows 2ℓ and 2ℓ + 1 of the per-virtual (2V, D) table, or the block's own.
        const Var mix = per_virtual
                            ? ag::row(tape, ag::reshape(tape, param(resid_mixes_), {num_scale_rows_, 2, c.model_dim}),
                                      layer.scale_index)
                            : param(block.resid_mix);
        const double norm_factor = c.ln_scale ? 1.0 / std::sqrt(static_cast<double>(layer.block + 1)) : 1.0;

        Var h = ag::residual_mix(tape, x_in, x0, mix);
        Var n = ag::rmsnorm(tape, h, eps, norm_factor);
        Var q = project(tape, n, block.c_q, repeat);
        Var k = project(tape, n, block.c_k, repeat);
        Var v = project(tape, n, block.c_v, repeat);
        if (layer.ve_index >= 0) {
            // The value embedding joins v before the head split, so XSA sees the augmented v.
            v = ag::add(tape, v,
                        scale_by(tape, value_embedding, param(ve_scales_[static_cast<std::size_t>(layer.ve_index)])));
        }
        q = ag::permute_0213(tape, ag::reshape(tape, q, {batch, seq, c.num_heads, head_dim}));
        k = ag::permute_0213(tape, ag::reshape(tape, k, {batch, seq, c.num_kv_heads, head_dim}));
        v = ag::permute_0213(tape, ag::reshape(tape, v, {batch, seq, c.num_kv_heads, head_dim}));
        q = ag::rope(tape, ag::rmsnorm(tape, q, eps), rope);
        k = ag::rope(tape, ag::rmsnorm(tape, k, eps), rope);
        q = ag::mul_broadcast(tape, q, param(block.q_gain), 1);
        Var y = ag::attention(tape, q, k, v);
        if (layer.xsa) y = ag::xsa(tape, y, v);
        y = ag::reshape(tape, ag::permute_0213(tape, y), {batch, seq, d});
        h = ag::residual_add_scaled(tape, h, project(tape, y, block.proj, repeat), attn_scale);
        Var hidden = project(tape, ag::rmsnorm(tape, h, eps, norm_factor), block.fc, repeat);
        hidden = c.leaky_relu ? ag::leaky_relu_squared(tape, hidden, 0.5) : ag::relu_squared(tape, hidden);
        Var mlp_out = project(tape, hidden, block.mlp_proj, repeat);
        return ag::residual_add_scaled(tape, h, mlp_out, mlp_scale);
    };

    const std::vector<VirtualLayer> plan = layer_plan(passes);
    std::vector<Var> skips;
    Var pass_input;
    for (std::size_t v = 0; v < plan.size(); ++v) {
        const VirtualLayer& layer = plan[v];
        const bool pass_start = layer.core_pass >= 0 && (v == 0 || plan[v - 1].core_pass != layer.core_pass);
        const bool pass_end =
            layer.core_pass >= 0 && (v + 1 == plan.size() || plan[v + 1].core_pass != layer.core_pass);
        if (pass_start) {
            if (layer.core_pass == 0 && core_in != nullptr) *core_in = x;
            if (c.feedback_rank > 0 && layer.core_pass >= 1) {  // c_0 ≡ 0: no feedback before the first pass
                Var e = ag::linear(tape, ag::linear(tape, x, param(feedback_v_)), param(feedback_u_));
                x = ag::add(tape, x, ag::mul_broadcast(tape, e, param(feedback_d_), -1));
            }
            pass_input = x;
        }
        if (layer.pop_skip_row >= 0 && !skips.empty()) {
            x = ag::add(
                tape, x,
                ag::mul_broadcast(tape, skips.back(), ag::row(tape, param(skip_weights_), layer.pop_skip_row), -1));
            skips.pop_back();
        }
        if (layer.alpha_index >= 0) {
            // S3 crawler loops after the first: x + α·(Block(x) − x).
            const Var before = x;
            const Var delta = ag::add(tape, block_forward(layer, x), ag::scale(tape, before, -1.0));
            x = ag::add(tape, before, scale_by(tape, delta, element(tape, param(alpha_), layer.alpha_index)));
        } else {
            x = block_forward(layer, x);
        }
        if (layer.push_skip) skips.push_back(x);
        if (pass_end) {
            if (layer.core_pass >= 1 && c.residual_alpha_size > 0) {
                // S2 passes after the first: h_b + α_k·(Core(h_b) − h_b).
                const Var delta = ag::add(tape, x, ag::scale(tape, pass_input, -1.0));
                x = ag::add(tape, pass_input, scale_by(tape, delta, element(tape, param(alpha_), layer.core_pass)));
            }
            if (core_out != nullptr) *core_out = x;
        }
    }
    return ag::rmsnorm(tape, x, eps);
}

Var Gpt::token_losses(Tape* tape, const Tensor& inputs, const Tensor& targets, std::int64_t passes) const {
    if (inputs.dim() != 2 || inputs.dtype() != DType::i64 || targets.shape() != inputs.shape() ||
        targets.dtype() != DType::i64) {
        throw Error("model: inputs and targets must be (B, T) i64 tensors of one shape");
    }
    const std::int64_t tokens = inputs.numel();
    Var x = ag::reshape(tape, forward_hidden(tape, inputs, passes, nullptr, nullptr), {tokens, config_.model_dim});
    const Var& head = config_.tie_embeddings ? param(tok_emb_) : param(lm_head_);
    const Tensor target_ids = device_ids(targets, config_.vocab_size, "target").reshape({tokens});
    return ag::softcap_cross_entropy(tape, ag::linear(tape, x, head), target_ids, config_.logit_softcap);
}

Var Gpt::loss(Tape* tape, const Tensor& inputs, const Tensor& targets, std::int64_t passes) const {
    if (config_.jacobian_lambda <= 0 || config_.recurrent_core.empty()) {
        return ag::mean(tape, token_losses(tape, inputs, targets, passes));
    }
    if (inputs.dim() != 2 || targets.shape() != inputs.shape()) {
        throw Error("model: inputs and targets must be (B, T) i64 tensors of one shape");
    }
    Var core_in, core_out;
    const std::int64_t tokens = inputs.numel();
    Var x = ag::reshape(tape, forward_hidden(tape, inputs, passes, &core_in, &core_out), {tokens, config_.model_dim});
    const Var& head = config_.tie_embeddings ? param(tok_emb_) : param(lm_head_);
    Var nll =
        ag::softcap_cross_entropy(tape, ag::linear(tape, x, head), targets.reshape({tokens}), config_.logit_softcap);
    // S2: λ·ReLU(‖h_out − h_in‖/(‖h_in‖ + 1e-6) − 1)² over the whole micro-batch, added to the mean CE.
    return ag::add(tape, ag::mean(tape, nll), ag::jacobian_proxy(tape, core_in, core_out, config_.jacobian_lambda));
}

void Gpt::zero_grad() {
    for (Parameter& parameter : parameters_) parameter.var.zero_grad();
}

void Gpt::to_device(Device device) {
    if (device == device_) return;
    if (device != Device::cpu && (config_.jacobian_lambda > 0 && !config_.recurrent_core.empty())) {
        throw Error("model: S2's Jacobian proxy loss runs on the CPU only (set JACOBIAN_LAMBDA=0 to train on cuda)");
    }
    for (Parameter& parameter : parameters_) {
        parameter.var.zero_grad();
        parameter.var.value() = parameter.var.value().to_device(device);
    }
    device_ = device;
}

Tensor Gpt::device_ids(const Tensor& ids, std::int64_t limit, const char* what) const {
    if (device_ == Device::cpu) return ids;
    tensor_check_device(ids, Device::cpu, "model", what);
    const std::int64_t* values = ids.data<std::int64_t>();
    for (std::int64_t i = 0; i < ids.numel(); ++i) {
        if (values[i] < 0 || values[i] >= limit) {
            throw Error(std::string("model: ") + what + " id " + std::to_string(values[i]) + " outside [0, " +
                        std::to_string(limit) + ")");
        }
    }
    return ids.to_device(device_);
}

}  // namespace pgolf
