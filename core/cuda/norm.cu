// CUDA RMSNorm kernels: one block per row (or one warp per row when a row is at most 32 vectors), the row's sum of
// squares (forward) or dy·x (backward) reduced in fp32 in a fixed order, the rest of the arithmetic in norm_math.h.
#include <algorithm>
#include <string>

#include "core/cuda/device_math.cuh"
#include "core/cuda/norm.h"
#include "core/cuda/norm_math.h"
#include "core/cuda/op_checks.h"

namespace pgolf {

namespace {

// Sum over the threads that share a row: the warp (blockDim.x == 32, blockDim.y rows per block) or the whole block
// (blockDim.y == 1). Every thread of the row gets the total.
__device__ __forceinline__ float row_sum(float value, float* scratch) {
    return blockDim.x == 32 ? cuda_warp_sum(value) : cuda_block_sum(value, scratch);
}

// x, y: (rows, d), rstd: (rows,); W elements per load, W divides d.
template <typename T, int W>
__global__ void rmsnorm_forward_kernel(const T* x, T* y, float* rstd, std::int64_t rows, std::int64_t d, float eps,
                                       float factor) {
    __shared__ float scratch[32];
    const std::int64_t groups = d / W;
    const std::int64_t row_step = static_cast<std::int64_t>(gridDim.x) * blockDim.y;
    for (std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * blockDim.y + threadIdx.y; row < rows;
         row += row_step) {
        const T* in = x + row * d;
        float squares = 0.0f;
        for (std::int64_t group = threadIdx.x; group < groups; group += blockDim.x) {
            float values[W];
            cuda_load_elements<W>(in, group * W, values);
#pragma unroll
            for (int k = 0; k < W; ++k) squares += values[k] * values[k];
        }
        const float inverse = hd_rmsnorm_rstd(row_sum(squares, scratch), d, eps);
        if (threadIdx.x == 0) rstd[row] = inverse;
        const float scale = hd_rmsnorm_row_scale(inverse, factor);
        T* out = y + row * d;
        for (std::int64_t group = threadIdx.x; group < groups; group += blockDim.x) {
            float values[W];
            cuda_load_elements<W>(in, group * W, values);
#pragma unroll
            for (int k = 0; k < W; ++k) values[k] = hd_rmsnorm_output(values[k], scale);
            cuda_store_elements<W>(out, group * W, values);
        }
    }
}

// x, dy, dx: (rows, d), rstd: (rows,).
template <typename T, int W>
__global__ void rmsnorm_backward_kernel(const T* x, const float* rstd, const T* dy, T* dx, std::int64_t rows,
                                        std::int64_t d, float factor) {
    __shared__ float scratch[32];
    const std::int64_t groups = d / W;
    const std::int64_t row_step = static_cast<std::int64_t>(gridDim.x) * blockDim.y;
    for (std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * blockDim.y + threadIdx.y; row < rows;
         row += row_step) {
        const T* x_row = x + row * d;
        const T* dy_row = dy + row * d;
        float dot = 0.0f;
        for (std::int64_t group = threadIdx.x; group < groups; group += blockDim.x) {
            float values[W];
            float gradient[W];
            cuda_load_elements<W>(x_row, group * W, values);
            cuda_load_elements<W>(dy_row, group * W, gradient);
#pragma unroll
            for (int k = 0; k < W; ++k) dot += gradient[k] * values[k];
        }
        dot = row_sum(dot, scratch);
        const float inverse = rstd[row];
        const float outer = hd_rmsnorm_row_scale(inverse, factor);
        const float inner = hd_rmsnorm_gradient_inner(inverse, dot, d);
        T* out = dx + row * d;
        for (std::int64_t group = threadIdx.x; group < groups; group += blockDim.x) {
            float values[W];
            float gradient[W];
            cuda_load_elements<W>(x_row, group * W, values);
            cuda_load_elements<W>(dy_row, group * W, gradient);
#pragma unroll
            for (int k = 0; k < W; ++k) values[k] = hd_rmsnorm_gradient(values[k], gradient[k], outer, inner);
            cuda_store_elements<W>(out, group * W, values);
        }
    }
}

struct RowLaunch {
    dim3 grid;
    dim3 block;
};

// Rows of at most 32 load groups get one warp each (8 rows per block); longer rows one block of up to 512 threads.
RowLaunch row_launch(std::int64_t rows, std::int64_t groups) {
    constexpr std::int64_t kMaxBlocks = 1 << 20;  // grid-stride over rows beyond this
    RowLaunch launch;
    if (groups <= 32) {
        constexpr unsigned int kRowsPerBlock = 8;
        launch.block = dim3(32, kRowsPerBlock);
        launch.grid = dim3(static_cast<unsigned int>(std::min(kMaxBlocks, (rows + kRowsPerBlock - 1) / kRowsPerBlock)));
    } else {
        const std::int64_t threads = std::min<std::int64_t>(512, (groups + 31) / 32 * 32);
        launch.block = dim3(static_cast<unsigned int>(threads));
        launch.grid = dim3(static_cast<unsigned int>(std::min(kMaxBlocks, rows)));
    }
    return launch;
}

Shape row_shape(const Tensor& x) { return Shape(x.shape().begin(), x.shape().end() - 1); }

}  // namespace

RmsNormResult cuda_rmsnorm_forward(const Tensor& x, double eps, double factor) {
    const char* op = "cuda_rmsnorm_forward";
    cuda_check_float_input(x, op, "x");
    if (x.dim() == 0) throw Error(std::string(op) + ": x has shape (), expected (..., D)");
    const std::int64_t d = x.size(-1);
    const std::int64_t rows = d == 0 ? 0 : x.numel() / d;
    RmsNormResult result;
    result.y = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
    result.rstd = Tensor::empty(row_shape(x), DType::f32, Device::cuda);
    if (rows == 0) {
        if (result.rstd.numel() > 0) {
            // Empty rows (D = 0): the mean is taken as 0, as on the CPU, so rstd = 1/sqrt(eps).
            const Tensor value = Tensor::full(result.rstd.shape(), hd_rmsnorm_rstd(0.0f, 1, static_cast<float>(eps)));
            result.rstd.copy_from(value.to_device(Device::cuda));
        }
        return result;
    }
    cuda_dispatch_float(x.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        constexpr int kWidth = cuda_vector_width<T>();
        const T* in = cuda_pointer<T>(x);
        T* out = cuda_pointer<T>(result.y);
        float* rstd = cuda_pointer<float>(result.rstd);
        if (cuda_can_vectorize<T>(d, {in, out})) {
            const RowLaunch launch = row_launch(rows, d / kWidth);
            rmsnorm_forward_kernel<T, kWidth><<<launch.grid, launch.block, 0, cuda_stream()>>>(
                in, out, rstd, rows, d, static_cast<float>(eps), static_cast<float>(factor));
        } else {
            const RowLaunch launch = row_launch(rows, d);
            rmsnorm_forward_kernel<T, 1><<<launch.grid, launch.block, 0, cuda_stream()>>>(
                in, out, rstd, rows, d, static_cast<float>(eps), static_cast<float>(factor));
        }
        PGOLF_CUDA_CHECK_LAUNCH();
    });
    return result;
}

Tensor cuda_rmsnorm_backward(const Tensor& x, const Tensor& rstd, const Tensor& dy, double factor) {
    const char* op = "cuda_rmsnorm_backward";
    cuda_check_float_input(x, op, "x");
    if (x.dim() == 0) throw Error(std::string(op) + ": x has shape (), expected (..., D)");
    cuda_check_input(rstd, DType::f32, op, "rstd");
    tensor_check_shape(rstd, row_shape(x), op, "rstd");
    cuda_check_input(dy, x.dtype(), op, "dy");
    tensor_check_shape(dy, x.shape(), op, "dy");
    const std::int64_t d = x.size(-1);
    const std::int64_t rows = d == 0 ? 0 : x.numel() / d;
    Tensor dx = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
    if (rows == 0) return dx;
    cuda_dispatch_float(x.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        constexpr int kWidth = cuda_vector_width<T>();
        const T* xs = cuda_pointer<T>(x);
        const T* gradient = cuda_pointer<T>(dy);
        T* out = cuda_pointer<T>(dx);
        const float* inverse = cuda_pointer<float>(rstd);
        if (cuda_can_vectorize<T>(d, {xs, gradient, out})) {
            const RowLaunch launch = row_launch(rows, d / kWidth);
            rmsnorm_backward_kernel<T, kWidth><<<launch.grid, launch.block, 0, cuda_stream()>>>(
                xs, inverse, gradient, out, rows, d, static_cast<float>(factor));
        } else {
            const RowLaunch launch = row_launch(rows, d);
            rmsnorm_backward_kernel<T, 1><<<launch.grid, launch.block, 0, cuda_stream()>>>(
                xs, inverse, gradient, out, rows, d, static_cast<float>(factor));
        }
        PGOLF_CUDA_CHECK_LAUNCH();
    });
    return dx;
}

}  // namespace pgolf
