// CUDA SmearGate kernels: each thread owns a few channels (one 16-byte vector, or one element) and walks a chunk of
// rows in order, carrying h_{t−1} (and dout_{t+1}) in registers, so every input row is read once. The gate gradient
// is summed per chunk of kSmearGateRowBlock rows in double, then the chunks in order by a second kernel.
#include <algorithm>
#include <string>
#include <type_traits>

#include "core/cuda/device_math.cuh"
#include "core/cuda/op_checks.h"
#include "core/cuda/smear.h"
#include "core/cuda/smear_math.h"

namespace pgolf {

namespace {

// Rows each forward thread walks: enough to amortise the gate's double exp and the re-read of the row before the
// chunk, few enough to keep the device full at B·T of a few thousand.
constexpr std::int64_t kSmearForwardRows = 32;
constexpr int kSmearThreads = 128;
constexpr int kSmearGateThreads = 256;
constexpr std::int64_t kMaxGridY = 65535;

struct SmearShape {
    std::int64_t rows = 0;  // B·T, row r = b·T + t
    std::int64_t time = 0;
    std::int64_t dim = 0;
};

template <int W, typename T>
__device__ __forceinline__ void smear_gate_values(const T* g, std::int64_t channel, float (&gate)[W]) {
    cuda_load_elements<W>(g, channel, gate);
#pragma unroll
    for (int k = 0; k < W; ++k) gate[k] = smear_gate(gate[k]);
}

// h, out: (rows, dim), g: (dim,). Thread (x, y): W channels from x·W, chunks y, y + gridDim.y, … of
// kSmearForwardRows rows.
template <typename T, int W>
__global__ void __launch_bounds__(kSmearThreads)
    smear_forward_kernel(const T* __restrict__ h, const T* __restrict__ g, T* __restrict__ out, SmearShape shape) {
    const std::int64_t group = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (group >= shape.dim / W) return;
    const std::int64_t channel = group * W;
    float gate[W];
    smear_gate_values<W>(g, channel, gate);
    const std::int64_t chunks = (shape.rows + kSmearForwardRows - 1) / kSmearForwardRows;
    for (std::int64_t chunk = blockIdx.y; chunk < chunks; chunk += gridDim.y) {
        const std::int64_t begin = chunk * kSmearForwardRows;
        const std::int64_t end = begin + kSmearForwardRows < shape.rows ? begin + kSmearForwardRows : shape.rows;
        std::int64_t t = begin % shape.time;
        float previous[W];
        if (t != 0) {
            cuda_load_elements<W>(h, (begin - 1) * shape.dim + channel, previous);
        } else {
#pragma unroll
            for (int k = 0; k < W; ++k) previous[k] = 0.0f;
        }
        for (std::int64_t row = begin; row < end; ++row) {
            float current[W];
            float result[W];
            cuda_load_elements<W>(h, row * shape.dim + channel, current);
#pragma unroll
            for (int k = 0; k < W; ++k) {
                result[k] = smear_output(current[k], t == 0 ? 0.0f : previous[k], gate[k]);
                previous[k] = current[k];
            }
            cuda_store_elements<W>(out, row * shape.dim + channel, result);
            t = t + 1 == shape.time ? 0 : t + 1;
        }
    }
}

// h, dout, dh: (rows, dim), g: (dim,), partial: (chunks, dim) f64 with chunks of kSmearGateRowBlock rows. Each
// thread sums its channels over its chunk's rows in row order, as core/ops/smear.cpp does per block.
template <typename T, int W>
__global__ void __launch_bounds__(kSmearThreads)
    smear_backward_kernel(const T* __restrict__ h, const T* __restrict__ g, const T* __restrict__ dout,
                          T* __restrict__ dh, double* __restrict__ partial, SmearShape shape) {
    const std::int64_t group = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (group >= shape.dim / W) return;
    const std::int64_t channel = group * W;
    float gate[W];
    smear_gate_values<W>(g, channel, gate);
    const std::int64_t chunks = (shape.rows + kSmearGateRowBlock - 1) / kSmearGateRowBlock;
    for (std::int64_t chunk = blockIdx.y; chunk < chunks; chunk += gridDim.y) {
        const std::int64_t begin = chunk * kSmearGateRowBlock;
        const std::int64_t end = begin + kSmearGateRowBlock < shape.rows ? begin + kSmearGateRowBlock : shape.rows;
        std::int64_t t = begin % shape.time;
        float previous[W];
        float gradient[W];
        double sums[W];
        if (t != 0) {
            cuda_load_elements<W>(h, (begin - 1) * shape.dim + channel, previous);
        } else {
#pragma unroll
            for (int k = 0; k < W; ++k) previous[k] = 0.0f;
        }
        cuda_load_elements<W>(dout, begin * shape.dim + channel, gradient);
#pragma unroll
        for (int k = 0; k < W; ++k) sums[k] = 0.0;
        for (std::int64_t row = begin; row < end; ++row) {
            float current[W];
            float following[W];  // dout of the next row, whichever sequence it belongs to
            float result[W];
            cuda_load_elements<W>(h, row * shape.dim + channel, current);
            if (row + 1 < shape.rows) {
                cuda_load_elements<W>(dout, (row + 1) * shape.dim + channel, following);
            } else {
#pragma unroll
                for (int k = 0; k < W; ++k) following[k] = 0.0f;
            }
            const bool first = t == 0;
            const bool last = t + 1 == shape.time;
#pragma unroll
            for (int k = 0; k < W; ++k) {
                result[k] = smear_input_gradient(gradient[k], last ? 0.0f : following[k], gate[k]);
                sums[k] = smear_gate_gradient_step(sums[k], gradient[k], previous[k], current[k], first);
                previous[k] = current[k];
                gradient[k] = following[k];
            }
            cuda_store_elements<W>(dh, row * shape.dim + channel, result);
            t = last ? 0 : t + 1;
        }
#pragma unroll
        for (int k = 0; k < W; ++k) partial[chunk * shape.dim + channel + k] = sums[k];
    }
}

// dg[d] = σ(1 − σ)·Σ_chunks partial[chunk, d], the chunks added in order.
template <typename T>
__global__ void smear_gate_gradient_kernel(const T* __restrict__ g, const double* __restrict__ partial,
                                           T* __restrict__ dg, std::int64_t chunks, std::int64_t dim) {
    const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t d = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; d < dim; d += step) {
        double total = 0.0;
        for (std::int64_t chunk = 0; chunk < chunks; ++chunk) total = hd_add(total, partial[chunk * dim + d]);
        cuda_store(dg, d, smear_gate_gradient(cuda_load(g, d), total));
    }
}

SmearShape smear_check(const Tensor& h, const Tensor& g, const char* op) {
    cuda_check_float_input(h, op, "h");
    if (h.dim() != 3) throw Error(std::string(op) + ": h must be 3-D (B, T, D), got shape " + shape_string(h.shape()));
    cuda_check_input(g, h.dtype(), op, "g");
    tensor_check_shape(g, {h.size(2)}, op, "g");
    return SmearShape{h.size(0) * h.size(1), h.size(1), h.size(2)};
}

// Runs launch(W) with W the 16-byte vector width where every pointer allows it, else 1.
template <typename T, typename Launch>
void smear_dispatch_width(bool vectorize, Launch&& launch) {
    if (vectorize) {
        launch(std::integral_constant<int, cuda_vector_width<T>()>{});
    } else {
        launch(std::integral_constant<int, 1>{});
    }
}

// Threads over the channel groups (x) and row chunks (y, grid-stride beyond kMaxGridY).
struct SmearLaunch {
    dim3 grid;
    dim3 block;
};

SmearLaunch smear_launch(std::int64_t groups, std::int64_t chunks) {
    const std::int64_t threads = std::min<std::int64_t>(kSmearThreads, (groups + 31) / 32 * 32);
    SmearLaunch launch;
    launch.block = dim3(static_cast<unsigned int>(threads));
    launch.grid = dim3(static_cast<unsigned int>((groups + threads - 1) / threads),
                       static_cast<unsigned int>(std::min(chunks, kMaxGridY)));
    return launch;
}

}  // namespace

Tensor cuda_smear_forward(const Tensor& h, const Tensor& g) {
    const char* op = "cuda_smear_forward";
    const SmearShape shape = smear_check(h, g, op);
    Tensor out = Tensor::empty(h.shape(), h.dtype(), Device::cuda);
    if (out.numel() == 0) return out;
    cuda_dispatch_float(h.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        const T* in = cuda_pointer<T>(h);
        const T* gate = cuda_pointer<T>(g);
        T* result = cuda_pointer<T>(out);
        smear_dispatch_width<T>(cuda_can_vectorize<T>(shape.dim, {in, gate, result}), [&](auto width) {
            constexpr int W = decltype(width)::value;
            const std::int64_t chunks = (shape.rows + kSmearForwardRows - 1) / kSmearForwardRows;
            const SmearLaunch launch = smear_launch(shape.dim / W, chunks);
            smear_forward_kernel<T, W><<<launch.grid, launch.block, 0, cuda_stream()>>>(in, gate, result, shape);
            PGOLF_CUDA_CHECK_LAUNCH();
        });
    });
    return out;
}

SmearGrads cuda_smear_backward(const Tensor& h, const Tensor& g, const Tensor& dout) {
    const char* op = "cuda_smear_backward";
    const SmearShape shape = smear_check(h, g, op);
    cuda_check_input(dout, h.dtype(), op, "dout");
    tensor_check_shape(dout, h.shape(), op, "dout");
    SmearGrads grads;
    grads.dh = Tensor::empty(h.shape(), h.dtype(), Device::cuda);
    grads.dg = Tensor::empty(g.shape(), h.dtype(), Device::cuda);
    if (shape.dim == 0) return grads;
    const std::int64_t chunks = (shape.rows + kSmearGateRowBlock - 1) / kSmearGateRowBlock;
    // Written in full by the backward kernel: every (chunk, channel) belongs to exactly one thread.
    Tensor partial = Tensor::empty({chunks, shape.dim}, DType::f64, Device::cuda);
    cuda_dispatch_float(h.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        const T* in = cuda_pointer<T>(h);
        const T* gate = cuda_pointer<T>(g);
        const T* gradient = cuda_pointer<T>(dout);
        T* input_gradient = cuda_pointer<T>(grads.dh);
        double* sums = cuda_pointer<double>(partial);
        if (chunks > 0) {
            const bool vectorize = cuda_can_vectorize<T>(shape.dim, {in, gate, gradient, input_gradient});
            smear_dispatch_width<T>(vectorize, [&](auto width) {
                constexpr int W = decltype(width)::value;
                const SmearLaunch launch = smear_launch(shape.dim / W, chunks);
                smear_backward_kernel<T, W>
                    <<<launch.grid, launch.block, 0, cuda_stream()>>>(in, gate, gradient, input_gradient, sums, shape);
                PGOLF_CUDA_CHECK_LAUNCH();
            });
        }
        smear_gate_gradient_kernel<T>
            <<<cuda_grid_size(shape.dim, kSmearGateThreads), kSmearGateThreads, 0, cuda_stream()>>>(
                gate, sums, cuda_pointer<T>(grads.dg), chunks, shape.dim);
        PGOLF_CUDA_CHECK_LAUNCH();
    });
    return grads;
}

}  // namespace pgolf
