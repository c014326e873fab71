// CUDA binding of the op harness for attention (backend automatic, full-scale cases at the seeds' head dims and GQA
// ratios), plus GPU checks the harness cannot make: pgolf's kernels in f32 across many tiles, their reproducibility,
// cuDNN against the kernels, and the argument checks, which run without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/cuda/attention.h"
#include "core/cuda/attention_cudnn.h"
#include "core/device.h"
#include "core/ops/attention.h"
#include "tests/core/op_harness.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using test::CudaOpBinding;
using test::op_harness_random;
using test::op_harness_register_cuda;
using test::OpCase;
using Tensors = std::vector<Tensor>;

// The case's scale (0: 1/√Dh) and causality, from its attributes "scale" and "causal" (1 or 0).
double scale_of(const OpCase& op) { return op.attribute("scale"); }
bool causal_of(const OpCase& op) { return op.attribute("causal") != 0.0; }

// --- full-scale cases --------------------------------------------------------------------------------------------

// B = 1 and fewer heads than the seeds (the causal f64 reference costs ~2·H·T²·Dh flops forward, ~2.5 times that
// backward), the seeds' T, Dh and GQA ratio: baseline T 1024, Dh 64, H/Hkv 2 (0.5 GFLOP forward); S1 T 2048, Dh 32,
// H/Hkv 4 (1.1 GFLOP forward).
OpCase full_attention_case(std::int64_t heads, std::int64_t kv_heads, std::int64_t seq_len, std::int64_t head_dim,
                           std::uint64_t seed) {
    OpCase op;
    op.name = "attention/full_h" + std::to_string(heads) + "kv" + std::to_string(kv_heads) + "_t" +
              std::to_string(seq_len) + "_d" + std::to_string(head_dim);
    op.inputs = {op_harness_random({1, heads, seq_len, head_dim}, seed),
                 op_harness_random({1, kv_heads, seq_len, head_dim}, seed + 1),
                 op_harness_random({1, kv_heads, seq_len, head_dim}, seed + 2)};
    op.forward = [](const Tensors& in) {
        const AttentionResult result = attention_forward(in[0], in[1], in[2]);
        return Tensors{result.y, result.lse};
    };
    op.backward = [](const Tensors& in, const Tensors& out, const Tensors& dout) {
        const AttentionGrads grads = attention_backward(in[0], in[1], in[2], AttentionResult{out[0], out[1]}, dout[0]);
        return Tensors{grads.dq, grads.dk, grads.dv};
    };
    op.differentiable_outputs = {true, false};
    op.attributes = {{"scale", 0.0}, {"causal", 1.0}};
    return op;
}

// --- binding -----------------------------------------------------------------------------------------------------

const bool bound_attention = op_harness_register_cuda("attention", [] {
    CudaOpBinding binding;
    binding.forward = [](const OpCase& op, const Tensors& in) {
        const AttentionResult result =
            cuda_attention_forward(in[0], in[1], in[2], scale_of(op), CudaAttentionBackend::automatic, causal_of(op));
        return Tensors{result.y, result.lse};
    };
    binding.backward = [](const OpCase& op, const Tensors& in, const Tensors& out, const Tensors& dout) {
        const AttentionGrads grads =
            cuda_attention_backward(in[0], in[1], in[2], AttentionResult{out[0], out[1]}, dout[0], scale_of(op),
                                    CudaAttentionBackend::automatic, causal_of(op));
        return Tensors{grads.dq, grads.dk, grads.dv};
    };
    // automatic sends the shapes cuDNN supports (the full-scale ones) to cuDNN, which computes in bf16 also for f32
    // inputs: bf16-rounded q, k, v (2^-9 relative) and bf16 probabilities move y and the gradients by a few 1e-3 of
    // their largest terms. pgolf's kernels in f32 are held to 2e-5 by CudaAttention.KernelsMatchCpuInFloat32.
    binding.f32_tolerance = 2e-2;
    binding.bf16_tolerance = 2e-2;
    binding.full_scale_cases = [] {
        return std::vector<OpCase>{
            full_attention_case(4, 2, 1024, 64, 501),  // baseline: T 1024, Dh 64, H 8 / Hkv 4
            full_attention_case(4, 1, 2048, 32, 511),  // S1: T 2048, Dh 32, H 32 / Hkv 8
        };
    };
    return binding;
}());

// --- GPU checks beyond the harness -------------------------------------------------------------------------------

struct AttentionSpec {
    std::string name;
    std::int64_t batch, heads, kv_heads, seq_len, head_dim;
    double scale = 0.0;
    bool causal = true;
    double input_scale = 1.0;  // q, k uniform in ±input_scale (v, dy in ±1)
    double tolerance = 2e-5;   // f32 kernels against the f64 reference, max |Δ| / max(1, |reference|)
};

// q, k, v, dy on the cpu in f64, holding values exactly representable in dtype.
struct AttentionInputs {
    Tensor q, k, v, dy;
};

AttentionInputs attention_inputs(const AttentionSpec& spec, DType dtype, std::uint64_t seed) {
    const Shape q_shape = {spec.batch, spec.heads, spec.seq_len, spec.head_dim};
    const Shape kv_shape = {spec.batch, spec.kv_heads, spec.seq_len, spec.head_dim};
    const auto rounded = [dtype](const Tensor& t) { return t.to(dtype).to(DType::f64); };
    return AttentionInputs{rounded(op_harness_random(q_shape, seed, spec.input_scale)),
                           rounded(op_harness_random(kv_shape, seed + 1, spec.input_scale)),
                           rounded(op_harness_random(kv_shape, seed + 2)),
                           rounded(op_harness_random(q_shape, seed + 3))};
}

Tensor on_cuda(const Tensor& t, DType dtype) { return t.to(dtype).to_device(Device::cuda); }

// max |got − expected| / max(1, |expected|) over the elements (NaN counts as infinite); got is a cuda tensor.
double worst_relative(const Tensor& got_on_device, const Tensor& expected) {
    const Tensor got = got_on_device.to_device(Device::cpu);
    EXPECT_EQ(got.shape(), expected.shape());
    if (got.shape() != expected.shape()) return INFINITY;
    double worst = 0.0;
    for (std::int64_t n = 0; n < expected.numel(); ++n) {
        const double error = std::abs(got.item(n) - expected.item(n)) / std::max(1.0, std::abs(expected.item(n)));
        worst = std::isnan(error) ? INFINITY : std::max(worst, error);
    }
    return worst;
}

struct CudaAttentionRun {
    AttentionResult forward;
    AttentionGrads grads;
};

CudaAttentionRun run_cuda_attention(const AttentionInputs& inputs, const AttentionSpec& spec, DType dtype,
                                    CudaAttentionBackend backend) {
    const Tensor q = on_cuda(inputs.q, dtype);
    const Tensor k = on_cuda(inputs.k, dtype);
    const Tensor v = on_cuda(inputs.v, dtype);
    CudaAttentionRun run;
    run.forward = cuda_attention_forward(q, k, v, spec.scale, backend, spec.causal);
    run.grads =
        cuda_attention_backward(q, k, v, run.forward, on_cuda(inputs.dy, dtype), spec.scale, backend, spec.causal);
    return run;
}

class CudaAttention : public ::testing::Test {
protected:
    void SetUp() override {
        const std::string reason = device_unavailable_reason(Device::cuda);
        if (!reason.empty()) GTEST_SKIP() << reason;
    }
};

// Shapes the harness's tiny cases (T ≤ 6, one tile) do not reach: several 32-key tiles with a partial last one,
// query blocks of 16 straddling tiles, every register-slot count (Dh 8 … 256, the last past 48 KiB of shared memory),
// odd head dims (no 16-byte vectors), GQA/MQA, non-causal, large scores that move the running max.
const std::vector<AttentionSpec>& kernel_specs() {
    static const std::vector<AttentionSpec> specs = {
        {"gqa_t70_d8", 2, 4, 2, 70, 8},
        {"gqa_t45_d40_scale0p7", 1, 6, 3, 45, 40, 0.7},
        {"noncausal_mqa_t70_d8", 1, 4, 1, 70, 8, 0.0, false},
        {"large_scores_t100_d16", 1, 2, 2, 100, 16, 0.0, true, 4.0, 1e-4},
        {"baseline_dims_t257_d64", 1, 4, 2, 257, 64},
        {"s1_dims_t130_d32", 1, 8, 2, 130, 32},
        {"odd_dims_t33_d17", 2, 2, 2, 33, 17},
        {"t50_d128", 1, 2, 1, 50, 128},
        {"t40_d256", 1, 2, 1, 40, 256},
        {"t1", 2, 2, 1, 1, 8},
    };
    return specs;
}

TEST_F(CudaAttention, KernelsMatchCpuInFloat32) {
    std::uint64_t seed = 600;
    for (const AttentionSpec& spec : kernel_specs()) {
        const AttentionInputs inputs = attention_inputs(spec, DType::f32, seed);
        seed += 10;
        const AttentionResult expected = attention_forward(inputs.q, inputs.k, inputs.v, spec.scale, spec.causal);
        const AttentionGrads expected_grads =
            attention_backward(inputs.q, inputs.k, inputs.v, expected, inputs.dy, spec.scale, spec.causal);
        const CudaAttentionRun got = run_cuda_attention(inputs, spec, DType::f32, CudaAttentionBackend::kernels);
        EXPECT_EQ(got.forward.y.dtype(), DType::f32) << spec.name;
        EXPECT_EQ(got.forward.lse.dtype(), DType::f32) << spec.name;
        EXPECT_LE(worst_relative(got.forward.y, expected.y), spec.tolerance) << spec.name;
        EXPECT_LE(worst_relative(got.forward.lse, expected.lse), spec.tolerance) << spec.name;
        EXPECT_LE(worst_relative(got.grads.dq, expected_grads.dq), 3 * spec.tolerance) << spec.name;
        EXPECT_LE(worst_relative(got.grads.dk, expected_grads.dk), 3 * spec.tolerance) << spec.name;
        EXPECT_LE(worst_relative(got.grads.dv, expected_grads.dv), 3 * spec.tolerance) << spec.name;
    }
}

// bf16 storage, fp32 arithmetic: only the outputs' rounding (2^-9 relative) on top of the shared bf16 inputs.
TEST_F(CudaAttention, KernelsMatchCpuInBfloat16) {
    std::uint64_t seed = 700;
    for (const AttentionSpec& spec : kernel_specs()) {
        const AttentionInputs inputs = attention_inputs(spec, DType::bf16, seed);
        seed += 10;
        const AttentionResult expected = attention_forward(inputs.q, inputs.k, inputs.v, spec.scale, spec.causal);
        const AttentionGrads expected_grads =
            attention_backward(inputs.q, inputs.k, inputs.v, expected, inputs.dy, spec.scale, spec.causal);
        const CudaAttentionRun got = run_cuda_attention(inputs, spec, DType::bf16, CudaAttentionBackend::kernels);
        EXPECT_EQ(got.forward.y.dtype(), DType::bf16) << spec.name;
        EXPECT_EQ(got.grads.dk.dtype(), DType::bf16) << spec.name;
        EXPECT_LE(worst_relative(got.forward.y, expected.y), 1e-2) << spec.name;
        EXPECT_LE(worst_relative(got.forward.lse, expected.lse), 10 * spec.tolerance) << spec.name;
        EXPECT_LE(worst_relative(got.grads.dq, expected_grads.dq), 1e-2) << spec.name;
        EXPECT_LE(worst_relative(got.grads.dk, expected_grads.dk), 1e-2) << spec.name;
        EXPECT_LE(worst_relative(got.grads.dv, expected_grads.dv), 1e-2) << spec.name;
    }
}

// Fixed tiles and summation orders, no atomics: the same bits on every call.
TEST_F(CudaAttention, KernelsAreBitwiseReproducible) {
    const AttentionSpec spec = {"gqa_t257_d64", 2, 4, 2, 257, 64};
    const AttentionInputs inputs = attention_inputs(spec, DType::f32, 800);
    const CudaAttentionRun first = run_cuda_attention(inputs, spec, DType::f32, CudaAttentionBackend::kernels);
    for (int repeat = 0; repeat < 2; ++repeat) {
        const CudaAttentionRun again = run_cuda_attention(inputs, spec, DType::f32, CudaAttentionBackend::kernels);
        const std::vector<std::pair<Tensor, Tensor>> pairs = {{first.forward.y, again.forward.y},
                                                              {first.forward.lse, again.forward.lse},
                                                              {first.grads.dq, again.grads.dq},
                                                              {first.grads.dk, again.grads.dk},
                                                              {first.grads.dv, again.grads.dv}};
        for (std::size_t n = 0; n < pairs.size(); ++n) {
            EXPECT_TRUE(
                test::bitwise_equal(pairs[n].first.to_device(Device::cpu), pairs[n].second.to_device(Device::cpu)))
                << "output " << n << " repeat " << repeat;
        }
    }
}

// cuDNN and pgolf's kernels on the same inputs at the seeds' full shapes (one micro-batch would be B 64 / B 32; B 2
// and 1 keep the kernels' share short). cuDNN rounds probabilities and dS to bf16, so they agree to bf16 precision.
TEST_F(CudaAttention, CudnnAgreesWithTheKernels) {
    std::string reason;
    if (!cuda_cudnn_attention_available(&reason)) GTEST_SKIP() << "cuDNN attention is not available: " << reason;
    const std::vector<AttentionSpec> specs = {
        {"baseline_b2_h8kv4_t1024_d64", 2, 8, 4, 1024, 64},
        {"s1_b1_h32kv8_t2048_d32", 1, 32, 8, 2048, 32},
    };
    int compared = 0;
    std::uint64_t seed = 900;
    for (const AttentionSpec& spec : specs) {
        const std::string unsupported =
            cuda_cudnn_attention_unsupported_reason(spec.batch, spec.heads, spec.kv_heads, spec.seq_len, spec.head_dim);
        EXPECT_EQ(unsupported, "") << spec.name << ": the seeds' shapes should run on cuDNN";
        if (!unsupported.empty()) continue;
        EXPECT_EQ(cuda_attention_resolve_backend(spec.batch, spec.heads, spec.kv_heads, spec.seq_len, spec.head_dim),
                  CudaAttentionBackend::cudnn)
            << spec.name;
        for (const DType dtype : {DType::bf16, DType::f32}) {
            // bf16-exact values in both dtypes, so cuDNN's conversion of f32 inputs loses nothing the kernels keep.
            const AttentionInputs inputs = attention_inputs(spec, DType::bf16, seed);
            seed += 10;
            const CudaAttentionRun kernels = run_cuda_attention(inputs, spec, dtype, CudaAttentionBackend::kernels);
            const CudaAttentionRun cudnn = run_cuda_attention(inputs, spec, dtype, CudaAttentionBackend::cudnn);
            const std::string what = spec.name + " " + dtype_name(dtype);
            EXPECT_EQ(cudnn.forward.y.dtype(), dtype) << what;
            EXPECT_EQ(cudnn.forward.lse.dtype(), DType::f32) << what;
            EXPECT_EQ(cudnn.grads.dq.dtype(), dtype) << what;
            const Tensor kernels_y = kernels.forward.y.to_device(Device::cpu);
            EXPECT_LE(worst_relative(cudnn.forward.y, kernels_y), 2e-2) << what;
            // Scores come from the same bf16 q, k with fp32 accumulation in both: the lse agrees far better.
            EXPECT_LE(worst_relative(cudnn.forward.lse, kernels.forward.lse.to_device(Device::cpu)), 1e-3) << what;
            EXPECT_LE(worst_relative(cudnn.grads.dq, kernels.grads.dq.to_device(Device::cpu)), 2e-2) << what;
            EXPECT_LE(worst_relative(cudnn.grads.dk, kernels.grads.dk.to_device(Device::cpu)), 2e-2) << what;
            EXPECT_LE(worst_relative(cudnn.grads.dv, kernels.grads.dv.to_device(Device::cpu)), 2e-2) << what;
            // automatic is cudnn here: the same bits.
            const CudaAttentionRun automatic = run_cuda_attention(inputs, spec, dtype, CudaAttentionBackend::automatic);
            EXPECT_TRUE(
                test::bitwise_equal(automatic.forward.y.to_device(Device::cpu), cudnn.forward.y.to_device(Device::cpu)))
                << what;
            ++compared;
        }
    }
    EXPECT_EQ(compared, 4);
}

// A copy of tensor (cuda) one element past the start of a larger buffer: a view at an odd offset, 2 or 4 bytes past
// 16-byte alignment, like rows() of a wider tensor.
Tensor odd_offset_view(const Tensor& tensor) {
    const Tensor storage = Tensor::empty({tensor.numel() + 1}, tensor.dtype(), Device::cuda);
    Tensor view = storage.rows(1, tensor.numel() + 1).reshape(tensor.shape());
    view.copy_from(tensor);
    return view;
}

// Views at an odd offset (no 16-byte vectors; cuDNN refuses them, so they go to it as aligned copies) give the same
// results as the aligned tensors (the same bits but for cuDNN's gradients), under automatic at a shape cuDNN takes and
// under the kernels.
TEST_F(CudaAttention, OddOffsetViewsGiveTheSameResultsAsAlignedTensors) {
    const AttentionSpec spec = {"h2kv1_t128_d64", 1, 2, 1, 128, 64};
    for (const DType dtype : {DType::bf16, DType::f32}) {
        const AttentionInputs inputs = attention_inputs(spec, DType::bf16, 970);
        const Tensor q = on_cuda(inputs.q, dtype), k = on_cuda(inputs.k, dtype), v = on_cuda(inputs.v, dtype);
        const Tensor dy = on_cuda(inputs.dy, dtype);
        const Tensor q_view = odd_offset_view(q), k_view = odd_offset_view(k), v_view = odd_offset_view(v);
        const Tensor dy_view = odd_offset_view(dy);
        EXPECT_NE(reinterpret_cast<std::uintptr_t>(q_view.raw_data()) % 16, 0u);
        for (const CudaAttentionBackend backend : {CudaAttentionBackend::automatic, CudaAttentionBackend::kernels}) {
            const std::string what = std::string(dtype_name(dtype)) + " " + cuda_attention_backend_name(backend);
            const AttentionResult aligned = cuda_attention_forward(q, k, v, 0.0, backend);
            const AttentionGrads aligned_grads = cuda_attention_backward(q, k, v, aligned, dy, 0.0, backend);
            AttentionResult viewed;
            AttentionGrads viewed_grads;
            ASSERT_NO_THROW(viewed = cuda_attention_forward(q_view, k_view, v_view, 0.0, backend)) << what;
            const AttentionResult viewed_forward{odd_offset_view(viewed.y), odd_offset_view(viewed.lse)};
            ASSERT_NO_THROW(viewed_grads =
                                cuda_attention_backward(q_view, k_view, v_view, viewed_forward, dy_view, 0.0, backend))
                << what;
            EXPECT_TRUE(test::bitwise_equal(aligned.y.to_device(Device::cpu), viewed.y.to_device(Device::cpu))) << what;
            EXPECT_TRUE(test::bitwise_equal(aligned.lse.to_device(Device::cpu), viewed.lse.to_device(Device::cpu)))
                << what;
            // cuDNN's backward may add with atomics (attention_cudnn.h), so its gradients agree to rounding only.
            const double tolerance = backend == CudaAttentionBackend::kernels ? 0.0 : 1e-2;
            EXPECT_LE(worst_relative(viewed_grads.dq, aligned_grads.dq.to_device(Device::cpu)), tolerance) << what;
            EXPECT_LE(worst_relative(viewed_grads.dk, aligned_grads.dk.to_device(Device::cpu)), tolerance) << what;
            EXPECT_LE(worst_relative(viewed_grads.dv, aligned_grads.dv.to_device(Device::cpu)), tolerance) << what;
        }
    }
}

TEST_F(CudaAttention, RefusalsNameTheOpAndTheReason) {
    const Tensor q = on_cuda(op_harness_random({1, 4, 8, 16}, 950), DType::f32);
    const Tensor kv = on_cuda(op_harness_random({1, 2, 8, 16}, 951), DType::f32);
    EXPECT_EQ(test::error_message([&] { cuda_attention_forward(q, kv, kv, 0.0, CudaAttentionBackend::cudnn, false); }),
              "cuda_attention_forward: the cudnn backend runs causal attention only");
    EXPECT_EQ(test::error_message([&] {
                  cuda_attention_forward(q, on_cuda(op_harness_random({1, 2, 7, 16}, 952), DType::f32), kv);
              }),
              "cuda_attention_forward: k has shape (1, 2, 7, 16), expected (1, 2, 8, 16)");
    const Tensor kv_bf16 = on_cuda(op_harness_random({1, 2, 8, 16}, 952), DType::bf16);
    EXPECT_EQ(test::error_message([&] { cuda_attention_forward(q, kv, kv_bf16); }),
              "cuda_attention_forward: v has dtype bf16, expected f32");
    const Tensor q3 = on_cuda(op_harness_random({1, 3, 8, 16}, 953), DType::f32);
    EXPECT_EQ(test::error_message([&] { cuda_attention_forward(q3, kv, kv); }),
              "cuda_attention_forward: 3 query heads are not a multiple of 2 KV heads");
    const Tensor wide = on_cuda(op_harness_random({1, 1, 4, 264}, 954), DType::f32);
    EXPECT_EQ(
        test::error_message([&] { cuda_attention_forward(wide, wide, wide, 0.0, CudaAttentionBackend::kernels); }),
        "cuda_attention_forward: head dim 264 exceeds 256, the most pgolf's attention kernels take");
    std::string reason;
    if (!cuda_cudnn_attention_available(&reason)) {
        EXPECT_EQ(test::error_message([&] { cuda_attention_forward(q, kv, kv, 0.0, CudaAttentionBackend::cudnn); }),
                  "cuda_attention_forward: the cudnn backend is not available: " + reason);
    } else {
        // A head dim of 4 is below what fused attention kernels take; if this cuDNN takes it, nothing to refuse.
        const std::string unsupported = cuda_cudnn_attention_unsupported_reason(1, 4, 2, 8, 4);
        const Tensor narrow_q = on_cuda(op_harness_random({1, 4, 8, 4}, 955), DType::f32);
        const Tensor narrow_kv = on_cuda(op_harness_random({1, 2, 8, 4}, 956), DType::f32);
        if (!unsupported.empty()) {
            EXPECT_EQ(test::error_message([&] {
                          cuda_attention_forward(narrow_q, narrow_kv, narrow_kv, 0.0, CudaAttentionBackend::cudnn);
                      }),
                      "cuda_attention_forward: the cudnn backend does not support this shape: " + unsupported);
            EXPECT_EQ(cuda_attention_resolve_backend(1, 4, 2, 8, 4), CudaAttentionBackend::kernels);
        }
    }
    const AttentionResult forward = cuda_attention_forward(q, kv, kv, 0.0, CudaAttentionBackend::kernels);
    EXPECT_EQ(test::error_message([&] {
                  cuda_attention_backward(q, kv, kv, AttentionResult{forward.y, forward.y}, forward.y);
              }),
              "cuda_attention_backward: lse has shape (1, 4, 8, 16), expected (1, 4, 8)");
    EXPECT_EQ(
        test::error_message([&] {
            cuda_attention_backward(q, kv, kv, forward, on_cuda(op_harness_random({1, 4, 8, 16}, 957), DType::bf16));
        }),
        "cuda_attention_backward: dy has dtype bf16, expected f32");
}

// --- no GPU needed -----------------------------------------------------------------------------------------------

TEST(CudaAttentionArguments, HostTensorsAreRefusedWithTheOpAndArgumentNamed) {
    const Tensor q = Tensor::zeros({1, 2, 4, 8});
    const Tensor kv = Tensor::zeros({1, 1, 4, 8});
    EXPECT_EQ(test::error_message([&] { cuda_attention_forward(q, kv, kv); }),
              "cuda_attention_forward: q is on cpu, expected cuda");
    EXPECT_EQ(test::error_message([&] {
                  cuda_attention_backward(q, kv, kv, AttentionResult{q, Tensor::zeros({1, 2, 4})}, q);
              }),
              "cuda_attention_backward: q is on cpu, expected cuda");
    EXPECT_EQ(test::error_message([&] { cuda_attention_forward(Tensor(), kv, kv); }),
              "cuda_attention_forward: q is undefined");
}

TEST(CudaAttentionArguments, BackendNamesAndResolution) {
    EXPECT_EQ(cuda_attention_backend_name(CudaAttentionBackend::automatic), "automatic");
    EXPECT_EQ(cuda_attention_backend_name(CudaAttentionBackend::cudnn), "cudnn");
    EXPECT_EQ(cuda_attention_backend_name(CudaAttentionBackend::kernels), "kernels");
    // automatic takes cuDNN exactly where it is available and supports the shape.
    const bool available = cuda_cudnn_attention_available();
    for (const AttentionSpec& spec : kernel_specs()) {
        const bool supported =
            cuda_cudnn_attention_unsupported_reason(spec.batch, spec.heads, spec.kv_heads, spec.seq_len, spec.head_dim)
                .empty();
        EXPECT_EQ(cuda_attention_resolve_backend(spec.batch, spec.heads, spec.kv_heads, spec.seq_len, spec.head_dim),
                  available && supported ? CudaAttentionBackend::cudnn : CudaAttentionBackend::kernels)
            << spec.name;
    }
}

}  // namespace
}  // namespace pgolf
