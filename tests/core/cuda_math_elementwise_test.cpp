// CPU checks of the per-element arithmetic the elementwise, residual, RMSNorm and RoPE kernels run (the
// PGOLF_HOST_DEVICE functions of core/cuda/{elementwise,norm,rope}_math.h) against the CPU reference ops, on
// harness-style random inputs, and of the device bf16 store against the host's conversion.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/cuda/elementwise_math.h"
#include "core/cuda/host_device.h"
#include "core/cuda/norm_math.h"
#include "core/cuda/rope_math.h"
#include "core/ops/elementwise.h"
#include "core/ops/norm.h"
#include "core/ops/rope.h"
#include "core/tensor.h"
#include "tests/core/op_harness.h"

namespace pgolf {
namespace {

using test::op_harness_random;

std::uint32_t bits_of(float value) {
    std::uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return bits;
}

float float_of(std::uint32_t bits) {
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}

// Bitwise equal, or both NaN (a NaN's payload is not part of the contract).
bool same_float(float a, float b) { return bits_of(a) == bits_of(b) || (std::isnan(a) && std::isnan(b)); }

// Harness-style f32 input: uniform in [-scale, scale] (seeded), plus the special values at the front.
Tensor random_f32(const Shape& shape, std::uint64_t seed, double scale = 1.0, bool specials = false) {
    Tensor x = op_harness_random(shape, seed, scale).to(DType::f32);
    if (specials) {
        const float values[] = {0.0f,
                                -0.0f,
                                std::numeric_limits<float>::infinity(),
                                -std::numeric_limits<float>::infinity(),
                                std::numeric_limits<float>::quiet_NaN(),
                                std::numeric_limits<float>::denorm_min(),
                                -std::numeric_limits<float>::denorm_min(),
                                std::numeric_limits<float>::max(),
                                -std::numeric_limits<float>::max(),
                                1e-30f,
                                -1e-30f};
        float* data = x.data<float>();
        for (std::size_t i = 0; i < std::size(values) && static_cast<std::int64_t>(i) < x.numel(); ++i) {
            data[i] = values[i];
        }
    }
    return x;
}

// ---- bf16 stores -------------------------------------------------------------------------------------------------

TEST(CudaMathElementwise, Bf16StoreMatchesHostConversionBitForBit) {
    std::vector<std::uint32_t> patterns;
    // Every upper half with the low halves that decide rounding: exact, just above, just below, exactly the tie, just
    // past the tie, all ones. Covers ±0, subnormals, ±inf, NaNs (quiet and signalling, with payloads), round-to-inf.
    for (std::uint32_t upper = 0; upper <= 0xFFFFu; ++upper) {
        for (const std::uint32_t lower : {0x0000u, 0x0001u, 0x7FFFu, 0x8000u, 0x8001u, 0xFFFFu}) {
            patterns.push_back((upper << 16) | lower);
        }
    }
    std::mt19937_64 generator(7);
    for (int i = 0; i < (1 << 20); ++i) patterns.push_back(static_cast<std::uint32_t>(generator()));
    std::int64_t mismatches = 0;
    for (const std::uint32_t bits : patterns) {
        const float value = float_of(bits);
        const std::uint16_t device = hd_bf16_from_float(value);
        const std::uint16_t host = bf16_from_float(value);
        if (device != host) {
            if (++mismatches <= 5)
                ADD_FAILURE() << std::hex << "bits 0x" << bits << ": device 0x" << device << ", host 0x" << host;
        }
        // The round trip widens exactly.
        if (bits_of(hd_float_from_bf16(device)) != bits_of(float_from_bf16(host))) ++mismatches;
    }
    EXPECT_EQ(mismatches, 0);
    EXPECT_GT(patterns.size(), std::size_t{1400000});
}

// ---- activations -------------------------------------------------------------------------------------------------

template <typename Kernel>
void expect_elementwise_bitwise(const Tensor& reference, const Tensor& input, Kernel kernel, const char* what) {
    ASSERT_EQ(reference.dtype(), DType::f32);
    const float* expected = reference.data<float>();
    const float* x = input.data<float>();
    std::int64_t mismatches = 0;
    for (std::int64_t i = 0; i < input.numel(); ++i) {
        const float got = kernel(i, x[i]);
        if (!same_float(got, expected[i]) && ++mismatches <= 5) {
            ADD_FAILURE() << what << " element " << i << " x=" << x[i] << ": " << got << " vs " << expected[i];
        }
    }
    EXPECT_EQ(mismatches, 0) << what;
}

TEST(CudaMathElementwise, ReluSquaredMatchesCpuBitForBit) {
    for (const auto& [shape, seed, scale] :
         {std::tuple<Shape, int, double>{{3, 7}, 49, 1.0}, {{2, 2, 5}, 51, 3.0}, {{2048, 64}, 53, 3.0}}) {
        const Tensor x = random_f32(shape, seed, scale, true);
        const Tensor dy = random_f32(shape, seed + 1000);
        const float* g = dy.data<float>();
        expect_elementwise_bitwise(
            relu_squared(x), x, [](std::int64_t, float v) { return hd_relu_squared(v); }, "relu_squared");
        expect_elementwise_bitwise(
            relu_squared_backward(x, dy), x, [g](std::int64_t i, float v) { return hd_relu_squared_backward(v, g[i]); },
            "relu_squared_backward");
    }
}

TEST(CudaMathElementwise, LeakyReluSquaredMatchesCpuBitForBit) {
    for (const double slope : {0.5, 0.1, 0.37}) {
        for (const auto& [shape, seed, scale] :
             {std::tuple<Shape, int, double>{{3, 7}, 53, 1.0}, {{2, 2, 5}, 55, 3.0}, {{2048, 64}, 57, 3.0}}) {
            const Tensor x = random_f32(shape, seed, scale, true);
            const Tensor dy = random_f32(shape, seed + 1000);
            const float* g = dy.data<float>();
            const float s = static_cast<float>(slope);
            expect_elementwise_bitwise(
                leaky_relu_squared(x, slope), x, [s](std::int64_t, float v) { return hd_leaky_relu_squared(v, s); },
                "leaky_relu_squared");
            expect_elementwise_bitwise(
                leaky_relu_squared_backward(x, slope, dy), x,
                [s, g](std::int64_t i, float v) { return hd_leaky_relu_squared_backward(v, s, g[i]); },
                "leaky_relu_squared_backward");
        }
    }
}

TEST(CudaMathElementwise, ArithmeticMatchesCpuBitForBit) {
    const Tensor a = random_f32({5, 33}, 41, 3.0, true);
    const Tensor b = random_f32({5, 33}, 42, 3.0);
    const float* bs = b.data<float>();
    expect_elementwise_bitwise(
        add(a, b), a, [bs](std::int64_t i, float v) { return hd_add(v, bs[i]); }, "add");
    expect_elementwise_bitwise(
        mul(a, b), a, [bs](std::int64_t i, float v) { return hd_mul(v, bs[i]); }, "mul");
    const float factor = static_cast<float>(0.37);
    expect_elementwise_bitwise(
        scale(a, 0.37), a, [factor](std::int64_t, float v) { return hd_mul(v, factor); }, "scale");
}

// ---- residual mix and scaled add ---------------------------------------------------------------------------------

Tensor row_of(const Tensor& mix, std::int64_t r) { return mix.rows(r, r + 1).reshape({mix.size(1)}); }

TEST(CudaMathElementwise, ResidualMixMatchesUnfusedCpuBitForBit) {
    for (const auto& [shape, seed] :
         {std::pair<Shape, int>{{3, 8}, 301}, {{2, 3, 4}, 303}, {{64, 512}, 305}, {{4, 5}, 307}}) {
        const std::int64_t d = shape.back();
        const Tensor x = random_f32(shape, seed, 1.0, true);
        const Tensor x0 = random_f32(shape, seed + 1);
        const Tensor mix = random_f32({2, d}, seed + 2);
        const Tensor dy = random_f32(shape, seed + 3);
        const float* x0s = x0.data<float>();
        const float* mixes = mix.data<float>();
        const float* gs = dy.data<float>();
        const Tensor expected = add(mul_broadcast(x, row_of(mix, 0), -1), mul_broadcast(x0, row_of(mix, 1), -1));
        expect_elementwise_bitwise(
            expected, x,
            [&](std::int64_t i, float v) { return hd_residual_mix(v, x0s[i], mixes[i % d], mixes[d + i % d]); },
            "residual_mix");
        // The per-element gradients dx = dy ⊙ mix[0], dx0 = dy ⊙ mix[1].
        const MulBroadcastGrads through_x = mul_broadcast_backward(x, row_of(mix, 0), -1, dy);
        const MulBroadcastGrads through_x0 = mul_broadcast_backward(x0, row_of(mix, 1), -1, dy);
        expect_elementwise_bitwise(
            through_x.dx, x, [&](std::int64_t i, float) { return hd_mul(gs[i], mixes[i % d]); }, "residual_mix dx");
        expect_elementwise_bitwise(
            through_x0.dx, x, [&](std::int64_t i, float) { return hd_mul(gs[i], mixes[d + i % d]); },
            "residual_mix dx0");

        const Tensor y = random_f32(shape, seed + 4);
        const Tensor g = random_f32({d}, seed + 5);
        const float* ys = y.data<float>();
        const float* gains = g.data<float>();
        expect_elementwise_bitwise(
            add(x, mul_broadcast(y, g, -1)), x,
            [&](std::int64_t i, float v) { return hd_residual_add_scaled(v, ys[i], gains[i % d]); },
            "residual_add_scaled");
    }
}

// ---- rmsnorm -----------------------------------------------------------------------------------------------------

// |got − expected| ≤ tolerance · max(1, |expected|)
void expect_close(double got, double expected, double tolerance, const std::string& what) {
    EXPECT_LE(std::abs(got - expected), tolerance * std::max(1.0, std::abs(expected)))
        << what << ": " << got << " vs " << expected;
}

TEST(CudaMathElementwise, RmsNormRowArithmeticMatchesCpu) {
    int rows_checked = 0;
    for (const auto& [shape, factor, seed] : {std::tuple<Shape, double, int>{{2, 3, 8}, 1.0, 81},
                                              {{5, 16}, 0.7, 87},
                                              {{64, 512}, 1.0, 89},
                                              {{16, 512}, 1.0 / std::sqrt(3.0), 91},
                                              {{32, 64}, 1.0, 93},
                                              {{4, 1536}, 0.5, 95}}) {
        const std::int64_t d = shape.back();
        const Tensor x = random_f32(shape, seed);
        const Tensor dy = random_f32(shape, seed + 1);
        const RmsNormResult single = rmsnorm_forward(x, kRmsNormEpsF32, factor);
        const RmsNormResult exact = rmsnorm_forward(x.to(DType::f64), kRmsNormEpsF32, factor);
        const Tensor dx_single = rmsnorm_backward(x, single.rstd, dy, factor);
        const Tensor dx_exact = rmsnorm_backward(x.to(DType::f64), exact.rstd, dy.to(DType::f64), factor);
        const float* xs = x.data<float>();
        const float* gs = dy.data<float>();
        const std::int64_t rows = x.numel() / d;
        for (std::int64_t r = 0; r < rows; ++r) {
            // The kernel's fp32 row sums (in some fixed order; here sequential).
            float squares = 0.0f;
            float dot = 0.0f;
            for (std::int64_t j = 0; j < d; ++j) {
                squares += xs[r * d + j] * xs[r * d + j];
                dot += gs[r * d + j] * xs[r * d + j];
            }
            const float rstd = hd_rmsnorm_rstd(squares, d, static_cast<float>(kRmsNormEpsF32));
            // fp32 sums of a few hundred squares: a few ulp of rstd from the double-accumulated reference.
            expect_close(rstd, exact.rstd.item(r), 2e-6, "rstd row " + std::to_string(r));
            expect_close(rstd, single.rstd.item(r), 2e-6, "rstd vs f32 reference, row " + std::to_string(r));
            const float row_scale = hd_rmsnorm_row_scale(rstd, static_cast<float>(factor));
            const float outer = hd_rmsnorm_row_scale(rstd, static_cast<float>(factor));
            const float inner = hd_rmsnorm_gradient_inner(rstd, dot, d);
            for (std::int64_t j = 0; j < d; ++j) {
                const std::int64_t i = r * d + j;
                expect_close(hd_rmsnorm_output(xs[i], row_scale), exact.y.item(i), 2e-6, "y " + std::to_string(i));
                expect_close(hd_rmsnorm_output(xs[i], row_scale), single.y.item(i), 2e-6,
                             "y vs f32 reference " + std::to_string(i));
                expect_close(hd_rmsnorm_gradient(xs[i], gs[i], outer, inner), dx_exact.item(i), 1e-5,
                             "dx " + std::to_string(i));
                expect_close(hd_rmsnorm_gradient(xs[i], gs[i], outer, inner), dx_single.item(i), 1e-5,
                             "dx vs f32 reference " + std::to_string(i));
            }
            ++rows_checked;
        }
    }
    EXPECT_EQ(rows_checked, 6 + 5 + 64 + 16 + 32 + 4);
}

TEST(CudaMathElementwise, RmsNormRstdOfExactSumIsCorrectlyRounded) {
    // Given the exact row sum (rounded once to f32), every step is correctly rounded in fp32: within 2 ulp of the
    // exact 1/sqrt(mean + eps).
    for (const double sum : {1.0, 12.5 * 2, 170.6, 1e-6, 3.0e4, 0.0}) {
        const std::int64_t d = 2;
        const float rstd = hd_rmsnorm_rstd(static_cast<float>(sum), d, static_cast<float>(kRmsNormEpsF32));
        const double exact = 1.0 / std::sqrt(sum / d + kRmsNormEpsF32);
        EXPECT_LE(std::abs(rstd - exact), 2.5e-7 * exact) << sum;
    }
}

// ---- rope --------------------------------------------------------------------------------------------------------

// y from the kernel's per-pair arithmetic on the host; sine_sign −1 for the backward.
Tensor rope_by_pairs(const Tensor& x, const RopeSpec& spec, float sine_sign) {
    const std::int64_t head_dim = x.size(3);
    const std::int64_t time = x.size(2);
    const std::int64_t rotary_dims = spec.rotary_dims == 0 ? head_dim : spec.rotary_dims;
    const std::int64_t half = rotary_dims / 2;
    const std::int64_t frequency_dims = spec.frequency_dims == 0 ? rotary_dims : spec.frequency_dims;
    const std::int64_t rows = x.numel() / head_dim;
    Tensor y = x.clone();
    const float* in = x.data<float>();
    float* out = y.data<float>();
    for (std::int64_t row = 0; row < rows; ++row) {
        const std::int64_t position = row % time + spec.position_offset;
        for (std::int64_t j = 0; j < half; ++j) {
            const float angle = hd_rope_angle(position, rope_inverse_frequency(spec.base, j, frequency_dims));
            const RopePair pair = hd_rope_rotate(in[row * head_dim + j], in[row * head_dim + half + j],
                                                 hd_rope_cos(angle), sine_sign * hd_rope_sin(angle));
            out[row * head_dim + j] = pair.first;
            out[row * head_dim + half + j] = pair.second;
        }
    }
    return y;
}

TEST(CudaMathElementwise, RopeAngleAndRotationMatchCpuBitForBit) {
    struct Case {
        Shape shape;
        std::int64_t rotary_dims, frequency_dims;
        double base;
        std::int64_t offset;
    };
    const std::vector<Case> cases = {
        {{2, 3, 5, 8}, 0, 0, 10000.0, 0},       {{2, 3, 5, 8}, 4, 8, 10000.0, 0},
        {{2, 3, 5, 8}, 4, 4, 10000.0, 0},       {{2, 2, 6, 8}, 0, 0, 5e4, 0},
        {{1, 2, 5, 6}, 0, 0, 10000.0, 3},       {{1, 8, 2048, 64}, 0, 0, 10000.0, 0},
        {{1, 8, 1024, 32}, 16, 32, 10000.0, 0}, {{1, 2, 64, 64}, 0, 0, 10000.0, 4000},
    };
    std::uint64_t seed = 11;
    std::int64_t elements = 0;
    for (const Case& c : cases) {
        RopeSpec spec;
        spec.rotary_dims = c.rotary_dims;
        spec.frequency_dims = c.frequency_dims;
        spec.base = c.base;
        spec.position_offset = c.offset;
        const Tensor x = random_f32(c.shape, seed++);
        const Tensor forward = rope_forward(x, spec);
        const Tensor backward = rope_backward(x, spec);
        const Tensor forward_pairs = rope_by_pairs(x, spec, 1.0f);
        const Tensor backward_pairs = rope_by_pairs(x, spec, -1.0f);
        EXPECT_EQ(std::memcmp(forward.raw_data(), forward_pairs.raw_data(), forward.nbytes()), 0)
            << shape_string(c.shape) << " forward";
        EXPECT_EQ(std::memcmp(backward.raw_data(), backward_pairs.raw_data(), backward.nbytes()), 0)
            << shape_string(c.shape) << " backward";
        elements += x.numel();
    }
    EXPECT_GT(elements, 1000000);
}

}  // namespace
}  // namespace pgolf
