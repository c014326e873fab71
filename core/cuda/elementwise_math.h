// Per-element arithmetic of the elementwise, activation and residual kernels, shared with the host so the CPU tests
// check the exact operations each kernel does. Products and sums go through hd_mul / hd_add (host_device.h).
#pragma once

#include <cmath>

#include "core/cuda/host_device.h"

namespace pgolf {

// relu(x)²; a NaN input gives 0, as the reference's `x > 0 ? x·x : 0` does.
PGOLF_HOST_DEVICE float hd_relu_squared(float x) { return x > 0.0f ? hd_mul(x, x) : 0.0f; }

// dy · d/dx relu(x)² = (2·x)·dy on the positive side.
PGOLF_HOST_DEVICE float hd_relu_squared_backward(float x, float dy) {
    return x > 0.0f ? hd_mul(hd_mul(2.0f, x), dy) : 0.0f;
}

// leaky_relu(x, slope)²
PGOLF_HOST_DEVICE float hd_leaky_relu_squared(float x, float slope) {
    const float leaky = x >= 0.0f ? x : hd_mul(slope, x);
    return hd_mul(leaky, leaky);
}

// (2·x)·dy on the non-negative side, ((2·slope)·(slope·x))·dy on the negative side: the reference's order.
PGOLF_HOST_DEVICE float hd_leaky_relu_squared_backward(float x, float slope, float dy) {
    if (x >= 0.0f) return hd_mul(hd_mul(2.0f, x), dy);
    return hd_mul(hd_mul(hd_mul(2.0f, slope), hd_mul(slope, x)), dy);
}

// y = mix0·x + mix1·x0 for one channel: the unfused add(mul_broadcast(x, mix0), mul_broadcast(x0, mix1)).
PGOLF_HOST_DEVICE float hd_residual_mix(float x, float x0, float mix0, float mix1) {
    return hd_add(hd_mul(x, mix0), hd_mul(x0, mix1));
}

// out = x + y·g for one channel: the unfused add(x, mul_broadcast(y, g)).
PGOLF_HOST_DEVICE float hd_residual_add_scaled(float x, float y, float g) { return hd_add(x, hd_mul(y, g)); }

}  // namespace pgolf
