// CUDA bindings of the op harness for the memory-bound families (elementwise, activations, broadcast gains, permute,
// residual mix / scaled add, embedding, RMSNorm, RoPE), with full-scale cases at the seeds' shapes.
#include <cmath>
#include <string>
#include <vector>

#include "core/cuda/elementwise.h"
#include "core/cuda/embedding.h"
#include "core/cuda/norm.h"
#include "core/cuda/rope.h"
#include "core/ops/elementwise.h"
#include "core/ops/embedding.h"
#include "core/ops/norm.h"
#include "core/ops/rope.h"
#include "tests/core/op_cases.h"
#include "tests/core/op_harness.h"

namespace pgolf::test {

namespace {

using Tensors = std::vector<Tensor>;

// Outputs stored as bf16 carry a relative rounding error of up to 2^-9 ≈ 2e-3 on top of the shared bf16 inputs.
constexpr double kBf16Tolerance = 1e-2;
// Channel sums (dg, dmix) over up to a few thousand rows accumulate in fp32 on the GPU, in f64 in the reference.
constexpr double kReductionF32Tolerance = 5e-5;

std::int64_t int_attribute(const OpCase& op, const std::string& key) {
    return static_cast<std::int64_t>(std::llround(op.attribute(key)));
}

RopeSpec rope_spec_of(const OpCase& op) {
    RopeSpec spec;
    spec.rotary_dims = int_attribute(op, "rotary_dims");
    spec.frequency_dims = int_attribute(op, "frequency_dims");
    spec.base = op.attribute("base");
    spec.position_offset = int_attribute(op, "position_offset");
    return spec;
}

CudaOpBinding binding(CudaOpBinding::Forward forward, CudaOpBinding::Backward backward, double f32_tolerance = 1e-5) {
    CudaOpBinding result;
    result.forward = std::move(forward);
    result.backward = std::move(backward);
    result.f32_tolerance = f32_tolerance;
    result.bf16_tolerance = kBf16Tolerance;
    return result;
}

// ---- full-scale cases (CPU reference in f64) ----------------------------------------------------------------------

OpCase full_activation_case(const std::string& family, const Shape& shape, double slope, std::uint64_t seed) {
    OpCase op;
    op.name = family + "/full_" + std::to_string(shape[0]) + "x" + std::to_string(shape[1]);
    op.inputs = {op_harness_random(shape, seed, 3.0)};
    const bool leaky = family == "leaky_relu_squared";
    op.forward = [leaky, slope](const Tensors& in) {
        return Tensors{leaky ? leaky_relu_squared(in[0], slope) : relu_squared(in[0])};
    };
    op.backward = [leaky, slope](const Tensors& in, const Tensors&, const Tensors& dout) {
        return Tensors{leaky ? leaky_relu_squared_backward(in[0], slope, dout[0])
                             : relu_squared_backward(in[0], dout[0])};
    };
    if (leaky) op.attributes = {{"slope", slope}};
    return op;
}

// op under another name (full-scale cases reuse their family's builder).
OpCase renamed(OpCase op, const std::string& name) {
    op.name = name;
    return op;
}

OpCase full_rmsnorm_case(const std::string& name, const Shape& shape, double factor, std::uint64_t seed) {
    return renamed(rmsnorm_case(shape, factor, seed), "rmsnorm/full_" + name);
}

OpCase full_rope_case(const std::string& name, const Shape& shape, std::int64_t rotary_dims,
                      std::int64_t frequency_dims, std::uint64_t seed) {
    RopeSpec spec;
    spec.rotary_dims = rotary_dims;
    spec.frequency_dims = frequency_dims;
    OpCase op;
    op.name = "rope/full_" + name;
    op.inputs = {op_harness_random(shape, seed)};
    op.forward = [spec](const Tensors& in) { return Tensors{rope_forward(in[0], spec)}; };
    op.backward = [spec](const Tensors&, const Tensors&, const Tensors& dout) {
        return Tensors{rope_backward(dout[0], spec)};
    };
    op.attributes = {{"rotary_dims", static_cast<double>(spec.rotary_dims)},
                     {"frequency_dims", static_cast<double>(spec.frequency_dims)},
                     {"base", spec.base},
                     {"position_offset", static_cast<double>(spec.position_offset)}};
    return op;
}

OpCase full_embedding_case(std::int64_t vocab, std::int64_t d, const Shape& ids_shape, std::uint64_t seed) {
    OpCase op;
    op.name = "embedding/full_v" + std::to_string(vocab) + "_d" + std::to_string(d);
    op.inputs = {op_harness_random({vocab, d}, seed), op_harness_random_ids(ids_shape, vocab, seed + 1)};
    op.forward = [](const Tensors& in) { return Tensors{embedding_forward(in[0], in[1])}; };
    op.backward = [vocab](const Tensors& in, const Tensors&, const Tensors& dout) {
        return Tensors{embedding_backward(dout[0], in[1], vocab), Tensor()};
    };
    op.attributes = {{"vocab", static_cast<double>(vocab)}};
    return op;
}

// ---- bindings -----------------------------------------------------------------------------------------------------

const bool bound_add = op_harness_register_cuda(
    "add", binding([](const OpCase&, const Tensors& in) { return Tensors{cuda_add(in[0], in[1])}; },
                   [](const OpCase&, const Tensors&, const Tensors&, const Tensors& dout) {
                       return Tensors{dout[0], dout[0]};
                   }));

const bool bound_mul = op_harness_register_cuda(
    "mul", binding([](const OpCase&, const Tensors& in) { return Tensors{cuda_mul(in[0], in[1])}; },
                   [](const OpCase&, const Tensors& in, const Tensors&, const Tensors& dout) {
                       return Tensors{cuda_mul(dout[0], in[1]), cuda_mul(dout[0], in[0])};
                   }));

const bool bound_add_into = op_harness_register_cuda(
    "add_into", binding(
                    [](const OpCase&, const Tensors& in) {
                        Tensor sum = in[0].clone();  // the harness's inputs must stay untouched
                        cuda_add_into(sum, in[1]);
                        return Tensors{sum};
                    },
                    [](const OpCase&, const Tensors&, const Tensors&, const Tensors& dout) {
                        return Tensors{dout[0], dout[0]};
                    }));

const bool bound_scale = op_harness_register_cuda(
    "scale",
    binding([](const OpCase& op, const Tensors& in) { return Tensors{cuda_scale(in[0], op.attribute("factor"))}; },
            [](const OpCase& op, const Tensors&, const Tensors&, const Tensors& dout) {
                return Tensors{cuda_scale(dout[0], op.attribute("factor"))};
            }));

const bool bound_relu_squared = op_harness_register_cuda("relu_squared", [] {
    CudaOpBinding result = binding([](const OpCase&, const Tensors& in) { return Tensors{cuda_relu_squared(in[0])}; },
                                   [](const OpCase&, const Tensors& in, const Tensors&, const Tensors& dout) {
                                       return Tensors{cuda_relu_squared_backward(in[0], dout[0])};
                                   });
    result.full_scale_cases = [] {
        return std::vector<OpCase>{full_activation_case("relu_squared", {2048, 1536}, 0.0, 401)};
    };
    return result;
}());

const bool bound_leaky_relu_squared = op_harness_register_cuda("leaky_relu_squared", [] {
    CudaOpBinding result =
        binding([](const OpCase& op,
                   const Tensors& in) { return Tensors{cuda_leaky_relu_squared(in[0], op.attribute("slope"))}; },
                [](const OpCase& op, const Tensors& in, const Tensors&, const Tensors& dout) {
                    return Tensors{cuda_leaky_relu_squared_backward(in[0], op.attribute("slope"), dout[0])};
                });
    result.full_scale_cases = [] {
        return std::vector<OpCase>{full_activation_case("leaky_relu_squared", {2048, 1536}, 0.5, 403)};
    };
    return result;
}());

const bool bound_mul_broadcast = op_harness_register_cuda(
    "mul_broadcast",
    binding([](const OpCase& op,
               const Tensors& in) { return Tensors{cuda_mul_broadcast(in[0], in[1], int_attribute(op, "axis"))}; },
            [](const OpCase& op, const Tensors& in, const Tensors&, const Tensors& dout) {
                MulBroadcastGrads grads = cuda_mul_broadcast_backward(in[0], in[1], int_attribute(op, "axis"), dout[0]);
                return Tensors{grads.dx, grads.dg};
            },
            kReductionF32Tolerance));

const bool bound_permute_0213 = op_harness_register_cuda(
    "permute_0213", binding([](const OpCase&, const Tensors& in) { return Tensors{cuda_permute_0213(in[0])}; },
                            [](const OpCase&, const Tensors&, const Tensors&, const Tensors& dout) {
                                return Tensors{cuda_permute_0213(dout[0])};
                            }));

const bool bound_residual_mix = op_harness_register_cuda("residual_mix", [] {
    CudaOpBinding result =
        binding([](const OpCase&, const Tensors& in) { return Tensors{cuda_residual_mix(in[0], in[1], in[2])}; },
                [](const OpCase&, const Tensors& in, const Tensors&, const Tensors& dout) {
                    ResidualMixGrads grads = cuda_residual_mix_backward(in[0], in[1], in[2], dout[0]);
                    return Tensors{grads.dx, grads.dx0, grads.dmix};
                },
                kReductionF32Tolerance);
    result.full_scale_cases = [] {
        return std::vector<OpCase>{renamed(residual_mix_case({2048, 512}, 411), "residual_mix/full_2048x512"),
                                   renamed(residual_mix_case({4, 2048, 512}, 413), "residual_mix/full_4x2048x512")};
    };
    return result;
}());

const bool bound_residual_add_scaled = op_harness_register_cuda("residual_add_scaled", [] {
    CudaOpBinding result =
        binding([](const OpCase&, const Tensors& in) { return Tensors{cuda_residual_add_scaled(in[0], in[1], in[2])}; },
                [](const OpCase&, const Tensors& in, const Tensors&, const Tensors& dout) {
                    ResidualAddScaledGrads grads = cuda_residual_add_scaled_backward(in[1], in[2], dout[0]);
                    return Tensors{grads.dx, grads.dy, grads.dg};
                },
                kReductionF32Tolerance);
    result.full_scale_cases = [] {
        return std::vector<OpCase>{
            renamed(residual_add_scaled_case({2048, 512}, 421), "residual_add_scaled/full_2048x512")};
    };
    return result;
}());

const bool bound_embedding = op_harness_register_cuda("embedding", [] {
    CudaOpBinding result =
        binding([](const OpCase&, const Tensors& in) { return Tensors{cuda_embedding_forward(in[0], in[1])}; },
                [](const OpCase& op, const Tensors& in, const Tensors&, const Tensors& dout) {
                    return Tensors{cuda_embedding_backward(dout[0], in[1], int_attribute(op, "vocab")), Tensor()};
                });
    result.full_scale_cases = [] {
        return std::vector<OpCase>{full_embedding_case(1024, 512, {2, 2048}, 431),
                                   full_embedding_case(8192, 512, {2, 2048}, 433)};
    };
    return result;
}());

const bool bound_rmsnorm = op_harness_register_cuda("rmsnorm", [] {
    CudaOpBinding result = binding(
        [](const OpCase& op, const Tensors& in) {
            RmsNormResult out = cuda_rmsnorm_forward(in[0], kRmsNormEpsF32, op.attribute("factor"));
            return Tensors{out.y, out.rstd};
        },
        [](const OpCase& op, const Tensors& in, const Tensors& out, const Tensors& dout) {
            return Tensors{cuda_rmsnorm_backward(in[0], out[1], dout[0], op.attribute("factor"))};
        });
    result.full_scale_cases = [] {
        return std::vector<OpCase>{
            full_rmsnorm_case("2048x512", {2048, 512}, 1.0, 441),
            full_rmsnorm_case("8x2048x512_factor", {8, 2048, 512}, 1.0 / std::sqrt(3.0), 443),
            full_rmsnorm_case("heads_1x8x2048x64", {1, 8, 2048, 64}, 1.0, 445),
        };
    };
    return result;
}());

const bool bound_rope = op_harness_register_cuda("rope", [] {
    CudaOpBinding result =
        binding([](const OpCase& op, const Tensors& in) { return Tensors{cuda_rope_forward(in[0], rope_spec_of(op))}; },
                [](const OpCase& op, const Tensors&, const Tensors&, const Tensors& dout) {
                    return Tensors{cuda_rope_backward(dout[0], rope_spec_of(op))};
                });
    result.full_scale_cases = [] {
        return std::vector<OpCase>{
            full_rope_case("1x8x2048x64", {1, 8, 2048, 64}, 0, 0, 451),
            full_rope_case("s1_1x8x1024x32_r16_f32", {1, 8, 1024, 32}, 16, 32, 453),
        };
    };
    return result;
}());

}  // namespace

}  // namespace pgolf::test
