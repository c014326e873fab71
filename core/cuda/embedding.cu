// CUDA embedding kernels: a row gather for the forward; for the backward a stable radix sort of (id, position) pairs
// (CUB), then one block per table row summing its positions' gradient rows in position order (no atomics, so the
// result is bitwise reproducible).
#include <algorithm>
#include <cub/device/device_radix_sort.cuh>
#include <limits>
#include <string>

#include "core/cuda/device_math.cuh"
#include "core/cuda/embedding.h"
#include "core/cuda/op_checks.h"

namespace pgolf {

namespace {

constexpr int kThreads = 256;

// y: (count, row_units) = table[ids] in units of Unit (a 16-byte vector or one element); ids outside [0, vocab)
// give zero rows.
template <typename Unit>
__global__ void gather_kernel(const Unit* table, const std::int64_t* ids, Unit* y, std::int64_t count,
                              std::int64_t vocab, std::int64_t row_units) {
    const std::int64_t total = count * row_units;
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
        const std::int64_t id = ids[i / row_units];
        y[i] = id >= 0 && id < vocab ? table[id * row_units + i % row_units] : Unit{};
    }
}

// Sort keys: the id, or vocab for ids outside [0, vocab) so they sort last and are dropped; values: positions.
__global__ void sort_input_kernel(const std::int64_t* ids, std::uint32_t* keys, std::int32_t* positions,
                                  std::int64_t count, std::int64_t vocab) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
        const std::int64_t id = ids[i];
        keys[i] = static_cast<std::uint32_t>(id >= 0 && id < vocab ? id : vocab);
        positions[i] = static_cast<std::int32_t>(i);
    }
}

// run_begin/run_end[v]: the range of id v in the sorted keys (both left 0, an empty range, for ids that do not occur).
__global__ void run_bounds_kernel(const std::uint32_t* keys, std::int32_t* run_begin, std::int32_t* run_end,
                                  std::int64_t count, std::int64_t vocab) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
        const std::uint32_t key = keys[i];
        if (key >= vocab) continue;
        if (i == 0 || keys[i - 1] != key) run_begin[key] = static_cast<std::int32_t>(i);
        if (i == count - 1 || keys[i + 1] != key) run_end[key] = static_cast<std::int32_t>(i + 1);
    }
}

// dtable[v] = Σ over the run of id v, in position order, of dy[position]; one block per table row (grid-stride),
// threads over groups of W columns. Every row of dtable is written, so it needs no zeroing first.
template <typename T, int W>
__global__ void accumulate_rows_kernel(const T* dy, const std::int32_t* positions, const std::int32_t* run_begin,
                                       const std::int32_t* run_end, float* dtable, std::int64_t vocab, std::int64_t d) {
    const std::int64_t groups = d / W;
    for (std::int64_t v = blockIdx.x; v < vocab; v += gridDim.x) {
        const std::int32_t begin = run_begin[v];
        const std::int32_t end = run_end[v];
        for (std::int64_t group = threadIdx.x; group < groups; group += blockDim.x) {
            float sums[W] = {};
            for (std::int32_t p = begin; p < end; ++p) {
                float values[W];
                cuda_load_elements<W>(dy, static_cast<std::int64_t>(positions[p]) * d + group * W, values);
#pragma unroll
                for (int w = 0; w < W; ++w) sums[w] += values[w];
            }
            float* out = dtable + v * d + group * W;
            if constexpr (W % 4 == 0) {
#pragma unroll
                for (int q = 0; q < W; q += 4) cuda_store_vector(out, q, sums + q);
            } else {
#pragma unroll
                for (int w = 0; w < W; ++w) out[w] = sums[w];
            }
        }
    }
}

unsigned int grid_for_rows(std::int64_t rows) {
    return static_cast<unsigned int>(std::max<std::int64_t>(1, std::min<std::int64_t>(rows, 1 << 20)));
}

}  // namespace

Tensor cuda_embedding_forward(const Tensor& table, const Tensor& ids) {
    const char* op = "cuda_embedding_forward";
    cuda_check_float_input(table, op, "table");
    if (table.dim() != 2) {
        throw Error(std::string(op) + ": table has shape " + shape_string(table.shape()) + ", expected (V, D)");
    }
    cuda_check_input(ids, DType::i64, op, "ids");
    const std::int64_t vocab = table.size(0);
    const std::int64_t d = table.size(1);
    Shape y_shape = ids.shape();
    y_shape.push_back(d);
    Tensor y = Tensor::empty(y_shape, table.dtype(), Device::cuda);
    const std::int64_t count = ids.numel();
    if (count == 0 || d == 0) return y;
    const auto* id = cuda_pointer<std::int64_t>(ids);
    const std::int64_t row_bytes = d * static_cast<std::int64_t>(dtype_size(table.dtype()));
    const auto aligned = [](const void* pointer) { return reinterpret_cast<std::uintptr_t>(pointer) % 16 == 0; };
    if (row_bytes % 16 == 0 && aligned(table.raw_data()) && aligned(y.raw_data())) {
        const std::int64_t units = row_bytes / 16;
        gather_kernel<uint4><<<cuda_grid_size(count * units, kThreads), kThreads, 0, cuda_stream()>>>(
            static_cast<const uint4*>(table.raw_data()), id, static_cast<uint4*>(y.raw_data()), count, vocab, units);
    } else if (table.dtype() == DType::f32) {
        gather_kernel<float><<<cuda_grid_size(count * d, kThreads), kThreads, 0, cuda_stream()>>>(
            cuda_pointer<float>(table), id, cuda_pointer<float>(y), count, vocab, d);
    } else {
        gather_kernel<std::uint16_t><<<cuda_grid_size(count * d, kThreads), kThreads, 0, cuda_stream()>>>(
            static_cast<const std::uint16_t*>(table.raw_data()), id, static_cast<std::uint16_t*>(y.raw_data()), count,
            vocab, d);
    }
    PGOLF_CUDA_CHECK_LAUNCH();
    return y;
}

Tensor cuda_embedding_backward(const Tensor& dy, const Tensor& ids, std::int64_t vocab_size) {
    const char* op = "cuda_embedding_backward";
    cuda_check_float_input(dy, op, "dy");
    cuda_check_input(ids, DType::i64, op, "ids");
    if (vocab_size < 0 || vocab_size > std::numeric_limits<std::int32_t>::max()) {
        throw Error(std::string(op) + ": vocab_size " + std::to_string(vocab_size) + " is outside [0, 2^31)");
    }
    if (dy.dim() != ids.dim() + 1) {
        throw Error(std::string(op) + ": dy has shape " + shape_string(dy.shape()) + ", expected " +
                    shape_string(ids.shape()) + " + (D,)");
    }
    const std::int64_t d = dy.size(-1);
    Shape dy_shape = ids.shape();
    dy_shape.push_back(d);
    tensor_check_shape(dy, dy_shape, op, "dy");
    const std::int64_t count = ids.numel();
    if (count > std::numeric_limits<std::int32_t>::max()) {
        throw Error(std::string(op) + ": " + std::to_string(count) + " ids, at most 2^31 - 1 supported");
    }
    Tensor dtable = Tensor::empty({vocab_size, d}, DType::f32, Device::cuda);
    if (vocab_size == 0 || d == 0) return dtable;
    if (count == 0) {
        dtable.zero();
        return dtable;
    }
    const cudaStream_t stream = cuda_stream();

    // Sort (id, position) pairs by id; the radix sort is stable, so each id's positions stay in ascending order.
    Tensor keys_in = Tensor::empty({count}, DType::i32, Device::cuda);
    Tensor keys_out = Tensor::empty({count}, DType::i32, Device::cuda);
    Tensor positions_in = Tensor::empty({count}, DType::i32, Device::cuda);
    Tensor positions_out = Tensor::empty({count}, DType::i32, Device::cuda);
    auto* keys_in_data = static_cast<std::uint32_t*>(keys_in.raw_data());
    auto* keys_out_data = static_cast<std::uint32_t*>(keys_out.raw_data());
    auto* positions_in_data = cuda_pointer<std::int32_t>(positions_in);
    auto* positions_out_data = cuda_pointer<std::int32_t>(positions_out);
    sort_input_kernel<<<cuda_grid_size(count, kThreads), kThreads, 0, stream>>>(
        cuda_pointer<std::int64_t>(ids), keys_in_data, positions_in_data, count, vocab_size);
    PGOLF_CUDA_CHECK_LAUNCH();
    int end_bit = 1;  // keys go up to vocab_size (the out-of-range marker)
    while (end_bit < 32 && (std::uint64_t{1} << end_bit) <= static_cast<std::uint64_t>(vocab_size)) ++end_bit;
    const int items = static_cast<int>(count);
    std::size_t temp_bytes = 0;
    PGOLF_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys_in_data, keys_out_data,
                                                     positions_in_data, positions_out_data, items, 0, end_bit, stream));
    Tensor temp =
        Tensor::empty({static_cast<std::int64_t>(std::max<std::size_t>(temp_bytes, 1))}, DType::u8, Device::cuda);
    PGOLF_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.raw_data(), temp_bytes, keys_in_data, keys_out_data,
                                                     positions_in_data, positions_out_data, items, 0, end_bit, stream));

    Tensor runs = Tensor::zeros({2, vocab_size}, DType::i32, Device::cuda);
    std::int32_t* run_begin = cuda_pointer<std::int32_t>(runs);
    std::int32_t* run_end = run_begin + vocab_size;
    run_bounds_kernel<<<cuda_grid_size(count, kThreads), kThreads, 0, stream>>>(keys_out_data, run_begin, run_end,
                                                                                count, vocab_size);
    PGOLF_CUDA_CHECK_LAUNCH();

    cuda_dispatch_float(dy.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        constexpr int kWidth = cuda_vector_width<T>();
        const T* gradient = cuda_pointer<T>(dy);
        float* out = cuda_pointer<float>(dtable);
        if (cuda_can_vectorize<T>(d, {gradient, out})) {
            const std::int64_t threads = std::min<std::int64_t>(kThreads, (d / kWidth + 31) / 32 * 32);
            accumulate_rows_kernel<T, kWidth>
                <<<grid_for_rows(vocab_size), static_cast<unsigned int>(threads), 0, stream>>>(
                    gradient, positions_out_data, run_begin, run_end, out, vocab_size, d);
        } else {
            const std::int64_t threads = std::min<std::int64_t>(kThreads, (d + 31) / 32 * 32);
            accumulate_rows_kernel<T, 1><<<grid_for_rows(vocab_size), static_cast<unsigned int>(threads), 0, stream>>>(
                gradient, positions_out_data, run_begin, run_end, out, vocab_size, d);
        }
        PGOLF_CUDA_CHECK_LAUNCH();
    });
    return dtable;
}

}  // namespace pgolf
