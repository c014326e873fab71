// Scalar math shared by the CUDA kernels and the host: functions marked PGOLF_HOST_DEVICE compile as device code under
// nvcc and as plain inline C++ under g++, so the CPU tests check the exact arithmetic each kernel does per element
// (tests/core/cuda_math_*_test.cpp) even on a machine without a GPU.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__CUDACC__)
#define PGOLF_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define PGOLF_HOST_DEVICE inline
#endif

namespace pgolf {

// Single correctly rounded fp32 or fp64 operations (T deduced from the first operand; the second converts to it). On
// the device they are the _rn intrinsics, which nvcc never contracts: by default it would fuse a·b + c into one FMA
// and round differently from the host's separate multiply and add, so a kernel built from these reproduces its host
// replay bit for bit. fp64 serves the reductions that sum in double (SmearGate's dg, Muon's norms).
template <typename T>
PGOLF_HOST_DEVICE T hd_mul(T a, std::type_identity_t<T> b) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "hd_mul: float or double");
#if defined(__CUDA_ARCH__)
    if constexpr (std::is_same_v<T, float>)
        return __fmul_rn(a, b);
    else
        return __dmul_rn(a, b);
#else
    return a * b;
#endif
}

template <typename T>
PGOLF_HOST_DEVICE T hd_add(T a, std::type_identity_t<T> b) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "hd_add: float or double");
#if defined(__CUDA_ARCH__)
    if constexpr (std::is_same_v<T, float>)
        return __fadd_rn(a, b);
    else
        return __dadd_rn(a, b);
#else
    return a + b;
#endif
}

template <typename T>
PGOLF_HOST_DEVICE T hd_sub(T a, std::type_identity_t<T> b) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "hd_sub: float or double");
#if defined(__CUDA_ARCH__)
    if constexpr (std::is_same_v<T, float>)
        return __fsub_rn(a, b);
    else
        return __dsub_rn(a, b);
#else
    return a - b;
#endif
}

template <typename T>
PGOLF_HOST_DEVICE T hd_div(T a, std::type_identity_t<T> b) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "hd_div: float or double");
#if defined(__CUDA_ARCH__)
    if constexpr (std::is_same_v<T, float>)
        return __fdiv_rn(a, b);
    else
        return __ddiv_rn(a, b);
#else
    return a / b;
#endif
}

PGOLF_HOST_DEVICE float hd_sqrt(float a) {
#if defined(__CUDA_ARCH__)
    return __fsqrt_rn(a);
#else
    return std::sqrt(a);
#endif
}

PGOLF_HOST_DEVICE std::uint32_t hd_float_bits(float value) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(value);
#else
    std::uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return bits;
#endif
}

PGOLF_HOST_DEVICE float hd_bits_float(std::uint32_t bits) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(bits);
#else
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
#endif
}

// bf16 with round-to-nearest-even, NaN kept a quiet NaN: bit for bit what the host's bf16_from_float gives.
PGOLF_HOST_DEVICE std::uint16_t hd_bf16_from_float(float value) {
    const std::uint32_t bits = hd_float_bits(value);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x0040u);
    const std::uint32_t rounding = 0x7FFFu + ((bits >> 16) & 1u);
    return static_cast<std::uint16_t>((bits + rounding) >> 16);
}

PGOLF_HOST_DEVICE float hd_float_from_bf16(std::uint16_t bits) {
    return hd_bits_float(static_cast<std::uint32_t>(bits) << 16);
}

PGOLF_HOST_DEVICE float hd_bf16_round(float value) { return hd_float_from_bf16(hd_bf16_from_float(value)); }

}  // namespace pgolf
