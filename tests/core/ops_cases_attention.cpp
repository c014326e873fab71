// Harness cases and known-answer tests for RoPE and attention: rotations against hand-computed angles, attention
// against a naive softmax, GQA against MHA with repeated KV heads, thread-count determinism and error messages.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/error.h"
#include "core/ops/attention.h"
#include "core/ops/rope.h"
#include "tests/core/op_harness.h"
#include "tests/core/test_util.h"

namespace pgolf::test {

namespace {

// ---- harness cases ----

OpCase rope_case(const std::string& name, const Shape& shape, const RopeSpec& spec, std::uint64_t seed) {
    OpCase op;
    op.name = "rope/" + name;
    op.inputs = {op_harness_random(shape, seed)};
    op.forward = [spec](const std::vector<Tensor>& in) { return std::vector<Tensor>{rope_forward(in[0], spec)}; };
    op.backward = [spec](const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>& grads) {
        return std::vector<Tensor>{rope_backward(grads[0], spec)};
    };
    op.gradient_tolerance = 1e-7;
    op.float_tolerance = 1e-5;
    op.attributes = {{"rotary_dims", static_cast<double>(spec.rotary_dims)},
                     {"frequency_dims", static_cast<double>(spec.frequency_dims)},
                     {"base", spec.base},
                     {"position_offset", static_cast<double>(spec.position_offset)}};
    return op;
}

RopeSpec rope_spec(std::int64_t rotary_dims, std::int64_t frequency_dims, double base, std::int64_t offset) {
    RopeSpec spec;
    spec.rotary_dims = rotary_dims;
    spec.frequency_dims = frequency_dims;
    spec.base = base;
    spec.position_offset = offset;
    return spec;
}

const bool registered_rope = op_harness_register("rope", [] {
    return std::vector<OpCase>{
        rope_case("full_b2h3t5d8", {2, 3, 5, 8}, rope_spec(0, 0, 10000.0, 0), 11),
        // S1 in miniature: half the head dim rotated, frequencies spread over the whole head dim.
        rope_case("partial_d8r4f8", {2, 3, 5, 8}, rope_spec(4, 8, 10000.0, 0), 12),
        rope_case("partial_d8r4f4", {2, 3, 5, 8}, rope_spec(4, 4, 10000.0, 0), 13),
        rope_case("ntk_base5e4", {2, 2, 6, 8}, rope_spec(0, 0, 5e4, 0), 14),
        rope_case("offset3", {1, 2, 5, 6}, rope_spec(0, 0, 10000.0, 3), 15),
    };
});

struct AttentionCaseSpec {
    std::string name;
    std::int64_t batch, heads, kv_heads, time, head_dim;
    double scale = 0.0;
    bool causal = true;
};

OpCase attention_case(const AttentionCaseSpec& spec, std::uint64_t seed) {
    OpCase op;
    op.name = "attention/" + spec.name;
    op.inputs = {op_harness_random({spec.batch, spec.heads, spec.time, spec.head_dim}, seed),
                 op_harness_random({spec.batch, spec.kv_heads, spec.time, spec.head_dim}, seed + 1),
                 op_harness_random({spec.batch, spec.kv_heads, spec.time, spec.head_dim}, seed + 2)};
    const double scale = spec.scale;
    const bool causal = spec.causal;
    op.forward = [scale, causal](const std::vector<Tensor>& in) {
        AttentionResult result = attention_forward(in[0], in[1], in[2], scale, causal);
        return std::vector<Tensor>{result.y, result.lse};
    };
    op.backward = [scale, causal](const std::vector<Tensor>& in, const std::vector<Tensor>& out,
                                  const std::vector<Tensor>& grads) {
        const AttentionResult forward{out[0], out[1]};
        AttentionGrads g = attention_backward(in[0], in[1], in[2], forward, grads[0], scale, causal);
        return std::vector<Tensor>{g.dq, g.dk, g.dv};
    };
    op.differentiable_outputs = {true, false};  // lse is a saved statistic
    op.gradient_tolerance = 1e-7;
    op.float_tolerance = 1e-5;
    op.attributes = {{"scale", scale}, {"causal", causal ? 1.0 : 0.0}};
    return op;
}

const bool registered_attention = op_harness_register("attention", [] {
    const std::vector<AttentionCaseSpec> specs = {
        {"mha_b2h2t5d4", 2, 2, 2, 5, 4},
        {"gqa_h4kv2", 2, 4, 2, 5, 4},
        {"gqa_h6kv3", 1, 6, 3, 4, 4},
        {"mqa_h4kv1", 2, 4, 1, 4, 4},
        {"t1", 2, 4, 2, 1, 4},
        {"noncausal_h4kv2", 2, 4, 2, 5, 4, 0.0, false},
        {"scale0p7_h2kv1", 1, 2, 1, 6, 4, 0.7},
    };
    std::vector<OpCase> cases;
    std::uint64_t seed = 100;
    for (const AttentionCaseSpec& spec : specs) {
        cases.push_back(attention_case(spec, seed));
        seed += 10;
    }
    return cases;
});

// ---- helpers ----

// Sums heads h·group … h·group + group − 1 into head h: the gradient of repeat_kv_heads.
Tensor sum_head_groups(const Tensor& grad, std::int64_t group) {
    const std::int64_t B = grad.size(0), H = grad.size(1), T = grad.size(2), Dh = grad.size(3);
    Tensor summed = Tensor::zeros({B, H / group, T, Dh}, grad.dtype());
    for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t h = 0; h < H; ++h)
            for (std::int64_t i = 0; i < T; ++i)
                for (std::int64_t d = 0; d < Dh; ++d) {
                    const std::int64_t target = index4(summed, b, h / group, i, d);
                    summed.set_item(target, summed.item(target) + grad.item(index4(grad, b, h, i, d)));
                }
    return summed;
}

// ---- RoPE ----

TEST(RopeTest, PositionZeroIsIdentity) {
    for (DType dtype : {DType::f32, DType::f64}) {
        const Tensor x = op_harness_random({2, 3, 1, 8}, 1).to(dtype);
        EXPECT_TRUE(bitwise_equal(rope_forward(x, RopeSpec{}), x)) << dtype_name(dtype);
        EXPECT_TRUE(bitwise_equal(rope_backward(x, RopeSpec{}), x)) << dtype_name(dtype);
    }
}

TEST(RopeTest, RotatesByOneRadianAtPositionOne) {
    // Dh 2: one pair with inv_freq = base^0 = 1, so position 1 rotates by exactly 1 rad.
    const double a = 0.3, b = -1.7;
    const std::vector<double> values = {5.0, 7.0, a, b};  // t = 0 then t = 1
    for (DType dtype : {DType::f32, DType::f64}) {
        const Tensor x = Tensor::from_values(values, {1, 1, 2, 2}, dtype);
        const Tensor y = rope_forward(x, RopeSpec{});
        const double tolerance = dtype == DType::f32 ? 1e-6 : 1e-15;
        EXPECT_EQ(y.item(0), 5.0);
        EXPECT_EQ(y.item(1), 7.0);
        // Both dtypes rotate by the f32 cos/sin of the f32 angle, as the reference's tables are f32.
        const double cos1 = std::cos(1.0f);
        const double sin1 = std::sin(1.0f);
        EXPECT_NEAR(y.item(2), a * cos1 + b * sin1, tolerance) << dtype_name(dtype);
        EXPECT_NEAR(y.item(3), -a * sin1 + b * cos1, tolerance) << dtype_name(dtype);
        EXPECT_NEAR(y.item(2), a * std::cos(1.0) + b * std::sin(1.0), 1e-6) << dtype_name(dtype);
    }
}

TEST(RopeTest, PositionOffsetShiftsTheAngles) {
    const Tensor x = op_harness_random({1, 2, 6, 8}, 2);
    RopeSpec shifted;
    shifted.position_offset = 2;
    const Tensor whole = rope_forward(x, RopeSpec{});
    // Rows t + 2 of x rotated from position 0 must equal rows t of x[2:] rotated with offset 2.
    Tensor sliced = Tensor::empty({1, 2, 4, 8}, DType::f64);
    for (std::int64_t h = 0; h < 2; ++h)
        for (std::int64_t t = 0; t < 4; ++t)
            for (std::int64_t d = 0; d < 8; ++d)
                sliced.set_item(index4(sliced, 0, h, t, d), x.item(index4(x, 0, h, t + 2, d)));
    const Tensor sliced_rotated = rope_forward(sliced, shifted);
    for (std::int64_t h = 0; h < 2; ++h)
        for (std::int64_t t = 0; t < 4; ++t)
            for (std::int64_t d = 0; d < 8; ++d)
                EXPECT_EQ(sliced_rotated.item(index4(sliced_rotated, 0, h, t, d)),
                          whole.item(index4(whole, 0, h, t + 2, d)));
    EXPECT_FALSE(bitwise_equal(rope_forward(sliced, RopeSpec{}), sliced_rotated));
}

TEST(RopeTest, S1PartialLayoutRotatesFirstHalfWithHeadDimFrequencies) {
    // S1: Dh 32, 16 rotated dims, frequencies over all 32 dims. Dim j < 8 pairs with j + 8 at
    // inv_freq_j = 10000^(−2j/32); dims 16…31 pass through unchanged.
    const std::int64_t T = 7, Dh = 32;
    const Tensor x = op_harness_random({2, 2, T, Dh}, 3);
    RopeSpec spec;
    spec.rotary_dims = 16;
    spec.frequency_dims = 32;
    const Tensor y = rope_forward(x, spec);
    double worst = 0.0;
    for (std::int64_t b = 0; b < 2; ++b)
        for (std::int64_t h = 0; h < 2; ++h)
            for (std::int64_t t = 0; t < T; ++t) {
                for (std::int64_t j = 0; j < 8; ++j) {
                    const double angle = static_cast<double>(t) * std::pow(10000.0, -2.0 * j / 32.0);
                    const double x1 = x.item(index4(x, b, h, t, j));
                    const double x2 = x.item(index4(x, b, h, t, j + 8));
                    worst = std::max(
                        worst, std::abs(y.item(index4(y, b, h, t, j)) - (x1 * std::cos(angle) + x2 * std::sin(angle))));
                    worst = std::max(worst, std::abs(y.item(index4(y, b, h, t, j + 8)) -
                                                     (-x1 * std::sin(angle) + x2 * std::cos(angle))));
                }
                for (std::int64_t d = 16; d < Dh; ++d) {
                    EXPECT_EQ(y.item(index4(y, b, h, t, d)), x.item(index4(x, b, h, t, d)));
                }
            }
    // The op's angles are float32 (as the reference's), so they match double angles to float rounding only.
    EXPECT_LE(worst, 1e-5);
}

TEST(RopeTest, BackwardIsTheInverseRotation) {
    RopeSpec spec;
    spec.rotary_dims = 6;
    spec.frequency_dims = 8;
    spec.position_offset = 5;
    for (DType dtype : {DType::f32, DType::f64}) {
        const Tensor x = op_harness_random({2, 3, 9, 8}, 4).to(dtype);
        const Tensor round_trip = rope_backward(rope_forward(x, spec), spec);
        EXPECT_LE(max_abs_difference(round_trip, x), 1e-6) << dtype_name(dtype);
    }
}

TEST(RopeTest, RejectsBadInputs) {
    const Tensor x = Tensor::zeros({1, 2, 3, 8}, DType::f32);
    EXPECT_EQ(error_message([&] { rope_forward(x, rope_spec(5, 0, 10000.0, 0)); }),
              "rope: rotary_dims must be even, positive and at most the head dim 8, got 5");
    EXPECT_EQ(error_message([&] { rope_forward(x, rope_spec(10, 0, 10000.0, 0)); }),
              "rope: rotary_dims must be even, positive and at most the head dim 8, got 10");
    EXPECT_EQ(error_message([&] { rope_forward(x, rope_spec(4, 2, 10000.0, 0)); }),
              "rope: frequency_dims must be even and at least rotary_dims 4, got 2");
    EXPECT_EQ(error_message([&] { rope_forward(x, rope_spec(4, 7, 10000.0, 0)); }),
              "rope: frequency_dims must be even and at least rotary_dims 4, got 7");
    EXPECT_EQ(error_message([&] { rope_forward(x, rope_spec(0, 0, 0.0, 0)); }),
              "rope: base must be positive and finite, got 0");
    EXPECT_EQ(error_message([&] { rope_forward(x, rope_spec(0, 0, 10000.0, -1)); }),
              "rope: position_offset must be non-negative, got -1");
    EXPECT_EQ(error_message([&] {
                  rope_forward(Tensor::zeros({2, 8}), RopeSpec{});
              }),
              "rope: x must be 4-D (B, H, T, Dh), got shape (2, 8)");
    EXPECT_EQ(error_message([&] {
                  rope_backward(Tensor::zeros({1, 1, 2, 7}), RopeSpec{});
              }),
              "rope: rotary_dims must be even, positive and at most the head dim 7, got 7");
    EXPECT_EQ(error_message([&] {
                  rope_forward(Tensor::zeros({1, 1, 2, 4}, DType::i64), RopeSpec{});
              }),
              "rope: x must be f32 or f64, not i64");
}

// ---- attention ----

// Straightforward double-precision attention with the whole score row materialised.
AttentionResult naive_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal) {
    const std::int64_t B = q.size(0), H = q.size(1), T = q.size(2), Dh = q.size(3), group = H / k.size(1);
    if (scale == 0.0) scale = 1.0 / std::sqrt(static_cast<double>(Dh));
    AttentionResult result{Tensor::zeros(q.shape(), DType::f64), Tensor::zeros({B, H, T}, DType::f64)};
    for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t h = 0; h < H; ++h)
            for (std::int64_t i = 0; i < T; ++i) {
                const std::int64_t keys = causal ? i + 1 : T;
                std::vector<double> s(keys, 0.0);
                for (std::int64_t j = 0; j < keys; ++j) {
                    for (std::int64_t d = 0; d < Dh; ++d) {
                        s[j] += q.item(index4(q, b, h, i, d)) * k.item(index4(k, b, h / group, j, d));
                    }
                    s[j] *= scale;
                }
                double total = 0.0;
                for (double value : s) total += std::exp(value);
                result.lse.set_item((b * H + h) * T + i, std::log(total));
                for (std::int64_t j = 0; j < keys; ++j)
                    for (std::int64_t d = 0; d < Dh; ++d) {
                        const std::int64_t at = index4(result.y, b, h, i, d);
                        result.y.set_item(
                            at, result.y.item(at) + std::exp(s[j]) / total * v.item(index4(v, b, h / group, j, d)));
                    }
            }
    return result;
}

TEST(AttentionTest, SingleStepReturnsV) {
    const Tensor q = op_harness_random({2, 4, 1, 8}, 5);
    const Tensor k = op_harness_random({2, 2, 1, 8}, 6);
    const Tensor v = op_harness_random({2, 2, 1, 8}, 7);
    for (DType dtype : {DType::f32, DType::f64}) {
        const AttentionResult result = attention_forward(q.to(dtype), k.to(dtype), v.to(dtype));
        const Tensor expected = repeat_kv_heads(v, 2).to(dtype);
        EXPECT_TRUE(bitwise_equal(result.y, expected)) << dtype_name(dtype);
    }
}

TEST(AttentionTest, ZeroQueryAveragesTheVisibleValues) {
    const std::int64_t T = 6, Dh = 3;
    const Tensor q = Tensor::zeros({1, 2, T, Dh}, DType::f64);
    const Tensor k = op_harness_random({1, 1, T, Dh}, 8);
    const Tensor v = op_harness_random({1, 1, T, Dh}, 9);
    for (bool causal : {true, false}) {
        const AttentionResult result = attention_forward(q, k, v, 0.0, causal);
        for (std::int64_t h = 0; h < 2; ++h)
            for (std::int64_t i = 0; i < T; ++i) {
                const std::int64_t keys = causal ? i + 1 : T;
                EXPECT_NEAR(result.lse.item(h * T + i), std::log(static_cast<double>(keys)), 1e-14);
                for (std::int64_t d = 0; d < Dh; ++d) {
                    double mean = 0.0;
                    for (std::int64_t j = 0; j < keys; ++j) mean += v.item(index4(v, 0, 0, j, d));
                    mean /= static_cast<double>(keys);
                    EXPECT_NEAR(result.y.item(index4(result.y, 0, h, i, d)), mean, 1e-14)
                        << "causal " << causal << " h " << h << " i " << i;
                }
            }
    }
}

TEST(AttentionTest, MatchesNaiveSoftmax) {
    struct Config {
        std::int64_t heads, kv_heads;
        double scale;
        bool causal;
    };
    for (const Config& config :
         {Config{2, 2, 0.0, true}, Config{6, 2, 0.0, true}, Config{4, 1, 0.45, false}, Config{3, 3, 1.3, false}}) {
        const Tensor q = op_harness_random({2, config.heads, 7, 5}, 20, 2.0);
        const Tensor k = op_harness_random({2, config.kv_heads, 7, 5}, 21, 2.0);
        const Tensor v = op_harness_random({2, config.kv_heads, 7, 5}, 22);
        const AttentionResult expected = naive_attention(q, k, v, config.scale, config.causal);
        const AttentionResult actual = attention_forward(q, k, v, config.scale, config.causal);
        EXPECT_LE(max_abs_difference(actual.y, expected.y), 1e-13);
        EXPECT_LE(max_abs_difference(actual.lse, expected.lse), 1e-13);
        const AttentionResult single =
            attention_forward(q.to(DType::f32), k.to(DType::f32), v.to(DType::f32), config.scale, config.causal);
        EXPECT_LE(max_abs_difference(single.y, expected.y), 1e-5);
        EXPECT_LE(max_abs_difference(single.lse, expected.lse), 1e-5);
    }
}

TEST(AttentionTest, GroupedQueryEqualsMultiHeadWithRepeatedKv) {
    const std::int64_t group = 3;
    const Tensor q = op_harness_random({2, 6, 5, 4}, 30);
    const Tensor k = op_harness_random({2, 2, 5, 4}, 31);
    const Tensor v = op_harness_random({2, 2, 5, 4}, 32);
    const Tensor dy = op_harness_random({2, 6, 5, 4}, 33);
    const Tensor k_repeated = repeat_kv_heads(k, group);
    const Tensor v_repeated = repeat_kv_heads(v, group);

    const AttentionResult gqa = attention_forward(q, k, v);
    const AttentionResult mha = attention_forward(q, k_repeated, v_repeated);
    // Same per-head arithmetic in the same order: identical bits.
    EXPECT_TRUE(bitwise_equal(gqa.y, mha.y));
    EXPECT_TRUE(bitwise_equal(gqa.lse, mha.lse));

    const AttentionGrads gqa_grads = attention_backward(q, k, v, gqa, dy);
    const AttentionGrads mha_grads = attention_backward(q, k_repeated, v_repeated, mha, dy);
    EXPECT_TRUE(bitwise_equal(gqa_grads.dq, mha_grads.dq));
    // dk/dv sum over the group in a different order than per-head sums added afterwards: equal to rounding.
    EXPECT_LE(max_abs_difference(gqa_grads.dk, sum_head_groups(mha_grads.dk, group)), 1e-14);
    EXPECT_LE(max_abs_difference(gqa_grads.dv, sum_head_groups(mha_grads.dv, group)), 1e-14);
}

TEST(AttentionTest, BitwiseDeterministicAcrossThreadCounts) {
#ifndef _OPENMP
    GTEST_SKIP() << "built without OpenMP";
#else
    const Tensor q = op_harness_random({2, 4, 33, 16}, 40).to(DType::f32);
    const Tensor k = op_harness_random({2, 2, 33, 16}, 41).to(DType::f32);
    const Tensor v = op_harness_random({2, 2, 33, 16}, 42).to(DType::f32);
    const Tensor dy = op_harness_random({2, 4, 33, 16}, 43).to(DType::f32);
    RopeSpec spec;
    spec.rotary_dims = 8;
    spec.frequency_dims = 16;
    const int saved_threads = omp_get_max_threads();
    std::vector<std::vector<Tensor> > runs;
    for (int threads : {1, 2, 3}) {
        omp_set_num_threads(threads);
        const Tensor q_rotated = rope_forward(q, spec);
        const AttentionResult forward = attention_forward(q_rotated, k, v);
        const AttentionGrads grads = attention_backward(q_rotated, k, v, forward, dy);
        runs.push_back({q_rotated, rope_backward(dy, spec), forward.y, forward.lse, grads.dq, grads.dk, grads.dv});
    }
    omp_set_num_threads(saved_threads);
    for (std::size_t run = 1; run < runs.size(); ++run) {
        for (std::size_t n = 0; n < runs[0].size(); ++n) {
            EXPECT_TRUE(bitwise_equal(runs[0][n], runs[run][n])) << "run " << run << " output " << n;
        }
    }
#endif
}

TEST(AttentionTest, RejectsBadInputs) {
    const Tensor q = Tensor::zeros({2, 2, 8, 16});
    const Tensor kv = Tensor::zeros({2, 2, 8, 16});
    EXPECT_EQ(error_message([&] {
                  attention_forward(q, Tensor::zeros({2, 2, 7, 16}), kv);
              }),
              "attention: k has shape (2, 2, 7, 16), expected (2, 2, 8, 16)");
    EXPECT_EQ(error_message([&] {
                  attention_forward(q, kv, Tensor::zeros({2, 2, 8, 8}));
              }),
              "attention: v has shape (2, 2, 8, 8), expected (2, 2, 8, 16)");
    EXPECT_EQ(error_message([&] {
                  attention_forward(q, Tensor::zeros({2, 8, 16}), kv);
              }),
              "attention: k has shape (2, 8, 16), expected (2, 2, 8, 16)");
    EXPECT_EQ(
        error_message([&] {
            attention_forward(Tensor::zeros({1, 6, 4, 8}), Tensor::zeros({1, 4, 4, 8}), Tensor::zeros({1, 4, 4, 8}));
        }),
        "attention: 6 query heads are not a multiple of 4 KV heads");
    EXPECT_EQ(error_message([&] { attention_forward(q, kv.to(DType::f64), kv); }),
              "attention: k has dtype f64, expected f32");
    EXPECT_EQ(error_message([&] {
                  attention_forward(Tensor::zeros({2, 8, 16}), kv, kv);
              }),
              "attention: q must be 4-D (B, H, T, Dh), got shape (2, 8, 16)");
    EXPECT_EQ(error_message([&] {
                  attention_forward(Tensor::zeros({1, 1, 2, 2}, DType::i32), Tensor::zeros({1, 1, 2, 2}),
                                    Tensor::zeros({1, 1, 2, 2}));
              }),
              "attention: q must be f32 or f64, not i32");
    const AttentionResult forward = attention_forward(q, kv, kv);
    EXPECT_EQ(error_message([&] {
                  attention_backward(q, kv, kv, forward, Tensor::zeros({2, 2, 8, 8}));
              }),
              "attention: dy has shape (2, 2, 8, 8), expected (2, 2, 8, 16)");
    const AttentionResult bad_lse{forward.y, Tensor::zeros({2, 2, 7})};
    EXPECT_EQ(error_message([&] { attention_backward(q, kv, kv, bad_lse, forward.y); }),
              "attention: lse has shape (2, 2, 7), expected (2, 2, 8)");
}

}  // namespace

}  // namespace pgolf::test
