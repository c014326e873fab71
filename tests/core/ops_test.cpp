// Runs every registered op case through the harness checks: determinism, f32 vs f64, finite-difference gradients.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "core/error.h"
#include "tests/core/op_harness.h"

namespace pgolf::test {

namespace {

std::map<std::string, OpCaseFactory>& op_harness_registry() {
    static std::map<std::string, OpCaseFactory> registry;
    return registry;
}

std::vector<Tensor> op_harness_cast(const std::vector<Tensor>& inputs, DType dtype) {
    std::vector<Tensor> cast;
    for (const Tensor& input : inputs) {
        cast.push_back(dtype_is_floating(input.dtype()) ? input.to(dtype) : input);
    }
    return cast;
}

bool op_harness_output_counts(const OpCase& op, std::size_t index) {
    return op.differentiable_outputs.empty() || op.differentiable_outputs[index];
}

// Weights r_k for the scalar loss L = Σ_k Σ r_k ⊙ out_k, fixed per case.
std::vector<Tensor> op_harness_loss_weights(const std::vector<Tensor>& outputs) {
    std::vector<Tensor> weights;
    for (std::size_t k = 0; k < outputs.size(); ++k) {
        weights.push_back(op_harness_random(outputs[k].shape(), 1000 + k, 1.0));
    }
    return weights;
}

double op_harness_loss(const OpCase& op, const std::vector<Tensor>& outputs, const std::vector<Tensor>& weights) {
    double loss = 0.0;
    for (std::size_t k = 0; k < outputs.size(); ++k) {
        if (!op_harness_output_counts(op, k)) continue;
        for (std::int64_t i = 0; i < outputs[k].numel(); ++i) loss += outputs[k].item(i) * weights[k].item(i);
    }
    return loss;
}

class OpHarness : public ::testing::TestWithParam<OpCase> {};

TEST_P(OpHarness, ForwardIsDeterministic) {
    const OpCase& op = GetParam();
    const auto inputs = op_harness_cast(op.inputs, DType::f32);
    const auto first = op.forward(inputs);
    const auto second = op.forward(inputs);
    ASSERT_EQ(first.size(), second.size());
    for (std::size_t k = 0; k < first.size(); ++k) {
        ASSERT_EQ(first[k].shape(), second[k].shape());
        EXPECT_EQ(std::memcmp(first[k].raw_data(), second[k].raw_data(), first[k].nbytes()), 0)
            << "output " << k << " differs between two identical runs";
    }
}

TEST_P(OpHarness, Float32AgreesWithFloat64) {
    const OpCase& op = GetParam();
    const auto reference = op.forward(op_harness_cast(op.inputs, DType::f64));
    const auto single = op.forward(op_harness_cast(op.inputs, DType::f32));
    ASSERT_EQ(reference.size(), single.size());
    for (std::size_t k = 0; k < reference.size(); ++k) {
        ASSERT_EQ(reference[k].shape(), single[k].shape());
        double worst = 0.0;
        for (std::int64_t i = 0; i < reference[k].numel(); ++i) {
            const double expected = reference[k].item(i);
            worst = std::max(worst, std::abs(single[k].item(i) - expected) / std::max(1.0, std::abs(expected)));
        }
        EXPECT_LE(worst, op.float_tolerance) << "output " << k;
    }
}

TEST_P(OpHarness, GradientMatchesFiniteDifferences) {
    const OpCase& op = GetParam();
    if (!op.no_finite_difference_reason.empty()) GTEST_SKIP() << op.no_finite_difference_reason;
    std::vector<Tensor> inputs = op_harness_cast(op.inputs, DType::f64);
    const auto outputs = op.forward(inputs);
    const auto weights = op_harness_loss_weights(outputs);
    std::vector<Tensor> grad_outputs;
    for (std::size_t k = 0; k < outputs.size(); ++k) {
        grad_outputs.push_back(op_harness_output_counts(op, k) ? weights[k]
                                                               : Tensor::zeros(outputs[k].shape(), DType::f64));
    }
    const auto grads = op.backward(inputs, outputs, grad_outputs);
    ASSERT_EQ(grads.size(), inputs.size());
    int checked_inputs = 0;
    for (std::size_t n = 0; n < inputs.size(); ++n) {
        if (!dtype_is_floating(inputs[n].dtype()) || !grads[n].defined()) continue;
        ++checked_inputs;
        ASSERT_EQ(grads[n].shape(), inputs[n].shape()) << "gradient of input " << n;
        double worst = 0.0;
        std::int64_t worst_index = -1;
        for (std::int64_t i = 0; i < inputs[n].numel(); ++i) {
            const double original = inputs[n].item(i);
            inputs[n].set_item(i, original + op.finite_difference_step);
            const double plus = op_harness_loss(op, op.forward(inputs), weights);
            inputs[n].set_item(i, original - op.finite_difference_step);
            const double minus = op_harness_loss(op, op.forward(inputs), weights);
            inputs[n].set_item(i, original);
            const double numeric = (plus - minus) / (2 * op.finite_difference_step);
            const double error = std::abs(grads[n].item(i) - numeric) / std::max(1.0, std::abs(numeric));
            if (error > worst) {
                worst = error;
                worst_index = i;
            }
        }
        EXPECT_LE(worst, op.gradient_tolerance) << "input " << n << ", worst element " << worst_index;
    }
    EXPECT_GT(checked_inputs, 0) << "case has no differentiable input";
}

std::vector<OpCase> op_harness_cases_or_placeholder() { return op_harness_all_cases(); }

INSTANTIATE_TEST_SUITE_P(Ops, OpHarness, ::testing::ValuesIn(op_harness_cases_or_placeholder()),
                         [](const ::testing::TestParamInfo<OpCase>& info) {
                             std::string name = info.param.name;
                             for (char& c : name) {
                                 if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             }
                             return name;
                         });

}  // namespace

double OpCase::attribute(const std::string& key) const {
    const auto found = attributes.find(key);
    if (found == attributes.end()) throw Error("op case " + name + " has no attribute '" + key + "'");
    return found->second;
}

bool op_harness_register(const std::string& family, OpCaseFactory factory) {
    op_harness_registry()[family] = std::move(factory);
    return true;
}

std::vector<OpCase> op_harness_all_cases() {
    std::vector<OpCase> cases;
    for (const auto& [family, factory] : op_harness_registry()) {
        for (OpCase& op : factory()) cases.push_back(std::move(op));
    }
    return cases;
}

Tensor op_harness_random(const Shape& shape, std::uint64_t seed, double scale) {
    std::mt19937_64 generator(seed);
    std::uniform_real_distribution<double> uniform(-scale, scale);
    Tensor tensor = Tensor::empty(shape, DType::f64);
    double* values = tensor.data<double>();
    for (std::int64_t i = 0; i < tensor.numel(); ++i) values[i] = uniform(generator);
    return tensor;
}

Tensor op_harness_random_ids(const Shape& shape, std::int64_t vocab, std::uint64_t seed) {
    std::mt19937_64 generator(seed);
    std::uniform_int_distribution<std::int64_t> uniform(0, vocab - 1);
    Tensor tensor = Tensor::empty(shape, DType::i64);
    std::int64_t* values = tensor.data<std::int64_t>();
    for (std::int64_t i = 0; i < tensor.numel(); ++i) values[i] = uniform(generator);
    return tensor;
}

}  // namespace pgolf::test
