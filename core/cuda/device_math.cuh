// Device-side building blocks every kernel family shares: f32/bf16 element access, the dtype dispatch, 16-byte vector
// access, warp and block sums, and launch sizing. Included only from .cu files.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <string>

#include "core/cuda/check.h"
#include "core/cuda/host_device.h"
#include "core/cuda/runtime.h"
#include "core/error.h"
#include "core/tensor.h"

namespace pgolf {

// Elements are stored as float or as bf16 bits and always computed in fp32.
struct Bf16Bits {
    std::uint16_t bits;
};

__device__ __forceinline__ float cuda_load(const float* base, std::int64_t i) { return base[i]; }
__device__ __forceinline__ float cuda_load(const Bf16Bits* base, std::int64_t i) {
    return hd_float_from_bf16(base[i].bits);
}
__device__ __forceinline__ void cuda_store(float* base, std::int64_t i, float value) { base[i] = value; }
__device__ __forceinline__ void cuda_store(Bf16Bits* base, std::int64_t i, float value) {
    base[i].bits = hd_bf16_from_float(value);
}

// Elements per 16-byte vector for the storage type: 4 floats or 8 bf16.
template <typename T>
__host__ __device__ constexpr int cuda_vector_width() {
    return 16 / static_cast<int>(sizeof(T));
}

// Loads and stores cuda_vector_width<T>() consecutive elements starting at element i (16-byte aligned) as floats.
template <typename T>
__device__ __forceinline__ void cuda_load_vector(const T* base, std::int64_t i, float* out) {
    const uint4 raw = *reinterpret_cast<const uint4*>(base + i);
    const T* lanes = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int k = 0; k < cuda_vector_width<T>(); ++k) out[k] = cuda_load(lanes, k);
}
template <typename T>
__device__ __forceinline__ void cuda_store_vector(T* base, std::int64_t i, const float* values) {
    uint4 raw;
    T* lanes = reinterpret_cast<T*>(&raw);
#pragma unroll
    for (int k = 0; k < cuda_vector_width<T>(); ++k) cuda_store(lanes, k, values[k]);
    *reinterpret_cast<uint4*>(base + i) = raw;
}

// W consecutive elements from element i as floats: one 16-byte vector when W is T's vector width, else one scalar.
// Kernels templated on W take both paths from one body (the vector path where cuda_can_vectorize allows).
template <int W, typename T>
__device__ __forceinline__ void cuda_load_elements(const T* base, std::int64_t i, float* out) {
    if constexpr (W == 1) {
        out[0] = cuda_load(base, i);
    } else {
        static_assert(W == cuda_vector_width<T>(), "W is 1 or the 16-byte vector width");
        cuda_load_vector(base, i, out);
    }
}
template <int W, typename T>
__device__ __forceinline__ void cuda_store_elements(T* base, std::int64_t i, const float* values) {
    if constexpr (W == 1) {
        cuda_store(base, i, values[0]);
    } else {
        static_assert(W == cuda_vector_width<T>(), "W is 1 or the 16-byte vector width");
        cuda_store_vector(base, i, values);
    }
}

// True when every pointer is 16-byte aligned and count is a whole number of vectors of T.
template <typename T>
inline bool cuda_can_vectorize(std::int64_t count, std::initializer_list<const void*> pointers) {
    if (count % cuda_vector_width<T>() != 0) return false;
    for (const void* pointer : pointers) {
        if (reinterpret_cast<std::uintptr_t>(pointer) % 16 != 0) return false;
    }
    return true;
}

__device__ __forceinline__ float cuda_warp_sum(float value) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xFFFFFFFFu, value, offset);
    return value;
}

__device__ __forceinline__ float cuda_warp_max(float value) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) value = fmaxf(value, __shfl_xor_sync(0xFFFFFFFFu, value, offset));
    return value;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the total. scratch: 32 floats of
// shared memory. The order of additions is fixed by the launch shape, so results are reproducible run to run.
__device__ __forceinline__ float cuda_block_sum(float value, float* scratch) {
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    value = cuda_warp_sum(value);
    __syncthreads();  // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = value;
    __syncthreads();
    const int warps = (blockDim.x + 31) >> 5;
    value = lane < warps ? scratch[lane] : 0.0f;
    return cuda_warp_sum(value);
}

__device__ __forceinline__ float cuda_block_max(float value, float* scratch) {
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    value = cuda_warp_max(value);
    __syncthreads();
    if (lane == 0) scratch[warp] = value;
    __syncthreads();
    const int warps = (blockDim.x + 31) >> 5;
    value = lane < warps ? scratch[lane] : -INFINITY;
    return cuda_warp_max(value);
}

// Grid size for a grid-stride loop over count items: enough blocks to fill the device, no more than needed.
inline unsigned int cuda_grid_size(std::int64_t count, int threads) {
    const std::int64_t blocks = (count + threads - 1) / threads;
    constexpr std::int64_t kMaxBlocks =
        132 * 32;  // 32 blocks per SM on a 132-SM H100/H200: a grid-stride loop covers the rest
    return static_cast<unsigned int>(blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks));
}

inline cudaStream_t cuda_stream() { return static_cast<cudaStream_t>(cuda_current_stream()); }

// Runs body with T = float for f32 tensors and T = Bf16Bits for bf16; anything else throws naming the op.
template <typename Body>
void cuda_dispatch_float(DType dtype, const char* op, Body&& body) {
    if (dtype == DType::f32) {
        body(float{});
    } else if (dtype == DType::bf16) {
        body(Bf16Bits{});
    } else {
        throw Error(std::string(op) + ": CUDA kernels take f32 or bf16, not " + dtype_name(dtype));
    }
}

// Typed device pointer of a cuda f32/bf16 tensor as the kernel's storage type.
template <typename T>
T* cuda_pointer(Tensor& tensor) {
    return static_cast<T*>(tensor.raw_data());
}
template <typename T>
const T* cuda_pointer(const Tensor& tensor) {
    return static_cast<const T*>(tensor.raw_data());
}

}  // namespace pgolf
