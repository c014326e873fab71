// CUDA kernels of SWA (f64 sums of the f32 weights, and their mean) and EMA (the f32 recursion): elementwise
// grid-stride loops over 16-byte groups of four floats where alignment allows, the arithmetic in averaging_math.h.
#include <string>
#include <type_traits>

#include "core/cuda/averaging.h"
#include "core/cuda/averaging_math.h"
#include "core/cuda/device_math.cuh"
#include "core/cuda/op_checks.h"

namespace pgolf {

namespace {

constexpr int kAveragingThreads = 256;
// Floats per group on the vector path: one 16-byte float4 (and two double2 of the f64 sums).
constexpr int kAveragingWidth = 4;

template <int W>
__device__ __forceinline__ void load_doubles(const double* base, std::int64_t i, double* out) {
    if constexpr (W == 1) {
        out[0] = base[i];
    } else {
        static_assert(W == kAveragingWidth, "W is 1 or 4");
        const double2 low = *reinterpret_cast<const double2*>(base + i);
        const double2 high = *reinterpret_cast<const double2*>(base + i + 2);
        out[0] = low.x;
        out[1] = low.y;
        out[2] = high.x;
        out[3] = high.y;
    }
}

template <int W>
__device__ __forceinline__ void store_doubles(double* base, std::int64_t i, const double* values) {
    if constexpr (W == 1) {
        base[i] = values[0];
    } else {
        static_assert(W == kAveragingWidth, "W is 1 or 4");
        *reinterpret_cast<double2*>(base + i) = make_double2(values[0], values[1]);
        *reinterpret_cast<double2*>(base + i + 2) = make_double2(values[2], values[3]);
    }
}

// sum, weight: (groups·W,).
template <int W>
__global__ void accumulate_kernel(double* __restrict__ sum, const float* __restrict__ weight, std::int64_t groups) {
    const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t group = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; group < groups;
         group += step) {
        float values[W];
        double sums[W];
        cuda_load_elements<W>(weight, group * W, values);
        load_doubles<W>(sum, group * W, sums);
#pragma unroll
        for (int k = 0; k < W; ++k) sums[k] = averaging_accumulate(sums[k], values[k]);
        store_doubles<W>(sum, group * W, sums);
    }
}

// out, sum: (groups·W,).
template <int W>
__global__ void mean_kernel(float* __restrict__ out, const double* __restrict__ sum, double count,
                            std::int64_t groups) {
    const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t group = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; group < groups;
         group += step) {
        double sums[W];
        float values[W];
        load_doubles<W>(sum, group * W, sums);
#pragma unroll
        for (int k = 0; k < W; ++k) values[k] = averaging_mean(sums[k], count);
        cuda_store_elements<W>(out, group * W, values);
    }
}

// average, weight: (groups·W,).
template <int W>
__global__ void ema_kernel(float* __restrict__ average, const float* __restrict__ weight, float decay,
                           float one_minus_decay, std::int64_t groups) {
    const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t group = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; group < groups;
         group += step) {
        float values[W];
        float averages[W];
        cuda_load_elements<W>(weight, group * W, values);
        cuda_load_elements<W>(average, group * W, averages);
#pragma unroll
        for (int k = 0; k < W; ++k) averages[k] = averaging_ema_step(averages[k], values[k], decay, one_minus_decay);
        cuda_store_elements<W>(average, group * W, averages);
    }
}

void check_pair(const Tensor& target, DType target_dtype, const char* target_name, const Tensor& source,
                DType source_dtype, const char* source_name, const char* op) {
    cuda_check_input(target, target_dtype, op, target_name);
    cuda_check_input(source, source_dtype, op, source_name);
    tensor_check_shape(source, target.shape(), op, source_name);
}

// Runs launch(W, groups) with W = 4 where the element count and every pointer allow 16-byte access, else 1.
template <typename Launch>
void dispatch_width(std::int64_t count, std::initializer_list<const void*> pointers, Launch&& launch) {
    if (cuda_can_vectorize<float>(count, pointers)) {
        launch(std::integral_constant<int, kAveragingWidth>{}, count / kAveragingWidth);
    } else {
        launch(std::integral_constant<int, 1>{}, count);
    }
}

}  // namespace

void cuda_accumulate_f64(Tensor& sum, const Tensor& weight) {
    const char* op = "cuda_accumulate_f64";
    check_pair(sum, DType::f64, "sum", weight, DType::f32, "weight", op);
    if (sum.numel() == 0) return;
    double* sums = cuda_pointer<double>(sum);
    const float* values = cuda_pointer<float>(weight);
    dispatch_width(sum.numel(), {sums, values}, [&](auto width, std::int64_t groups) {
        constexpr int W = decltype(width)::value;
        accumulate_kernel<W>
            <<<cuda_grid_size(groups, kAveragingThreads), kAveragingThreads, 0, cuda_stream()>>>(sums, values, groups);
        PGOLF_CUDA_CHECK_LAUNCH();
    });
}

void cuda_mean_from_f64(Tensor& out, const Tensor& sum, std::int64_t count) {
    const char* op = "cuda_mean_from_f64";
    check_pair(out, DType::f32, "out", sum, DType::f64, "sum", op);
    if (count <= 0) throw Error(std::string(op) + ": count must be positive (got " + std::to_string(count) + ")");
    if (out.numel() == 0) return;
    float* values = cuda_pointer<float>(out);
    const double* sums = cuda_pointer<double>(sum);
    dispatch_width(out.numel(), {values, sums}, [&](auto width, std::int64_t groups) {
        constexpr int W = decltype(width)::value;
        mean_kernel<W><<<cuda_grid_size(groups, kAveragingThreads), kAveragingThreads, 0, cuda_stream()>>>(
            values, sums, static_cast<double>(count), groups);
        PGOLF_CUDA_CHECK_LAUNCH();
    });
}

void cuda_ema_update(Tensor& average, const Tensor& weight, double decay) {
    const char* op = "cuda_ema_update";
    check_pair(average, DType::f32, "average", weight, DType::f32, "weight", op);
    if (!(decay >= 0.0 && decay <= 1.0)) {
        throw Error(std::string(op) + ": decay must lie in [0, 1] (got " + std::to_string(decay) + ")");
    }
    if (average.numel() == 0) return;
    float* averages = cuda_pointer<float>(average);
    const float* values = cuda_pointer<float>(weight);
    const float d = averaging_ema_decay(decay);
    const float one_minus_d = averaging_ema_weight(decay);
    dispatch_width(average.numel(), {averages, values}, [&](auto width, std::int64_t groups) {
        constexpr int W = decltype(width)::value;
        ema_kernel<W><<<cuda_grid_size(groups, kAveragingThreads), kAveragingThreads, 0, cuda_stream()>>>(
            averages, values, d, one_minus_d, groups);
        PGOLF_CUDA_CHECK_LAUNCH();
    });
}

}  // namespace pgolf
