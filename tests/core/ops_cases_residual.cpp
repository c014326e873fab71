// Harness cases for the residual ops the CUDA backend fuses (cuda_residual_mix, cuda_residual_add_scaled): their
// CPU reference is the unfused composition of mul_broadcast and add, as the model builds them (model/gpt.cpp).
#include <string>
#include <vector>

#include "core/ops/elementwise.h"
#include "tests/core/op_cases.h"
#include "tests/core/op_harness.h"

namespace pgolf::test {

namespace {

using Tensors = std::vector<Tensor>;

std::string residual_shape_tag(const Shape& shape) {
    std::string tag;
    for (std::size_t i = 0; i < shape.size(); ++i) tag += (i > 0 ? "x" : "") + std::to_string(shape[i]);
    return tag;
}

// Row r of a (2, D) tensor as a (D,) view.
Tensor mix_row(const Tensor& mix, std::int64_t r) { return mix.rows(r, r + 1).reshape({mix.size(1)}); }

// (2, D) from two (D,) rows.
Tensor stack_rows(const Tensor& first, const Tensor& second) {
    const std::int64_t d = first.size(0);
    Tensor stacked = Tensor::empty({2, d}, first.dtype());
    stacked.rows(0, 1).copy_from(first.reshape({1, d}));
    stacked.rows(1, 2).copy_from(second.reshape({1, d}));
    return stacked;
}

const bool registered_residual_mix = op_harness_register("residual_mix", [] {
    return std::vector<OpCase>{
        residual_mix_case({3, 8}, 301),
        residual_mix_case({2, 3, 4}, 303),
        residual_mix_case({4, 5}, 305),
    };
});

const bool registered_residual_add_scaled = op_harness_register("residual_add_scaled", [] {
    return std::vector<OpCase>{
        residual_add_scaled_case({3, 8}, 311),
        residual_add_scaled_case({2, 3, 4}, 313),
        residual_add_scaled_case({4, 5}, 315),
    };
});

}  // namespace

// inputs x, x0: (…, D), mix: (2, D) -> y = mix[0] ⊙ x + mix[1] ⊙ x0; gradients dx, dx0, dmix.
OpCase residual_mix_case(const Shape& shape, std::uint64_t seed) {
    OpCase op;
    op.name = "residual_mix/" + residual_shape_tag(shape);
    op.inputs = {op_harness_random(shape, seed), op_harness_random(shape, seed + 1),
                 op_harness_random({2, shape.back()}, seed + 2)};
    op.forward = [](const Tensors& in) {
        return Tensors{add(mul_broadcast(in[0], mix_row(in[2], 0), -1), mul_broadcast(in[1], mix_row(in[2], 1), -1))};
    };
    op.backward = [](const Tensors& in, const Tensors&, const Tensors& dout) {
        const MulBroadcastGrads through_x = mul_broadcast_backward(in[0], mix_row(in[2], 0), -1, dout[0]);
        const MulBroadcastGrads through_x0 = mul_broadcast_backward(in[1], mix_row(in[2], 1), -1, dout[0]);
        return Tensors{through_x.dx, through_x0.dx, stack_rows(through_x.dg, through_x0.dg)};
    };
    op.gradient_tolerance = 1e-7;
    return op;
}

// inputs x, y: (…, D), g: (D,) -> out = x + g ⊙ y; gradients dx, dy, dg.
OpCase residual_add_scaled_case(const Shape& shape, std::uint64_t seed) {
    OpCase op;
    op.name = "residual_add_scaled/" + residual_shape_tag(shape);
    op.inputs = {op_harness_random(shape, seed), op_harness_random(shape, seed + 1),
                 op_harness_random({shape.back()}, seed + 2)};
    op.forward = [](const Tensors& in) { return Tensors{add(in[0], mul_broadcast(in[1], in[2], -1))}; };
    op.backward = [](const Tensors& in, const Tensors&, const Tensors& dout) {
        const MulBroadcastGrads through_y = mul_broadcast_backward(in[1], in[2], -1, dout[0]);
        return Tensors{dout[0].clone(), through_y.dx, through_y.dg};
    };
    op.gradient_tolerance = 1e-7;
    return op;
}

}  // namespace pgolf::test
