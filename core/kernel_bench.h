// `pgolf bench kernels`: the engine's ops at the golf shapes on one device, each timed and set against references
// measured in the same run: a plain copy of the same bytes for memory-bound ops, the vendor GEMM (BLAS sgemm on the
// cpu, cublasGemmEx on cuda) at the same shape for matrix products, and on cuda the H200 ceilings of
// PERFORMANCE.md (796 TFLOP/s bf16 GEMM, 4.3 TB/s device copy).
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pgolf {

// The H200's measured practical ceilings (PERFORMANCE.md, 2026-11-29).
inline constexpr double kH200GemmFlopsPerSecond = 796e12;
inline constexpr double kH200CopyBytesPerSecond = 4.3e12;

struct KernelBenchOptions {
    Device device = Device::cpu;
    std::int64_t tokens = 0;    // rows of the activation ops; 0: 65,536 on cuda (one micro-batch), 2,048 on cpu
    double min_seconds = 0.05;  // each op is repeated until it has run this long and at least min_iterations times
    int min_iterations = 3;
    std::string filter;  // run only ops whose name contains this text
};

// One op to time. bytes counts every read and write at the dtypes used; flops only for matrix products.
struct KernelBenchCase {
    std::string op;
    std::string shape;
    std::string dtype;
    double bytes = 0.0;
    double flops = 0.0;
    std::function<void()> run;
    // The same work done by the reference (a copy of `bytes`, or the vendor GEMM); empty when there is none.
    std::function<void()> reference;
    // Or the reference's seconds per call, when it times itself (cuBLAS's own GEMM benchmark).
    std::function<double()> reference_seconds;
    std::string reference_name;  // "copy", "sgemm", "cublasGemmEx"
};

struct KernelBenchRow {
    std::string op;
    std::string shape;
    std::string dtype;
    double seconds = 0.0;  // per call
    double bytes = 0.0;
    double flops = 0.0;
    double reference_seconds = 0.0;  // per call of the reference; 0 when none
    std::string reference_name;
};

std::vector<KernelBenchRow> kernel_bench_run(const KernelBenchOptions& options);

// The CUDA backend's acceptance (issue 10): GEMMs reach at least 80% of the vendor GEMM's rate at the same shape, and
// memory-bound ops at least 60% of the copy bandwidth, both measured in the same run.
inline constexpr double kKernelBenchGemmShareRequired = 0.8;
inline constexpr double kKernelBenchMemoryShareRequired = 0.6;
// One line per row below its share of its reference ("rmsnorm forward: 41.0% of copy, needs 60%"); rows without a
// reference are not judged. Empty when every row meets it.
std::vector<std::string> kernel_bench_shortfalls(const std::vector<KernelBenchRow>& rows, double gemm_share,
                                                 double memory_share);
// Columns: op, shape, dtype, time, rate (GB/s or TFLOP/s), % of the device ceiling (cuda only), % of the reference.
std::string kernel_bench_table(const std::vector<KernelBenchRow>& rows, Device device);
std::string kernel_bench_json(const std::vector<KernelBenchRow>& rows, Device device);

// "2048x512"
std::string kernel_bench_shape_text(std::initializer_list<std::int64_t> extents);

// The matrix products both devices time, at t token rows: c (t, n) = x (t, k) · w (n, k)ᵀ. The seeds' q/out
// projections, K/V at 4 KV heads, the baseline MLP up/down (2×512), the tied head over vocab 1024, S1's d 1024.
struct KernelBenchGemm {
    const char* name;
    std::int64_t n;
    std::int64_t k;
};
inline constexpr KernelBenchGemm kKernelBenchGemms[] = {
    {"linear q/out 512", 512, 512},         {"linear kv 512->256", 256, 512},
    {"linear mlp up 512->1024", 1024, 512}, {"linear mlp down 1024->512", 512, 1024},
    {"linear head 512->1024", 1024, 512},   {"linear d1024 1024->1024", 1024, 1024},
};

// A case for one of those products at t rows, its name, shape, bytes and FLOPs filled in; run and the reference are
// the device's to set.
KernelBenchCase kernel_bench_gemm_case(const KernelBenchGemm& gemm, std::int64_t t, const std::string& dtype,
                                       double element_bytes);

// Seconds per call of run on the cpu: repeated until min_seconds and min_iterations, after one unmeasured call.
double kernel_bench_time_cpu(const std::function<void()>& run, const KernelBenchOptions& options);

#ifdef PGOLF_WITH_CUDA
// The CUDA cases at options.tokens rows (core/cuda/bench_cases.cpp), and their timer (CUDA events on the current
// stream, after one unmeasured call).
std::vector<KernelBenchCase> cuda_kernel_bench_cases(std::int64_t tokens);
double cuda_kernel_bench_time(const std::function<void()>& run, const KernelBenchOptions& options);
#endif

}  // namespace pgolf
