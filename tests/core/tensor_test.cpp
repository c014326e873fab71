// Tensor storage, views and dtype conversions (bf16 and f16 round-to-nearest-even against hand-computed bits).
#include "core/tensor.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace pgolf {
namespace {

float float_from_bits(std::uint32_t bits) { return std::bit_cast<float>(bits); }

TEST(TensorDType, Bf16RoundsToNearestEven) {
    EXPECT_EQ(bf16_from_float(1.0f), 0x3F80);
    EXPECT_EQ(bf16_from_float(-2.0f), 0xC000);
    // 1 + 2^-8 is exactly halfway between bf16 1.0 (0x3F80) and 1.0078125 (0x3F81): ties go to the even 0x3F80.
    EXPECT_EQ(bf16_from_float(float_from_bits(0x3F808000)), 0x3F80);
    // Halfway above an odd mantissa rounds up to the even one.
    EXPECT_EQ(bf16_from_float(float_from_bits(0x3F818000)), 0x3F82);
    // Just above halfway rounds up, just below rounds down.
    EXPECT_EQ(bf16_from_float(float_from_bits(0x3F808001)), 0x3F81);
    EXPECT_EQ(bf16_from_float(float_from_bits(0x3F807FFF)), 0x3F80);
    // The largest finite float rounds to infinity; infinities and NaN stay what they are.
    EXPECT_EQ(bf16_from_float(std::numeric_limits<float>::max()), 0x7F80);
    EXPECT_EQ(bf16_from_float(std::numeric_limits<float>::infinity()), 0x7F80);
    EXPECT_TRUE(std::isnan(float_from_bf16(bf16_from_float(std::numeric_limits<float>::quiet_NaN()))));
    EXPECT_TRUE(std::isnan(float_from_bf16(bf16_from_float(float_from_bits(0x7F800001)))));  // signalling payload
    EXPECT_EQ(float_from_bf16(0x3F80), 1.0f);
    EXPECT_EQ(bf16_round(3.14159265f), 3.140625f);
}

TEST(TensorDType, F16RoundsToNearestEven) {
    EXPECT_EQ(f16_from_float(1.0f), 0x3C00);
    EXPECT_EQ(f16_from_float(-2.5f), 0xC100);
    EXPECT_EQ(f16_from_float(65504.0f), 0x7BFF);                  // largest finite half
    EXPECT_EQ(f16_from_float(65519.0f), 0x7BFF);                  // below the halfway point to 65536
    EXPECT_EQ(f16_from_float(65520.0f), 0x7C00);                  // halfway: ties to even = infinity
    EXPECT_EQ(f16_from_float(5.9604644775390625e-08f), 0x0001);   // smallest subnormal 2^-24
    EXPECT_EQ(f16_from_float(2.98023223876953125e-08f), 0x0000);  // 2^-25: halfway to 0, ties to even 0
    EXPECT_EQ(f16_from_float(6.103515625e-05f), 0x0400);          // smallest normal 2^-14
    // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even 1.
    EXPECT_EQ(f16_from_float(1.0f + 0.00048828125f), 0x3C00);
    EXPECT_EQ(f16_from_float(1.0f + 3 * 0.00048828125f), 0x3C02);
    EXPECT_TRUE(std::isnan(float_from_f16(f16_from_float(std::numeric_limits<float>::quiet_NaN()))));
    for (std::uint32_t half = 0; half < 0x7C00; ++half) {  // every finite positive half survives a round trip
        ASSERT_EQ(f16_from_float(float_from_f16(static_cast<std::uint16_t>(half))), half) << half;
    }
}

TEST(Tensor, CreationAndItems) {
    Tensor t = Tensor::from_values(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3});
    EXPECT_EQ(t.dim(), 2);
    EXPECT_EQ(t.size(-1), 3);
    EXPECT_EQ(t.numel(), 6);
    EXPECT_EQ(t.nbytes(), 24u);
    EXPECT_EQ(t.data<float>()[4], 5.0f);
    EXPECT_THROW(t.data<double>(), Error);
    EXPECT_THROW(t.size(2), Error);
    EXPECT_EQ(Tensor::scalar(2.5, DType::f64).item(), 2.5);
    EXPECT_FALSE(Tensor().defined());
    EXPECT_THROW(Tensor().raw_data(), Error);
    const Tensor z = Tensor::zeros({0, 3});
    EXPECT_TRUE(z.defined());
    EXPECT_EQ(z.numel(), 0);
}

TEST(Tensor, ViewsShareStorage) {
    Tensor t = Tensor::zeros({4, 3}, DType::f64);
    Tensor view = t.reshape({2, -1});
    EXPECT_EQ(view.shape(), (Shape{2, 6}));
    view.set_item(7, 9.0);
    EXPECT_EQ(t.item(7), 9.0);
    Tensor middle = t.rows(1, 3);
    EXPECT_EQ(middle.shape(), (Shape{2, 3}));
    EXPECT_EQ(middle.item(4), 9.0);  // row 2, column 1 of t
    middle.fill(1.0);
    EXPECT_EQ(t.item(2), 0.0);
    EXPECT_EQ(t.item(3), 1.0);
    EXPECT_EQ(t.item(9), 0.0);
    EXPECT_THROW(t.reshape({5, -1}), Error);
    EXPECT_THROW(t.rows(2, 5), Error);
    Tensor copy = t.clone();
    copy.zero();
    EXPECT_EQ(t.item(3), 1.0);
}

TEST(Tensor, ConversionsAndCopy) {
    const Tensor t = Tensor::from_values(std::vector<double>{1.0, -2.5, 3.14159265}, {3}, DType::f32);
    const Tensor b = t.to(DType::bf16);
    EXPECT_EQ(b.dtype(), DType::bf16);
    EXPECT_EQ(b.item(2), 3.140625);
    EXPECT_EQ(t.to(DType::i64).item(1), -2.0);
    EXPECT_EQ(t.to(DType::f16).item(1), -2.5);
    Tensor target = Tensor::zeros({3});
    target.copy_from(t);
    EXPECT_EQ(target.item(0), 1.0);
    EXPECT_THROW(target.copy_from(b), Error);
    EXPECT_EQ(dtype_parse("bf16"), DType::bf16);
    EXPECT_THROW(dtype_parse("float"), Error);
    EXPECT_EQ(shape_string({2, 3}), "(2, 3)");
}

}  // namespace
}  // namespace pgolf
