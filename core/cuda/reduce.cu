// Deterministic reductions: pass one writes one fp32 partial per block (each thread sums a fixed grid-stride slice,
// then a fixed-shape block sum), pass two adds the partials in double in one block. The order depends only on the
// element counts, so results are identical run to run. Arithmetic: core/cuda/reduce_math.h.
#include <cmath>
#include <string>

#include "core/cuda/device_math.cuh"
#include "core/cuda/op_checks.h"
#include "core/cuda/reduce.h"
#include "core/cuda/reduce_math.h"

namespace pgolf {

namespace {

// x: (count,) -> partials[block] = Σ over the block's grid-stride slice of x (or x²), in fp32.
template <typename T, bool Vectorized>
__global__ void reduce_partials_kernel(const T* x, std::int64_t count, bool square, float* partials) {
    __shared__ float scratch[32];
    constexpr int kWidth = cuda_vector_width<T>();
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    float sum = 0.0f;
    if constexpr (Vectorized) {
        for (std::int64_t v = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; v < count / kWidth;
             v += stride) {
            float values[kWidth];
            cuda_load_vector(x, v * kWidth, values);
#pragma unroll
            for (int k = 0; k < kWidth; ++k) sum = reduce_accumulate(sum, values[k], square);
        }
    } else {
        for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
             i += stride) {
            sum = reduce_accumulate(sum, cuda_load(x, i), square);
        }
    }
    const float block_total = cuda_block_sum(sum, scratch);
    if (threadIdx.x == 0) partials[blockIdx.x] = block_total;
}

__device__ __forceinline__ double reduce_warp_sum_double(double value) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xFFFFFFFFu, value, offset);
    return value;
}

// partials: (count,) -> Σ in double, written as f32 to sum_out and/or as f64 to double_out (one block of
// kReduceThreads threads).
__global__ void reduce_final_kernel(const float* partials, std::int64_t count, float* sum_out, double* double_out) {
    __shared__ double scratch[32];
    double total = 0.0;
    for (std::int64_t i = threadIdx.x; i < count; i += blockDim.x) total = reduce_combine_partial(total, partials[i]);
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    total = reduce_warp_sum_double(total);
    if (lane == 0) scratch[warp] = total;
    __syncthreads();
    if (warp == 0) {
        const int warps = static_cast<int>(blockDim.x >> 5);
        total = reduce_warp_sum_double(lane < warps ? scratch[lane] : 0.0);
        if (lane == 0) {
            if (sum_out != nullptr) *sum_out = static_cast<float>(total);
            if (double_out != nullptr) *double_out = total;
        }
    }
}

// Writes the partials of x into partials[0, reduce_partial_count(numel)).
void reduce_launch_partials(const Tensor& x, bool square, float* partials, const char* op) {
    const std::int64_t count = x.numel();
    const auto blocks = static_cast<unsigned int>(reduce_partial_count(count));
    cuda_dispatch_float(x.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        const T* data = cuda_pointer<T>(x);
        const bool vectorized = cuda_can_vectorize<T>(count, {data});
        const auto kernel = vectorized ? reduce_partials_kernel<T, true> : reduce_partials_kernel<T, false>;
        kernel<<<blocks, kReduceThreads, 0, cuda_stream()>>>(data, count, square, partials);
        PGOLF_CUDA_CHECK_LAUNCH();
    });
}

// dx (count,) = dy[0] everywhere.
template <typename T, typename G>
__global__ void reduce_fill_kernel(T* dx, std::int64_t count, const G* dy) {
    const float value = cuda_load(dy, 0);
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count; i += stride) {
        cuda_store(dx, i, value);
    }
}

// x[i] *= factor, rounded in f32 as optim_clip_grad_norm does.
template <typename T>
__global__ void reduce_scale_kernel(T* x, std::int64_t count, float factor) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count; i += stride) {
        cuda_store(x, i, __fmul_rn(cuda_load(x, i), factor));
    }
}

// Σ over the defined tensors of Σ x², in double, copied to the host (the one synchronisation).
double reduce_sum_of_squares(const std::vector<Tensor>& tensors, bool skip_undefined, const char* op) {
    std::int64_t partial_total = 0;
    for (std::size_t t = 0; t < tensors.size(); ++t) {
        if (skip_undefined && !tensors[t].defined()) continue;
        const std::string name = "tensors[" + std::to_string(t) + "]";
        cuda_check_float_input(tensors[t], op, name.c_str());
        if (tensors[t].numel() > 0) partial_total += reduce_partial_count(tensors[t].numel());
    }
    if (partial_total == 0) return 0.0;
    Tensor partials = Tensor::empty({partial_total}, DType::f32, Device::cuda);
    float* partial_data = cuda_pointer<float>(partials);
    std::int64_t offset = 0;
    for (const Tensor& tensor : tensors) {
        if (!tensor.defined() || tensor.numel() == 0) continue;
        reduce_launch_partials(tensor, true, partial_data + offset, op);
        offset += reduce_partial_count(tensor.numel());
    }
    Tensor total = Tensor::empty({}, DType::f64, Device::cuda);
    reduce_final_kernel<<<1, kReduceThreads, 0, cuda_stream()>>>(partial_data, partial_total, nullptr,
                                                                 cuda_pointer<double>(total));
    PGOLF_CUDA_CHECK_LAUNCH();
    double host_total = 0.0;
    PGOLF_CUDA_CHECK(
        cudaMemcpyAsync(&host_total, total.raw_data(), sizeof host_total, cudaMemcpyDeviceToHost, cuda_stream()));
    PGOLF_CUDA_CHECK(cudaStreamSynchronize(cuda_stream()));
    return host_total;
}

}  // namespace

Tensor cuda_sum_all(const Tensor& x) {
    const char* op = "cuda_sum_all";
    cuda_check_float_input(x, op, "x");
    Tensor y = Tensor::empty({}, DType::f32, Device::cuda);
    if (x.numel() == 0) {
        y.zero();
        return y;
    }
    const std::int64_t partial_count = reduce_partial_count(x.numel());
    Tensor partials = Tensor::empty({partial_count}, DType::f32, Device::cuda);
    reduce_launch_partials(x, false, cuda_pointer<float>(partials), op);
    reduce_final_kernel<<<1, kReduceThreads, 0, cuda_stream()>>>(cuda_pointer<float>(partials), partial_count,
                                                                 cuda_pointer<float>(y), nullptr);
    PGOLF_CUDA_CHECK_LAUNCH();
    return y;
}

Tensor cuda_sum_all_backward(const Tensor& x, const Tensor& dy) {
    const char* op = "cuda_sum_all_backward";
    cuda_check_float_input(x, op, "x");
    cuda_check_float_input(dy, op, "dy");
    tensor_check_shape(dy, {}, op, "dy");
    Tensor dx = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
    const std::int64_t count = dx.numel();
    if (count == 0) return dx;
    cuda_dispatch_float(x.dtype(), op, [&](auto x_tag) {
        using T = decltype(x_tag);
        cuda_dispatch_float(dy.dtype(), op, [&](auto dy_tag) {
            using G = decltype(dy_tag);
            reduce_fill_kernel<T, G><<<cuda_grid_size(count, kReduceThreads), kReduceThreads, 0, cuda_stream()>>>(
                cuda_pointer<T>(dx), count, cuda_pointer<G>(dy));
            PGOLF_CUDA_CHECK_LAUNCH();
        });
    });
    return dx;
}

double cuda_global_norm(const std::vector<Tensor>& tensors) {
    return std::sqrt(reduce_sum_of_squares(tensors, false, "cuda_global_norm"));
}

double cuda_clip_grad_norm(const std::vector<Tensor>& grads, double max_norm) {
    const char* op = "cuda_clip_grad_norm";
    const double total = std::sqrt(reduce_sum_of_squares(grads, true, op));
    const double coefficient = clip_grad_coefficient(max_norm, total);
    if (coefficient < 1.0) {
        const auto factor = static_cast<float>(coefficient);
        for (const Tensor& grad : grads) {
            if (!grad.defined() || grad.numel() == 0) continue;
            Tensor handle = grad;  // shares storage: scaling writes the caller's gradient
            const std::int64_t count = handle.numel();
            cuda_dispatch_float(handle.dtype(), op, [&](auto tag) {
                using T = decltype(tag);
                reduce_scale_kernel<T><<<cuda_grid_size(count, kReduceThreads), kReduceThreads, 0, cuda_stream()>>>(
                    cuda_pointer<T>(handle), count, factor);
                PGOLF_CUDA_CHECK_LAUNCH();
            });
        }
    }
    return total;
}

}  // namespace pgolf
