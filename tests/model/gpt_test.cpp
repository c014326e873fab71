// The baseline GPT: published parameter count, reference layout, initial loss, a whole-model finite-difference
// gradient check in f64, gradient accumulation, and the golden comparison with the independent PyTorch oracle.
#include "model/gpt.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "core/autograd_ops.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/shard.h"
#include "model/random.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

GptConfig tiny_config(DType dtype) {
    GptConfig config;
    config.vocab_size = 32;
    config.num_layers = 3;
    config.model_dim = 16;
    config.num_heads = 4;
    config.num_kv_heads = 2;
    config.mlp_mult = 2;
    config.dtype = dtype;
    return config;
}

// Weights away from the zero inits so every gradient is non-trivial.
void randomize(Gpt& model, std::uint64_t seed) {
    RandomStream random(seed);
    for (const Parameter& parameter : model.parameters()) {
        Tensor value = parameter.var.value();  // handle on the parameter's storage
        const bool gain = parameter.group == ParameterGroup::scalar;
        for (std::int64_t i = 0; i < value.numel(); ++i) {
            value.set_item(i, gain ? 1.0 + 0.2 * random.normal() : 0.3 * random.normal());
        }
    }
}

Tensor tiny_ids(std::uint64_t seed, std::int64_t vocab) {
    RandomStream random(seed);
    Tensor ids = Tensor::empty({2, 8}, DType::i64);
    for (std::int64_t i = 0; i < ids.numel(); ++i) {
        ids.data<std::int64_t>()[i] = static_cast<std::int64_t>(random.next_u64() % static_cast<std::uint64_t>(vocab));
    }
    return ids;
}

TEST(Gpt, BaselineParameterCountIsThePublishedOne) {
    const Gpt model(GptConfig::from_config(config_load_preset("baseline", "full")));
    EXPECT_EQ(model.parameter_count(), 17059912);
    EXPECT_EQ(model.parameters().size(), 2u + 9u * 10u);
    EXPECT_EQ(model.parameter("blocks.8.attn.c_k.weight").var.shape(), (Shape{256, 512}));
    EXPECT_EQ(model.parameter("skip_weights").var.shape(), (Shape{4, 512}));
    EXPECT_THROW(model.parameter("lm_head.weight"), Error);
}

TEST(Gpt, UntiedHeadAddsAHeadParameter) {
    Config config = config_load_preset("baseline", "full");
    config.apply_override("TIE_EMBEDDINGS=0");
    const Gpt model(GptConfig::from_config(config));
    EXPECT_EQ(model.parameter_count(), 17059912 + 1024 * 512);
    EXPECT_EQ(model.parameter("lm_head.weight").group, ParameterGroup::head);
}

TEST(Gpt, RejectsInconsistentShapes) {
    Config config = config_load_preset("baseline", "full");
    config.apply_override("NUM_HEADS=6");
    EXPECT_THROW(GptConfig::from_config(config), Error);
    config.apply_override("NUM_HEADS=8");
    config.apply_override("NUM_KV_HEADS=3");
    EXPECT_THROW(GptConfig::from_config(config), Error);
}

TEST(Gpt, InitialLossIsLogVocab) {
    // Tied embeddings at std 0.005 make near-uniform logits: on real text the loss starts at ln V.
    Gpt model(GptConfig::from_config(config_load_preset("baseline", "smoke")));
    model.initialize(1337);
    const ShardFile shard =
        ShardFile::open(test::test_source_path("data/datasets/fineweb10B_sp1024_mini/fineweb_val_000000.bin"));
    Tensor inputs = Tensor::empty({8, 128}, DType::i64);
    Tensor targets = Tensor::empty({8, 128}, DType::i64);
    for (std::int64_t i = 0; i < inputs.numel(); ++i) {
        inputs.data<std::int64_t>()[i] = shard.tokens()[static_cast<std::size_t>(i)];
        targets.data<std::int64_t>()[i] = shard.tokens()[static_cast<std::size_t>(i + 1)];
    }
    const double loss = model.loss(nullptr, inputs, targets).value().item(0);
    EXPECT_NEAR(loss, std::log(1024.0), 0.01);
    // Zero-initialised projections and reference defaults.
    EXPECT_EQ(model.parameter("blocks.0.attn.proj.weight").var.value().item(5), 0.0);
    EXPECT_EQ(model.parameter("blocks.0.attn.q_gain").var.value().item(0), 1.5);
    EXPECT_EQ(model.parameter("blocks.1.resid_mix").var.value().item(0), 1.0);
    EXPECT_EQ(model.parameter("blocks.1.resid_mix").var.value().item(64), 0.0);
}

TEST(Gpt, InitializationIsSeeded) {
    const GptConfig config = tiny_config(DType::f32);
    Gpt a(config), b(config), c(config);
    a.initialize(7);
    b.initialize(7);
    c.initialize(8);
    const Tensor& wa = a.parameter("blocks.0.attn.c_q.weight").var.value();
    EXPECT_EQ(wa.to_doubles(), b.parameter("blocks.0.attn.c_q.weight").var.value().to_doubles());
    EXPECT_NE(wa.to_doubles(), c.parameter("blocks.0.attn.c_q.weight").var.value().to_doubles());
    const double bound = 1.0 / std::sqrt(16.0);
    for (double value : wa.to_doubles()) EXPECT_LE(std::abs(value), bound);
}

TEST(Gpt, WholeModelGradientMatchesFiniteDifferences) {
    Gpt model(tiny_config(DType::f64));
    randomize(model, 3);
    const Tensor inputs = tiny_ids(4, 32);
    const Tensor targets = tiny_ids(5, 32);
    Tape tape;
    tape.backward(model.loss(&tape, inputs, targets));
    RandomStream pick(6);
    int checked = 0;
    for (const Parameter& parameter : model.parameters()) {
        ASSERT_TRUE(parameter.var.has_grad()) << parameter.name;
        Tensor value = parameter.var.value();
        for (int sample = 0; sample < 4; ++sample) {
            const auto i = static_cast<std::int64_t>(pick.next_u64() % static_cast<std::uint64_t>(value.numel()));
            const double original = value.item(i);
            const double step = 1e-6;
            value.set_item(i, original + step);
            const double plus = model.loss(nullptr, inputs, targets).value().item(0);
            value.set_item(i, original - step);
            const double minus = model.loss(nullptr, inputs, targets).value().item(0);
            value.set_item(i, original);
            const double numeric = (plus - minus) / (2 * step);
            const double analytic = parameter.var.grad().item(i);
            EXPECT_NEAR(analytic, numeric, 1e-7 * std::max(1.0, std::abs(numeric)))
                << parameter.name << "[" << i << "]";
            ++checked;
        }
    }
    EXPECT_EQ(checked, 4 * 32);
}

TEST(Gpt, GradientsAccumulateAcrossBackwardPasses) {
    Gpt model(tiny_config(DType::f64));
    randomize(model, 9);
    const Tensor inputs = tiny_ids(10, 32);
    const Tensor targets = tiny_ids(11, 32);
    Tape tape;
    tape.backward(model.loss(&tape, inputs, targets));
    const std::vector<double> once = model.parameter("tok_emb.weight").var.grad().to_doubles();
    tape.backward(model.loss(&tape, inputs, targets));
    const std::vector<double> twice = model.parameter("tok_emb.weight").var.grad().to_doubles();
    for (std::size_t i = 0; i < once.size(); ++i) EXPECT_NEAR(twice[i], 2 * once[i], 1e-12 + 1e-12 * std::abs(once[i]));
    model.zero_grad();
    EXPECT_FALSE(model.parameter("tok_emb.weight").var.has_grad());
}

// mean's backward gives every element dy / n, divided in double as torch's MeanBackward does (not dy · (1/n), which
// differs in the last bit: 1.5 · (1/5) = 0.30000000000000004).
TEST(Gpt, MeanGradientIsTheSeedDividedByTheCount) {
    const Var x(Tensor::from_values(std::vector<double>{1, 2, 3, 4, 5}, {5}, DType::f64), true);
    Tape tape;
    tape.backward(ag::mean(&tape, x), 1.5);
    for (std::int64_t i = 0; i < 5; ++i) EXPECT_EQ(x.grad().item(i), 1.5 / 5.0) << i;
}

// The golden test: loss and every gradient at fixed weights against tests/oracle/baseline_oracle.py (PyTorch, f64).
TEST(Gpt, MatchesTheIndependentPyTorchOracle) {
    for (const DType dtype : {DType::f64, DType::f32}) {
        // The f32 fixture runs the oracle's forward and backward entirely in float32.
        const SafetensorsFile fixture = safetensors_read(
            test::test_source_path(dtype == DType::f64 ? "tests/oracle/fixtures/baseline_tiny.safetensors"
                                                       : "tests/oracle/fixtures/baseline_tiny_f32.safetensors"));
        Gpt model(tiny_config(dtype));
        for (const Parameter& parameter : model.parameters()) {
            Tensor value = parameter.var.value();
            value.copy_from(fixture.at("param/" + parameter.name).to(dtype));
        }
        Tape tape;
        const Var loss = model.loss(&tape, fixture.at("input_ids"), fixture.at("target_ids"));
        tape.backward(loss);
        const double expected_loss = fixture.at(dtype == DType::f64 ? "loss" : "loss_f32").item(0);
        // The RoPE tables are f32 in both implementations (as in the reference), but libm's powf/cosf and torch's
        // kernels may differ in the last ulp: that bounds the f64 agreement near 1e-8 relative, not 1e-15.
        const double tolerance = dtype == DType::f64 ? 1e-9 : 1e-5;
        EXPECT_NEAR(loss.value().item(0), expected_loss, tolerance * std::abs(expected_loss)) << dtype_name(dtype);
        for (const Parameter& parameter : model.parameters()) {
            const Tensor& expected = fixture.at("grad/" + parameter.name);
            const Tensor& actual = parameter.var.grad();
            double scale = 0.0;
            for (std::int64_t i = 0; i < expected.numel(); ++i) scale = std::max(scale, std::abs(expected.item(i)));
            double worst = 0.0;
            for (std::int64_t i = 0; i < expected.numel(); ++i) {
                worst = std::max(worst, std::abs(actual.item(i) - expected.item(i)));
            }
            // Relative to the tensor's largest gradient: f32 roundoff on tiny elements is not a model error.
            EXPECT_LE(worst, (dtype == DType::f64 ? 1e-6 : 1e-5) * std::max(scale, 1e-30))
                << dtype_name(dtype) << " " << parameter.name;
        }
    }
}

}  // namespace
}  // namespace pgolf

namespace pgolf {
namespace {

// Banked presets export per-layer matrices under the reference's names, as views on the banks.
TEST(GptNamedTensors, BanksAreSplitIntoPerLayerMatricesThatAliasTheBank) {
    const Config config = config_load_preset("s4-11l-recurrence-prequant", "smoke");
    Gpt model(GptConfig::from_config(config));
    model.initialize(3);
    const auto tensors = model.named_tensors();
    std::int64_t elements = 0;
    std::set<std::string> names;
    for (const auto& [name, tensor] : tensors) {
        elements += tensor.numel();
        EXPECT_TRUE(names.insert(name).second) << name;
        EXPECT_EQ(name.find("_bank"), std::string::npos) << name;
    }
    EXPECT_EQ(elements, model.parameter_count());
    for (const auto& [name, elements_of] : model.weight_matrices()) EXPECT_TRUE(names.count(name)) << name;
    // Writing through a view writes the bank: V of block 1 is kv_bank slice n + 1.
    const std::int64_t n = model.config().num_layers;
    Tensor v1;
    for (const auto& [name, tensor] : tensors) {
        if (name == "blocks.1.attn.c_v.weight") v1 = tensor;
    }
    ASSERT_TRUE(v1.defined());
    v1.fill(0.25);
    const Tensor bank = model.parameter("kv_bank").var.value();
    const std::int64_t slice = bank.size(1) * bank.size(2);
    EXPECT_EQ(bank.item((n + 1) * slice), 0.25);
    EXPECT_EQ(bank.item((n + 1) * slice + slice - 1), 0.25);
    EXPECT_NE(bank.item(n * slice), 0.25);
}

TEST(GptNamedTensors, LoadRestoresEveryValueAndRefusesMismatches) {
    const Config config = config_load_preset("s2-growing-recurrence", "smoke");
    Gpt source(GptConfig::from_config(config));
    source.initialize(5);
    randomize(source, 9);
    Gpt target(GptConfig::from_config(config));
    target.initialize(6);
    std::vector<std::pair<std::string, Tensor>> copies;
    for (const auto& [name, tensor] : source.named_tensors()) copies.emplace_back(name, tensor.clone());
    target.load_named_tensors(copies);
    for (std::size_t i = 0; i < source.parameters().size(); ++i) {
        EXPECT_TRUE(test::bitwise_equal(source.parameters()[i].var.value(), target.parameters()[i].var.value()))
            << source.parameters()[i].name;
    }
    // The checkpoint form: parameters by their own names, banks whole.
    Gpt from_checkpoint(GptConfig::from_config(config));
    std::vector<std::pair<std::string, Tensor>> parameters;
    for (const Parameter& parameter : source.parameters())
        parameters.emplace_back(parameter.name, parameter.var.value());
    ASSERT_TRUE(source.has_parameter("qo_bank"));
    from_checkpoint.load_named_tensors(parameters);
    for (std::size_t i = 0; i < source.parameters().size(); ++i) {
        EXPECT_TRUE(
            test::bitwise_equal(source.parameters()[i].var.value(), from_checkpoint.parameters()[i].var.value()));
    }
    auto missing = copies;
    missing.pop_back();
    EXPECT_NE(test::error_message([&] { target.load_named_tensors(missing); }).find("missing tensor"),
              std::string::npos);
    auto extra = copies;
    extra.emplace_back("blocks.99.attn.c_q.weight", Tensor::zeros({2, 2}));
    EXPECT_NE(test::error_message([&] { target.load_named_tensors(extra); }).find("unexpected tensor blocks.99"),
              std::string::npos);
    auto misshapen = copies;
    misshapen.front().second = Tensor::zeros({1});
    EXPECT_NE(test::error_message([&] { target.load_named_tensors(misshapen); }).find("has shape (1)"),
              std::string::npos);
}

// The calibration hook sees every matrix input once per run, flags re-runs, and changes nothing.
TEST(GptObserver, SeesEachMatrixInputAndFlagsRepeatedBlocks) {
    const Config config = config_load_preset("s1-recursive-4b7l", "smoke");
    Gpt model(GptConfig::from_config(config));
    model.initialize(1);
    const std::int64_t seq = 8;
    std::vector<std::int64_t> ids(2 * seq);
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(i * 37 % 1024);
    const Tensor inputs = Tensor::from_ids(ids, {2, seq});
    const double plain = model.token_losses(nullptr, inputs, inputs).value().item(5);
    std::map<std::string, std::pair<int, int>> seen;  // name -> (first runs, repeats)
    model.set_matrix_input_observer([&](const std::string& name, const Tensor& input, bool repeat) {
        EXPECT_EQ(input.dim(), 2);
        EXPECT_EQ(input.size(0), 2 * seq);
        (repeat ? seen[name].second : seen[name].first) += 1;
    });
    EXPECT_EQ(model.token_losses(nullptr, inputs, inputs).value().item(5), plain);
    model.set_matrix_input_observer({});
    // S1: 7 virtual layers over 4 blocks [0,1,2,3,0,1,2]: blocks 0–2 run twice, block 3 once.
    EXPECT_EQ(seen["blocks.0.attn.c_q.weight"], std::make_pair(1, 1));
    EXPECT_EQ(seen["blocks.2.mlp.proj.weight"], std::make_pair(1, 1));
    EXPECT_EQ(seen["blocks.3.mlp.fc.weight"], std::make_pair(1, 0));
    EXPECT_EQ(seen["bigram.proj.weight"], std::make_pair(1, 0));
    EXPECT_EQ(seen.size(), model.weight_matrices().size());
}

}  // namespace
}  // namespace pgolf
