// CUDA rotary position embedding: one thread per group of W rotated pairs (or W passed-through dims) of a row. The
// inverse frequencies are computed on the host exactly as the CPU reference does and passed in the launch arguments.
#include <cmath>
#include <string>

#include "core/cuda/device_math.cuh"
#include "core/cuda/op_checks.h"
#include "core/cuda/rope.h"
#include "core/cuda/rope_math.h"

namespace pgolf {

namespace {

constexpr int kThreads = 256;
// Pairs per row the launch arguments carry frequencies for (head dims up to 512).
constexpr std::int64_t kMaxPairs = 256;

struct RopeFrequencies {
    float inverse[kMaxPairs];
};

struct RopeShape {
    std::int64_t rows = 0;  // B·H·T
    std::int64_t time = 0;
    std::int64_t head_dim = 0;
    std::int64_t half = 0;  // rotated pairs per row: dim j pairs with j + half
    std::int64_t position_offset = 0;
};

// x, y: (rows, head_dim). Per row, items [0, half/W) rotate W pairs each; the rest copy W passed-through dims as bits.
// sine_sign is +1 for the forward, −1 for the backward's transposed rotation.
// Index: std::uint32_t when rows · head_dim < 2^31 (32-bit divisions are several times cheaper), else std::int64_t.
template <typename T, int W, typename Index>
__global__ void rope_kernel(const T* x, T* y, RopeShape shape, float sine_sign, RopeFrequencies frequencies) {
    const auto pair_groups = static_cast<Index>(shape.half / W);
    const auto row_items = static_cast<Index>(pair_groups + (shape.head_dim - 2 * shape.half) / W);
    const auto items = static_cast<Index>(shape.rows) * row_items;
    const auto time = static_cast<Index>(shape.time);
    const auto head_dim = static_cast<Index>(shape.head_dim);
    const auto half = static_cast<Index>(shape.half);
    const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
    for (Index item = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; item < items; item += stride) {
        const Index row = item / row_items;
        const Index k = item - row * row_items;
        const Index base = row * head_dim;
        if (k < pair_groups) {
            const Index j = k * W;
            const std::int64_t position = static_cast<std::int64_t>(row % time) + shape.position_offset;
            float first[W];
            float second[W];
            cuda_load_elements<W>(x, base + j, first);
            cuda_load_elements<W>(x, base + half + j, second);
#pragma unroll
            for (int w = 0; w < W; ++w) {
                const float angle = hd_rope_angle(position, frequencies.inverse[j + w]);
                const RopePair rotated =
                    hd_rope_rotate(first[w], second[w], hd_rope_cos(angle), sine_sign * hd_rope_sin(angle));
                first[w] = rotated.first;
                second[w] = rotated.second;
            }
            cuda_store_elements<W>(y, base + j, first);
            cuda_store_elements<W>(y, base + half + j, second);
        } else {
            const Index d = base + 2 * half + (k - pair_groups) * W;
            if constexpr (W == 1) {
                y[d] = x[d];
            } else {
                *reinterpret_cast<uint4*>(y + d) = *reinterpret_cast<const uint4*>(x + d);
            }
        }
    }
}

std::string rope_number(double value) {
    std::string text = std::to_string(value);
    text.erase(text.find_last_not_of('0') + 1);
    if (!text.empty() && text.back() == '.') text.pop_back();
    return text;
}

// The CPU reference's checks (core/ops/rope.cpp), naming the CUDA entry point.
RopeShape rope_check(const Tensor& x, const RopeSpec& spec, const char* op, const char* name,
                     RopeFrequencies& frequencies) {
    cuda_check_float_input(x, op, name);
    if (x.dim() != 4) {
        throw Error(std::string(op) + ": " + name + " must be 4-D (B, H, T, Dh), got shape " + shape_string(x.shape()));
    }
    RopeShape shape;
    shape.head_dim = x.size(3);
    shape.time = x.size(2);
    shape.rows = x.size(0) * x.size(1) * x.size(2);
    shape.position_offset = spec.position_offset;
    const std::int64_t rotary_dims = spec.rotary_dims == 0 ? shape.head_dim : spec.rotary_dims;
    if (rotary_dims <= 0 || rotary_dims % 2 != 0 || rotary_dims > shape.head_dim) {
        throw Error(std::string(op) + ": rotary_dims must be even, positive and at most the head dim " +
                    std::to_string(shape.head_dim) + ", got " + std::to_string(rotary_dims));
    }
    if (rotary_dims / 2 > kMaxPairs) {
        throw Error(std::string(op) + ": rotary_dims " + std::to_string(rotary_dims) + " exceeds the supported " +
                    std::to_string(2 * kMaxPairs));
    }
    shape.half = rotary_dims / 2;
    const std::int64_t frequency_dims = spec.frequency_dims == 0 ? rotary_dims : spec.frequency_dims;
    if (frequency_dims % 2 != 0 || frequency_dims < rotary_dims) {
        throw Error(std::string(op) + ": frequency_dims must be even and at least rotary_dims " +
                    std::to_string(rotary_dims) + ", got " + std::to_string(frequency_dims));
    }
    if (!(spec.base > 0.0) || !std::isfinite(spec.base)) {
        throw Error(std::string(op) + ": base must be positive and finite, got " + rope_number(spec.base));
    }
    if (spec.position_offset < 0) {
        throw Error(std::string(op) + ": position_offset must be non-negative, got " +
                    std::to_string(spec.position_offset));
    }
    for (std::int64_t j = 0; j < kMaxPairs; ++j) {
        frequencies.inverse[j] = j < shape.half ? rope_inverse_frequency(spec.base, j, frequency_dims) : 0.0f;
    }
    return shape;
}

Tensor rope_launch(const Tensor& x, const RopeSpec& spec, const char* op, const char* name, float sine_sign) {
    RopeFrequencies frequencies;
    const RopeShape shape = rope_check(x, spec, op, name, frequencies);
    Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
    if (x.numel() == 0) return y;
    cuda_dispatch_float(x.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        constexpr int kWidth = cuda_vector_width<T>();
        const T* in = cuda_pointer<T>(x);
        T* out = cuda_pointer<T>(y);
        const bool vectorize = shape.half % kWidth == 0 && cuda_can_vectorize<T>(shape.head_dim, {in, out});
        const std::int64_t items = shape.rows * (shape.head_dim - shape.half) / (vectorize ? kWidth : 1);
        const unsigned int blocks = cuda_grid_size(items, kThreads);
        const bool narrow = x.numel() < (std::int64_t{1} << 31);
        if (vectorize && narrow) {
            rope_kernel<T, kWidth, std::uint32_t>
                <<<blocks, kThreads, 0, cuda_stream()>>>(in, out, shape, sine_sign, frequencies);
        } else if (vectorize) {
            rope_kernel<T, kWidth, std::int64_t>
                <<<blocks, kThreads, 0, cuda_stream()>>>(in, out, shape, sine_sign, frequencies);
        } else if (narrow) {
            rope_kernel<T, 1, std::uint32_t>
                <<<blocks, kThreads, 0, cuda_stream()>>>(in, out, shape, sine_sign, frequencies);
        } else {
            rope_kernel<T, 1, std::int64_t>
                <<<blocks, kThreads, 0, cuda_stream()>>>(in, out, shape, sine_sign, frequencies);
        }
        PGOLF_CUDA_CHECK_LAUNCH();
    });
    return y;
}

}  // namespace

Tensor cuda_rope_forward(const Tensor& x, const RopeSpec& spec) {
    return rope_launch(x, spec, "cuda_rope_forward", "x", 1.0f);
}

// The rotation is orthogonal per pair, so the gradient is the transposed rotation of dy.
Tensor cuda_rope_backward(const Tensor& dy, const RopeSpec& spec) {
    return rope_launch(dy, spec, "cuda_rope_backward", "dy", -1.0f);
}

}  // namespace pgolf
