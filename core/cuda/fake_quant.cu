// Per-row absmax fake quantization: one block per row finds the row's absmax (and whether it holds a NaN), then
// rewrites the row on the integer grid. Per-element math, bit for bit the CPU reference's: core/cuda/fake_quant_math.h.
#include <cmath>
#include <string>

#include "core/cuda/device_math.cuh"
#include "core/cuda/fake_quant.h"
#include "core/cuda/fake_quant_math.h"
#include "core/cuda/op_checks.h"

namespace pgolf {

namespace {

// w, out: (rows, cols); one block per row. The row is read twice (absmax, then quantize); the second read hits L2.
template <typename T, bool Vectorized>
__global__ void fake_quant_rows_kernel(const T* w, std::int64_t cols, float divisor, float scale_floor, float low,
                                       float high, T* out) {
    __shared__ float scratch[32];
    constexpr int kWidth = cuda_vector_width<T>();
    const T* row = w + static_cast<std::int64_t>(blockIdx.x) * cols;
    T* out_row = out + static_cast<std::int64_t>(blockIdx.x) * cols;

    float row_max = 0.0f;
    float nan_seen = 0.0f;  // 1 when this thread saw a NaN; a max over the block tells the row
    if constexpr (Vectorized) {
        for (std::int64_t v = threadIdx.x; v < cols / kWidth; v += blockDim.x) {
            float values[kWidth];
            cuda_load_vector(row, v * kWidth, values);
#pragma unroll
            for (int k = 0; k < kWidth; ++k) {
                row_max = fake_quant_absmax(row_max, values[k]);
                if (isnan(values[k])) nan_seen = 1.0f;
            }
        }
    } else {
        for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
            const float x = cuda_load(row, c);
            row_max = fake_quant_absmax(row_max, x);
            if (isnan(x)) nan_seen = 1.0f;
        }
    }
    // The max of non-negative, non-NaN values is exact in any order, so fmaxf's block max gives the reference's.
    row_max = cuda_block_max(row_max, scratch);
    nan_seen = cuda_block_max(nan_seen, scratch);
    const float scale = fake_quant_scale(row_max, nan_seen > 0.0f, divisor, scale_floor);

    if constexpr (Vectorized) {
        for (std::int64_t v = threadIdx.x; v < cols / kWidth; v += blockDim.x) {
            float values[kWidth];
            cuda_load_vector(row, v * kWidth, values);
#pragma unroll
            for (int k = 0; k < kWidth; ++k) values[k] = fake_quant_element(values[k], scale, low, high);
            cuda_store_vector(out_row, v * kWidth, values);
        }
    } else {
        for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
            cuda_store(out_row, c, fake_quant_element(cuda_load(row, c), scale, low, high));
        }
    }
}

std::string fake_quant_number(double value) {
    std::string text = std::to_string(value);
    text.erase(text.find_last_not_of('0') + 1);
    if (!text.empty() && text.back() == '.') text.pop_back();
    return text;
}

}  // namespace

Tensor cuda_fake_quantize_rows(const Tensor& w, const FakeQuantSpec& spec) {
    const char* op = "cuda_fake_quantize_rows";
    cuda_check_float_input(w, op, "w");
    if (w.dim() != 2) {
        throw Error(std::string(op) + ": w must be 2-D (rows, cols), got shape " + shape_string(w.shape()));
    }
    if (spec.min_q > spec.max_q) {
        throw Error(std::string(op) + ": spec.min_q " + std::to_string(spec.min_q) + " exceeds spec.max_q " +
                    std::to_string(spec.max_q));
    }
    if (!(spec.divisor > 0.0) || !std::isfinite(spec.divisor)) {
        throw Error(std::string(op) + ": spec.divisor must be positive and finite, got " +
                    fake_quant_number(spec.divisor));
    }
    if (!(spec.scale_floor > 0.0) || !std::isfinite(spec.scale_floor)) {
        throw Error(std::string(op) + ": spec.scale_floor must be positive and finite, got " +
                    fake_quant_number(spec.scale_floor));
    }
    const std::int64_t rows = w.size(0);
    const std::int64_t cols = w.size(1);
    Tensor out = Tensor::empty(w.shape(), w.dtype(), Device::cuda);
    if (rows == 0 || cols == 0) return out;
    // The spec's numbers are rounded to f32 once, as torch casts Python scalars to the f32 tensor's dtype.
    const auto divisor = static_cast<float>(spec.divisor);
    const auto scale_floor = static_cast<float>(spec.scale_floor);
    const auto low = static_cast<float>(spec.min_q);
    const auto high = static_cast<float>(spec.max_q);
    cuda_dispatch_float(w.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        const T* in = cuda_pointer<T>(w);
        T* result = cuda_pointer<T>(out);
        const int width = cuda_vector_width<T>();
        const bool vectorized = cuda_can_vectorize<T>(cols, {in, result});
        // About one vector per thread: cols 512 gets 128 f32 threads (64 bf16), 1536 gets 384 (192).
        const std::int64_t per_thread = vectorized ? width : 4;
        std::int64_t threads = ((cols + per_thread - 1) / per_thread + 31) / 32 * 32;
        threads = threads < 32 ? 32 : (threads > 1024 ? 1024 : threads);
        const auto kernel = vectorized ? fake_quant_rows_kernel<T, true> : fake_quant_rows_kernel<T, false>;
        kernel<<<static_cast<unsigned int>(rows), static_cast<unsigned int>(threads), 0, cuda_stream()>>>(
            in, cols, divisor, scale_floor, low, high, result);
        PGOLF_CUDA_CHECK_LAUNCH();
    });
    return out;
}

}  // namespace pgolf
