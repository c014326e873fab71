// Harness cases and known-answer tests for the seed-system ops: XSA, SmearGate, fake quantization and BigramHash
// bucket ids, with hand-computed answers, thread-count determinism and error messages.
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
#include "core/ops/bigram.h"
#include "core/ops/fake_quant.h"
#include "core/ops/smear.h"
#include "core/ops/xsa.h"
#include "tests/core/op_harness.h"
#include "tests/core/test_util.h"

namespace pgolf::test {

namespace {

// ---- harness cases ----

OpCase xsa_case(const std::string& name, const Shape& y_shape, std::int64_t kv_heads, std::uint64_t seed) {
    OpCase op;
    op.name = "xsa/" + name;
    op.inputs = {op_harness_random(y_shape, seed),
                 op_harness_random({y_shape[0], kv_heads, y_shape[2], y_shape[3]}, seed + 1)};
    op.forward = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{xsa_forward(in[0], in[1])}; };
    op.backward = [](const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& grads) {
        XsaGrads g = xsa_backward(in[0], in[1], grads[0]);
        return std::vector<Tensor>{g.dy, g.dv};
    };
    op.gradient_tolerance = 1e-7;
    op.float_tolerance = 1e-6;
    return op;
}

const bool registered_xsa = op_harness_register("xsa", [] {
    return std::vector<OpCase>{
        xsa_case("mha_b2h4t3d5", {2, 4, 3, 5}, 4, 300),
        xsa_case("gqa_b2h4kv2t3d5", {2, 4, 3, 5}, 2, 310),
        xsa_case("mqa_b1h3kv1t4d4", {1, 3, 4, 4}, 1, 320),
        xsa_case("t1_b2h2kv1d6", {2, 2, 1, 6}, 1, 330),
    };
});

OpCase smear_case(const std::string& name, const Shape& shape, std::uint64_t seed) {
    OpCase op;
    op.name = "smear/" + name;
    // Gate logits over [−2, 2] so σ covers most of its range, not just the middle.
    op.inputs = {op_harness_random(shape, seed), op_harness_random({shape[2]}, seed + 1, 2.0)};
    op.forward = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{smear_forward(in[0], in[1])}; };
    op.backward = [](const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& grads) {
        SmearGrads g = smear_backward(in[0], in[1], grads[0]);
        return std::vector<Tensor>{g.dh, g.dg};
    };
    op.gradient_tolerance = 1e-7;
    op.float_tolerance = 1e-6;
    return op;
}

const bool registered_smear = op_harness_register("smear", [] {
    return std::vector<OpCase>{
        smear_case("b2t4d3", {2, 4, 3}, 400),
        smear_case("t1_b2d3", {2, 1, 3}, 410),
        smear_case("b3t5d2", {3, 5, 2}, 420),
    };
});

// ---- XSA ----

TEST(XsaTest, OutputIsOrthogonalToTheOwnValue) {
    const std::int64_t B = 2, H = 4, Hkv = 2, T = 3, Dh = 5;
    for (DType dtype : {DType::f32, DType::f64}) {
        const Tensor y = op_harness_random({B, H, T, Dh}, 1).to(dtype);
        const Tensor v = op_harness_random({B, Hkv, T, Dh}, 2).to(dtype);
        const Tensor out = xsa_forward(y, v);
        double worst = 0.0;
        for (std::int64_t b = 0; b < B; ++b)
            for (std::int64_t h = 0; h < H; ++h)
                for (std::int64_t t = 0; t < T; ++t) {
                    double dot = 0.0, norm = 0.0;
                    for (std::int64_t d = 0; d < Dh; ++d) {
                        const double v_d = v.item(index4(v, b, h / (H / Hkv), t, d));
                        dot += out.item(index4(out, b, h, t, d)) * v_d;
                        norm += v_d * v_d;
                    }
                    worst = std::max(worst, std::abs(dot) / std::sqrt(norm));
                }
        EXPECT_LE(worst, dtype == DType::f32 ? 1e-6 : 1e-15) << dtype_name(dtype);
    }
}

TEST(XsaTest, ParallelOutputVanishesAndOrthogonalOutputIsUnchanged) {
    // One KV head shared by two query heads, Dh 4. Position 0: v = (1, 2, −2, 4), ‖v‖ = 5; head 0 has y = 2.5·v
    // (removed entirely), head 1 has y = (2, −1, 0, 0) with y·v = 0. Position 1: v = (0, 3, 0, 0), so v̂ = (0, 1, 0, 0)
    // exactly; head 0 has y = (1, 7, −2, 0.5) -> (1, 0, −2, 0.5), head 1 has y = (4, 0, 1, 1) -> unchanged.
    const std::vector<double> v_values = {1, 2, -2, 4, 0, 3, 0, 0};
    const std::vector<double> y_values = {2.5, 5, -5, 10, 1, 7, -2, 0.5, 2, -1, 0, 0, 4, 0, 1, 1};
    const std::vector<double> expected = {0, 0, 0, 0, 1, 0, -2, 0.5, 2, -1, 0, 0, 4, 0, 1, 1};
    for (DType dtype : {DType::f32, DType::f64}) {
        const Tensor v = Tensor::from_values(v_values, {1, 1, 2, 4}, dtype);
        const Tensor y = Tensor::from_values(y_values, {1, 2, 2, 4}, dtype);
        const Tensor out = xsa_forward(y, v);
        const double tolerance = dtype == DType::f32 ? 4e-6 : 1e-14;
        for (std::int64_t i = 0; i < 16; ++i) EXPECT_NEAR(out.item(i), expected[i], tolerance) << i;
        // Where v̂ is exact the subtraction is of an exact zero, so the orthogonal rows come back bitwise.
        for (std::int64_t i = 12; i < 16; ++i) EXPECT_EQ(out.item(i), y_values[i]) << i;
        for (std::int64_t i = 4; i < 8; ++i) EXPECT_EQ(out.item(i), expected[i]) << i;
    }
}

TEST(XsaTest, ZeroValueLeavesEverythingUnchanged) {
    // F.normalize(0) = 0 / max(0, 1e-12) = 0: nothing is removed and nothing flows to v.
    const Tensor y = op_harness_random({1, 2, 3, 4}, 3);
    const Tensor v = Tensor::zeros({1, 1, 3, 4}, DType::f64);
    const Tensor dout = op_harness_random({1, 2, 3, 4}, 4);
    EXPECT_TRUE(bitwise_equal(xsa_forward(y, v), y));
    const XsaGrads grads = xsa_backward(y, v, dout);
    EXPECT_TRUE(bitwise_equal(grads.dy, dout));
    for (std::int64_t i = 0; i < grads.dv.numel(); ++i) EXPECT_EQ(grads.dv.item(i), 0.0);
}

TEST(XsaTest, ValueGradientIsScaleInvariantDirection) {
    // v̂ does not change along v, so dv · v = 0 at every position (the radial component is projected out).
    const Tensor y = op_harness_random({2, 4, 3, 5}, 5);
    const Tensor v = op_harness_random({2, 2, 3, 5}, 6);
    const Tensor dout = op_harness_random({2, 4, 3, 5}, 7);
    const XsaGrads grads = xsa_backward(y, v, dout);
    for (std::int64_t row = 0; row < 2 * 2 * 3; ++row) {
        double dot = 0.0;
        for (std::int64_t d = 0; d < 5; ++d) dot += grads.dv.item(row * 5 + d) * v.item(row * 5 + d);
        EXPECT_NEAR(dot, 0.0, 1e-14) << "row " << row;
    }
}

TEST(XsaTest, GroupedQueryEqualsMultiHeadWithRepeatedValues) {
    const std::int64_t group = 3;
    const Tensor y = op_harness_random({2, 6, 4, 5}, 8);
    const Tensor v = op_harness_random({2, 2, 4, 5}, 9);
    const Tensor dout = op_harness_random({2, 6, 4, 5}, 10);
    const Tensor v_repeated = repeat_kv_heads(v, group);
    EXPECT_TRUE(bitwise_equal(xsa_forward(y, v), xsa_forward(y, v_repeated)));
    const XsaGrads gqa = xsa_backward(y, v, dout);
    const XsaGrads mha = xsa_backward(y, v_repeated, dout);
    EXPECT_TRUE(bitwise_equal(gqa.dy, mha.dy));
    Tensor summed = Tensor::zeros(v.shape(), DType::f64);
    for (std::int64_t b = 0; b < 2; ++b)
        for (std::int64_t h = 0; h < 6; ++h)
            for (std::int64_t t = 0; t < 4; ++t)
                for (std::int64_t d = 0; d < 5; ++d) {
                    const std::int64_t target = index4(summed, b, h / group, t, d);
                    summed.set_item(target, summed.item(target) + mha.dv.item(index4(mha.dv, b, h, t, d)));
                }
    EXPECT_LE(max_abs_difference(gqa.dv, summed), 1e-14);
}

TEST(XsaTest, RejectsBadInputs) {
    const Tensor y = Tensor::zeros({2, 4, 3, 5});
    const Tensor v = Tensor::zeros({2, 2, 3, 5});
    EXPECT_EQ(error_message([&] {
                  xsa_forward(y, Tensor::zeros({2, 3, 3, 5}));
              }),
              "xsa: 4 query heads are not a multiple of 3 KV heads");
    EXPECT_EQ(error_message([&] {
                  xsa_forward(y, Tensor::zeros({2, 2, 4, 5}));
              }),
              "xsa: v has shape (2, 2, 4, 5), expected (2, 2, 3, 5)");
    EXPECT_EQ(error_message([&] {
                  xsa_forward(y, Tensor::zeros({2, 2, 3}));
              }),
              "xsa: v must be 4-D (B, Hkv, T, Dh), got shape (2, 2, 3)");
    EXPECT_EQ(error_message([&] {
                  xsa_forward(Tensor::zeros({4, 3, 5}), v);
              }),
              "xsa: y must be 4-D (B, H, T, Dh), got shape (4, 3, 5)");
    EXPECT_EQ(error_message([&] { xsa_forward(y, v.to(DType::f64)); }), "xsa: v has dtype f64, expected f32");
    EXPECT_EQ(error_message([&] {
                  xsa_forward(Tensor::zeros({2, 4, 3, 5}, DType::i64), v);
              }),
              "xsa: y must be f32 or f64, not i64");
    EXPECT_EQ(error_message([&] {
                  xsa_backward(y, v, Tensor::zeros({2, 4, 3, 4}));
              }),
              "xsa_backward: dout has shape (2, 4, 3, 4), expected (2, 4, 3, 5)");
    EXPECT_EQ(error_message([&] { xsa_backward(y, v, y.to(DType::f64)); }),
              "xsa_backward: dout has dtype f64, expected f32");
}

// ---- SmearGate ----

TEST(SmearTest, ZeroGateIsTheFiftyFiftyMix) {
    // σ(0) = 0.5 exactly, so out_0 = 0.5·h_0 and out_t = 0.5·h_t + 0.5·h_{t−1}, both rounded once, per sequence.
    for (DType dtype : {DType::f32, DType::f64}) {
        const Tensor h = op_harness_random({2, 4, 3}, 20).to(dtype);
        const Tensor out = smear_forward(h, Tensor::zeros({3}, dtype));
        for (std::int64_t b = 0; b < 2; ++b)
            for (std::int64_t t = 0; t < 4; ++t)
                for (std::int64_t d = 0; d < 3; ++d) {
                    const std::int64_t i = (b * 4 + t) * 3 + d;
                    const double current = h.item(i);
                    const double previous = t == 0 ? 0.0 : h.item(i - 3);
                    const double expected = dtype == DType::f32
                                                ? static_cast<double>(0.5f * static_cast<float>(current) +
                                                                      0.5f * static_cast<float>(previous))
                                                : 0.5 * current + 0.5 * previous;
                    EXPECT_EQ(out.item(i), expected) << dtype_name(dtype) << " b" << b << " t" << t << " d" << d;
                    if (t == 0) {
                        EXPECT_EQ(out.item(i), 0.5 * current);
                    }
                }
    }
}

TEST(SmearTest, GateGradientAtZeroIsAQuarterOfTheSum) {
    // dg_d = σ'(0)·Σ dout·(h_{t−1} − h_t) with σ'(0) = 1/4; with T = 2, B = 1, D = 1:
    // h = (2, 5), dout = (1, 3): Σ = 1·(0 − 2) + 3·(2 − 5) = −11, dg = −2.75; dh = 0.5·(1 + 3, 3) = (2, 1.5).
    const Tensor h = Tensor::from_values(std::vector<double>{2, 5}, {1, 2, 1}, DType::f64);
    const Tensor dout = Tensor::from_values(std::vector<double>{1, 3}, {1, 2, 1}, DType::f64);
    const SmearGrads grads = smear_backward(h, Tensor::zeros({1}, DType::f64), dout);
    EXPECT_EQ(grads.dg.item(0), -2.75);
    EXPECT_EQ(grads.dh.item(0), 2.0);
    EXPECT_EQ(grads.dh.item(1), 1.5);
}

TEST(SmearTest, RejectsBadInputs) {
    const Tensor h = Tensor::zeros({2, 4, 3});
    EXPECT_EQ(error_message([&] { smear_forward(h, Tensor::zeros({4})); }), "smear: g has shape (4), expected (3)");
    EXPECT_EQ(error_message([&] {
                  smear_forward(Tensor::zeros({4, 3}), Tensor::zeros({3}));
              }),
              "smear: h must be 3-D (B, T, D), got shape (4, 3)");
    EXPECT_EQ(error_message([&] { smear_forward(h, Tensor::zeros({3}, DType::f64)); }),
              "smear: g has dtype f64, expected f32");
    EXPECT_EQ(error_message([&] {
                  smear_backward(h, Tensor::zeros({3}), Tensor::zeros({2, 4, 2}));
              }),
              "smear_backward: dout has shape (2, 4, 2), expected (2, 4, 3)");
}

// ---- fake quantization ----

FakeQuantSpec quant_spec(int min_q, int max_q, double divisor, double scale_floor) {
    FakeQuantSpec spec;
    spec.min_q = min_q;
    spec.max_q = max_q;
    spec.divisor = divisor;
    spec.scale_floor = scale_floor;
    return spec;
}

TEST(FakeQuantTest, S1RowsRoundHalfToEvenAndZeroRowStaysZero) {
    // Row 0: absmax 3.875 = 31/8, so s = 0.125 exactly. w/s = 31, −10.5, 2.5, 1.5; half to even gives
    // 31, −10, 2, 2, i.e. 3.875, −1.25, 0.25, 0.25. Row 1 is zero: s = 1e-8 (the floor) and every level is 0.
    const std::vector<double> w = {3.875, -1.3125, 0.3125, 0.1875, 0, 0, 0, 0};
    const std::vector<double> expected = {3.875, -1.25, 0.25, 0.25, 0, 0, 0, 0};
    for (DType dtype : {DType::f32, DType::f64}) {
        const Tensor out = fake_quantize_rows(Tensor::from_values(w, {2, 4}, dtype), FakeQuantSpec{});
        ASSERT_EQ(out.dtype(), dtype);
        for (std::int64_t i = 0; i < 8; ++i) EXPECT_EQ(out.item(i), expected[i]) << dtype_name(dtype) << " " << i;
    }
}

TEST(FakeQuantTest, S4FloorBindsOnSmallRows) {
    // S2/S4: s = max(absmax/31, 1/31). Row 0 as above (0.125 > 1/31). Row 1 has absmax 0.48 < 1, so s = 1/31
    // (f32: 0.0322580636): w/s = 14.88, −6.2, 0.31, 0 -> 15, −6, 0, 0.
    const std::vector<double> w = {3.875, -1.3125, 0.3125, 0.1875, 0.48, -0.2, 0.01, 0};
    const FakeQuantSpec spec = quant_spec(-32, 31, 31.0, 1.0 / 31.0);
    const Tensor out = fake_quantize_rows(Tensor::from_values(w, {2, 4}), spec);
    const float s = 1.0f / 31.0f;
    const std::vector<double> expected = {3.875, -1.25, 0.25, 0.25, 15 * s, -6 * s, 0, 0};
    for (std::int64_t i = 0; i < 8; ++i) EXPECT_EQ(out.item(i), expected[i]) << i;
    const Tensor out64 = fake_quantize_rows(Tensor::from_values(w, {2, 4}, DType::f64), spec);
    EXPECT_EQ(out64.item(4), 15 * (1.0 / 31.0));
    EXPECT_EQ(out64.item(5), -6 * (1.0 / 31.0));
}

TEST(FakeQuantTest, ClampRangeDecidesTheNegativeEnd) {
    // With absmax/31 the levels never leave [−31, 31]; a divisor of 62 exposes the clamp: s = 3.875/62 = 0.0625 and
    // w/s = −62, 62, −31, 1. [−32, 31] clamps to −32, 31, −31, 1; the S2 bank range [−31, 31] to −31, 31, −31, 1.
    const std::vector<double> w = {-3.875, 3.875, -1.9375, 0.0625};
    const Tensor wide = fake_quantize_rows(Tensor::from_values(w, {1, 4}), quant_spec(-32, 31, 62.0, 1e-8));
    const Tensor narrow = fake_quantize_rows(Tensor::from_values(w, {1, 4}), quant_spec(-31, 31, 62.0, 1e-8));
    const std::vector<double> expected_wide = {-2.0, 1.9375, -1.9375, 0.0625};
    const std::vector<double> expected_narrow = {-1.9375, 1.9375, -1.9375, 0.0625};
    for (std::int64_t i = 0; i < 4; ++i) {
        EXPECT_EQ(wide.item(i), expected_wide[i]) << i;
        EXPECT_EQ(narrow.item(i), expected_narrow[i]) << i;
    }
}

TEST(FakeQuantTest, RejectsBadInputs) {
    const Tensor w = Tensor::zeros({2, 4});
    EXPECT_EQ(error_message([&] { fake_quantize_rows(Tensor::zeros({8}), FakeQuantSpec{}); }),
              "fake_quantize_rows: w must be 2-D (rows, cols), got shape (8)");
    EXPECT_EQ(error_message([&] {
                  fake_quantize_rows(Tensor::zeros({2, 4}, DType::i64), FakeQuantSpec{});
              }),
              "fake_quantize_rows: w must be f32 or f64, not i64");
    EXPECT_EQ(error_message([&] { fake_quantize_rows(w, quant_spec(5, 4, 31.0, 1e-8)); }),
              "fake_quantize_rows: spec.min_q 5 exceeds spec.max_q 4");
    EXPECT_EQ(error_message([&] { fake_quantize_rows(w, quant_spec(-32, 31, 0.0, 1e-8)); }),
              "fake_quantize_rows: spec.divisor must be positive and finite, got 0");
    EXPECT_EQ(error_message([&] { fake_quantize_rows(w, quant_spec(-32, 31, 31.0, 0.0)); }),
              "fake_quantize_rows: spec.scale_floor must be positive and finite, got 0");
}

// ---- BigramHash ----

TEST(BigramTest, MultiplyAddBucketsByHand) {
    // Rows (17, 42) and (5, 1000), 10240 buckets; position 0 pairs with prev 0:
    //   (0·92821 + 17) mod 10240 = 17;   17·92821 + 42 = 1,577,999 = 154·10240 + 1,039 -> 1039;
    //   (0·92821 + 5) mod 10240 = 5;     5·92821 + 1000 = 465,105 = 45·10240 + 4,305 -> 4305.
    const Tensor ids = Tensor::from_ids(std::vector<std::int64_t>{17, 42, 5, 1000}, {2, 2});
    const Tensor out = bigram_hash_ids(ids, 10240, BigramHashKind::multiply_add);
    ASSERT_EQ(out.dtype(), DType::i64);
    const std::vector<std::int64_t> expected = {17, 1039, 5, 4305};
    for (std::int64_t i = 0; i < 4; ++i) EXPECT_EQ(out.data<std::int64_t>()[i], expected[i]) << i;
}

TEST(BigramTest, XorModBucketsByHandIncludingInt32Overflow) {
    // Row (17, 42): 36313·42 = 1,525,146; 27191·17 = 462,247; XOR = 1,067,069.
    //   mod 511 = 1,067,069 − 2088·511 = 101;  mod 1535 = 1,067,069 − 695·1535 = 244.
    // Row (1, 100000): 36313·100000 = 3,631,300,000 wraps in int32 to −663,667,296; XOR 27191 = −663,660,649.
    //   Python-style mod 511 = 90 (C's % would give −421); mod 1535 = 1206.
    // Row (90000, 100000): 27191·90000 = 2,447,190,000 wraps to −1,847,777,296; XOR with −663,667,296 = 1,236,015,696.
    //   mod 511 = 209; mod 1535 = 1461.
    // Position 0 of every row is the sentinel buckets − 1.
    const Tensor ids = Tensor::from_ids(std::vector<std::int64_t>{17, 42, 1, 100000, 90000, 100000}, {3, 2});
    const Tensor small = bigram_hash_ids(ids, 512, BigramHashKind::xor_mod);
    const Tensor large = bigram_hash_ids(ids, 1536, BigramHashKind::xor_mod);
    const std::vector<std::int64_t> expected_small = {511, 101, 511, 90, 511, 209};
    const std::vector<std::int64_t> expected_large = {1535, 244, 1535, 1206, 1535, 1461};
    for (std::int64_t i = 0; i < 6; ++i) {
        EXPECT_EQ(small.data<std::int64_t>()[i], expected_small[i]) << i;
        EXPECT_EQ(large.data<std::int64_t>()[i], expected_large[i]) << i;
    }
}

TEST(BigramTest, BucketsStayInRangeForEveryVocabularyPair) {
    const Tensor ids = op_harness_random_ids({4, 500}, 1 << 20, 30);
    for (BigramHashKind kind : {BigramHashKind::multiply_add, BigramHashKind::xor_mod}) {
        for (std::int64_t buckets : {2, 512, 1536, 10240}) {
            const Tensor out = bigram_hash_ids(ids, buckets, kind);
            for (std::int64_t i = 0; i < out.numel(); ++i) {
                const std::int64_t bucket = out.data<std::int64_t>()[i];
                ASSERT_GE(bucket, 0);
                ASSERT_LT(bucket, buckets);
            }
        }
    }
}

TEST(BigramTest, RejectsBadInputs) {
    const Tensor ids = Tensor::from_ids(std::vector<std::int64_t>{1, 2, 3, -4}, {2, 2});
    EXPECT_EQ(error_message([&] { bigram_hash_ids(ids, 512, BigramHashKind::xor_mod); }),
              "bigram_hash_ids: ids[1, 1] = -4 is negative");
    EXPECT_EQ(error_message([&] {
                  bigram_hash_ids(Tensor::zeros({2, 2}), 512, BigramHashKind::xor_mod);
              }),
              "bigram_hash_ids: ids has dtype f32, expected i64");
    EXPECT_EQ(
        error_message([&] {
            bigram_hash_ids(Tensor::from_ids(std::vector<std::int64_t>{1, 2}, {2}), 512, BigramHashKind::multiply_add);
        }),
        "bigram_hash_ids: ids must be 2-D (B, T), got shape (2)");
    const Tensor good = Tensor::from_ids(std::vector<std::int64_t>{1, 2}, {1, 2});
    EXPECT_EQ(error_message([&] { bigram_hash_ids(good, 1, BigramHashKind::xor_mod); }),
              "bigram_hash_ids: buckets 1 is out of range [2, 2147483648] for the xor_mod hash");
    EXPECT_EQ(error_message([&] { bigram_hash_ids(good, 0, BigramHashKind::multiply_add); }),
              "bigram_hash_ids: buckets 0 is out of range [1, 9223372036854775807] for the multiply_add hash");
}

// ---- determinism ----

TEST(SeedOpsTest, BitwiseDeterministicAcrossThreadCounts) {
#ifndef _OPENMP
    GTEST_SKIP() << "built without OpenMP";
#else
    // Sizes past every parallel threshold (2^15 elements).
    const Tensor y = op_harness_random({2, 8, 65, 32}, 50).to(DType::f32);
    const Tensor v = op_harness_random({2, 2, 65, 32}, 51).to(DType::f32);
    const Tensor dy = op_harness_random({2, 8, 65, 32}, 52).to(DType::f32);
    const Tensor h = op_harness_random({3, 300, 64}, 53).to(DType::f32);
    const Tensor g = op_harness_random({64}, 54, 2.0).to(DType::f32);
    const Tensor dh = op_harness_random({3, 300, 64}, 55).to(DType::f32);
    const Tensor w = op_harness_random({128, 512}, 56).to(DType::f32);
    const Tensor ids = op_harness_random_ids({8, 5000}, 1024, 57);
    const int saved_threads = omp_get_max_threads();
    std::vector<std::vector<Tensor> > runs;
    for (int threads : {1, 2, 3}) {
        omp_set_num_threads(threads);
        const XsaGrads xsa_grads = xsa_backward(y, v, dy);
        const SmearGrads smear_grads = smear_backward(h, g, dh);
        runs.push_back({xsa_forward(y, v), xsa_grads.dy, xsa_grads.dv, smear_forward(h, g), smear_grads.dh,
                        smear_grads.dg, fake_quantize_rows(w, FakeQuantSpec{}),
                        bigram_hash_ids(ids, 10240, BigramHashKind::multiply_add),
                        bigram_hash_ids(ids, 1536, BigramHashKind::xor_mod)});
    }
    omp_set_num_threads(saved_threads);
    for (std::size_t run = 1; run < runs.size(); ++run) {
        for (std::size_t n = 0; n < runs[0].size(); ++n) {
            EXPECT_TRUE(bitwise_equal(runs[0][n], runs[run][n])) << "run " << run << " output " << n;
        }
    }
#endif
}

}  // namespace

}  // namespace pgolf::test
