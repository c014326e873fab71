// CUDA kernels for elementwise arithmetic, activations, broadcast gains, the head/time permute and the fused residual
// ops. Channel reductions (dg, dmix) sum fixed row chunks and then the chunks in order: reproducible run to run.
#include <algorithm>
#include <string>

#include "core/cuda/device_math.cuh"
#include "core/cuda/elementwise.h"
#include "core/cuda/elementwise_math.h"
#include "core/cuda/op_checks.h"

namespace pgolf {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ std::int64_t global_thread() {
    return static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ std::int64_t grid_stride() { return static_cast<std::int64_t>(gridDim.x) * blockDim.x; }

// Kernels that divide indices (channel of an element) run with 32-bit indices when the tensor allows: a 64-bit
// division costs several times a 32-bit one and would make these memory-bound kernels compute-bound. Below 2^31 a
// grid-stride step cannot wrap a 32-bit index either.
template <typename Body>
void with_index_type(std::int64_t count, Body&& body) {
    if (count < (std::int64_t{1} << 31)) {
        body(std::uint32_t{});
    } else {
        body(std::int64_t{});
    }
}

// ---- unary and binary maps ----------------------------------------------------------------------------------------

struct AddOp {
    __device__ float operator()(float a, float b) const { return hd_add(a, b); }
};
struct MulOp {
    __device__ float operator()(float a, float b) const { return hd_mul(a, b); }
};
struct ScaleOp {
    float factor;
    __device__ float operator()(float a, float) const { return hd_mul(a, factor); }
};
struct ReluSquaredOp {
    __device__ float operator()(float x, float) const { return hd_relu_squared(x); }
};
struct ReluSquaredBackwardOp {
    __device__ float operator()(float x, float dy) const { return hd_relu_squared_backward(x, dy); }
};
struct LeakyReluSquaredOp {
    float slope;
    __device__ float operator()(float x, float) const { return hd_leaky_relu_squared(x, slope); }
};
struct LeakyReluSquaredBackwardOp {
    float slope;
    __device__ float operator()(float x, float dy) const { return hd_leaky_relu_squared_backward(x, slope, dy); }
};

// out = op(a, b) over groups of W elements; b may be null (unary ops ignore their second argument). out may be a.
template <typename T, int W, typename Op>
__global__ void map_kernel(const T* a, const T* b, T* out, std::int64_t groups, Op op) {
    for (std::int64_t group = global_thread(); group < groups; group += grid_stride()) {
        float lhs[W];
        float rhs[W] = {};
        cuda_load_elements<W>(a, group * W, lhs);
        if (b != nullptr) cuda_load_elements<W>(b, group * W, rhs);
#pragma unroll
        for (int k = 0; k < W; ++k) lhs[k] = op(lhs[k], rhs[k]);
        cuda_store_elements<W>(out, group * W, lhs);
    }
}

template <typename Op>
void launch_map(const Tensor& a, const Tensor* b, Tensor& out, Op op, const char* name) {
    cuda_dispatch_float(a.dtype(), name, [&](auto tag) {
        using T = decltype(tag);
        const std::int64_t count = a.numel();
        if (count == 0) return;
        const T* lhs = cuda_pointer<T>(a);
        const T* rhs = b != nullptr ? cuda_pointer<T>(*b) : nullptr;
        T* result = cuda_pointer<T>(out);
        constexpr int kWidth = cuda_vector_width<T>();
        if (cuda_can_vectorize<T>(count, {lhs, rhs, result})) {
            const std::int64_t groups = count / kWidth;
            map_kernel<T, kWidth>
                <<<cuda_grid_size(groups, kThreads), kThreads, 0, cuda_stream()>>>(lhs, rhs, result, groups, op);
        } else {
            map_kernel<T, 1>
                <<<cuda_grid_size(count, kThreads), kThreads, 0, cuda_stream()>>>(lhs, rhs, result, count, op);
        }
        PGOLF_CUDA_CHECK_LAUNCH();
    });
}

void check_same(const Tensor& a, const Tensor& b, const char* op, const char* a_name, const char* b_name) {
    cuda_check_float_input(a, op, a_name);
    cuda_check_input(b, a.dtype(), op, b_name);
    tensor_check_shape(b, a.shape(), op, b_name);
}

template <typename Op>
Tensor map_binary(const Tensor& a, const Tensor& b, Op op, const char* name, const char* a_name, const char* b_name) {
    check_same(a, b, name, a_name, b_name);
    Tensor out = Tensor::empty(a.shape(), a.dtype(), Device::cuda);
    launch_map(a, &b, out, op, name);
    return out;
}

template <typename Op>
Tensor map_unary(const Tensor& a, Op op, const char* name, const char* a_name) {
    cuda_check_float_input(a, name, a_name);
    Tensor out = Tensor::empty(a.shape(), a.dtype(), Device::cuda);
    launch_map(a, nullptr, out, op, name);
    return out;
}

// ---- broadcast gains ----------------------------------------------------------------------------------------------

// The CUDA ops' view (core/ops/elementwise.h): x and g cuda f32/bf16, same dtype.
BroadcastView broadcast_view_checked(const Tensor& x, const Tensor& g, std::int64_t axis, const char* op) {
    cuda_check_float_input(x, op, "x");
    cuda_check_input(g, x.dtype(), op, "g");
    return broadcast_view(x, g, axis, op);
}

// y = x ⊙ g[channel]. A group of W elements shares one gain when W divides inner; with inner = 1 (the last axis) it
// spans W consecutive channels, whose gains are one vector of g.
template <typename T, int W, typename Index>
__global__ void broadcast_kernel(const T* x, const T* g, T* y, Index groups, Index channels, Index inner) {
    const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
    for (Index group = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; group < groups; group += stride) {
        const Index element = group * W;
        float values[W];
        float gains[W];
        cuda_load_elements<W>(x, element, values);
        if (inner == 1) {
            cuda_load_elements<W>(g, element % channels, gains);
        } else {
            const float gain = cuda_load(g, (element / inner) % channels);
#pragma unroll
            for (int k = 0; k < W; ++k) gains[k] = gain;
        }
#pragma unroll
        for (int k = 0; k < W; ++k) values[k] = hd_mul(values[k], gains[k]);
        cuda_store_elements<W>(y, element, values);
    }
}

void launch_broadcast(const Tensor& x, const Tensor& g, Tensor& y, const BroadcastView& view, const char* op) {
    cuda_dispatch_float(x.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        const std::int64_t count = x.numel();
        if (count == 0) return;
        constexpr int kWidth = cuda_vector_width<T>();
        const T* xs = cuda_pointer<T>(x);
        const T* gs = cuda_pointer<T>(g);
        T* ys = cuda_pointer<T>(y);
        const bool groups_fit = view.inner == 1 ? view.channels % kWidth == 0 : view.inner % kWidth == 0;
        with_index_type(count, [&](auto index_tag) {
            using Index = decltype(index_tag);
            const auto channels = static_cast<Index>(view.channels);
            const auto inner = static_cast<Index>(view.inner);
            if (groups_fit && cuda_can_vectorize<T>(count, {xs, gs, ys})) {
                const std::int64_t groups = count / kWidth;
                broadcast_kernel<T, kWidth, Index><<<cuda_grid_size(groups, kThreads), kThreads, 0, cuda_stream()>>>(
                    xs, gs, ys, static_cast<Index>(groups), channels, inner);
            } else {
                broadcast_kernel<T, 1, Index><<<cuda_grid_size(count, kThreads), kThreads, 0, cuda_stream()>>>(
                    xs, gs, ys, static_cast<Index>(count), channels, inner);
            }
            PGOLF_CUDA_CHECK_LAUNCH();
        });
    });
}

// ---- channel reductions -------------------------------------------------------------------------------------------

// Row lanes per block of the column kernels: each block covers 32 column groups × kRowLanes rows at a time.
constexpr int kRowLanes = 8;

// Rows (outer slices) per chunk of a channel reduction: a function of the shape only, so the order of additions is
// too. At least 64 rows per chunk, and at most 1024 chunks for the ordered final sum.
std::int64_t rows_per_chunk(std::int64_t rows, std::int64_t minimum) {
    return std::max<std::int64_t>(minimum, (rows + 1023) / 1024);
}

// The fused backward of gains along the last axis of (rows, channels) tensors, for up to two operands k:
// grad_k = dy ⊙ gain_k (elementwise), partial[chunk][k][c] = Σ over the chunk's rows of dy ⊙ operand_k, and, with
// kCopy, copy = dy. Each input element is read once.
template <typename T>
struct ColumnBackwardArgs {
    const T* dy = nullptr;
    const T* operand[2] = {nullptr, nullptr};
    const T* gain[2] = {nullptr, nullptr};
    T* grad[2] = {nullptr, nullptr};
    T* copy = nullptr;
    float* partial = nullptr;  // (chunks, K, channels)
    std::int64_t rows = 0;
    std::int64_t channels = 0;
    std::int64_t chunk_rows = 0;
};

// grid: (column blocks of 32 groups, chunks), block: (32, kRowLanes).
template <typename T, int W, int K, bool kCopy>
__global__ void column_backward_kernel(ColumnBackwardArgs<T> args) {
    __shared__ float scratch[kRowLanes * K * W * 32];
    const std::int64_t group = static_cast<std::int64_t>(blockIdx.x) * 32 + threadIdx.x;
    const bool active = group < args.channels / W;
    const std::int64_t channel = group * W;
    float sums[K][W] = {};
    if (active) {
        float gains[K][W];
#pragma unroll
        for (int k = 0; k < K; ++k) cuda_load_elements<W>(args.gain[k], channel, gains[k]);
        const std::int64_t row_begin = static_cast<std::int64_t>(blockIdx.y) * args.chunk_rows;
        const std::int64_t row_end = min(args.rows, row_begin + args.chunk_rows);
        for (std::int64_t row = row_begin + threadIdx.y; row < row_end; row += kRowLanes) {
            const std::int64_t element = row * args.channels + channel;
            float dy[W];
            cuda_load_elements<W>(args.dy, element, dy);
            if constexpr (kCopy) cuda_store_elements<W>(args.copy, element, dy);
#pragma unroll
            for (int k = 0; k < K; ++k) {
                float operand[W];
                float grad[W];
                cuda_load_elements<W>(args.operand[k], element, operand);
#pragma unroll
                for (int w = 0; w < W; ++w) {
                    sums[k][w] += dy[w] * operand[w];
                    grad[w] = hd_mul(dy[w], gains[k][w]);
                }
                cuda_store_elements<W>(args.grad[k], element, grad);
            }
        }
    }
#pragma unroll
    for (int k = 0; k < K; ++k) {
#pragma unroll
        for (int w = 0; w < W; ++w) scratch[((threadIdx.y * K + k) * W + w) * 32 + threadIdx.x] = sums[k][w];
    }
    __syncthreads();
    if (threadIdx.y == 0 && active) {
        const std::int64_t chunk = blockIdx.y;
#pragma unroll
        for (int k = 0; k < K; ++k) {
#pragma unroll
            for (int w = 0; w < W; ++w) {
                float total = 0.0f;
                for (int lane = 0; lane < kRowLanes; ++lane)
                    total += scratch[((lane * K + k) * W + w) * 32 + threadIdx.x];
                args.partial[(chunk * K + k) * args.channels + channel + w] = total;
            }
        }
    }
}

// out[j] = Σ over chunks, in chunk order, of partial[chunk][j]; j < width.
template <typename T>
__global__ void finish_sums_kernel(const float* partial, std::int64_t chunks, std::int64_t width, T* out) {
    for (std::int64_t j = global_thread(); j < width; j += grid_stride()) {
        float total = 0.0f;
        for (std::int64_t chunk = 0; chunk < chunks; ++chunk) total += partial[chunk * width + j];
        cuda_store(out, j, total);
    }
}

// Runs the fused column backward with K operands, then writes the sums to sums_out: (K, channels) in T.
template <typename T, int K, bool kCopy>
void launch_column_backward(ColumnBackwardArgs<T> args, T* sums_out) {
    const std::int64_t width = K * args.channels;
    if (width == 0) return;
    if (args.rows == 0) {
        PGOLF_CUDA_CHECK(cudaMemsetAsync(sums_out, 0, static_cast<std::size_t>(width) * sizeof(T), cuda_stream()));
        return;
    }
    args.chunk_rows = rows_per_chunk(args.rows, 64);
    const std::int64_t chunks = (args.rows + args.chunk_rows - 1) / args.chunk_rows;
    Tensor partial = Tensor::empty({chunks, width}, DType::f32, Device::cuda);
    args.partial = cuda_pointer<float>(partial);

    constexpr int kWidth = cuda_vector_width<T>();
    bool vectorize = cuda_can_vectorize<T>(args.channels, {args.dy, args.copy});
    for (int k = 0; k < K; ++k) {
        vectorize = vectorize && cuda_can_vectorize<T>(args.channels, {args.operand[k], args.gain[k], args.grad[k]});
    }
    const dim3 block(32, kRowLanes);
    if (vectorize) {
        const dim3 grid(static_cast<unsigned int>((args.channels / kWidth + 31) / 32),
                        static_cast<unsigned int>(chunks));
        column_backward_kernel<T, kWidth, K, kCopy><<<grid, block, 0, cuda_stream()>>>(args);
    } else {
        const dim3 grid(static_cast<unsigned int>((args.channels + 31) / 32), static_cast<unsigned int>(chunks));
        column_backward_kernel<T, 1, K, kCopy><<<grid, block, 0, cuda_stream()>>>(args);
    }
    PGOLF_CUDA_CHECK_LAUNCH();
    finish_sums_kernel<T>
        <<<cuda_grid_size(width, kThreads), kThreads, 0, cuda_stream()>>>(args.partial, chunks, width, sums_out);
    PGOLF_CUDA_CHECK_LAUNCH();
}

// partial[chunk][c] = Σ over the chunk's outer slices o and i < inner of dy ⊙ x at (o, c, i): for gains on an axis
// other than the last, where each (o, c) is a contiguous segment of inner elements. grid: (channels, chunks).
template <typename T, int W>
__global__ void segment_product_sum_kernel(const T* dy, const T* x, float* partial, std::int64_t outer,
                                           std::int64_t channels, std::int64_t inner, std::int64_t chunk_outer) {
    __shared__ float scratch[32];
    const std::int64_t channel = blockIdx.x;
    const std::int64_t chunk = blockIdx.y;
    const std::int64_t outer_begin = chunk * chunk_outer;
    const std::int64_t outer_end = min(outer, outer_begin + chunk_outer);
    const std::int64_t segment_groups = inner / W;
    const std::int64_t items = (outer_end - outer_begin) * segment_groups;
    float sum = 0.0f;
    for (std::int64_t item = threadIdx.x; item < items; item += blockDim.x) {
        const std::int64_t o = outer_begin + item / segment_groups;
        const std::int64_t element = (o * channels + channel) * inner + (item % segment_groups) * W;
        float gradient[W];
        float values[W];
        cuda_load_elements<W>(dy, element, gradient);
        cuda_load_elements<W>(x, element, values);
#pragma unroll
        for (int w = 0; w < W; ++w) sum += gradient[w] * values[w];
    }
    const float total = cuda_block_sum(sum, scratch);
    if (threadIdx.x == 0) partial[chunk * channels + channel] = total;
}

void launch_segment_sums(const Tensor& dy, const Tensor& x, Tensor& dg, const BroadcastView& view, const char* op) {
    cuda_dispatch_float(x.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        if (view.channels == 0) return;
        T* out = cuda_pointer<T>(dg);
        if (view.outer * view.inner == 0) {
            PGOLF_CUDA_CHECK(
                cudaMemsetAsync(out, 0, static_cast<std::size_t>(view.channels) * sizeof(T), cuda_stream()));
            return;
        }
        // About 4096 elements per block at least; at most 1024 chunks.
        const std::int64_t chunk_outer = rows_per_chunk(view.outer, std::max<std::int64_t>(1, 4096 / view.inner));
        const std::int64_t chunks = (view.outer + chunk_outer - 1) / chunk_outer;
        Tensor partial = Tensor::empty({chunks, view.channels}, DType::f32, Device::cuda);
        const T* dys = cuda_pointer<T>(dy);
        const T* xs = cuda_pointer<T>(x);
        constexpr int kWidth = cuda_vector_width<T>();
        const dim3 grid(static_cast<unsigned int>(view.channels), static_cast<unsigned int>(chunks));
        if (cuda_can_vectorize<T>(view.inner, {dys, xs})) {
            segment_product_sum_kernel<T, kWidth><<<grid, kThreads, 0, cuda_stream()>>>(
                dys, xs, cuda_pointer<float>(partial), view.outer, view.channels, view.inner, chunk_outer);
        } else {
            segment_product_sum_kernel<T, 1><<<grid, kThreads, 0, cuda_stream()>>>(
                dys, xs, cuda_pointer<float>(partial), view.outer, view.channels, view.inner, chunk_outer);
        }
        PGOLF_CUDA_CHECK_LAUNCH();
        finish_sums_kernel<T><<<cuda_grid_size(view.channels, kThreads), kThreads, 0, cuda_stream()>>>(
            cuda_pointer<float>(partial), chunks, view.channels, out);
        PGOLF_CUDA_CHECK_LAUNCH();
    });
}

// ---- residual forward ---------------------------------------------------------------------------------------------

struct ResidualMixOp {
    __device__ float operator()(float x, float x0, float mix0, float mix1) const {
        return hd_residual_mix(x, x0, mix0, mix1);
    }
};
struct ResidualAddScaledOp {
    __device__ float operator()(float x, float y, float g, float) const { return hd_residual_add_scaled(x, y, g); }
};

// out[r, c] = op(a[r, c], b[r, c], gain0[c], gain1[c]) on (rows, channels); W divides channels. gain1 may be null.
template <typename T, int W, typename Index, typename Op>
__global__ void row_gain_kernel(const T* a, const T* b, const T* gain0, const T* gain1, T* out, Index groups,
                                Index channels, Op op) {
    const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
    for (Index group = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; group < groups; group += stride) {
        const Index element = group * W;
        const Index channel = element % channels;
        float lhs[W];
        float rhs[W];
        float g0[W];
        float g1[W] = {};
        cuda_load_elements<W>(a, element, lhs);
        cuda_load_elements<W>(b, element, rhs);
        cuda_load_elements<W>(gain0, channel, g0);
        if (gain1 != nullptr) cuda_load_elements<W>(gain1, channel, g1);
#pragma unroll
        for (int k = 0; k < W; ++k) lhs[k] = op(lhs[k], rhs[k], g0[k], g1[k]);
        cuda_store_elements<W>(out, element, lhs);
    }
}

template <typename Op>
Tensor launch_row_gain(const Tensor& a, const Tensor& b, const Tensor& gains, bool two_gains, Op op, const char* name) {
    Tensor out = Tensor::empty(a.shape(), a.dtype(), Device::cuda);
    cuda_dispatch_float(a.dtype(), name, [&](auto tag) {
        using T = decltype(tag);
        const std::int64_t count = a.numel();
        if (count == 0) return;
        const std::int64_t channels = a.size(-1);
        const T* lhs = cuda_pointer<T>(a);
        const T* rhs = cuda_pointer<T>(b);
        const T* gain0 = cuda_pointer<T>(gains);
        const T* gain1 = two_gains ? gain0 + channels : nullptr;
        T* result = cuda_pointer<T>(out);
        constexpr int kWidth = cuda_vector_width<T>();
        with_index_type(count, [&](auto index_tag) {
            using Index = decltype(index_tag);
            if (cuda_can_vectorize<T>(channels, {lhs, rhs, gain0, gain1, result})) {
                const std::int64_t groups = count / kWidth;
                row_gain_kernel<T, kWidth, Index><<<cuda_grid_size(groups, kThreads), kThreads, 0, cuda_stream()>>>(
                    lhs, rhs, gain0, gain1, result, static_cast<Index>(groups), static_cast<Index>(channels), op);
            } else {
                row_gain_kernel<T, 1, Index><<<cuda_grid_size(count, kThreads), kThreads, 0, cuda_stream()>>>(
                    lhs, rhs, gain0, gain1, result, static_cast<Index>(count), static_cast<Index>(channels), op);
            }
            PGOLF_CUDA_CHECK_LAUNCH();
        });
    });
    return out;
}

// x: (…, D) with at least one axis; returns D.
std::int64_t last_axis(const Tensor& x, const char* op, const char* name) {
    if (x.dim() == 0) throw Error(std::string(op) + ": " + name + " has shape (), expected (..., D)");
    return x.size(-1);
}

// ---- permute ------------------------------------------------------------------------------------------------------

// y: (A, C, B, D) from x: (A, B, C, D), W elements (one 16-byte vector or one element) per step, copied as bits.
template <typename T, int W>
__global__ void permute_0213_kernel(const T* x, T* y, std::int64_t b, std::int64_t c, std::int64_t d,
                                    std::int64_t groups) {
    const std::int64_t row_groups = d / W;
    for (std::int64_t group = global_thread(); group < groups; group += grid_stride()) {
        const std::int64_t out_row = group / row_groups;  // (a, c, b) in y
        const std::int64_t offset = (group % row_groups) * W;
        const std::int64_t ib = out_row % b;
        const std::int64_t ac = out_row / b;
        const std::int64_t ic = ac % c;
        const std::int64_t ia = ac / c;
        const std::int64_t source = ((ia * b + ib) * c + ic) * d + offset;
        const std::int64_t target = out_row * d + offset;
        if constexpr (W == 1) {
            y[target] = x[source];
        } else {
            *reinterpret_cast<uint4*>(y + target) = *reinterpret_cast<const uint4*>(x + source);
        }
    }
}

// The same copy with grid (row blocks, C, A): block (x, c, a) copies the W-element groups of rows (a, c, b) for all b,
// so a thread divides once (32-bit) instead of four times (64-bit).
template <typename T, int W>
__global__ void permute_0213_grid_kernel(const T* x, T* y, std::uint32_t b, std::uint32_t row_groups, std::int64_t c,
                                         std::int64_t d) {
    const std::int64_t ia = blockIdx.z;
    const std::int64_t ic = blockIdx.y;
    const std::uint32_t items = b * row_groups;
    const std::uint32_t stride = gridDim.x * blockDim.x;
    for (std::uint32_t item = blockIdx.x * blockDim.x + threadIdx.x; item < items; item += stride) {
        const std::uint32_t ib = item / row_groups;
        const std::int64_t offset = static_cast<std::int64_t>(item - ib * row_groups) * W;
        const std::int64_t source = ((ia * b + ib) * c + ic) * d + offset;
        const std::int64_t target = ((ia * c + ic) * b + ib) * d + offset;
        if constexpr (W == 1) {
            y[target] = x[source];
        } else {
            *reinterpret_cast<uint4*>(y + target) = *reinterpret_cast<const uint4*>(x + source);
        }
    }
}

template <typename T, int W>
void launch_permute_0213(const T* source, T* target, std::int64_t a, std::int64_t b, std::int64_t c, std::int64_t d) {
    constexpr std::int64_t kMaxGridY = 65535;
    const std::int64_t row_groups = d / W;
    const std::int64_t items = b * row_groups;
    if (a <= kMaxGridY && c <= kMaxGridY && items < (std::int64_t{1} << 31)) {
        const std::int64_t threads = std::min<std::int64_t>(kThreads, (items + 31) / 32 * 32);
        const std::int64_t row_blocks = std::min<std::int64_t>((items + threads - 1) / threads, 1024);
        const dim3 grid(static_cast<unsigned int>(row_blocks), static_cast<unsigned int>(c),
                        static_cast<unsigned int>(a));
        permute_0213_grid_kernel<T, W><<<grid, static_cast<unsigned int>(threads), 0, cuda_stream()>>>(
            source, target, static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(row_groups), c, d);
    } else {
        const std::int64_t groups = a * b * c * row_groups;
        permute_0213_kernel<T, W>
            <<<cuda_grid_size(groups, kThreads), kThreads, 0, cuda_stream()>>>(source, target, b, c, d, groups);
    }
    PGOLF_CUDA_CHECK_LAUNCH();
}

}  // namespace

Tensor cuda_add(const Tensor& a, const Tensor& b) { return map_binary(a, b, AddOp{}, "cuda_add", "a", "b"); }

Tensor cuda_mul(const Tensor& a, const Tensor& b) { return map_binary(a, b, MulOp{}, "cuda_mul", "a", "b"); }

Tensor cuda_scale(const Tensor& a, double factor) {
    return map_unary(a, ScaleOp{static_cast<float>(factor)}, "cuda_scale", "a");
}

void cuda_add_into(Tensor& a, const Tensor& b) {
    check_same(a, b, "cuda_add_into", "a", "b");
    launch_map(a, &b, a, AddOp{}, "cuda_add_into");
}

Tensor cuda_relu_squared(const Tensor& x) { return map_unary(x, ReluSquaredOp{}, "cuda_relu_squared", "x"); }

Tensor cuda_relu_squared_backward(const Tensor& x, const Tensor& dy) {
    return map_binary(x, dy, ReluSquaredBackwardOp{}, "cuda_relu_squared_backward", "x", "dy");
}

Tensor cuda_leaky_relu_squared(const Tensor& x, double slope) {
    return map_unary(x, LeakyReluSquaredOp{static_cast<float>(slope)}, "cuda_leaky_relu_squared", "x");
}

Tensor cuda_leaky_relu_squared_backward(const Tensor& x, double slope, const Tensor& dy) {
    return map_binary(x, dy, LeakyReluSquaredBackwardOp{static_cast<float>(slope)}, "cuda_leaky_relu_squared_backward",
                      "x", "dy");
}

Tensor cuda_mul_broadcast(const Tensor& x, const Tensor& g, std::int64_t axis) {
    const BroadcastView view = broadcast_view_checked(x, g, axis, "cuda_mul_broadcast");
    Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
    launch_broadcast(x, g, y, view, "cuda_mul_broadcast");
    return y;
}

MulBroadcastGrads cuda_mul_broadcast_backward(const Tensor& x, const Tensor& g, std::int64_t axis, const Tensor& dy) {
    const char* op = "cuda_mul_broadcast_backward";
    const BroadcastView view = broadcast_view_checked(x, g, axis, op);
    cuda_check_input(dy, x.dtype(), op, "dy");
    tensor_check_shape(dy, x.shape(), op, "dy");
    MulBroadcastGrads grads;
    grads.dx = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
    grads.dg = Tensor::empty(g.shape(), g.dtype(), Device::cuda);
    if (view.inner == 1) {
        // Gain on the last axis: one fused pass for dx and the column sums.
        cuda_dispatch_float(x.dtype(), op, [&](auto tag) {
            using T = decltype(tag);
            ColumnBackwardArgs<T> args;
            args.dy = cuda_pointer<T>(dy);
            args.operand[0] = cuda_pointer<T>(x);
            args.gain[0] = cuda_pointer<T>(g);
            args.grad[0] = cuda_pointer<T>(grads.dx);
            args.rows = view.outer;
            args.channels = view.channels;
            launch_column_backward<T, 1, false>(args, cuda_pointer<T>(grads.dg));
        });
    } else {
        launch_broadcast(dy, g, grads.dx, view, op);
        launch_segment_sums(dy, x, grads.dg, view, op);
    }
    return grads;
}

Tensor cuda_permute_0213(const Tensor& x) {
    const char* op = "cuda_permute_0213";
    cuda_check_float_input(x, op, "x");
    if (x.dim() != 4)
        throw Error(std::string(op) + ": x has shape " + shape_string(x.shape()) + ", expected (A, B, C, D)");
    const std::int64_t a = x.size(0);
    const std::int64_t b = x.size(1);
    const std::int64_t c = x.size(2);
    const std::int64_t d = x.size(3);
    Tensor y = Tensor::empty({a, c, b, d}, x.dtype(), Device::cuda);
    cuda_dispatch_float(x.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        const std::int64_t count = x.numel();
        if (count == 0) return;
        const T* source = cuda_pointer<T>(x);
        T* target = cuda_pointer<T>(y);
        if (cuda_can_vectorize<T>(d, {source, target})) {
            launch_permute_0213<T, cuda_vector_width<T>()>(source, target, a, b, c, d);
        } else {
            launch_permute_0213<T, 1>(source, target, a, b, c, d);
        }
    });
    return y;
}

Tensor cuda_residual_mix(const Tensor& x, const Tensor& x0, const Tensor& mix) {
    const char* op = "cuda_residual_mix";
    check_same(x, x0, op, "x", "x0");
    const std::int64_t d = last_axis(x, op, "x");
    cuda_check_input(mix, x.dtype(), op, "mix");
    tensor_check_shape(mix, {2, d}, op, "mix");
    return launch_row_gain(x, x0, mix, true, ResidualMixOp{}, op);
}

ResidualMixGrads cuda_residual_mix_backward(const Tensor& x, const Tensor& x0, const Tensor& mix, const Tensor& dy) {
    const char* op = "cuda_residual_mix_backward";
    check_same(x, x0, op, "x", "x0");
    check_same(x, dy, op, "x", "dy");
    const std::int64_t d = last_axis(x, op, "x");
    cuda_check_input(mix, x.dtype(), op, "mix");
    tensor_check_shape(mix, {2, d}, op, "mix");
    ResidualMixGrads grads;
    grads.dx = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
    grads.dx0 = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
    grads.dmix = Tensor::empty({2, d}, x.dtype(), Device::cuda);
    cuda_dispatch_float(x.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        ColumnBackwardArgs<T> args;
        args.dy = cuda_pointer<T>(dy);
        args.operand[0] = cuda_pointer<T>(x);
        args.operand[1] = cuda_pointer<T>(x0);
        args.gain[0] = cuda_pointer<T>(mix);
        args.gain[1] = cuda_pointer<T>(mix) + d;
        args.grad[0] = cuda_pointer<T>(grads.dx);
        args.grad[1] = cuda_pointer<T>(grads.dx0);
        args.rows = d == 0 ? 0 : x.numel() / d;
        args.channels = d;
        launch_column_backward<T, 2, false>(args, cuda_pointer<T>(grads.dmix));
    });
    return grads;
}

Tensor cuda_residual_add_scaled(const Tensor& x, const Tensor& y, const Tensor& g) {
    const char* op = "cuda_residual_add_scaled";
    check_same(x, y, op, "x", "y");
    const std::int64_t d = last_axis(x, op, "x");
    cuda_check_input(g, x.dtype(), op, "g");
    tensor_check_shape(g, {d}, op, "g");
    return launch_row_gain(x, y, g, false, ResidualAddScaledOp{}, op);
}

ResidualAddScaledGrads cuda_residual_add_scaled_backward(const Tensor& y, const Tensor& g, const Tensor& dout) {
    const char* op = "cuda_residual_add_scaled_backward";
    check_same(y, dout, op, "y", "dout");
    const std::int64_t d = last_axis(y, op, "y");
    cuda_check_input(g, y.dtype(), op, "g");
    tensor_check_shape(g, {d}, op, "g");
    ResidualAddScaledGrads grads;
    grads.dx = Tensor::empty(y.shape(), y.dtype(), Device::cuda);
    grads.dy = Tensor::empty(y.shape(), y.dtype(), Device::cuda);
    grads.dg = Tensor::empty({d}, y.dtype(), Device::cuda);
    cuda_dispatch_float(y.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        ColumnBackwardArgs<T> args;
        args.dy = cuda_pointer<T>(dout);
        args.operand[0] = cuda_pointer<T>(y);
        args.gain[0] = cuda_pointer<T>(g);
        args.grad[0] = cuda_pointer<T>(grads.dy);
        args.copy = cuda_pointer<T>(grads.dx);
        args.rows = d == 0 ? 0 : y.numel() / d;
        args.channels = d;
        launch_column_backward<T, 1, true>(args, cuda_pointer<T>(grads.dg));
    });
    return grads;
}

}  // namespace pgolf
