// The rotary embedding's angle and rotation, shared by the CUDA kernel and the host. The inverse frequencies are
// computed on the host only (rope_inverse_frequency, the CPU reference's formula through the host libm's powf) and
// passed to the kernel: the device powf may differ by an ulp, and at position 2047 one ulp of inv_freq already moves
// the angle by ~1e-4 rad.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/cuda/elementwise_math.h"
#include "core/cuda/host_device.h"

namespace pgolf {

// inv_freq_j = 1 / base^(2j / frequency_dims), each step in f32 as torch (and core/ops/rope.cpp) computes it.
inline float rope_inverse_frequency(double base, std::int64_t j, std::int64_t frequency_dims) {
    const float exponent = static_cast<float>(2 * j) / static_cast<float>(frequency_dims);
    return 1.0f / std::pow(static_cast<float>(base), exponent);
}

// angle = position · inv_freq in f32 (the reference's outer product); a single rounding, so host and device agree.
PGOLF_HOST_DEVICE float hd_rope_angle(std::int64_t position, float inverse_frequency) {
    return hd_mul(static_cast<float>(position), inverse_frequency);
}

// f32 cos/sin of the f32 angle: the host libm here; on the device CUDA's cosf/sinf (within 2 ulp of it; the angle
// itself is bit-identical).
PGOLF_HOST_DEVICE float hd_rope_cos(float angle) {
#if defined(__CUDA_ARCH__)
    return cosf(angle);
#else
    return std::cos(angle);
#endif
}
PGOLF_HOST_DEVICE float hd_rope_sin(float angle) {
#if defined(__CUDA_ARCH__)
    return sinf(angle);
#else
    return std::sin(angle);
#endif
}

// (x1, x2) -> (x1·cos + x2·sin, −x1·sin + x2·cos); the backward passes −sin (the transposed rotation).
struct RopePair {
    float first;
    float second;
};
PGOLF_HOST_DEVICE RopePair hd_rope_rotate(float x1, float x2, float cosine, float sine) {
    return {hd_add(hd_mul(x1, cosine), hd_mul(x2, sine)), hd_add(hd_mul(-x1, sine), hd_mul(x2, cosine))};
}

}  // namespace pgolf
