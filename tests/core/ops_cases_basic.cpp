// Harness cases and known-answer tests for the basic CPU ops: matmul/linear, embedding, elementwise, rmsnorm,
// global norm and softcapped cross-entropy. Gradient tolerances are for f64 central differences with step 1e-6.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/ops/elementwise.h"
#include "core/ops/embedding.h"
#include "core/ops/linear.h"
#include "core/ops/loss.h"
#include "core/ops/norm.h"
#include "tests/core/op_cases.h"
#include "tests/core/op_harness.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using test::bitwise_equal;

using test::op_harness_random;
using test::op_harness_random_ids;
using test::op_harness_register;
using test::OpCase;
using test::rmsnorm_case;
using test::cross_entropy_case;
using Tensors = std::vector<Tensor>;

// Central differences of a smooth op in f64 agree to ~1e-9; 1e-7 leaves room without hiding a wrong formula.
constexpr double kGradientTolerance = 1e-7;

// Pushes every element at least `margin` away from 0 so finite differences never straddle a kink at 0.
Tensor away_from_zero(Tensor x, double margin = 0.01) {
    double* values = x.data<double>();
    for (std::int64_t i = 0; i < x.numel(); ++i) values[i] += values[i] >= 0.0 ? margin : -margin;
    return x;
}

std::string shape_tag(const Shape& shape) {
    std::string tag;
    for (std::size_t i = 0; i < shape.size(); ++i) tag += (i > 0 ? "x" : "") + std::to_string(shape[i]);
    return tag;
}

// --- linear / matmul ---------------------------------------------------------------------------------------------

OpCase linear_case(const Shape& x_shape, std::int64_t n, bool need_dx, bool need_dw, std::uint64_t seed) {
    OpCase op;
    op.name = "linear/" + shape_tag(x_shape) + "_n" + std::to_string(n) + (need_dx ? "" : "_dw_only") +
              (need_dw ? "" : "_dx_only");
    op.inputs = {op_harness_random(x_shape, seed), op_harness_random({n, x_shape.back()}, seed + 1)};
    op.forward = [](const Tensors& in) { return Tensors{linear_forward(in[0], in[1])}; };
    op.backward = [need_dx, need_dw](const Tensors& in, const Tensors&, const Tensors& dout) {
        LinearGrads grads = linear_backward(in[0], in[1], dout[0], need_dx, need_dw);
        return Tensors{grads.dx, grads.dw};
    };
    op.gradient_tolerance = kGradientTolerance;
    op.float_tolerance = 1e-5 * std::sqrt(static_cast<double>(x_shape.back()));
    op.attributes = {{"need_dx", need_dx ? 1.0 : 0.0}, {"need_dw", need_dw ? 1.0 : 0.0}};
    return op;
}

OpCase matmul_case(std::int64_t m, std::int64_t k, std::int64_t n, bool ta, bool tb, std::uint64_t seed) {
    OpCase op;
    op.name = std::string("matmul/") + std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n) +
              (ta ? "_ta" : "") + (tb ? "_tb" : "");
    const Shape a_shape = ta ? Shape{k, m} : Shape{m, k};
    const Shape b_shape = tb ? Shape{n, k} : Shape{k, n};
    op.inputs = {op_harness_random(a_shape, seed), op_harness_random(b_shape, seed + 1)};
    op.forward = [ta, tb](const Tensors& in) { return Tensors{matmul(in[0], in[1], ta, tb)}; };
    // c = op(a)·op(b): d op(a) = dc·op(b)ᵀ, d op(b) = op(a)ᵀ·dc, each transposed back when the operand was.
    op.backward = [ta, tb](const Tensors& in, const Tensors&, const Tensors& dout) {
        const Tensor& dc = dout[0];
        const Tensor da = ta ? matmul(in[1], dc, tb, true) : matmul(dc, in[1], false, !tb);
        const Tensor db = tb ? matmul(dc, in[0], true, ta) : matmul(in[0], dc, !ta, false);
        return Tensors{da, db};
    };
    op.gradient_tolerance = kGradientTolerance;
    op.float_tolerance = 1e-5 * std::sqrt(static_cast<double>(k));
    op.attributes = {{"transpose_a", ta ? 1.0 : 0.0}, {"transpose_b", tb ? 1.0 : 0.0}};
    return op;
}

const bool registered_linear = op_harness_register("linear", [] {
    return std::vector<OpCase>{
        linear_case({3, 4}, 5, true, true, 11),  linear_case({2, 3, 4}, 5, true, true, 13),
        linear_case({1, 16}, 3, true, true, 15), linear_case({4, 6}, 2, false, true, 17),
        linear_case({4, 6}, 2, true, false, 19), matmul_case(3, 4, 5, false, false, 21),
        matmul_case(3, 4, 5, true, false, 23),   matmul_case(3, 4, 5, false, true, 25),
        matmul_case(3, 4, 5, true, true, 27),    matmul_case(1, 7, 2, false, true, 29),
    };
});

// --- embedding ---------------------------------------------------------------------------------------------------

OpCase embedding_case(const std::string& name, std::int64_t vocab, std::int64_t d, const Tensor& ids,
                      std::uint64_t seed) {
    OpCase op;
    op.name = "embedding/" + name;
    op.inputs = {op_harness_random({vocab, d}, seed), ids};
    op.forward = [](const Tensors& in) { return Tensors{embedding_forward(in[0], in[1])}; };
    op.backward = [vocab](const Tensors& in, const Tensors&, const Tensors& dout) {
        return Tensors{embedding_backward(dout[0], in[1], vocab), Tensor()};
    };
    op.gradient_tolerance = kGradientTolerance;
    op.attributes = {{"vocab", static_cast<double>(vocab)}};
    return op;
}

const bool registered_embedding = op_harness_register("embedding", [] {
    const std::vector<std::int64_t> repeated = {3, 0, 3, 6, 1, 3, 0, 6, 2, 3};  // 4 and 5 unused, 3 four times
    return std::vector<OpCase>{
        embedding_case("v7_d3_repeated", 7, 3, Tensor::from_ids(repeated, {2, 5}), 31),
        embedding_case("v7_d3_flat", 7, 3, Tensor::from_ids(repeated, {10}), 33),
        embedding_case("v5_d4_random", 5, 4, op_harness_random_ids({3, 2, 4}, 5, 35), 37),
    };
});

// --- elementwise -------------------------------------------------------------------------------------------------

OpCase binary_case(const std::string& name, const Shape& shape, std::uint64_t seed,
                   std::function<Tensor(const Tensor&, const Tensor&)> forward,
                   std::function<Tensors(const Tensor&, const Tensor&, const Tensor&)> backward) {
    OpCase op;
    op.name = name + "/" + shape_tag(shape);
    op.inputs = {op_harness_random(shape, seed), op_harness_random(shape, seed + 1)};
    op.forward = [forward](const Tensors& in) { return Tensors{forward(in[0], in[1])}; };
    op.backward = [backward](const Tensors& in, const Tensors&, const Tensors& dout) {
        return backward(in[0], in[1], dout[0]);
    };
    op.gradient_tolerance = kGradientTolerance;
    return op;
}

OpCase unary_case(const std::string& name, const Tensor& x, std::function<Tensor(const Tensor&)> forward,
                  std::function<Tensor(const Tensor&, const Tensor&)> backward,
                  std::map<std::string, double> attributes = {}) {
    OpCase op;
    op.name = name + "/" + shape_tag(x.shape());
    op.inputs = {x};
    op.forward = [forward](const Tensors& in) { return Tensors{forward(in[0])}; };
    op.backward = [backward](const Tensors& in, const Tensors&, const Tensors& dout) {
        return Tensors{backward(in[0], dout[0])};
    };
    op.gradient_tolerance = kGradientTolerance;
    op.attributes = std::move(attributes);
    return op;
}

OpCase mul_broadcast_case(const Shape& shape, std::int64_t axis, std::uint64_t seed) {
    OpCase op;
    op.name = "mul_broadcast/" + shape_tag(shape) + "_axis" + (axis < 0 ? "m" : "") + std::to_string(std::abs(axis));
    const Tensor x = op_harness_random(shape, seed);
    op.inputs = {x, op_harness_random({x.size(axis)}, seed + 1)};
    op.forward = [axis](const Tensors& in) { return Tensors{mul_broadcast(in[0], in[1], axis)}; };
    op.backward = [axis](const Tensors& in, const Tensors&, const Tensors& dout) {
        MulBroadcastGrads grads = mul_broadcast_backward(in[0], in[1], axis, dout[0]);
        return Tensors{grads.dx, grads.dg};
    };
    op.gradient_tolerance = kGradientTolerance;
    op.attributes = {{"axis", static_cast<double>(axis)}};
    return op;
}

const bool registered_elementwise = op_harness_register("elementwise", [] {
    const double slope = 0.5;
    const double factor = 0.37;
    std::vector<OpCase> cases = {
        binary_case("add", {3, 5}, 41, add,
                    [](const Tensor&, const Tensor&, const Tensor& dy) {
                        return Tensors{dy, dy};
                    }),
        binary_case("mul", {2, 3, 4}, 43, mul,
                    [](const Tensor& a, const Tensor& b, const Tensor& dy) {
                        return Tensors{mul(dy, b), mul(dy, a)};
                    }),
        binary_case(
            "add_into", {4, 3}, 45,
            [](const Tensor& a, const Tensor& b) {
                Tensor sum = a.clone();  // add_into writes in place; the harness's inputs must stay untouched
                add_into(sum, b);
                return sum;
            },
            [](const Tensor&, const Tensor&, const Tensor& dy) {
                return Tensors{dy, dy};
            }),
        unary_case(
            "scale", op_harness_random({7}, 47), [factor](const Tensor& x) { return scale(x, factor); },
            [factor](const Tensor&, const Tensor& dy) { return scale(dy, factor); }, {{"factor", factor}}),
        unary_case("relu_squared", away_from_zero(op_harness_random({3, 7}, 49)), relu_squared, relu_squared_backward),
        unary_case("relu_squared", away_from_zero(op_harness_random({2, 2, 5}, 51, 3.0)), relu_squared,
                   relu_squared_backward),
        unary_case(
            "leaky_relu_squared", away_from_zero(op_harness_random({3, 7}, 53)),
            [slope](const Tensor& x) { return leaky_relu_squared(x, slope); },
            [slope](const Tensor& x, const Tensor& dy) { return leaky_relu_squared_backward(x, slope, dy); },
            {{"slope", slope}}),
        unary_case(
            "leaky_relu_squared", away_from_zero(op_harness_random({2, 2, 5}, 55, 3.0)),
            [](const Tensor& x) { return leaky_relu_squared(x, 0.1); },
            [](const Tensor& x, const Tensor& dy) { return leaky_relu_squared_backward(x, 0.1, dy); },
            {{"slope", 0.1}}),
        unary_case("sum_all", op_harness_random({3, 4, 5}, 57), sum_all,
                   [](const Tensor& x, const Tensor& dy) { return Tensor::full(x.shape(), dy.item(0), x.dtype()); }),
        unary_case("permute_0213", op_harness_random({2, 3, 4, 5}, 59), permute_0213,
                   [](const Tensor&, const Tensor& dy) { return permute_0213(dy); }),
        unary_case("permute_0213", op_harness_random({1, 2, 3, 2}, 61), permute_0213,
                   [](const Tensor&, const Tensor& dy) { return permute_0213(dy); }),
        mul_broadcast_case({2, 3, 4, 5}, -1, 63),
        mul_broadcast_case({2, 3, 4, 5}, 1, 65),
        mul_broadcast_case({2, 3, 4, 5}, 0, 67),
        mul_broadcast_case({6, 8}, -1, 69),
        mul_broadcast_case({6, 8}, -2, 71),
    };
    return cases;
});

// --- rmsnorm -----------------------------------------------------------------------------------------------------

}  // namespace

OpCase test::rmsnorm_case(const Shape& shape, double factor, std::uint64_t seed) {
    OpCase op;
    op.name = "rmsnorm/" + shape_tag(shape) + (factor == 1.0 ? "" : "_factor");
    op.inputs = {op_harness_random(shape, seed)};
    op.forward = [factor](const Tensors& in) {
        RmsNormResult result = rmsnorm_forward(in[0], kRmsNormEpsF32, factor);
        return Tensors{result.y, result.rstd};
    };
    op.backward = [factor](const Tensors& in, const Tensors& out, const Tensors& dout) {
        return Tensors{rmsnorm_backward(in[0], out[1], dout[0], factor)};
    };
    op.differentiable_outputs = {true, false};  // rstd is a saved statistic
    op.gradient_tolerance = kGradientTolerance;
    op.attributes = {{"factor", factor}};
    return op;
}

namespace {

const bool registered_rmsnorm = op_harness_register("rmsnorm", [] {
    return std::vector<OpCase>{
        rmsnorm_case({2, 3, 8}, 1.0, 81),
        rmsnorm_case({2, 3, 8}, 0.7, 83),
        rmsnorm_case({5, 16}, 1.0, 85),
        rmsnorm_case({5, 16}, 0.7, 87),
    };
});

// --- cross-entropy -----------------------------------------------------------------------------------------------

}  // namespace

OpCase test::cross_entropy_case(const std::string& name, std::int64_t n, std::int64_t vocab, double logit_scale,
                                double cap, std::uint64_t seed) {
    OpCase op;
    op.name = "cross_entropy/" + name;
    op.inputs = {op_harness_random({n, vocab}, seed, logit_scale), op_harness_random_ids({n}, vocab, seed + 1)};
    op.forward = [cap](const Tensors& in) { return Tensors{softcap_cross_entropy_forward(in[0], in[1], cap)}; };
    op.backward = [cap](const Tensors& in, const Tensors&, const Tensors& dout) {
        return Tensors{softcap_cross_entropy_backward(in[0], in[1], dout[0], cap), Tensor()};
    };
    op.gradient_tolerance = kGradientTolerance;
    op.attributes = {{"cap", cap}};
    return op;
}

namespace {

const bool registered_cross_entropy = op_harness_register("cross_entropy", [] {
    return std::vector<OpCase>{
        cross_entropy_case("cap30_6x10", 6, 10, 5.0, 30.0, 91),
        cross_entropy_case("cap0_6x10", 6, 10, 5.0, 0.0, 93),
        cross_entropy_case("cap30_large_4x12", 4, 12, 40.0, 30.0, 95),
        cross_entropy_case("cap5_3x7", 3, 7, 8.0, 5.0, 97),
        cross_entropy_case("cap30_1x2", 1, 2, 5.0, 30.0, 99),
    };
});

// --- plain tests -------------------------------------------------------------------------------------------------

// Runs f and checks it throws pgolf::Error with exactly `message`.
void expect_error(const std::function<void()>& f, const std::string& message) {
    try {
        f();
        ADD_FAILURE() << "no error; expected: " << message;
    } catch (const Error& error) {
        EXPECT_EQ(std::string(error.what()), message);
    }
}

Tensor f32(std::vector<double> values, const Shape& shape) { return Tensor::from_values(values, shape, DType::f32); }

TEST(OpsBasic, MatmulTwoByTwoByHand) {
    const Tensor a = f32({1, 2, 3, 4}, {2, 2});
    const Tensor b = f32({5, 6, 7, 8}, {2, 2});
    EXPECT_EQ(matmul(a, b, false, false).to_doubles(), (std::vector<double>{19, 22, 43, 50}));
    EXPECT_EQ(matmul(a, b, true, false).to_doubles(), (std::vector<double>{26, 30, 38, 44}));  // aᵀ·b
    EXPECT_EQ(matmul(a, b, false, true).to_doubles(), (std::vector<double>{17, 23, 39, 53}));  // a·bᵀ
    EXPECT_EQ(matmul(a, b, true, true).to_doubles(), (std::vector<double>{23, 31, 34, 46}));   // aᵀ·bᵀ
    const Tensor c = matmul(a.to(DType::f64), b.to(DType::f64), false, false);
    EXPECT_EQ(c.dtype(), DType::f64);
    EXPECT_EQ(c.to_doubles(), (std::vector<double>{19, 22, 43, 50}));
}

TEST(OpsBasic, LinearMatchesNaiveLoops) {
    const std::int64_t m = 64, n = 128, k = 256;
    const Tensor x = op_harness_random({m, k}, 101).to(DType::f32);
    const Tensor w = op_harness_random({n, k}, 102).to(DType::f32);
    const Tensor dy = op_harness_random({m, n}, 103).to(DType::f32);
    const Tensor y = linear_forward(x, w);
    const LinearGrads grads = linear_backward(x, w, dy, true, true);
    ASSERT_EQ(y.shape(), (Shape{m, n}));
    const float* xs = x.data<float>();
    const float* ws = w.data<float>();
    const float* gs = dy.data<float>();
    double worst_y = 0.0, worst_dx = 0.0, worst_dw = 0.0;
    for (std::int64_t i = 0; i < m; ++i) {
        for (std::int64_t j = 0; j < n; ++j) {
            double sum = 0.0;
            for (std::int64_t p = 0; p < k; ++p) sum += static_cast<double>(xs[i * k + p]) * ws[j * k + p];
            worst_y = std::max(worst_y, std::abs(y.data<float>()[i * n + j] - sum));
        }
        for (std::int64_t p = 0; p < k; ++p) {
            double sum = 0.0;
            for (std::int64_t j = 0; j < n; ++j) sum += static_cast<double>(gs[i * n + j]) * ws[j * k + p];
            worst_dx = std::max(worst_dx, std::abs(grads.dx.data<float>()[i * k + p] - sum));
        }
    }
    for (std::int64_t j = 0; j < n; ++j) {
        for (std::int64_t p = 0; p < k; ++p) {
            double sum = 0.0;
            for (std::int64_t i = 0; i < m; ++i) sum += static_cast<double>(gs[i * n + j]) * xs[i * k + p];
            worst_dw = std::max(worst_dw, std::abs(grads.dw.data<float>()[j * k + p] - sum));
        }
    }
    EXPECT_LE(worst_y, 1e-4);
    EXPECT_LE(worst_dx, 1e-4);
    EXPECT_LE(worst_dw, 1e-4);
}

TEST(OpsBasic, LinearBackwardSkipsUnrequestedGradients) {
    const Tensor x = op_harness_random({2, 3}, 111);
    const Tensor w = op_harness_random({4, 3}, 112);
    const Tensor dy = op_harness_random({2, 4}, 113);
    EXPECT_FALSE(linear_backward(x, w, dy, false, true).dx.defined());
    EXPECT_FALSE(linear_backward(x, w, dy, true, false).dw.defined());
}

TEST(OpsBasic, RmsNormOfThreeFour) {
    const RmsNormResult result = rmsnorm_forward(Tensor::from_values(std::vector<double>{3, 4}, {2}, DType::f64));
    const double rstd = 1.0 / std::sqrt(12.5 + kRmsNormEpsF32);
    EXPECT_DOUBLE_EQ(result.rstd.item(0), rstd);
    EXPECT_DOUBLE_EQ(result.y.item(0), 3 * rstd);
    EXPECT_DOUBLE_EQ(result.y.item(1), 4 * rstd);
    const RmsNormResult single = rmsnorm_forward(f32({3, 4}, {1, 2}), kRmsNormEpsF32, 0.5);
    EXPECT_EQ(single.rstd.shape(), (Shape{1}));
    EXPECT_FLOAT_EQ(static_cast<float>(single.y.item(1)), static_cast<float>(0.5 * 4 * rstd));
}

TEST(OpsBasic, GlobalNormByHand) {
    // 3² + 4² + 12² = 169 across an f32 and an f64 tensor.
    const Tensor a = f32({3, 0, 4}, {3});
    const Tensor b = Tensor::from_values(std::vector<double>{0, -12}, {1, 2}, DType::f64);
    EXPECT_DOUBLE_EQ(global_norm({a, b}), 13.0);
    EXPECT_DOUBLE_EQ(global_norm({}), 0.0);
    expect_error(
        [&] {
            global_norm({a, Tensor::from_ids(std::vector<std::int64_t>{1}, {1})});
        },
        "global_norm: tensors[1] must be f32 or f64, not i64");
}

TEST(OpsBasic, CrossEntropyOfUniformLogitsIsLogV) {
    const std::int64_t vocab = 10;
    const Tensor logits = Tensor::full({3, vocab}, 2.5, DType::f64);
    const Tensor targets = Tensor::from_ids(std::vector<std::int64_t>{0, 4, 9}, {3});
    for (const double cap : {30.0, 0.0}) {
        const Tensor nll = softcap_cross_entropy_forward(logits, targets, cap);
        ASSERT_EQ(nll.shape(), (Shape{3}));
        for (std::int64_t i = 0; i < 3; ++i) EXPECT_NEAR(nll.item(i), std::log(10.0), 1e-14);
        const Tensor nll32 = softcap_cross_entropy_forward(logits.to(DType::f32), targets, cap);
        EXPECT_EQ(nll32.dtype(), DType::f32);
        EXPECT_FLOAT_EQ(static_cast<float>(nll32.item(1)), static_cast<float>(std::log(10.0)));
    }
    // Without a cap, dl = softmax − onehot = 1/V − [j = target].
    const Tensor dl = softcap_cross_entropy_backward(logits, targets, Tensor::full({3}, 1.0, DType::f64), 0.0);
    EXPECT_NEAR(dl.item(0), 0.1 - 1.0, 1e-15);
    EXPECT_NEAR(dl.item(1), 0.1, 1e-15);
}

TEST(OpsBasic, SoftcapAtThirtyIsThirtyTanhOne) {
    // logits (30, 0): with cap 30, z = (30·tanh 1, 0), so nll for target 1 is log(e^{30·tanh 1} + 1).
    const Tensor logits = Tensor::from_values(std::vector<double>{30, 0}, {1, 2}, DType::f64);
    const Tensor target1 = Tensor::from_ids(std::vector<std::int64_t>{1}, {1});
    const double z = 30.0 * std::tanh(1.0);
    EXPECT_NEAR(softcap_cross_entropy_forward(logits, target1, 30.0).item(0), z + std::log1p(std::exp(-z)), 1e-13);
    EXPECT_NEAR(softcap_cross_entropy_forward(logits, target1, 0.0).item(0), 30.0 + std::log1p(std::exp(-30.0)), 1e-13);
    const Tensor target0 = Tensor::from_ids(std::vector<std::int64_t>{0}, {1});
    EXPECT_NEAR(softcap_cross_entropy_forward(logits, target0, 30.0).item(0), std::log1p(std::exp(-z)), 1e-15);
}

TEST(OpsBasic, EmbeddingRepeatedIdsAccumulate) {
    const Tensor table = f32({1, 2, 3, 4, 5, 6}, {3, 2});
    const Tensor ids = Tensor::from_ids(std::vector<std::int64_t>{2, 0, 2}, {3});
    EXPECT_EQ(embedding_forward(table, ids).to_doubles(), (std::vector<double>{5, 6, 1, 2, 5, 6}));
    const Tensor dy = f32({1, 10, 100, 1000, 2, 20}, {3, 2});
    EXPECT_EQ(embedding_backward(dy, ids, 3).to_doubles(), (std::vector<double>{100, 1000, 0, 0, 3, 30}));
}

TEST(OpsBasic, AddIntoWritesInPlace) {
    Tensor a = f32({1, 2, 3}, {3});
    const Tensor view = a;  // shares storage
    add_into(a, f32({10, 20, 30}, {3}));
    EXPECT_EQ(view.to_doubles(), (std::vector<double>{11, 22, 33}));
}

TEST(OpsBasic, SumAllAccumulatesInDouble) {
    // 2^24 + 1 + 1 + … is lost in f32 accumulation; in double every 1 counts.
    const std::int64_t n = 100000;
    Tensor x = Tensor::full({n}, 1.0, DType::f32);
    x.set_item(0, 16777216.0);
    const Tensor total = sum_all(x);
    EXPECT_EQ(total.shape(), Shape{});
    EXPECT_EQ(total.dtype(), DType::f32);
    EXPECT_EQ(total.item(0), static_cast<double>(static_cast<float>(16777216.0 + (n - 1))));
}

TEST(OpsBasic, ErrorsNameOpAndArgument) {
    const Tensor x = f32({1, 2, 3, 4, 5, 6}, {3, 2});
    expect_error(
        [&] {
            linear_forward(Tensor::zeros({3, 4}), Tensor::zeros({3, 5}));
        },
        "linear: w has shape (3, 5), expected (N, 4)");
    expect_error(
        [&] {
            linear_forward(Tensor::zeros({3, 4}), Tensor::zeros({5, 4}, DType::f64));
        },
        "linear: w has dtype f64, expected f32");
    expect_error(
        [&] {
            linear_backward(Tensor::zeros({3, 4}), Tensor::zeros({5, 4}), Tensor::zeros({3, 4}), true, true);
        },
        "linear_backward: dy has shape (3, 4), expected (3, 5)");
    expect_error(
        [&] {
            matmul(Tensor::zeros({3, 4}), Tensor::zeros({5, 2}), false, false);
        },
        "matmul: b has shape (5, 2), expected (4, N)");
    expect_error(
        [&] {
            matmul(Tensor::zeros({3, 4}), Tensor::zeros({5, 2}), false, true);
        },
        "matmul: b has shape (5, 2), expected (N, 4)");
    expect_error(
        [&] {
            matmul(Tensor::zeros({3, 4}, DType::bf16), Tensor::zeros({4, 2}), false, false);
        },
        "matmul: a must be f32 or f64, not bf16");
    expect_error(
        [&] {
            embedding_forward(x, Tensor::from_ids(std::vector<std::int64_t>{0, 2, 3}, {3}));
        },
        "embedding: id 3 at position 2 is outside [0, 3)");
    expect_error([&] { embedding_forward(x, Tensor::from_ids(std::vector<std::int64_t>{-1}, {1})); },
                 "embedding: id -1 at position 0 is outside [0, 3)");
    expect_error([&] { embedding_forward(x, Tensor::zeros({2}, DType::i32)); },
                 "embedding: ids has dtype i32, expected i64");
    expect_error(
        [&] {
            embedding_backward(x, Tensor::from_ids(std::vector<std::int64_t>{0, 1, 7}, {3}), 5);
        },
        "embedding_backward: id 7 at position 2 is outside [0, 5)");
    expect_error([&] { add(x, Tensor::zeros({2, 3})); }, "add: b has shape (2, 3), expected (3, 2)");
    expect_error([&] { mul(x, x.to(DType::f64)); }, "mul: b has dtype f64, expected f32");
    expect_error([&] { mul_broadcast(x, Tensor::zeros({3}), -1); }, "mul_broadcast: g has shape (3), expected (2)");
    expect_error([&] { mul_broadcast(x, Tensor::zeros({3}), 2); },
                 "mul_broadcast: axis 2 out of range for x of shape (3, 2)");
    expect_error([&] { relu_squared(Tensor::zeros({2}, DType::i64)); }, "relu_squared: x must be f32 or f64, not i64");
    expect_error([&] { permute_0213(x); }, "permute_0213: x has shape (3, 2), expected (A, B, C, D)");
    expect_error([&] { rmsnorm_backward(x, Tensor::zeros({2}), x); },
                 "rmsnorm_backward: rstd has shape (2), expected (3)");
    const Tensor targets = Tensor::from_ids(std::vector<std::int64_t>{0, 2, 1}, {3});
    expect_error([&] { softcap_cross_entropy_forward(x, targets); },
                 "softcap_cross_entropy: target 2 at position 1 is outside [0, 2)");
    expect_error(
        [&] {
            softcap_cross_entropy_forward(x, Tensor::from_ids(std::vector<std::int64_t>{0, 1}, {2}));
        },
        "softcap_cross_entropy: targets has shape (2), expected (3)");
    expect_error([&] { softcap_cross_entropy_forward(Tensor::zeros({6}), targets); },
                 "softcap_cross_entropy: logits has shape (6), expected (N, V)");
    expect_error(
        [&] {
            softcap_cross_entropy_backward(x, Tensor::from_ids(std::vector<std::int64_t>{0, 1, 0}, {3}),
                                           Tensor::zeros({3}, DType::f64));
        },
        "softcap_cross_entropy_backward: dnll has dtype f64, expected f32");
}

// Runs f with a given OpenMP thread count, restoring the previous setting.
template <typename F>
auto with_threads(int threads, F f) {
    const int previous = omp_get_max_threads();
    omp_set_num_threads(threads);
    auto result = f();
    omp_set_num_threads(previous);
    return result;
}

TEST(OpsBasic, ReductionsAreBitwiseIndependentOfThreadCount) {
    // Large enough that every op crosses its parallel threshold and splits its reduction into several chunks.
    const Tensor x = op_harness_random({4, 6, 128, 32}, 121).to(DType::f32);
    const Tensor dy = op_harness_random({4, 6, 128, 32}, 122).to(DType::f32);
    for (const std::int64_t axis : {std::int64_t{-1}, std::int64_t{1}, std::int64_t{0}}) {
        const Tensor g = op_harness_random({x.size(axis)}, 123).to(DType::f32);
        const auto run = [&] { return mul_broadcast_backward(x, g, axis, dy).dg; };
        EXPECT_TRUE(bitwise_equal(with_threads(1, run), with_threads(2, run))) << "mul_broadcast dg, axis " << axis;
        EXPECT_TRUE(bitwise_equal(with_threads(1, run), with_threads(3, run))) << "mul_broadcast dg, axis " << axis;
    }
    const auto sum = [&] { return sum_all(x); };
    EXPECT_TRUE(bitwise_equal(with_threads(1, sum), with_threads(2, sum)));
    const auto norm = [&] { return global_norm({x, dy}); };
    EXPECT_EQ(with_threads(1, norm), with_threads(2, norm));
    const Tensor ids = op_harness_random_ids({4096}, 50, 124);
    const Tensor rows = op_harness_random({4096, 16}, 125).to(DType::f32);
    const auto scatter = [&] { return embedding_backward(rows, ids, 50); };
    EXPECT_TRUE(bitwise_equal(with_threads(1, scatter), with_threads(2, scatter)));
    const Tensor logits = op_harness_random({64, 512}, 126, 5.0).to(DType::f32);
    const Tensor targets = op_harness_random_ids({64}, 512, 127);
    const auto loss = [&] { return softcap_cross_entropy_forward(logits, targets); };
    EXPECT_TRUE(bitwise_equal(with_threads(1, loss), with_threads(2, loss)));
    const auto norm_rows = [&] { return rmsnorm_forward(x).y; };
    EXPECT_TRUE(bitwise_equal(with_threads(1, norm_rows), with_threads(2, norm_rows)));
}

}  // namespace
}  // namespace pgolf
