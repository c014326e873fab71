// CUDA bindings of the op harness for XSA and SmearGate, with full-scale cases at S1's shapes (T 2048, H 32, Hkv 8,
// Dh 32; D 1024) and irregular ones (Dh and D off the vector widths, zero value rows, partial gate blocks).
#include <cstdint>
#include <string>
#include <vector>

#include "core/cuda/smear.h"
#include "core/cuda/xsa.h"
#include "core/ops/smear.h"
#include "core/ops/xsa.h"
#include "tests/core/op_harness.h"

namespace pgolf::test {

namespace {

using Tensors = std::vector<Tensor>;

// Outputs stored as bf16 carry a relative rounding error of up to 2^-8 ≈ 4e-3 on top of the shared bf16 inputs.
constexpr double kBf16Tolerance = 1e-2;

std::string shape_name(const Shape& shape) {
    std::string name;
    for (const std::int64_t size : shape) name += (name.empty() ? "" : "x") + std::to_string(size);
    return name;
}

// ---- full-scale cases (CPU reference in f64) ----------------------------------------------------------------------

// y: (B, H, T, Dh), v: (B, Hkv, T, Dh); every zero_every-th value row set to zero (0: none), which takes the eps
// branch of the normalisation.
OpCase full_xsa_case(const Shape& y_shape, std::int64_t kv_heads, std::int64_t zero_every, std::uint64_t seed) {
    OpCase op;
    op.name = "xsa/full_" + shape_name(y_shape) + "_kv" + std::to_string(kv_heads) +
              (zero_every > 0 ? "_zero" + std::to_string(zero_every) : "");
    Tensor v = op_harness_random({y_shape[0], kv_heads, y_shape[2], y_shape[3]}, seed + 1);
    const std::int64_t head_dim = y_shape[3];
    if (zero_every > 0) {
        for (std::int64_t row = 0; row < v.numel() / head_dim; row += zero_every) {
            for (std::int64_t d = 0; d < head_dim; ++d) v.set_item(row * head_dim + d, 0.0);
        }
    }
    op.inputs = {op_harness_random(y_shape, seed), v};
    op.forward = [](const Tensors& in) { return Tensors{xsa_forward(in[0], in[1])}; };
    op.backward = [](const Tensors& in, const Tensors&, const Tensors& dout) {
        XsaGrads grads = xsa_backward(in[0], in[1], dout[0]);
        return Tensors{grads.dy, grads.dv};
    };
    return op;
}

// h: (B, T, D), g: (D,) logits over [−2, 2] as the CPU cases.
OpCase full_smear_case(const Shape& shape, std::uint64_t seed) {
    OpCase op;
    op.name = "smear/full_" + shape_name(shape);
    op.inputs = {op_harness_random(shape, seed), op_harness_random({shape[2]}, seed + 1, 2.0)};
    op.forward = [](const Tensors& in) { return Tensors{smear_forward(in[0], in[1])}; };
    op.backward = [](const Tensors& in, const Tensors&, const Tensors& dout) {
        SmearGrads grads = smear_backward(in[0], in[1], dout[0]);
        return Tensors{grads.dh, grads.dg};
    };
    return op;
}

// ---- bindings -----------------------------------------------------------------------------------------------------

const bool bound_xsa = op_harness_register_cuda("xsa", [] {
    CudaOpBinding binding;
    binding.forward = [](const OpCase&, const Tensors& in) { return Tensors{cuda_xsa_forward(in[0], in[1])}; };
    binding.backward = [](const OpCase&, const Tensors& in, const Tensors&, const Tensors& dout) {
        XsaGrads grads = cuda_xsa_backward(in[0], in[1], dout[0]);
        return Tensors{grads.dy, grads.dv};
    };
    binding.f32_tolerance = 1e-5;
    binding.bf16_tolerance = kBf16Tolerance;
    binding.full_scale_cases = [] {
        return std::vector<OpCase>{
            full_xsa_case({2, 32, 2048, 32}, 8, 0, 601),  // S1: 2·32·2048·32 = 4.2M query elements
            full_xsa_case({2, 6, 300, 36}, 2, 7, 611),    // Dh 36: f32 vectors of 4, bf16 single elements
            full_xsa_case({1, 4, 257, 160}, 1, 0, 621),   // two load groups per lane, one KV head for four
            full_xsa_case({3, 4, 129, 5}, 4, 3, 631),     // single elements, no grouping, zero rows
        };
    };
    return binding;
}());

const bool bound_smear = op_harness_register_cuda("smear", [] {
    CudaOpBinding binding;
    binding.forward = [](const OpCase&, const Tensors& in) { return Tensors{cuda_smear_forward(in[0], in[1])}; };
    binding.backward = [](const OpCase&, const Tensors& in, const Tensors&, const Tensors& dout) {
        SmearGrads grads = cuda_smear_backward(in[0], in[1], dout[0]);
        return Tensors{grads.dh, grads.dg};
    };
    binding.f32_tolerance = 1e-5;
    binding.bf16_tolerance = kBf16Tolerance;
    binding.full_scale_cases = [] {
        return std::vector<OpCase>{
            full_smear_case({2, 2048, 1024}, 701),  // S1's D at T 2048: 16 gate blocks of 256 rows
            full_smear_case({3, 1000, 1000}, 711),  // blocks across sequence ends, a partial last block
            full_smear_case({2, 777, 515}, 721),    // D off every vector width
            full_smear_case({4, 1, 64}, 731),       // T = 1: no neighbour anywhere
        };
    };
    return binding;
}());

}  // namespace

}  // namespace pgolf::test
