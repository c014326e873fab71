// The CPU cases of `pgolf bench kernels`, the timing loop and the table (see kernel_bench.h).
#include "core/kernel_bench.h"

#include <cblas.h>

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/device.h"
#include "core/error.h"
#include "core/ops/elementwise.h"
#include "core/ops/embedding.h"
#include "core/ops/fake_quant.h"
#include "core/ops/linear.h"
#include "core/ops/loss.h"
#include "core/ops/norm.h"
#include "core/ops/rope.h"
#include "core/text_format.h"

namespace pgolf {

namespace {

constexpr double kF32 = 4.0;

Tensor bench_random(const Shape& shape, std::uint64_t seed, double scale = 1.0) {
    Tensor tensor = Tensor::empty(shape, DType::f32);
    float* values = tensor.data<float>();
    std::uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
    for (std::int64_t i = 0; i < tensor.numel(); ++i) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        values[i] = static_cast<float>(scale * (static_cast<double>(state >> 11) / 9007199254740992.0 * 2.0 - 1.0));
    }
    return tensor;
}

Tensor bench_ids(std::int64_t count, std::int64_t vocab) {
    Tensor ids = Tensor::empty({count}, DType::i64);
    for (std::int64_t i = 0; i < count; ++i) ids.data<std::int64_t>()[i] = (i * 7919) % vocab;
    return ids;
}

std::vector<KernelBenchCase> cpu_kernel_bench_cases(std::int64_t tokens) {
    const std::int64_t t = tokens;
    const std::int64_t d = 512;
    std::vector<KernelBenchCase> cases;
    auto add_case = [&](std::string op, std::string shape, double bytes, double flops, std::function<void()> run) {
        KernelBenchCase bench;
        bench.op = std::move(op);
        bench.shape = std::move(shape);
        bench.dtype = "f32";
        bench.bytes = bytes;
        bench.flops = flops;
        bench.run = std::move(run);
        cases.push_back(std::move(bench));
    };

    const Tensor x = bench_random({t, d}, 1);
    const Tensor x0 = bench_random({t, d}, 2);
    const Tensor dy = bench_random({t, d}, 3);
    Tensor copy_target = Tensor::empty({t, d}, DType::f32);
    add_case("copy", kernel_bench_shape_text({t, d}), 2 * kF32 * t * d, 0,
             [x, copy_target]() mutable { std::memcpy(copy_target.raw_data(), x.raw_data(), x.nbytes()); });

    const RmsNormResult norm = rmsnorm_forward(x);
    add_case("rmsnorm forward", kernel_bench_shape_text({t, d}), kF32 * (2.0 * t * d + t), 0,
             [x] { (void)rmsnorm_forward(x); });
    add_case("rmsnorm backward", kernel_bench_shape_text({t, d}), kF32 * (3.0 * t * d + t), 0,
             [x, norm, dy] { (void)rmsnorm_backward(x, norm.rstd, dy); });

    const Tensor hidden = bench_random({t, 2 * d}, 4);
    const Tensor dhidden = bench_random({t, 2 * d}, 5);
    add_case("relu_squared forward", kernel_bench_shape_text({t, 2 * d}), 2 * kF32 * t * 2 * d, 0,
             [hidden] { (void)relu_squared(hidden); });
    add_case("relu_squared backward", kernel_bench_shape_text({t, 2 * d}), 3 * kF32 * t * 2 * d, 0,
             [hidden, dhidden] { (void)relu_squared_backward(hidden, dhidden); });
    add_case("leaky_relu_squared forward", kernel_bench_shape_text({t, 2 * d}), 2 * kF32 * t * 2 * d, 0,
             [hidden] { (void)leaky_relu_squared(hidden, 0.5); });

    const Tensor mix0 = bench_random({d}, 6);
    const Tensor mix1 = bench_random({d}, 7);
    add_case("residual mix forward (unfused)", kernel_bench_shape_text({t, d}), 3 * kF32 * t * d, 0,
             [x, x0, mix0, mix1] { (void)pgolf::add(mul_broadcast(x, mix0, -1), mul_broadcast(x0, mix1, -1)); });

    const std::int64_t sequences = std::max<std::int64_t>(1, t / 1024);
    const Tensor heads = bench_random({sequences, 8, 1024, 64}, 8);
    RopeSpec rope;
    add_case("rope forward", kernel_bench_shape_text({sequences, 8, 1024, 64}), 2 * kF32 * heads.numel(), 0,
             [heads, rope] { (void)rope_forward(heads, rope); });

    const Tensor table = bench_random({1024, d}, 9);
    const Tensor ids = bench_ids(t, 1024);
    add_case("embedding forward", kernel_bench_shape_text({t, d}) + " of 1024", 2 * kF32 * t * d + 8.0 * t, 0,
             [table, ids] { (void)embedding_forward(table, ids); });
    add_case("embedding backward", kernel_bench_shape_text({t, d}) + " into 1024", kF32 * (t * d + 1024 * d) + 8.0 * t,
             0, [dy, ids] { (void)embedding_backward(dy, ids, 1024); });

    const Tensor logits = bench_random({t, 1024}, 10, 5.0);
    const Tensor targets = bench_ids(t, 1024);
    const Tensor dnll = Tensor::full({t}, 1.0 / static_cast<double>(t));
    add_case("softcap cross-entropy forward", kernel_bench_shape_text({t, 1024}), kF32 * t * 1024 + 12.0 * t, 0,
             [logits, targets] { (void)softcap_cross_entropy_forward(logits, targets); });
    add_case("softcap cross-entropy backward", kernel_bench_shape_text({t, 1024}), 2 * kF32 * t * 1024 + 12.0 * t, 0,
             [logits, targets, dnll] { (void)softcap_cross_entropy_backward(logits, targets, dnll); });

    const Tensor parameters = bench_random({17'059'912 / 8, 8}, 11);  // the baseline's parameter count
    add_case("global grad norm", "17,059,912", kF32 * 17'059'912, 0, [parameters] { (void)global_norm({parameters}); });

    const Tensor weight = bench_random({512, 1536}, 12, 0.05);
    add_case("fake quant rows int6", kernel_bench_shape_text({512, 1536}), 2 * kF32 * 512 * 1536, 0,
             [weight] { (void)fake_quantize_rows(weight, FakeQuantSpec{}); });

    for (const KernelBenchGemm& gemm : kKernelBenchGemms) {
        const Tensor input = bench_random({t, gemm.k}, 13);
        const Tensor w = bench_random({gemm.n, gemm.k}, 14, 0.05);
        KernelBenchCase bench = kernel_bench_gemm_case(gemm, t, "f32", kF32);
        bench.run = [input, w] { (void)linear_forward(input, w); };
        Tensor out = Tensor::empty({t, gemm.n}, DType::f32);
        const std::int64_t n = gemm.n;
        const std::int64_t k = gemm.k;
        bench.reference = [input, w, out, t, n, k]() mutable {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(t), static_cast<int>(n),
                        static_cast<int>(k), 1.0f, input.data<float>(), static_cast<int>(k), w.data<float>(),
                        static_cast<int>(k), 0.0f, out.data<float>(), static_cast<int>(n));
        };
        bench.reference_name = "sgemm";
        cases.push_back(std::move(bench));
    }
    return cases;
}

double kernel_bench_rate(const KernelBenchRow& row) {
    return row.flops > 0 ? row.flops / row.seconds : row.bytes / row.seconds;
}

}  // namespace

std::string kernel_bench_shape_text(std::initializer_list<std::int64_t> extents) {
    std::string text;
    for (const std::int64_t extent : extents) text += (text.empty() ? "" : "x") + std::to_string(extent);
    return text;
}

KernelBenchCase kernel_bench_gemm_case(const KernelBenchGemm& gemm, std::int64_t t, const std::string& dtype,
                                       double element_bytes) {
    KernelBenchCase bench;
    bench.op = gemm.name;
    bench.shape = kernel_bench_shape_text({t, gemm.k}) + " . " + kernel_bench_shape_text({gemm.n, gemm.k}) + "^T";
    bench.dtype = dtype;
    bench.bytes = element_bytes * static_cast<double>(t * gemm.k + gemm.n * gemm.k + t * gemm.n);
    bench.flops = 2.0 * static_cast<double>(t * gemm.k * gemm.n);
    return bench;
}

double kernel_bench_time_cpu(const std::function<void()>& run, const KernelBenchOptions& options) {
    run();
    int iterations = 0;
    const auto start = std::chrono::steady_clock::now();
    double elapsed = 0.0;
    while (iterations < options.min_iterations || elapsed < options.min_seconds) {
        run();
        ++iterations;
        elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    return elapsed / iterations;
}

std::vector<KernelBenchRow> kernel_bench_run(const KernelBenchOptions& options) {
    device_require(options.device);
    const bool cuda = options.device == Device::cuda;
    const std::int64_t tokens = options.tokens > 0 ? options.tokens : (cuda ? 65'536 : 2'048);
    if (tokens % 1024 != 0)
        throw Error("bench kernels: --tokens must be a multiple of 1,024, not " + std::to_string(tokens));
    std::vector<KernelBenchCase> cases;
    std::function<double(const std::function<void()>&)> time;
    if (cuda) {
#ifdef PGOLF_WITH_CUDA
        cases = cuda_kernel_bench_cases(tokens);
        time = [&options](const std::function<void()>& run) { return cuda_kernel_bench_time(run, options); };
#endif
    } else {
        cases = cpu_kernel_bench_cases(tokens);
        time = [&options](const std::function<void()>& run) { return kernel_bench_time_cpu(run, options); };
    }
    std::vector<KernelBenchRow> rows;
    double copy_bytes_per_second = 0.0;
    for (const KernelBenchCase& bench : cases) {
        const bool is_copy = bench.op == "copy";
        if (!is_copy && !options.filter.empty() && bench.op.find(options.filter) == std::string::npos) continue;
        KernelBenchRow row{bench.op,    bench.shape, bench.dtype, time(bench.run),
                           bench.bytes, bench.flops, 0.0,         bench.reference_name};
        if (is_copy) copy_bytes_per_second = row.bytes / row.seconds;
        if (bench.reference_seconds) {
            row.reference_seconds = bench.reference_seconds();
        } else if (bench.reference) {
            row.reference_seconds = time(bench.reference);
        } else if (row.flops == 0 && copy_bytes_per_second > 0) {
            // Memory-bound: what a plain copy moving the same bytes takes at the bandwidth measured above.
            row.reference_seconds = row.bytes / copy_bytes_per_second;
            row.reference_name = "copy";
        }
        rows.push_back(row);
    }
    return rows;
}

std::vector<std::string> kernel_bench_shortfalls(const std::vector<KernelBenchRow>& rows, double gemm_share,
                                                 double memory_share) {
    std::vector<std::string> shortfalls;
    for (const KernelBenchRow& row : rows) {
        if (row.reference_seconds <= 0) continue;
        const double share = row.reference_seconds / row.seconds;
        const double required = row.flops > 0 ? gemm_share : memory_share;
        if (share < required) {
            shortfalls.push_back(row.op + ": " + format_fixed(100.0 * share, 1) + "% of " + row.reference_name +
                                 ", needs " + format_fixed(100.0 * required, 0) + "%");
        }
    }
    return shortfalls;
}

std::string kernel_bench_table(const std::vector<KernelBenchRow>& rows, Device device) {
    const bool cuda = device == Device::cuda;
    std::ostringstream out;
    char line[320];
    std::snprintf(line, sizeof line, "%-32s %-26s %-5s %11s %14s %9s %14s\n", "op", "shape", "dtype", "time", "rate",
                  cuda ? "% ceiling" : "", "% reference");
    out << line;
    for (const KernelBenchRow& row : rows) {
        const double rate = kernel_bench_rate(row);
        const bool gemm = row.flops > 0;
        const std::string rate_text =
            gemm ? format_fixed(rate / 1e12, 2) + " TFLOP/s" : format_fixed(rate / 1e9, 1) + " GB/s";
        std::string ceiling_text;
        if (cuda) {
            ceiling_text =
                format_fixed(100.0 * rate / (gemm ? kH200GemmFlopsPerSecond : kH200CopyBytesPerSecond), 1) + "%";
        }
        const std::string reference_text =
            row.reference_seconds > 0
                ? format_fixed(100.0 * row.reference_seconds / row.seconds, 1) + "% " + row.reference_name
                : "";
        std::snprintf(line, sizeof line, "%-32s %-26s %-5s %8.1f us %14s %9s %14s\n", row.op.c_str(), row.shape.c_str(),
                      row.dtype.c_str(), row.seconds * 1e6, rate_text.c_str(), ceiling_text.c_str(),
                      reference_text.c_str());
        out << line;
    }
    return out.str();
}

std::string kernel_bench_json(const std::vector<KernelBenchRow>& rows, Device device) {
    nlohmann::json json = nlohmann::json::array();
    for (const KernelBenchRow& row : rows) {
        nlohmann::json entry = {
            {"op", row.op},           {"shape", row.shape}, {"dtype", row.dtype}, {"device", device_name(device)},
            {"seconds", row.seconds}, {"bytes", row.bytes}, {"flops", row.flops}};
        if (row.reference_seconds > 0) {
            entry["reference"] = row.reference_name;
            entry["reference_seconds"] = row.reference_seconds;
        }
        json.push_back(entry);
    }
    return json.dump(2) + "\n";
}

}  // namespace pgolf
