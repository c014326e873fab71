// The seeds' post-training quantizers against the committed PyTorch fixture (tests/oracle/quant_oracle.py) and hand
// computations: torch.quantile bit for bit, scales bit for bit in fp16, integer values exactly, ±1 pruning.
#include "model/quantize.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/codec.h"
#include "core/error.h"
#include "tests/core/test_util.h"

#ifndef PGOLF_SOURCE_DIR
#error "PGOLF_SOURCE_DIR must name the repository root"
#endif

namespace pgolf {
namespace {

using nlohmann::json;
using test::error_message;

const json& oracle() { return test::test_oracle_fixture("quant_oracle.json"); }

Shape shape_of(const json& values) {
    Shape shape;
    for (const json& v : values) shape.push_back(v.get<std::int64_t>());
    return shape;
}

std::vector<float> floats_of(const json& values) {
    std::vector<float> result;
    for (const json& v : values) result.push_back(static_cast<float>(v.get<double>()));
    return result;
}

Tensor matrix_of(const json& c) { return Tensor::from_floats(floats_of(c["w"]), shape_of(c["shape"])); }

std::vector<int> json_ints(const json& values) { return values.get<std::vector<int>>(); }

Tensor f16_scales(std::initializer_list<float> values) {
    Tensor t = Tensor::empty({static_cast<std::int64_t>(values.size())}, DType::f16);
    std::int64_t i = 0;
    for (const float v : values) t.data<std::uint16_t>()[i++] = f16_from_float(v);
    return t;
}

Tensor random_matrix(std::int64_t rows, std::int64_t cols, float stddev, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, stddev);
    std::vector<float> values(static_cast<std::size_t>(rows * cols));
    for (float& v : values) v = normal(rng);
    return Tensor::from_floats(values, {rows, cols});
}

// ---- quantile ------------------------------------------------------------------------------------------------------

TEST(QuantizeQuantile, MatchesTorchBitForBit) {
    int checked = 0;
    for (const json& c : oracle()["quantile"]) {
        const std::vector<float> values = floats_of(c["values"]);
        const std::vector<float> expected = floats_of(c["expected"]);
        for (std::size_t i = 0; i < c["q"].size(); ++i) {
            const double q = c["q"][i].get<double>();
            EXPECT_EQ(static_cast<float>(quantize_quantile(values, q)), expected[i])
                << "n=" << values.size() << " q=" << q;
            ++checked;
        }
    }
    EXPECT_GT(checked, 40);
}

TEST(QuantizeQuantile, FusedLerpAndF32RankWhereTheyMatter) {
    // Cases the oracle picked because a two-rounding lerp ("unfused") or a rank computed in double ("double_rank")
    // lands on a different float: only torch's arithmetic passes all of them.
    int cases = 0;
    for (const json& c : oracle()["quantile"]) {
        for (const char* variant : {"unfused", "double_rank"}) {
            if (!c.contains(variant)) continue;
            const float expected = floats_of(c["expected"])[0];
            ASSERT_NE(expected, floats_of(c[variant])[0]);
            EXPECT_EQ(static_cast<float>(quantize_quantile(floats_of(c["values"]), c["q"][0].get<double>())), expected)
                << variant;
            ++cases;
        }
    }
    EXPECT_EQ(cases, 9);
}

TEST(QuantizeQuantile, HandValues) {
    const std::vector<float> odd = {3.0f, 1.0f, 2.0f};
    EXPECT_EQ(quantize_quantile(odd, 0.5), 2.0);
    EXPECT_EQ(quantize_quantile(odd, 0.25), 1.5);  // rank 0.5 between 1 and 2
    EXPECT_EQ(quantize_quantile(odd, 0.0), 1.0);
    EXPECT_EQ(quantize_quantile(odd, 1.0), 3.0);
    const std::vector<float> even = {4.0f, 1.0f, 3.0f, 2.0f};
    EXPECT_EQ(quantize_quantile(even, 0.5), 2.5);  // rank 1.5: halfway between 2 and 3
    EXPECT_EQ(quantize_quantile(even, 0.0), 1.0);
    EXPECT_EQ(quantize_quantile(even, 1.0), 4.0);
    // rank 0.9·3 = 2.7 (in f32): 3 + 0.7·(4 − 3), computed from the upper end as torch's lerp does.
    EXPECT_NEAR(quantize_quantile(even, 0.9), 3.7, 1e-6);
    const std::vector<float> one = {-7.5f};
    EXPECT_EQ(quantize_quantile(one, 0.3), -7.5);
    // Independent of the input order.
    const std::vector<float> shuffled = {2.0f, 4.0f, 1.0f, 3.0f};
    EXPECT_EQ(quantize_quantile(shuffled, 0.9), quantize_quantile(even, 0.9));
}

TEST(QuantizeQuantile, RejectsBadInput) {
    const std::vector<float> values = {1.0f, 2.0f};
    EXPECT_NE(error_message([&] { quantize_quantile(std::vector<float>{}, 0.5); }).find("no values"),
              std::string::npos);
    EXPECT_NE(error_message([&] { quantize_quantile(values, 1.5); }).find("not in [0, 1]"), std::string::npos);
    EXPECT_NE(error_message([&] { quantize_quantile(values, -0.1); }).find("not in [0, 1]"), std::string::npos);
    const std::vector<float> with_nan = {1.0f, std::numeric_limits<float>::quiet_NaN()};
    EXPECT_NE(error_message([&] { quantize_quantile(with_nan, 0.5); }).find("non-finite"), std::string::npos);
}

// ---- baseline int8
// ---------------------------------------------------------------------------------------------------

TEST(QuantizeBaseline, PerRowMatchesOracle) {
    const json& c = oracle()["baseline_per_row"];
    const Tensor w = matrix_of(c);
    const Tensor clips = quantize_row_abs_quantile(w, quantize_int8_clip_quantile);
    EXPECT_EQ(std::vector<float>(clips.data<float>(), clips.data<float>() + clips.numel()), floats_of(c["clip"]));
    const QuantizedTensor q = quantize_int8_clip_rows("tok_emb.weight", w);
    EXPECT_EQ(q.encoding, QuantEncoding::per_row);
    EXPECT_EQ(q.method, "int8_clip");
    EXPECT_EQ(q.qmin, -127);
    EXPECT_EQ(q.qmax, 127);
    EXPECT_EQ(q.shape, w.shape());
    EXPECT_EQ(test::test_f16_bits(q.scales), json_ints(c["scale_bits"]));
    EXPECT_EQ(test::test_int8_values(q.values), json_ints(c["q"]));
    // The all-zero row (5) has clip 0, so its scale is the 1/127 floor.
    EXPECT_EQ(float_from_f16(q.scales.data<std::uint16_t>()[5]), float_from_f16(f16_from_float(1.0f / 127.0f)));
}

TEST(QuantizeBaseline, HandComputed2x4) {
    // Row 0: the two largest |w| are equal, so the 99.99984th percentile is exactly 2.54; s = 2.54/127 = 0.02 (f32
    // 0.019999999552965164, which divides), q = 2.54/0.02 = 127, −127, 1/0.02 = 50, 0.1/0.02 = 5. fp16(0.02) =
    // 0x251F = 0.0200042724609375.
    // Row 1: clip 0.5 < 1, so s is the floor f32(1/127) = 0.007874015718698502 (fp16 0x2008 = 0.00787353515625):
    // 0.5/s = 63.5 → 64 (half to even), −0.25/s = −31.75 → −32, 0.125/s = 15.875 → 16.
    const Tensor w =
        Tensor::from_floats(std::vector<float>{2.54f, -2.54f, 1.0f, 0.1f, 0.5f, -0.25f, 0.125f, 0.5f}, {2, 4});
    const QuantizedTensor q = quantize_int8_clip("blocks.0.mlp.fc.weight", w);
    EXPECT_EQ(test::test_int8_values(q.values), (std::vector<int>{127, -127, 50, 5, 64, -32, 16, 64}));
    EXPECT_EQ(test::test_f16_bits(q.scales), (std::vector<int>{0x251F, 0x2008}));
    const Tensor back = quantized_dequantize(q);
    EXPECT_EQ(back.data<float>()[0], 127.0f * 0.0200042724609375f);
    EXPECT_EQ(back.data<float>()[4], 0.50390625f);  // 64 · 0.00787353515625
}

TEST(QuantizeBaseline, PerTensorMatchesOracle) {
    int cases = 0;
    for (const json& c : oracle()["baseline_per_tensor"]) {
        const Tensor w = matrix_of(c);
        const std::int32_t qmin = c["qmin"].get<std::int32_t>(), qmax = c["qmax"].get<std::int32_t>();
        const std::vector<float> values = floats_of(c["w"]);
        std::vector<float> magnitudes;
        for (const float v : values) magnitudes.push_back(std::fabs(v));
        EXPECT_EQ(static_cast<float>(quantize_quantile(magnitudes, quantize_int8_clip_quantile)),
                  static_cast<float>(c["clip"].get<double>()));
        const QuantizedTensor q = quantize_int8_clip_tensor("x", w, quantize_int8_clip_quantile, qmin, qmax, 127.0);
        EXPECT_EQ(q.encoding, QuantEncoding::per_tensor);
        EXPECT_EQ(q.values.shape(), w.shape());
        EXPECT_EQ(q.scales.dtype(), DType::f32);
        EXPECT_EQ(q.scales.data<float>()[0], static_cast<float>(c["scale"].get<double>()));
        EXPECT_EQ(test::test_int8_values(q.values), json_ints(c["q"]));
        ++cases;
    }
    EXPECT_EQ(cases, 3);
}

TEST(QuantizeBaseline, DispatchesOnRankAndZeroTensorScaleIsOne) {
    EXPECT_EQ(quantize_int8_clip("m", random_matrix(3, 5, 1.0f, 1)).encoding, QuantEncoding::per_row);
    const Tensor vector = Tensor::zeros({7});
    const QuantizedTensor q = quantize_int8_clip("v", vector);
    EXPECT_EQ(q.encoding, QuantEncoding::per_tensor);
    EXPECT_EQ(q.scales.data<float>()[0], 1.0f);  // clip 0: the reference's scale of 1
    EXPECT_EQ(test::test_int8_values(q.values), std::vector<int>(7, 0));
}

// ---- S1, S2/S4, S3
// ---------------------------------------------------------------------------------------------------

TEST(QuantizeRowSearch, MatchesOracle) {
    for (const json& c : oracle()["row_search"]) {
        const Tensor w = matrix_of(c);
        const std::int32_t qmin = c["qmin"].get<std::int32_t>(), qmax = c["qmax"].get<std::int32_t>();
        const double divisor = c["divisor"].get<double>();
        const QuantizedTensor q =
            quantize_row_search("blocks.0.attn.c_q.weight", w, quantize_row_search_quantiles, qmin, qmax, divisor);
        EXPECT_EQ(q.method, "row_search");
        EXPECT_EQ(q.qmin, qmin);
        EXPECT_EQ(q.qmax, qmax);
        EXPECT_EQ(test::test_f16_bits(q.scales), json_ints(c["scale_bits"]));
        EXPECT_EQ(test::test_int8_values(q.values), json_ints(c["q"]));
        // The stored scale is the one of the quantile the oracle chose for that row.
        const std::vector<int> chosen = json_ints(c["chosen_index"]);
        for (std::int64_t r = 0; r < w.size(0); ++r) {
            const double p =
                quantize_row_search_quantiles[static_cast<std::size_t>(chosen[static_cast<std::size_t>(r)])];
            const float clip = quantize_row_abs_quantile(w, p).data<float>()[r];
            const float scale = std::max(clip / static_cast<float>(divisor), static_cast<float>(1.0 / divisor));
            EXPECT_EQ(q.scales.data<std::uint16_t>()[r], f16_from_float(scale)) << "row " << r;
        }
    }
}

TEST(QuantizeTensorSearch, MatchesOracle) {
    // The third case has every scale on the 1/31 floor, so all quantiles tie and the first one is kept.
    ASSERT_EQ(oracle()["tensor_search"][2]["chosen_quantile"].get<double>(), 0.999);
    for (const json& c : oracle()["tensor_search"]) {
        const Tensor w = matrix_of(c);
        const QuantizedTensor q = quantize_tensor_search("blocks.1.mlp.proj.weight", w);
        EXPECT_EQ(q.method, "tensor_search");
        EXPECT_EQ(q.chosen_quantile, c["chosen_quantile"].get<double>());
        EXPECT_EQ(test::test_f16_bits(q.scales), json_ints(c["scale_bits"]));
        EXPECT_EQ(test::test_int8_values(q.values), json_ints(c["q"]));
        EXPECT_EQ(q.qmin, -31);
        EXPECT_EQ(q.qmax, 31);
    }
}

TEST(QuantizeSdclip, MatchesOracle) {
    for (const json& c : oracle()["sdclip"]) {
        const Tensor w = matrix_of(c);
        const QuantizedTensor q = quantize_sdclip_rows("tok_emb.weight", w, c["k"].get<double>());
        EXPECT_EQ(q.method, "sdclip");
        EXPECT_EQ(test::test_f16_bits(q.scales), json_ints(c["scale_bits"]));
        EXPECT_EQ(test::test_int8_values(q.values), json_ints(c["q"]));
    }
    // With k = 2.5 some entries lie beyond the clip and land on ±31.
    const QuantizedTensor tight = quantize_sdclip_rows("x", matrix_of(oracle()["sdclip"][1]), 2.5);
    const std::vector<int> values = test::test_int8_values(tight.values);
    EXPECT_TRUE(std::any_of(values.begin(), values.end(), [](int v) { return v == 31 || v == -31; }));
}

TEST(QuantizeRoundToNearest, RoundsHalfToEvenAndClamps) {
    // s = 0.5 is exact in fp16: w/s = 2.5, 1.5, −2.5, 5, 40 → 2, 2, −2, 5, 31 (half to even, then the clamp).
    const Tensor w = Tensor::from_floats(std::vector<float>{1.25f, 0.75f, -1.25f, 2.5f, 20.0f}, {1, 5});
    const Tensor q = quantize_round_to_nearest(w, f16_scales({0.5f}), -31, 31);
    EXPECT_EQ(test::test_int8_values(q), (std::vector<int>{2, 2, -2, 5, 31}));
    const Tensor full =
        quantize_round_to_nearest(Tensor::from_floats(std::vector<float>{-40.0f}, {1, 1}), f16_scales({1.0f}), -32, 31);
    EXPECT_EQ(test::test_int8_values(full), std::vector<int>{-32});
}

// ---- dequantize
// ------------------------------------------------------------------------------------------------------

TEST(QuantizedDequantize, RoundTripErrorWithinHalfAStep) {
    const Tensor w = random_matrix(12, 300, 0.7f, 7);
    const float* data = w.data<float>();
    for (const QuantizedTensor& q : {quantize_tensor_search("a", w), quantize_sdclip_rows("b", w)}) {
        const Tensor back = quantized_dequantize(q);
        ASSERT_EQ(back.shape(), w.shape());
        int unclipped = 0;
        for (std::int64_t r = 0; r < 12; ++r) {
            const float s = float_from_f16(q.scales.data<std::uint16_t>()[r]);
            for (std::int64_t j = 0; j < 300; ++j) {
                const std::int8_t v = q.values.data<std::int8_t>()[r * 300 + j];
                if (v == q.qmin || v == q.qmax) continue;  // possibly clipped
                EXPECT_LE(std::fabs(data[r * 300 + j] - back.data<float>()[r * 300 + j]), 0.5f * s * (1.0f + 1e-5f));
                ++unclipped;
            }
        }
        EXPECT_GT(unclipped, 3000);
    }
    // Baseline: the f32 scale s divided and fp16(s) reconstructs, so the bound gains |q|·|s − fp16(s)|.
    const QuantizedTensor baseline = quantize_int8_clip_rows("c", w);
    const Tensor back = quantized_dequantize(baseline);
    const Tensor clips = quantize_row_abs_quantile(w, quantize_int8_clip_quantile);
    for (std::int64_t r = 0; r < 12; ++r) {
        const float clip = clips.data<float>()[r];
        const float s32 = std::max(clip / 127.0f, static_cast<float>(1.0 / 127.0));
        const float s16 = float_from_f16(baseline.scales.data<std::uint16_t>()[r]);
        for (std::int64_t j = 0; j < 300; ++j) {
            const float clipped = std::max(std::min(data[r * 300 + j], clip), -clip);
            const int v = baseline.values.data<std::int8_t>()[r * 300 + j];
            const float bound = 0.5f * s32 * (1.0f + 1e-5f) + static_cast<float>(std::abs(v)) * std::fabs(s32 - s16);
            EXPECT_LE(std::fabs(clipped - back.data<float>()[r * 300 + j]), bound);
        }
    }
    // Per tensor: one f32 scale divides and reconstructs.
    const Tensor cube = Tensor::from_floats(floats_of(oracle()["baseline_per_tensor"][1]["w"]), {3, 4, 25});
    const QuantizedTensor per_tensor = quantize_int8_clip_tensor("cube", cube);
    const Tensor cube_back = quantized_dequantize(per_tensor);
    EXPECT_EQ(cube_back.shape(), cube.shape());
    const float s = per_tensor.scales.data<float>()[0];
    for (std::int64_t i = 0; i < cube.numel(); ++i) {
        const float v = cube.data<float>()[i];
        if (std::fabs(v) < 126.0f * s) {
            EXPECT_LE(std::fabs(v - cube_back.data<float>()[i]), 0.5f * s * 1.00001f);
        }
    }
}

TEST(QuantizedDequantize, PassthroughAndEncodingNames) {
    const Tensor w = Tensor::from_floats(std::vector<float>{1.0f / 3.0f, -2.0f, 65504.0f, 1e-8f}, {2, 2});
    const QuantizedTensor kept = quantize_passthrough("blocks.0.attn_scale", w, DType::f32);
    EXPECT_EQ(kept.encoding, QuantEncoding::passthrough);
    EXPECT_EQ(kept.method, "passthrough");
    EXPECT_TRUE(test::bitwise_equal(quantized_dequantize(kept), w));
    EXPECT_FALSE(kept.values.same_storage(w));
    const QuantizedTensor half = quantize_passthrough("ve.proj.weight", w, DType::f16);
    EXPECT_EQ(half.values.dtype(), DType::f16);
    EXPECT_TRUE(test::bitwise_equal(quantized_dequantize(half), w.to(DType::f16).to(DType::f32)));
    EXPECT_NE(quantized_dequantize(half).data<float>()[0], w.data<float>()[0]);  // 1/3 is not an fp16 value
    EXPECT_NE(error_message([&] { quantize_passthrough("x", w, DType::bf16); }).find("f32 or f16"), std::string::npos);
    EXPECT_NE(error_message([&] {
                  quantize_passthrough("ids", Tensor::zeros({3}, DType::i64), DType::f16);
              }).find("floating point"),
              std::string::npos);

    for (const QuantEncoding e : {QuantEncoding::passthrough, QuantEncoding::per_row, QuantEncoding::per_tensor}) {
        EXPECT_EQ(quant_encoding_parse(quant_encoding_name(e)), e);
    }
    EXPECT_EQ(quant_encoding_name(QuantEncoding::per_row), "per_row");
    EXPECT_NE(error_message([] { quant_encoding_parse("per_column"); }).find("per_column"), std::string::npos);

    QuantizedTensor broken = quantize_sdclip_rows("w", random_matrix(2, 4, 1.0f, 3));
    broken.scales = Tensor::zeros({3}, DType::f16);
    EXPECT_NE(error_message([&] { quantized_dequantize(broken); }).find("'w'"), std::string::npos);
}

TEST(QuantizeControlNames, CoverTheReferencePatterns) {
    for (const char* name :
         {"skip_weights", "smear.gate", "attn_scales", "mlp_scales", "resid_mixes", "blocks.3.attn.q_gain",
          "blocks.0.attn_scale", "blocks.10.mlp_scale", "blocks.2.resid_mix"}) {
        EXPECT_TRUE(quantize_is_control_name(name)) << name;
    }
    for (const char* name :
         {"tok_emb.weight", "blocks.0.attn.c_q.weight", "blocks.0.attn.proj.weight", "blocks.1.mlp.fc.weight",
          "bigram.table.weight", "bigram.proj.weight", "bigram.scale", "ve.table.weight", "ve.proj.weight", "ve.scale",
          "ve.layer_scales.0", "residual_alpha", "feedback.V", "feedback.U", "feedback.diag", "lm_head.weight"}) {
        EXPECT_FALSE(quantize_is_control_name(name)) << name;
    }
}

TEST(Quantize, RejectsBadInput) {
    const Tensor vector = Tensor::zeros({8});
    EXPECT_NE(error_message([&] { quantize_int8_clip_rows("v", vector); }).find("must be 2-D"), std::string::npos);
    EXPECT_NE(error_message([&] { quantize_row_search("v", vector); }).find("'v' must be 2-D"), std::string::npos);
    EXPECT_NE(error_message([&] { quantize_tensor_search("v", vector); }).find("must be 2-D"), std::string::npos);
    EXPECT_NE(error_message([&] { quantize_sdclip_rows("v", vector); }).find("must be 2-D"), std::string::npos);
    const Tensor empty = Tensor::zeros({0, 4});
    EXPECT_NE(error_message([&] { quantize_sdclip_rows("e", empty); }).find("empty"), std::string::npos);
    EXPECT_NE(error_message([&] { quantize_int8_clip_tensor("e", Tensor::zeros({0})); }).find("empty"),
              std::string::npos);
    Tensor bad = random_matrix(2, 3, 1.0f, 5);
    bad.data<float>()[4] = std::numeric_limits<float>::infinity();
    EXPECT_NE(error_message([&] { quantize_tensor_search("bad", bad); }).find("non-finite"), std::string::npos);
    EXPECT_NE(error_message([&] {
                  quantize_int8_clip_rows("d", Tensor::zeros({2, 2}, DType::f64));
              }).find("f32"),
              std::string::npos);
    const Tensor w = random_matrix(2, 3, 1.0f, 6);
    EXPECT_NE(error_message([&] { quantize_row_search("w", w, std::span<const double>{}); }).find("no quantiles"),
              std::string::npos);
    const std::vector<double> bad_quantiles = {0.5, 1.2};
    EXPECT_NE(error_message([&] { quantize_tensor_search("w", w, bad_quantiles); }).find("not in [0, 1]"),
              std::string::npos);
    EXPECT_NE(error_message([&] { quantize_sdclip_rows("w", w, 12.85, 5, -5, 31.0); }).find("grid"), std::string::npos);
    EXPECT_NE(error_message([&] {
                  quantize_sdclip_rows("one", Tensor::zeros({3, 1}));
              }).find("2 columns"),
              std::string::npos);
    EXPECT_NE(error_message([&] { quantize_round_to_nearest(w, f16_scales({1.0f}), -31, 31); }).find("scales"),
              std::string::npos);
    EXPECT_NE(error_message([&] {
                  quantize_round_to_nearest(w, f16_scales({1.0f, 0.0f}), -31, 31);
              }).find("positive"),
              std::string::npos);
}

// ---- pruning
// ---------------------------------------------------------------------------------------------------------

TEST(QuantizePrune, CandidateOrderMatchesOracle) {
    const json& c = oracle()["prune_order"];
    std::vector<QuantizedTensor> tensors;
    for (const json& t : c["tensors"]) {
        QuantizedTensor q;
        q.name = "t" + std::to_string(tensors.size());
        const std::int64_t rows = t["rows"].get<std::int64_t>(), cols = t["cols"].get<std::int64_t>();
        q.shape = {rows, cols};
        q.encoding = QuantEncoding::per_row;
        q.qmax = t["qmax"].get<std::int32_t>();
        q.qmin = -q.qmax;
        q.values = Tensor::empty({rows, cols}, DType::i8);
        const std::vector<int> values = json_ints(t["q"]);
        for (std::size_t i = 0; i < values.size(); ++i)
            q.values.data<std::int8_t>()[i] = static_cast<std::int8_t>(values[i]);
        q.scales = Tensor::empty({rows}, DType::f16);
        const std::vector<int> bits = json_ints(t["scale_bits"]);
        for (std::size_t i = 0; i < bits.size(); ++i)
            q.scales.data<std::uint16_t>()[i] = static_cast<std::uint16_t>(bits[i]);
        tensors.push_back(q);
    }
    const std::vector<PruneCandidate> candidates = quantize_prune_candidates(tensors);
    ASSERT_EQ(candidates.size(), c["order"].size());
    for (std::size_t i = 0; i < candidates.size(); ++i) {
        EXPECT_EQ(candidates[i].tensor, c["order"][i][0].get<std::size_t>()) << i;
        EXPECT_EQ(candidates[i].index, c["order"][i][1].get<std::int64_t>()) << i;
    }
}

// Three int6 tensors with many ±1 values and one int8 tensor pruning must not touch.
std::vector<QuantizedTensor> pruning_tensors() {
    return {quantize_sdclip_rows("blocks.0.mlp.fc.weight", random_matrix(48, 160, 0.02f, 11)),
            quantize_int8_clip("tok_emb.weight", random_matrix(32, 64, 1.0f, 12)),
            quantize_sdclip_rows("blocks.0.attn.c_q.weight", random_matrix(40, 96, 0.5f, 13)),
            quantize_tensor_search("blocks.1.mlp.proj.weight", random_matrix(24, 128, 0.3f, 14))};
}

std::int64_t zlib_size(const std::vector<QuantizedTensor>& tensors) {
    std::vector<std::uint8_t> bytes;
    for (const QuantizedTensor& t : tensors) {
        const auto* data = static_cast<const std::uint8_t*>(t.values.raw_data());
        bytes.insert(bytes.end(), data, data + t.values.nbytes());
    }
    return static_cast<std::int64_t>(codec_compress(codec_parse_spec("zlib-9"), bytes).size());
}

std::vector<QuantizedTensor> with_prefix_pruned(const std::vector<QuantizedTensor>& original, std::int64_t n) {
    std::vector<QuantizedTensor> copy = original;
    for (QuantizedTensor& t : copy) t.values = t.values.clone();
    const std::vector<PruneCandidate> candidates = quantize_prune_candidates(original);
    for (std::int64_t i = 0; i < n; ++i) {
        const PruneCandidate& c = candidates[static_cast<std::size_t>(i)];
        copy[c.tensor].values.data<std::int8_t>()[c.index] = 0;
    }
    return copy;
}

TEST(QuantizePrune, ReachesATargetWithTheMinimalPrefix) {
    const std::vector<QuantizedTensor> original = pruning_tensors();
    const std::int64_t count = static_cast<std::int64_t>(quantize_prune_candidates(original).size());
    ASSERT_GT(count, 1000);
    const std::int64_t unpruned = zlib_size(original);
    const std::int64_t all_pruned = zlib_size(with_prefix_pruned(original, count));
    ASSERT_LT(all_pruned + 100, unpruned);
    const std::int64_t target = (unpruned + all_pruned) / 2;

    std::vector<QuantizedTensor> tensors = original;  // shares storage with original until pruning clones
    int calls = 0;
    const PruneResult result = quantize_prune_to_target(
        tensors,
        [&](const std::vector<QuantizedTensor>& t) {
            ++calls;
            return zlib_size(t);
        },
        target);
    EXPECT_EQ(result.candidates, count);
    EXPECT_EQ(result.bytes_before, unpruned);
    EXPECT_TRUE(result.reached);
    EXPECT_LE(result.bytes_after, target);
    EXPECT_GT(result.pruned, 0);
    EXPECT_LT(result.pruned, count);
    EXPECT_LE(calls, 2 + 1 + static_cast<int>(std::ceil(std::log2(static_cast<double>(count)))) + 1);
    // Exactly the chosen prefix is zeroed, and one fewer would not fit.
    const std::vector<QuantizedTensor> expected = with_prefix_pruned(original, result.pruned);
    for (std::size_t t = 0; t < tensors.size(); ++t)
        EXPECT_TRUE(test::bitwise_equal(tensors[t].values, expected[t].values));
    EXPECT_EQ(zlib_size(tensors), result.bytes_after);
    EXPECT_GT(zlib_size(with_prefix_pruned(original, result.pruned - 1)), target);
    // The int8 tensor is untouched and the caller's other copy still holds the unpruned values.
    EXPECT_TRUE(test::bitwise_equal(tensors[1].values, original[1].values));
    EXPECT_EQ(zlib_size(original), unpruned);
}

TEST(QuantizePrune, FitsAlreadyOrCannotFit) {
    const std::vector<QuantizedTensor> original = pruning_tensors();
    const std::int64_t unpruned = zlib_size(original);
    std::vector<QuantizedTensor> tensors = original;
    const PruneResult fits = quantize_prune_to_target(tensors, zlib_size, unpruned);
    EXPECT_TRUE(fits.reached);
    EXPECT_EQ(fits.pruned, 0);
    EXPECT_EQ(fits.bytes_after, unpruned);
    for (std::size_t t = 0; t < tensors.size(); ++t)
        EXPECT_TRUE(test::bitwise_equal(tensors[t].values, original[t].values));

    const std::int64_t count = static_cast<std::int64_t>(quantize_prune_candidates(original).size());
    const PruneResult hopeless = quantize_prune_to_target(tensors, zlib_size, 100);
    EXPECT_FALSE(hopeless.reached);
    EXPECT_EQ(hopeless.pruned, count);  // the references apply every candidate anyway
    EXPECT_EQ(hopeless.bytes_after, zlib_size(with_prefix_pruned(original, count)));
    EXPECT_TRUE(quantize_prune_candidates(tensors).empty());
}

TEST(QuantizePrune, ExactPrefixWithAMonotoneSize) {
    // Size = number of nonzero int6 values: pruning n candidates removes exactly n bytes.
    std::vector<QuantizedTensor> tensors = pruning_tensors();
    auto nonzero = [](const std::vector<QuantizedTensor>& t) {
        std::int64_t n = 0;
        for (const QuantizedTensor& q : t) {
            if (q.qmax != 31) continue;
            for (const int v : test::test_int8_values(q.values)) n += v != 0;
        }
        return n;
    };
    const std::int64_t before = nonzero(tensors);
    const PruneResult result = quantize_prune_to_target(tensors, nonzero, before - 37);
    EXPECT_EQ(result.pruned, 37);
    EXPECT_EQ(result.bytes_after, before - 37);
    EXPECT_EQ(nonzero(tensors), before - 37);
    EXPECT_NE(error_message([&] { quantize_prune_to_target(tensors, nullptr, 0); }).find("size function"),
              std::string::npos);
}

}  // namespace
}  // namespace pgolf
