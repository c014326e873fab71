// CUDA bindings of the op harness for cross_entropy, sum_all, global_norm and fake_quant (with their full-scale cases
// at the seeds' shapes), plus GPU checks of what the harness cannot see (the fused loss, invalid targets) and the
// argument checks, which run without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/cuda/fake_quant.h"
#include "core/cuda/loss.h"
#include "core/cuda/reduce.h"
#include "core/device.h"
#include "core/ops/elementwise.h"
#include "core/ops/fake_quant.h"
#include "core/ops/loss.h"
#include "core/ops/norm.h"
#include "tests/core/op_cases.h"
#include "tests/core/op_harness.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using test::CudaOpBinding;
using test::op_harness_random;
using test::op_harness_random_ids;
using test::op_harness_register_cuda;
using test::OpCase;
using Tensors = std::vector<Tensor>;

// --- full-scale cases (the CPU families' definitions at the seeds' shapes) ----------------------------------------

OpCase full_cross_entropy_case(std::int64_t n, std::int64_t vocab, double logit_scale, double cap, std::uint64_t seed) {
    const std::string name =
        "full_" + std::to_string(n) + "x" + std::to_string(vocab) + "_cap" + std::to_string(static_cast<int>(cap));
    return test::cross_entropy_case(name, n, vocab, logit_scale, cap, seed);
}

OpCase full_sum_all_case(const Shape& shape, std::uint64_t seed) {
    OpCase op;
    op.name = "sum_all/full_" + std::to_string(shape[0]) + "x" + std::to_string(shape[1]);
    op.inputs = {op_harness_random(shape, seed)};
    op.forward = [](const Tensors& in) { return Tensors{sum_all(in[0])}; };
    op.backward = [](const Tensors& in, const Tensors&, const Tensors& dout) {
        return Tensors{Tensor::full(in[0].shape(), dout[0].item(0), in[0].dtype())};
    };
    return op;
}

OpCase full_global_norm_case(const std::string& name, const std::vector<Shape>& shapes, std::uint64_t seed) {
    return test::global_norm_case("full_" + name, shapes, seed);
}

FakeQuantSpec fake_quant_spec_of(const OpCase& op) {
    FakeQuantSpec spec;
    spec.min_q = static_cast<int>(op.attribute("min_q"));
    spec.max_q = static_cast<int>(op.attribute("max_q"));
    spec.divisor = op.attribute("divisor");
    spec.scale_floor = op.attribute("scale_floor");
    return spec;
}

OpCase full_fake_quant_case(const std::string& spec_name, const FakeQuantSpec& spec, std::int64_t rows,
                            std::int64_t cols, double scale, std::uint64_t seed) {
    const std::string name = "full_" + spec_name + "_" + std::to_string(rows) + "x" + std::to_string(cols);
    return test::fake_quant_case(name, {rows, cols}, spec, scale, seed);
}

// --- bindings ----------------------------------------------------------------------------------------------------

const bool bound_cross_entropy = op_harness_register_cuda("cross_entropy", [] {
    CudaOpBinding binding;
    binding.forward = [](const OpCase& op, const Tensors& in) {
        return Tensors{cuda_softcap_cross_entropy_forward(in[0], in[1], op.attribute("cap"))};
    };
    binding.backward = [](const OpCase& op, const Tensors& in, const Tensors&, const Tensors& dout) {
        return Tensors{cuda_softcap_cross_entropy_backward(in[0], in[1], dout[0], op.attribute("cap")), Tensor()};
    };
    // Softcapped logits reach ±30, where one f32 ulp is 1.9e-6, and tanhf may be 2 ulp off: nll = max + log(sum) −
    // z_target can carry ~8e-6 on an nll of order 1.
    binding.f32_tolerance = 2e-5;
    binding.full_scale_cases = [] {
        return std::vector<OpCase>{
            full_cross_entropy_case(2048, 1024, 20.0, 30.0, 301),
            full_cross_entropy_case(1024, 8192, 20.0, 30.0, 303),
            full_cross_entropy_case(256, 8192, 10.0, 0.0, 305),
        };
    };
    return binding;
}());

const bool bound_sum_all = op_harness_register_cuda("sum_all", [] {
    CudaOpBinding binding;
    binding.forward = [](const OpCase&, const Tensors& in) { return Tensors{cuda_sum_all(in[0])}; };
    binding.backward = [](const OpCase&, const Tensors& in, const Tensors&, const Tensors& dout) {
        return Tensors{cuda_sum_all_backward(in[0], dout[0])};
    };
    binding.full_scale_cases = [] {
        return std::vector<OpCase>{full_sum_all_case({1024, 1536}, 311), full_sum_all_case({1001, 777}, 313)};
    };
    return binding;
}());

// Forward only: the norm's gradient x_i/norm is a scale, not a kernel of this family.
const bool bound_global_norm = op_harness_register_cuda("global_norm", [] {
    CudaOpBinding binding;
    binding.forward = [](const OpCase&, const Tensors& in) {
        return Tensors{Tensor::scalar(cuda_global_norm(in), DType::f32).to_device(Device::cuda)};
    };
    binding.full_scale_cases = [] {
        return std::vector<OpCase>{
            full_global_norm_case("512x1536_1536x512_512", {{512, 1536}, {1536, 512}, {512}}, 321),
            full_global_norm_case("1001x333_7", {{1001, 333}, {7}}, 325),
        };
    };
    return binding;
}());

const bool bound_fake_quant = op_harness_register_cuda("fake_quant", [] {
    CudaOpBinding binding;
    binding.forward = [](const OpCase& op, const Tensors& in) {
        return Tensors{cuda_fake_quantize_rows(in[0], fake_quant_spec_of(op))};
    };
    // The straight-through gradient is the incoming gradient itself.
    binding.backward = [](const OpCase&, const Tensors&, const Tensors&, const Tensors& dout) {
        return Tensors{dout[0]};
    };
    binding.full_scale_cases = [] {
        const FakeQuantSpec s1{-32, 31, 31.0, 1e-8};
        const FakeQuantSpec s2{-31, 31, 31.0, 1.0 / 31.0};
        return std::vector<OpCase>{
            // 0.05: the spread of trained weights; 2.0 keeps S2's absmax/31 above its 1/31 floor.
            full_fake_quant_case("s1", s1, 512, 1536, 0.05, 331),
            full_fake_quant_case("s1", s1, 1536, 512, 0.05, 333),
            full_fake_quant_case("s2", s2, 512, 1536, 2.0, 335),
            full_fake_quant_case("s2", s2, 1536, 512, 2.0, 337),
        };
    };
    return binding;
}());

// --- GPU checks beyond the harness -------------------------------------------------------------------------------

class CudaLoss : public ::testing::Test {
protected:
    void SetUp() override {
        const std::string reason = device_unavailable_reason(Device::cuda);
        if (!reason.empty()) GTEST_SKIP() << reason;
    }
};

// The fused kernel is the backward kernel with a constant row factor: the same bits as forward + backward with
// dnll = grad_scale everywhere, in both dtypes and on both the vector and the scalar path.
TEST_F(CudaLoss, FusedEqualsForwardAndBackward) {
    struct Shape2 {
        std::int64_t n;
        std::int64_t vocab;
    };
    for (const Shape2 shape : {Shape2{64, 8192}, Shape2{37, 1001}}) {
        for (const DType dtype : {DType::f32, DType::bf16}) {
            const Tensor logits =
                op_harness_random({shape.n, shape.vocab}, 401, 20.0).to(dtype).to_device(Device::cuda);
            const Tensor targets = op_harness_random_ids({shape.n}, shape.vocab, 403).to_device(Device::cuda);
            const double grad_scale = 1.0 / static_cast<double>(shape.n);
            const CudaCrossEntropyFused fused = cuda_softcap_cross_entropy_fused(logits, targets, 30.0, grad_scale);
            const Tensor nll = cuda_softcap_cross_entropy_forward(logits, targets, 30.0);
            const Tensor dnll =
                Tensor::full({shape.n}, static_cast<float>(grad_scale), DType::f32).to_device(Device::cuda);
            const Tensor dlogits = cuda_softcap_cross_entropy_backward(logits, targets, dnll, 30.0);
            const std::string what =
                std::to_string(shape.n) + "x" + std::to_string(shape.vocab) + " " + dtype_name(dtype);
            EXPECT_TRUE(test::bitwise_equal(fused.nll.to_device(Device::cpu), nll.to_device(Device::cpu))) << what;
            EXPECT_TRUE(test::bitwise_equal(fused.dlogits.to_device(Device::cpu), dlogits.to_device(Device::cpu)))
                << what;
            // And it is the loss: against the f64 reference on the same (rounded) logits.
            const Tensor reference = softcap_cross_entropy_forward(logits.to_device(Device::cpu).to(DType::f64),
                                                                   targets.to_device(Device::cpu), 30.0);
            const Tensor got = fused.nll.to_device(Device::cpu);
            for (std::int64_t i = 0; i < shape.n; ++i) {
                EXPECT_NEAR(got.item(i), reference.item(i), 2e-5 * std::max(1.0, std::abs(reference.item(i))))
                    << what << " row " << i;
            }
        }
    }
}

TEST_F(CudaLoss, TargetOutsideTheVocabularyGivesNan) {
    const Tensor logits = op_harness_random({3, 16}, 411).to(DType::f32).to_device(Device::cuda);
    const std::vector<std::int64_t> ids = {2, 16, -1};
    const Tensor targets = Tensor::from_ids(ids, {3}).to_device(Device::cuda);
    const CudaCrossEntropyFused fused = cuda_softcap_cross_entropy_fused(logits, targets, 30.0, 1.0);
    const Tensor nll = fused.nll.to_device(Device::cpu);
    const Tensor dlogits = fused.dlogits.to_device(Device::cpu);
    EXPECT_TRUE(std::isfinite(nll.item(0)));
    EXPECT_TRUE(std::isnan(nll.item(1)));
    EXPECT_TRUE(std::isnan(nll.item(2)));
    EXPECT_TRUE(std::isfinite(dlogits.item(0)));
    EXPECT_TRUE(std::isnan(dlogits.item(16)));
    EXPECT_TRUE(std::isnan(dlogits.item(47)));
}

// Fixed partial layout and summation order: the same bits on every call.
TEST_F(CudaLoss, GlobalNormIsReproducible) {
    const Tensors tensors = {op_harness_random({1536, 512}, 421).to(DType::f32).to_device(Device::cuda),
                             op_harness_random({999}, 423).to(DType::bf16).to_device(Device::cuda)};
    const double first = cuda_global_norm(tensors);
    for (int repeat = 0; repeat < 3; ++repeat) EXPECT_EQ(cuda_global_norm(tensors), first);
    const Tensors host = {tensors[0].to_device(Device::cpu), tensors[1].to_device(Device::cpu).to(DType::f32)};
    EXPECT_NEAR(first, global_norm(host), 1e-6 * first);
}

// --- argument checks (no GPU needed: host tensors are refused before anything touches the device) ---------------

TEST(CudaLossArguments, HostTensorsAreRefusedWithTheOpAndArgumentNamed) {
    const Tensor logits = Tensor::zeros({2, 4});
    const Tensor targets = Tensor::from_ids(std::vector<std::int64_t>{0, 1}, {2});
    EXPECT_EQ(test::error_message([&] { cuda_softcap_cross_entropy_forward(logits, targets, 30.0); }),
              "cuda_softcap_cross_entropy_forward: logits is on cpu, expected cuda");
    EXPECT_EQ(test::error_message([&] { cuda_softcap_cross_entropy_fused(logits, targets, 30.0, 1.0); }),
              "cuda_softcap_cross_entropy_fused: logits is on cpu, expected cuda");
    EXPECT_EQ(test::error_message([&] { cuda_sum_all(logits); }), "cuda_sum_all: x is on cpu, expected cuda");
    EXPECT_EQ(test::error_message([&] { cuda_global_norm({logits}); }),
              "cuda_global_norm: tensors[0] is on cpu, expected cuda");
    EXPECT_EQ(test::error_message([&] { cuda_global_norm({Tensor()}); }), "cuda_global_norm: tensors[0] is undefined");
    EXPECT_EQ(test::error_message([&] { cuda_fake_quantize_rows(logits, FakeQuantSpec{}); }),
              "cuda_fake_quantize_rows: w is on cpu, expected cuda");
    // Undefined gradients are skipped, as optim_clip_grad_norm skips them: nothing left, norm 0.
    EXPECT_EQ(cuda_clip_grad_norm({Tensor()}, 1.0), 0.0);
}

}  // namespace
}  // namespace pgolf
