// f32 <-> bf16 conversion and fill of cuda tensors (see convert.h): memory-bound grid-stride kernels over 8-element
// chunks with 16-byte loads and stores, a scalar tail, and a scalar path when a pointer is not 16-byte aligned.
#include <cstdint>
#include <string>
#include <type_traits>

#include "core/cuda/convert.h"
#include "core/cuda/device_math.cuh"
#include "core/cuda/op_checks.h"

namespace pgolf {

namespace {

constexpr int kThreads = 256;
// Elements per chunk: one 16-byte vector of bf16, two of f32, so every chunk is whole vectors of either type.
constexpr int kChunk = 8;

bool aligned_16(const void* pointer) { return reinterpret_cast<std::uintptr_t>(pointer) % 16 == 0; }

template <typename T>
__device__ __forceinline__ void load_chunk(const T* base, std::int64_t first, float* values) {
#pragma unroll
    for (int v = 0; v < kChunk; v += cuda_vector_width<T>()) cuda_load_vector(base, first + v, values + v);
}

template <typename T>
__device__ __forceinline__ void store_chunk(T* base, std::int64_t first, const float* values) {
#pragma unroll
    for (int v = 0; v < kChunk; v += cuda_vector_width<T>()) cuda_store_vector(base, first + v, values + v);
}

// destination[i] = source[i] through fp32 (exact for f32 -> f32, bf16 -> f32 and bf16 -> bf16; f32 -> bf16 rounds as
// hd_bf16_from_float). vectorized: both pointers 16-byte aligned; whole chunks go vector-wide, the rest one by one.
template <typename Source, typename Destination>
__global__ void convert_kernel(const Source* source, Destination* destination, std::int64_t count, bool vectorized) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    const std::int64_t thread = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    std::int64_t scalar_begin = 0;
    if (vectorized) {
        const std::int64_t chunks = count / kChunk;
        for (std::int64_t chunk = thread; chunk < chunks; chunk += stride) {
            float values[kChunk];
            load_chunk(source, chunk * kChunk, values);
            store_chunk(destination, chunk * kChunk, values);
        }
        scalar_begin = chunks * kChunk;
    }
    for (std::int64_t i = scalar_begin + thread; i < count; i += stride)
        cuda_store(destination, i, cuda_load(source, i));
}

// Every element = value (already in the storage type, so no per-element rounding).
template <typename T>
__global__ void fill_kernel(T* base, std::int64_t count, T value, bool vectorized) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    const std::int64_t thread = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    std::int64_t scalar_begin = 0;
    if (vectorized) {
        constexpr int kWidth = cuda_vector_width<T>();
        uint4 pattern;
        T* lanes = reinterpret_cast<T*>(&pattern);
#pragma unroll
        for (int k = 0; k < kWidth; ++k) lanes[k] = value;
        const std::int64_t vectors = count / kWidth;
        for (std::int64_t v = thread; v < vectors; v += stride) reinterpret_cast<uint4*>(base)[v] = pattern;
        scalar_begin = vectors * kWidth;
    }
    for (std::int64_t i = scalar_begin + thread; i < count; i += stride) base[i] = value;
}

void check_float_dtype(DType dtype, const char* op, const char* name) {
    if (dtype != DType::f32 && dtype != DType::bf16) {
        throw Error(std::string(op) + ": " + name + " must be f32 or bf16 on cuda, not " + dtype_name(dtype));
    }
}

// destination = source converted; both f32/bf16 cuda tensors of the same shape, different storage.
void launch_convert(Tensor& destination, const Tensor& source) {
    const std::int64_t count = source.numel();
    if (count == 0) return;
    const bool vectorized = aligned_16(source.raw_data()) && aligned_16(destination.raw_data());
    const std::int64_t work = vectorized ? count / kChunk + count % kChunk : count;
    cuda_dispatch_float(source.dtype(), "cuda_convert", [&](auto source_tag) {
        using Source = decltype(source_tag);
        cuda_dispatch_float(destination.dtype(), "cuda_convert", [&](auto destination_tag) {
            using Destination = decltype(destination_tag);
            convert_kernel<Source, Destination><<<cuda_grid_size(work, kThreads), kThreads, 0, cuda_stream()>>>(
                cuda_pointer<Source>(source), cuda_pointer<Destination>(destination), count, vectorized);
            PGOLF_CUDA_CHECK_LAUNCH();
        });
    });
}

}  // namespace

Tensor cuda_convert(const Tensor& x, DType dtype) {
    tensor_check_device(x, Device::cuda, "cuda_convert", "x");
    Tensor converted = Tensor::empty(x.shape(), dtype, Device::cuda);
    if (x.dtype() == dtype) {
        converted.copy_from(x);  // a device-to-device copy on the current stream
        return converted;
    }
    if (!((x.dtype() == DType::f32 && dtype == DType::bf16) || (x.dtype() == DType::bf16 && dtype == DType::f32))) {
        throw Error("cuda_convert: converts f32 <-> bf16 only, not " + dtype_name(x.dtype()) + " to " +
                    dtype_name(dtype));
    }
    launch_convert(converted, x);
    return converted;
}

void cuda_convert_into(Tensor& destination, const Tensor& source) {
    cuda_check_float_input(source, "cuda_convert_into", "source");
    cuda_check_float_input(destination, "cuda_convert_into", "destination");
    tensor_check_shape(destination, source.shape(), "cuda_convert_into", "destination");
    if (destination.dtype() == source.dtype()) {
        if (destination.raw_data() != source.raw_data()) destination.copy_from(source);
        return;
    }
    launch_convert(destination, source);
}

void cuda_fill(Tensor& tensor, double value) {
    tensor_check_device(tensor, Device::cuda, "cuda_fill", "tensor");
    check_float_dtype(tensor.dtype(), "cuda_fill", "tensor");
    const std::int64_t count = tensor.numel();
    if (count == 0) return;
    const float single = static_cast<float>(value);
    cuda_dispatch_float(tensor.dtype(), "cuda_fill", [&](auto tag) {
        using T = decltype(tag);
        T stored;
        if constexpr (std::is_same_v<T, float>) {
            stored = single;
        } else {
            stored.bits = hd_bf16_from_float(single);
        }
        const bool vectorized = aligned_16(tensor.raw_data());
        const std::int64_t work = vectorized ? count / cuda_vector_width<T>() + count % cuda_vector_width<T>() : count;
        fill_kernel<T><<<cuda_grid_size(work, kThreads), kThreads, 0, cuda_stream()>>>(cuda_pointer<T>(tensor), count,
                                                                                       stored, vectorized);
        PGOLF_CUDA_CHECK_LAUNCH();
    });
}

}  // namespace pgolf
