// The CUDA cases of `pgolf bench kernels`: every op of core/cuda at the golf shapes (one micro-batch of `tokens` rows,
// d 512, MLP 1024, vocab 1024, the baseline's 17,059,912 parameters), bf16 activations and f32 master weights and
// optimizer state as the training step will hold them; and the timer (CUDA events).
#include <algorithm>
#include <cmath>
#include <string>

#include "core/cuda/convert.h"
#include "core/cuda/elementwise.h"
#include "core/cuda/embedding.h"
#include "core/cuda/fake_quant.h"
#include "core/cuda/gemm.h"
#include "core/cuda/loss.h"
#include "core/cuda/norm.h"
#include "core/cuda/optim_update.h"
#include "core/cuda/reduce.h"
#include "core/cuda/rope.h"
#include "core/cuda/runtime.h"
#include "core/kernel_bench.h"
#include "core/text_format.h"

namespace pgolf {

namespace {

constexpr double kBf16 = 2.0;
constexpr double kF32 = 4.0;
constexpr std::int64_t kBaselineParameters = 17'059'912;

Tensor device_filled(const Shape& shape, DType dtype, double value) {
    Tensor tensor = Tensor::empty(shape, dtype, Device::cuda);
    cuda_fill(tensor, value);
    return tensor;
}

// Ids spread over the vocabulary (i·7919 mod vocab), made on the host and uploaded once.
Tensor device_ids(std::int64_t count, std::int64_t vocab) {
    Tensor ids = Tensor::empty({count}, DType::i64);
    for (std::int64_t i = 0; i < count; ++i) ids.data<std::int64_t>()[i] = (i * 7919) % vocab;
    return ids.to_device(Device::cuda);
}

}  // namespace

std::vector<KernelBenchCase> cuda_kernel_bench_cases(std::int64_t tokens) {
    const std::int64_t t = tokens;
    const std::int64_t d = 512;
    const std::int64_t hidden = 2 * d;
    std::vector<KernelBenchCase> cases;
    auto add_case = [&](std::string op, std::string shape, std::string dtype, double bytes, std::function<void()> run) {
        KernelBenchCase bench;
        bench.op = std::move(op);
        bench.shape = std::move(shape);
        bench.dtype = std::move(dtype);
        bench.bytes = bytes;
        bench.run = std::move(run);
        cases.push_back(std::move(bench));
    };

    const Tensor x = device_filled({t, d}, DType::bf16, 0.5);
    const Tensor x0 = device_filled({t, d}, DType::bf16, -0.25);
    const Tensor dy = device_filled({t, d}, DType::bf16, 0.125);
    Tensor copy_target = Tensor::empty({t, d}, DType::bf16, Device::cuda);
    add_case("copy", kernel_bench_shape_text({t, d}), "bf16", 2 * kBf16 * t * d,
             [x, copy_target]() mutable { copy_target.copy_from(x); });

    const RmsNormResult norm = cuda_rmsnorm_forward(x);
    add_case("rmsnorm forward", kernel_bench_shape_text({t, d}), "bf16", kBf16 * 2 * t * d + kF32 * t,
             [x] { (void)cuda_rmsnorm_forward(x); });
    add_case("rmsnorm backward", kernel_bench_shape_text({t, d}), "bf16", kBf16 * 3 * t * d + kF32 * t,
             [x, norm, dy] { (void)cuda_rmsnorm_backward(x, norm.rstd, dy); });

    const Tensor h = device_filled({t, hidden}, DType::bf16, 0.3);
    const Tensor dh = device_filled({t, hidden}, DType::bf16, 0.1);
    add_case("relu_squared forward", kernel_bench_shape_text({t, hidden}), "bf16", kBf16 * 2 * t * hidden,
             [h] { (void)cuda_relu_squared(h); });
    add_case("relu_squared backward", kernel_bench_shape_text({t, hidden}), "bf16", kBf16 * 3 * t * hidden,
             [h, dh] { (void)cuda_relu_squared_backward(h, dh); });
    add_case("leaky_relu_squared forward", kernel_bench_shape_text({t, hidden}), "bf16", kBf16 * 2 * t * hidden,
             [h] { (void)cuda_leaky_relu_squared(h, 0.5); });

    const Tensor mix = device_filled({2, d}, DType::bf16, 0.7);
    const Tensor gain = device_filled({d}, DType::bf16, 0.9);
    add_case("residual mix forward", kernel_bench_shape_text({t, d}), "bf16", kBf16 * 3 * t * d,
             [x, x0, mix] { (void)cuda_residual_mix(x, x0, mix); });
    add_case("residual mix backward", kernel_bench_shape_text({t, d}), "bf16", kBf16 * 5 * t * d,
             [x, x0, mix, dy] { (void)cuda_residual_mix_backward(x, x0, mix, dy); });
    add_case("residual add scaled forward", kernel_bench_shape_text({t, d}), "bf16", kBf16 * 3 * t * d,
             [x, x0, gain] { (void)cuda_residual_add_scaled(x, x0, gain); });

    const std::int64_t sequences = std::max<std::int64_t>(1, t / 1024);
    const Tensor heads = device_filled({sequences, 8, 1024, 64}, DType::bf16, 0.5);
    const RopeSpec rope;
    add_case("rope forward", kernel_bench_shape_text({sequences, 8, 1024, 64}), "bf16", kBf16 * 2 * heads.numel(),
             [heads, rope] { (void)cuda_rope_forward(heads, rope); });

    const Tensor table = device_filled({1024, d}, DType::bf16, 0.02);
    const Tensor ids = device_ids(t, 1024);
    add_case("embedding forward", kernel_bench_shape_text({t, d}) + " of 1024", "bf16", kBf16 * 2 * t * d + 8.0 * t,
             [table, ids] { (void)cuda_embedding_forward(table, ids); });
    add_case("embedding backward", kernel_bench_shape_text({t, d}) + " into 1024", "bf16",
             kBf16 * t * d + kF32 * 1024 * d + 8.0 * t, [dy, ids] { (void)cuda_embedding_backward(dy, ids, 1024); });

    const Tensor logits = device_filled({t, 1024}, DType::bf16, 1.5);
    const Tensor targets = device_ids(t, 1024);
    add_case("softcap cross-entropy fused", kernel_bench_shape_text({t, 1024}), "bf16", kBf16 * 2 * t * 1024 + 12.0 * t,
             [logits, targets, t] { (void)cuda_softcap_cross_entropy_fused(logits, targets, 30.0, 1.0 / t); });
    add_case("softcap cross-entropy forward", kernel_bench_shape_text({t, 1024}), "bf16", kBf16 * t * 1024 + 12.0 * t,
             [logits, targets] { (void)cuda_softcap_cross_entropy_forward(logits, targets, 30.0); });

    const std::int64_t parameters = kBaselineParameters;
    const Tensor grads = device_filled({parameters}, DType::f32, 1e-3);
    add_case("global grad norm", format_count(parameters), "f32", kF32 * parameters,
             [grads] { (void)cuda_global_norm({grads}); });
    Tensor weights = device_filled({parameters}, DType::f32, 0.01);
    Tensor exp_avg = device_filled({parameters}, DType::f32, 0.0);
    Tensor exp_avg_sq = device_filled({parameters}, DType::f32, 0.0);
    AdamUpdateOptions adam;
    adam.decoupled_weight_decay = true;
    adam.weight_decay = 0.01;
    add_case("adamw update", format_count(parameters), "f32", kF32 * 7 * parameters,
             [weights, grads, exp_avg, exp_avg_sq, adam]() mutable {
                 cuda_adam_update(weights, grads, exp_avg, exp_avg_sq, 10, adam);
             });
    Tensor momentum = device_filled({parameters}, DType::f32, 0.0);
    SgdUpdateOptions sgd;
    sgd.momentum = 0.9;
    add_case("sgd momentum update", format_count(parameters), "f32", kF32 * 5 * parameters,
             [weights, grads, momentum, sgd]() mutable { cuda_sgd_update(weights, grads, momentum, sgd, false); });
    Tensor weights_bf16 = Tensor::empty({parameters}, DType::bf16, Device::cuda);
    add_case("convert f32->bf16 weights", format_count(parameters), "f32", (kF32 + kBf16) * parameters,
             [weights_bf16, weights]() mutable { cuda_convert_into(weights_bf16, weights); });

    const Tensor matrix = device_filled({512, 1536}, DType::f32, 0.05);
    add_case("fake quant rows int6", kernel_bench_shape_text({512, 1536}), "f32", kF32 * 2 * 512 * 1536,
             [matrix] { (void)cuda_fake_quantize_rows(matrix, FakeQuantSpec{}); });

    for (const KernelBenchGemm& gemm : kKernelBenchGemms) {
        const Tensor input = device_filled({t, gemm.k}, DType::bf16, 0.01);
        const Tensor w = device_filled({gemm.n, gemm.k}, DType::bf16, 0.01);
        KernelBenchCase bench = kernel_bench_gemm_case(gemm, t, "bf16", kBf16);
        bench.run = [input, w] { (void)cuda_linear_forward(input, w); };
        const std::int64_t n = gemm.n;
        const std::int64_t k = gemm.k;
        // The same product as cuBLAS's own plain call: c (t, n) = input (t, k) · w (n, k)ᵀ.
        bench.reference_seconds = [t, n, k] { return cuda_gemm_cublas_reference_ms(t, n, k, false, true, 20) / 1e3; };
        bench.reference_name = "cublasGemmEx";
        cases.push_back(std::move(bench));
    }
    return cases;
}

double cuda_kernel_bench_time(const std::function<void()>& run, const KernelBenchOptions& options) {
    const StreamHandle stream = cuda_current_stream();
    CudaEvent start;
    CudaEvent end;
    run();  // unmeasured: caches, plans and allocator blocks
    start.record(stream);
    run();
    end.record(stream);
    end.synchronize();
    const double first = std::max(1e-6, CudaEvent::elapsed_ms(start, end) / 1e3);
    const int iterations =
        std::max(options.min_iterations, static_cast<int>(std::min(10000.0, std::ceil(options.min_seconds / first))));
    start.record(stream);
    for (int i = 0; i < iterations; ++i) run();
    end.record(stream);
    end.synchronize();
    return CudaEvent::elapsed_ms(start, end) / 1e3 / iterations;
}

}  // namespace pgolf
