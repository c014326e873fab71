// The four seed presets: published parameter counts at full scale, their virtual-layer schedules and wiring as the
// seeds ran them, component settings (NTK base, progressive passes), and a whole-model finite-difference gradient
// check through every component of each preset in f64.
#include <gtest/gtest.h>

#include <cmath>

#include "core/autograd_ops.h"
#include "core/error.h"
#include "core/ops/fake_quant.h"
#include "model/gpt.h"
#include "model/random.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

const char* const kSeedPresets[] = {"s1-recursive-4b7l", "s2-growing-recurrence", "s3-crawler-3f2cx2",
                                    "s4-11l-recurrence-prequant"};

std::vector<std::int64_t> blocks_of(const std::vector<VirtualLayer>& plan) {
    std::vector<std::int64_t> blocks;
    for (const VirtualLayer& layer : plan) blocks.push_back(layer.block);
    return blocks;
}

std::int64_t count_with_prefix(const Gpt& model, const std::string& prefix) {
    std::int64_t count = 0;
    for (const Parameter& parameter : model.parameters()) {
        if (parameter.name.rfind(prefix, 0) == 0) count += parameter.var.value().numel();
    }
    return count;
}

TEST(Presets, PublishedParameterCounts) {
    const std::pair<const char*, std::int64_t> published[] = {{"s1-recursive-4b7l", 29950082},
                                                              {"s2-growing-recurrence", 26698335},
                                                              {"s3-crawler-3f2cx2", 38346836},
                                                              {"s4-11l-recurrence-prequant", 26928220}};
    for (const auto& [name, count] : published) {
        const Gpt model(GptConfig::from_config(config_load_preset(name, "full")));
        const std::int64_t feedback = count_with_prefix(model, "feedback.");
        EXPECT_EQ(model.parameter_count() - feedback, count) << name;
        EXPECT_EQ(feedback, std::string(name) == "s2-growing-recurrence" ? 2560 : 0) << name;
        EXPECT_EQ(config_find_preset(name).published_parameters, count) << name;
    }
}

TEST(Presets, S1LoopsFourSharedBlocksWithPerVirtualScales) {
    const Gpt model(GptConfig::from_config(config_load_preset("s1-recursive-4b7l", "full")));
    const auto plan = model.layer_plan(1);
    EXPECT_EQ(blocks_of(plan), (std::vector<std::int64_t>{0, 1, 2, 3, 0, 1, 2}));
    for (std::size_t v = 0; v < plan.size(); ++v) {
        EXPECT_EQ(plan[v].scale_index, static_cast<std::int64_t>(v));
        EXPECT_TRUE(plan[v].xsa) << "XSA ran on all 7 virtual layers";
        EXPECT_EQ(plan[v].push_skip, v < 3);
        EXPECT_EQ(plan[v].pop_skip_row, v >= 3 && v < 6 ? static_cast<std::int64_t>(v) - 3 : -1);
        EXPECT_EQ(plan[v].ve_index, v == 5 ? 0 : v == 6 ? 1 : -1);
    }
    EXPECT_EQ(model.parameter("attn_scales").var.shape(), (Shape{7, 1024}));
    EXPECT_EQ(model.parameter("skip_weights").var.shape(), (Shape{3, 1024}));
    // Partial RoPE: 16 of 32 dims, frequencies over the full head dim, no NTK.
    const RopeSpec rope = model.rope_spec(2048);
    EXPECT_EQ(rope.rotary_dims, 16);
    EXPECT_EQ(rope.frequency_dims, 32);
    EXPECT_EQ(rope.base, 10000.0);
    EXPECT_EQ(model.parameter("bigram.proj.weight").group, ParameterGroup::matrix);
}

TEST(Presets, S3CrawlerLoopsWithUntrainedAlpha) {
    const Gpt model(GptConfig::from_config(config_load_preset("s3-crawler-3f2cx2", "full")));
    const auto plan = model.layer_plan(1);
    EXPECT_EQ(blocks_of(plan), (std::vector<std::int64_t>{0, 3, 4, 3, 4, 1, 2}));
    const bool xsa[] = {true, true, true, true, true, false, false};  // F0 and the crawlers, as the code ran
    for (std::size_t v = 0; v < plan.size(); ++v) {
        EXPECT_EQ(plan[v].xsa, xsa[v]) << v;
        EXPECT_EQ(plan[v].alpha_index, v == 3 || v == 4 ? 1 : -1) << v;
        EXPECT_EQ(plan[v].push_skip, v == 0) << v;
        EXPECT_EQ(plan[v].pop_skip_row, v == 5 ? 0 : -1) << v;
    }
    EXPECT_EQ(model.parameter("residual_alpha").group, ParameterGroup::frozen);
    EXPECT_FALSE(model.parameter("residual_alpha").var.requires_grad());
    EXPECT_EQ(model.parameter("skip_weights").var.shape(), (Shape{3, 736}));  // three rows, one used
    EXPECT_EQ(model.rope_spec(2048).rotary_dims, 22);
}

TEST(Presets, S2GrowsCorePassesAtSteps4500And5500) {
    const Gpt model(GptConfig::from_config(config_load_preset("s2-growing-recurrence", "full")));
    EXPECT_EQ(model.passes_at_step(0), 1);
    EXPECT_EQ(model.passes_at_step(4499), 1);
    EXPECT_EQ(model.passes_at_step(4500), 2);
    EXPECT_EQ(model.passes_at_step(5499), 2);
    EXPECT_EQ(model.passes_at_step(5500), 3);
    EXPECT_EQ(model.config().eval_passes, 3);
    EXPECT_EQ(model.layer_plan(1).size(), 11u);
    const auto plan = model.layer_plan(3);
    EXPECT_EQ(blocks_of(plan), (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 4, 5, 6, 4, 5, 6, 7, 8, 9, 10}));
    for (std::size_t v = 0; v < plan.size(); ++v) {
        EXPECT_EQ(plan[v].push_skip, v < 4) << v;
        EXPECT_EQ(plan[v].pop_skip_row, v >= 13 ? static_cast<std::int64_t>(v) - 13 : -1) << v;  // 7↔3 … 10↔0
        EXPECT_EQ(plan[v].xsa, plan[v].block >= 7) << v;
        EXPECT_EQ(plan[v].core_pass, v >= 4 && v < 13 ? static_cast<std::int64_t>(v - 4) / 3 : -1) << v;
    }
    // NTK: Rotary built for 1024 tokens, run at 2048: 1e4 · 2^(16/14) ≈ 22,081.
    EXPECT_NEAR(model.rope_spec(2048).base, 22081.0, 1.0);
    EXPECT_EQ(model.rope_spec(1024).base, 10000.0);
    EXPECT_EQ(model.parameter("residual_alpha").var.shape(), (Shape{3}));
    EXPECT_EQ(model.parameter("bigram.proj.weight").group, ParameterGroup::scalar);  // S2 trains it with AdamW
}

TEST(Presets, S4RerunsBlocksFourAndFive) {
    const Gpt model(GptConfig::from_config(config_load_preset("s4-11l-recurrence-prequant", "full")));
    const auto plan = model.layer_plan(1);
    EXPECT_EQ(blocks_of(plan), (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 4, 5}));
    for (std::size_t v = 0; v < plan.size(); ++v) {
        EXPECT_EQ(plan[v].push_skip, v < 5) << v;
        EXPECT_EQ(plan[v].pop_skip_row, v >= 5 && v < 10 ? static_cast<std::int64_t>(v) - 5 : -1) << v;
        EXPECT_EQ(plan[v].ve_index, v == 9 ? 0 : v == 10 ? 1 : -1) << v;
        EXPECT_EQ(plan[v].xsa, v >= 7 && v <= 10) << v;  // the re-runs of 4 and 5 get no skip, VE or XSA
    }
    EXPECT_EQ(model.config().qk_gain_init, 5.0);
    EXPECT_NEAR(model.rope_spec(2048).base, 22081.0, 1.0);
}

// Random weights (including the inert and frozen ones) so every component carries gradient.
void randomize(Gpt& model, std::uint64_t seed) {
    RandomStream random(seed);
    for (const Parameter& parameter : model.parameters()) {
        Tensor value = parameter.var.value();
        const bool gain = parameter.group == ParameterGroup::scalar || parameter.group == ParameterGroup::frozen;
        for (std::int64_t i = 0; i < value.numel(); ++i) {
            value.set_item(i, gain && value.dim() < 2 ? 1.0 + 0.3 * random.normal() : 0.3 * random.normal());
        }
    }
}

class PresetGradient : public ::testing::TestWithParam<const char*> {};

TEST_P(PresetGradient, WholeSmokeModelMatchesFiniteDifferences) {
    Config config = config_load_preset(GetParam(), "smoke");
    config.apply_override("MODEL_DIM=32");  // head dim 8: 4 dims rotate, 4 pass through
    config.apply_override("NUM_HEADS=4");
    config.apply_override("NUM_KV_HEADS=2");
    config.apply_override("ROPE_DIMS=4");
    config.apply_override("ROPE_FREQ_DIMS=8");
    config.apply_override("VE_DIM=4");
    config.apply_override("BIGRAM_DIM=4");
    if (config.has("ROPE_NTK_TRAIN_SEQ_LEN") && config.get_int("ROPE_NTK_TRAIN_SEQ_LEN") > 0) {
        config.apply_override("ROPE_NTK_TRAIN_SEQ_LEN=4");  // sequences of 6: the NTK base is in play
    }
    GptConfig shape = GptConfig::from_config(config);
    shape.dtype = DType::f64;
    Gpt model(shape);
    randomize(model, 11);
    RandomStream ids(12);
    Tensor inputs = Tensor::empty({2, 6}, DType::i64);
    Tensor targets = Tensor::empty({2, 6}, DType::i64);
    for (std::int64_t i = 0; i < inputs.numel(); ++i) {
        inputs.data<std::int64_t>()[i] = static_cast<std::int64_t>(ids.next_u64() % 1024);
        targets.data<std::int64_t>()[i] = static_cast<std::int64_t>(ids.next_u64() % 1024);
    }
    const std::int64_t passes = model.config().eval_passes;
    Tape tape;
    tape.backward(model.loss(&tape, inputs, targets, passes));
    RandomStream pick(13);
    int checked = 0;
    for (const Parameter& parameter : model.parameters()) {
        if (parameter.group == ParameterGroup::frozen) {
            EXPECT_FALSE(parameter.var.has_grad()) << parameter.name;
            continue;
        }
        ASSERT_TRUE(parameter.var.has_grad()) << parameter.name;
        Tensor value = parameter.var.value();
        for (int sample = 0; sample < 3; ++sample) {
            const auto i = static_cast<std::int64_t>(pick.next_u64() % static_cast<std::uint64_t>(value.numel()));
            const double original = value.item(i);
            const double step = 1e-6;
            value.set_item(i, original + step);
            const double plus = model.loss(nullptr, inputs, targets, passes).value().item(0);
            value.set_item(i, original - step);
            const double minus = model.loss(nullptr, inputs, targets, passes).value().item(0);
            value.set_item(i, original);
            const double numeric = (plus - minus) / (2 * step);
            EXPECT_NEAR(parameter.var.grad().item(i), numeric, 1e-6 * std::max(1.0, std::abs(numeric)))
                << parameter.name << "[" << i << "]";
            ++checked;
        }
    }
    EXPECT_GT(checked, 60);
}

INSTANTIATE_TEST_SUITE_P(Seeds, PresetGradient, ::testing::ValuesIn(kSeedPresets), test::test_param_name);

}  // namespace
}  // namespace pgolf

namespace pgolf {
namespace {

TEST(Components, JacobianProxyGradientMatchesFiniteDifferences) {
    RandomStream random(21);
    Tensor in = Tensor::empty({2, 3}, DType::f64);
    Tensor out = Tensor::empty({2, 3}, DType::f64);
    for (std::int64_t i = 0; i < 6; ++i) {
        in.set_item(i, random.normal());
        out.set_item(i, 3.0 * in.item(i) + random.normal());  // ‖Δ‖/‖h_in‖ ≈ 2: the hinge is active
    }
    const Var h_in(in, true), h_out(out, true);
    Tape tape;
    const Var loss = ag::jacobian_proxy(&tape, h_in, h_out, 0.01);
    ASSERT_GT(loss.value().item(0), 0.0);
    tape.backward(loss);
    for (const Var* var : {&h_in, &h_out}) {
        Tensor value = var->value();
        for (std::int64_t i = 0; i < 6; ++i) {
            const double original = value.item(i);
            value.set_item(i, original + 1e-6);
            const double plus = ag::jacobian_proxy(nullptr, h_in, h_out, 0.01).value().item(0);
            value.set_item(i, original - 1e-6);
            const double minus = ag::jacobian_proxy(nullptr, h_in, h_out, 0.01).value().item(0);
            value.set_item(i, original);
            EXPECT_NEAR(var->grad().item(i), (plus - minus) / 2e-6, 1e-8);
        }
    }
    // Below the hinge (‖Δ‖ ≤ ‖h_in‖) the term and its gradient are zero.
    EXPECT_EQ(ag::jacobian_proxy(nullptr, h_in, h_in, 0.01).value().item(0), 0.0);
}

TEST(Components, FakeQuantIsStraightThrough) {
    Config config = config_load_preset("s1-recursive-4b7l", "smoke");
    GptConfig shape = GptConfig::from_config(config);
    shape.dtype = DType::f64;
    Gpt model(shape);
    model.initialize(5);
    RandomStream ids(6);
    Tensor inputs = Tensor::empty({1, 8}, DType::i64);
    Tensor targets = Tensor::empty({1, 8}, DType::i64);
    for (std::int64_t i = 0; i < 8; ++i) {
        inputs.data<std::int64_t>()[i] = static_cast<std::int64_t>(ids.next_u64() % 1024);
        targets.data<std::int64_t>()[i] = static_cast<std::int64_t>(ids.next_u64() % 1024);
    }
    const std::string name = "blocks.1.mlp.fc.weight";
    const FakeQuantSpec spec{-32, 31, 31.0, 1e-8};
    model.set_fake_quant({{name, spec}});
    EXPECT_EQ(model.fake_quant_count(), 1u);
    Tape tape;
    const double quantized_loss = model.loss(&tape, inputs, targets).value().item(0);
    tape.backward(model.loss(&tape, inputs, targets));
    const std::vector<double> ste_grad = model.parameter(name).var.grad().to_doubles();
    model.zero_grad();
    // The same forward with the weights themselves replaced by their quantized values, QAT off.
    model.set_fake_quant({});
    Tensor weights = model.parameter(name).var.value();
    weights.copy_from(fake_quantize_rows(weights, spec));
    Tape plain;
    const Var loss = model.loss(&plain, inputs, targets);
    plain.backward(loss);
    EXPECT_NEAR(loss.value().item(0), quantized_loss, 1e-12);
    const std::vector<double> grad = model.parameter(name).var.grad().to_doubles();
    for (std::size_t i = 0; i < grad.size(); ++i) ASSERT_NEAR(ste_grad[i], grad[i], 1e-12);
    EXPECT_THROW(model.set_fake_quant({{"blocks.1.attn.q_gain", spec}}), Error);
}

}  // namespace
}  // namespace pgolf

namespace pgolf {
namespace {

// LN scale: with LN_SCALE on, block ℓ's normalised inputs are multiplied by 1/√(ℓ+1). With every block matrix at
// zero except block ℓ's, the model with LN scale equals the one without it whose block-ℓ input weights are scaled by
// that factor (the norms feed only linear maps).
TEST(Components, LnScaleMultipliesBlockInputsByInverseSqrtDepth) {
    Config config = config_load_preset("s4-11l-recurrence-prequant", "smoke");
    config.apply_override("MODEL_DIM=32");
    config.apply_override("NUM_HEADS=4");
    config.apply_override("NUM_KV_HEADS=2");
    config.apply_override("ROPE_DIMS=4");
    config.apply_override("ROPE_FREQ_DIMS=8");
    config.apply_override("ROPE_NTK_TRAIN_SEQ_LEN=0");
    config.apply_override("VE_DIM=0");
    config.apply_override("VE_BLOCKS=");
    config.apply_override("PARAMETER_BANKS=0");  // per-layer matrices, so the test can scale one layer's
    GptConfig with = GptConfig::from_config(config);
    with.dtype = DType::f64;
    GptConfig without = with;
    without.ln_scale = false;
    Gpt a(with), b(without);
    a.initialize(3);
    b.initialize(3);
    const std::int64_t layer = 3;
    const double factor = 1.0 / std::sqrt(static_cast<double>(layer + 1));
    RandomStream random(4);
    for (std::size_t i = 0; i < a.parameters().size(); ++i) {
        const std::string& name = a.parameters()[i].name;
        Tensor wa = a.parameters()[i].var.value();
        Tensor wb = b.parameters()[i].var.value();
        const bool block_matrix =
            name.rfind("blocks.", 0) == 0 && wa.dim() == 2 && name.find("resid_mix") == std::string::npos;
        const bool in_layer = name.rfind("blocks." + std::to_string(layer) + ".", 0) == 0;
        for (std::int64_t k = 0; k < wa.numel(); ++k) {
            double value = wa.item(k);
            if (block_matrix) value = in_layer ? 0.3 * random.normal() : 0.0;
            wa.set_item(k, value);
            // q, k, v and fc read the (scaled) norms: fold the factor into them for the model without LN scale.
            const bool reads_norm =
                in_layer && (name.find("c_q") != std::string::npos || name.find("c_k") != std::string::npos ||
                             name.find("c_v") != std::string::npos || name.find("mlp.fc") != std::string::npos);
            wb.set_item(k, reads_norm ? value * factor : value);
        }
    }
    Tensor ids = Tensor::empty({1, 6}, DType::i64);
    for (std::int64_t i = 0; i < 6; ++i) ids.data<std::int64_t>()[i] = 5 + 7 * i;
    const double loss_a = a.loss(nullptr, ids, ids).value().item(0);
    const double loss_b = b.loss(nullptr, ids, ids).value().item(0);
    EXPECT_NEAR(loss_a, loss_b, 1e-12);
    EXPECT_NE(loss_a, Gpt(without).loss(nullptr, ids, ids).value().item(0));
}

}  // namespace
}  // namespace pgolf

namespace pgolf {
namespace {

TEST(Presets, S2AndS4StoreBlockMatricesInBanks) {
    for (const char* name : {"s2-growing-recurrence", "s4-11l-recurrence-prequant"}) {
        Gpt model(GptConfig::from_config(config_load_preset(name, "full")));
        EXPECT_EQ(model.parameter("qo_bank").var.shape(), (Shape{22, 512, 512})) << name;
        EXPECT_EQ(model.parameter("kv_bank").var.shape(), (Shape{22, 256, 512})) << name;
        EXPECT_EQ(model.parameter("mlp_up_bank").var.shape(), (Shape{11, 1536, 512})) << name;
        EXPECT_EQ(model.parameter("mlp_down_bank").var.shape(), (Shape{11, 512, 1536})) << name;
        EXPECT_FALSE(model.has_parameter("blocks.0.attn.c_q.weight")) << name;
        // The matrices keep their unbanked names for QAT scopes (and, later, export).
        const auto matrices = model.weight_matrices();
        EXPECT_EQ(matrices.size(), 11u * 6u + 2u) << name;
        EXPECT_NO_THROW(model.set_fake_quant({{"blocks.5.attn.c_q.weight", FakeQuantSpec{-31, 31, 31.0, 1.0 / 31}}}));
        EXPECT_EQ(model.fake_quant_count(), 1u);
        EXPECT_THROW(model.set_fake_quant({{"blocks.11.attn.c_q.weight", FakeQuantSpec{}}}), Error);
    }
}

TEST(Presets, BankedAndUnbankedModelsComputeTheSameLoss) {
    Config config = config_load_preset("s4-11l-recurrence-prequant", "smoke");
    GptConfig banked = GptConfig::from_config(config);
    banked.dtype = DType::f64;
    GptConfig plain = banked;
    plain.parameter_banks = false;
    Gpt a(banked), b(plain);
    a.initialize(9);
    b.initialize(9);  // the same random stream in the same order: identical weights, different storage
    Tensor ids = Tensor::empty({1, 8}, DType::i64);
    for (std::int64_t i = 0; i < 8; ++i) ids.data<std::int64_t>()[i] = 3 + 11 * i;
    EXPECT_NEAR(a.loss(nullptr, ids, ids).value().item(0), b.loss(nullptr, ids, ids).value().item(0), 1e-12);
    EXPECT_EQ(a.parameter_count(), b.parameter_count());
}

}  // namespace
}  // namespace pgolf
