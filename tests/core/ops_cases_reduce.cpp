// Harness cases for the global gradient norm (core/ops/norm.h) and per-row fake quantization (core/ops/fake_quant.h):
// the CPU references that the CUDA reductions and the fake-quant kernel are checked against.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/ops/elementwise.h"
#include "core/ops/fake_quant.h"
#include "core/ops/norm.h"
#include "tests/core/op_cases.h"
#include "tests/core/op_harness.h"

namespace pgolf {
namespace {

using test::op_harness_random;
using test::op_harness_register;
using test::OpCase;
using test::global_norm_case;
using test::fake_quant_case;
using Tensors = std::vector<Tensor>;

// --- global norm -------------------------------------------------------------------------------------------------

// out = ‖concat(inputs)‖₂ as a shape-() tensor in the inputs' dtype; d out / d x_i = x_i / out.
}  // namespace

OpCase test::global_norm_case(const std::string& name, const std::vector<Shape>& shapes, std::uint64_t seed) {
    OpCase op;
    op.name = "global_norm/" + name;
    for (std::size_t i = 0; i < shapes.size(); ++i) op.inputs.push_back(op_harness_random(shapes[i], seed + i));
    op.forward = [](const Tensors& in) { return Tensors{Tensor::scalar(global_norm(in), in[0].dtype())}; };
    op.backward = [](const Tensors& in, const Tensors& out, const Tensors& dout) {
        const double factor = dout[0].item() / out[0].item();
        Tensors grads;
        for (const Tensor& x : in) grads.push_back(scale(x, factor));
        return grads;
    };
    op.gradient_tolerance = 1e-7;
    return op;
}

namespace {

const bool registered_global_norm = op_harness_register("global_norm", [] {
    return std::vector<OpCase>{
        global_norm_case("two_3x4_5", {{3, 4}, {5}}, 201),
        global_norm_case("three_2x3x4_7_1", {{2, 3, 4}, {7}, {1}}, 203),
        global_norm_case("three_6x8_8x6_3", {{6, 8}, {8, 6}, {3}}, 206),
    };
});

// --- fake quantization -------------------------------------------------------------------------------------------

// Quantizes in f32 whatever the inputs' dtype (the seeds quantize w.float()) and returns the inputs' dtype. An f64
// reference would put a different handful of elements on the other side of a rounding tie than the f32 kernel
// (x/s differs in its last bits), a whole quantization step apart; in f32 the CUDA kernel must match exactly.
}  // namespace

OpCase test::fake_quant_case(const std::string& name, const Shape& shape, const FakeQuantSpec& spec, double scale,
                             std::uint64_t seed) {
    OpCase op;
    op.name = "fake_quant/" + name;
    op.inputs = {op_harness_random(shape, seed, scale)};
    op.forward = [spec](const Tensors& in) {
        return Tensors{fake_quantize_rows(in[0].to(DType::f32), spec).to(in[0].dtype())};
    };
    op.backward = [](const Tensors&, const Tensors&, const Tensors& dout) { return Tensors{dout[0]}; };
    op.no_finite_difference_reason =
        "fake quantization's backward is the straight-through estimator (identity), not the derivative of the "
        "piecewise-constant forward";
    op.attributes = {{"min_q", static_cast<double>(spec.min_q)},
                     {"max_q", static_cast<double>(spec.max_q)},
                     {"divisor", spec.divisor},
                     {"scale_floor", spec.scale_floor}};
    return op;
}

namespace {

const bool registered_fake_quant = op_harness_register("fake_quant", [] {
    const FakeQuantSpec s1{-32, 31, 31.0, 1e-8};
    const FakeQuantSpec s2{-31, 31, 31.0, 1.0 / 31.0};
    return std::vector<OpCase>{
        fake_quant_case("s1_6x16", {6, 16}, s1, 1.0, 221),
        fake_quant_case("s1_5x7", {5, 7}, s1, 3.0, 223),
        fake_quant_case("s1_tiny_rows_3x8", {3, 8}, s1, 1e-9, 225),  // absmax/31 below the 1e-8 floor
        fake_quant_case("s2_6x16", {6, 16}, s2, 1.0, 227),
        fake_quant_case("s2_floor_4x12", {4, 12}, s2, 0.5, 229),  // absmax/31 below the 1/31 floor
    };
});

}  // namespace
}  // namespace pgolf
