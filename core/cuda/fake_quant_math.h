// Per-element arithmetic of the fake-quantization kernel (core/cuda/fake_quant.cu), bit for bit what
// fake_quantize_rows does on f32: the row's absmax, its scale max(absmax/divisor, floor), and
// clamp(round_half_even(w/scale), min_q, max_q)·scale.
#pragma once

#include <math.h>

#include <cmath>

#include "core/cuda/host_device.h"

namespace pgolf {

// Round half to even: rintf on the device, nearbyint under the default rounding mode on the host (torch.round).
PGOLF_HOST_DEVICE float fake_quant_round(float value) {
#if defined(__CUDA_ARCH__)
    return rintf(value);
#else
    return std::nearbyint(value);
#endif
}

// std::max(running, |x|): a NaN element leaves the running max unchanged (the kernel tracks NaN separately).
PGOLF_HOST_DEVICE float fake_quant_absmax(float running, float x) {
    const float magnitude = fabsf(x);
    return running < magnitude ? magnitude : running;
}

// The row's scale: NaN when the row holds a NaN (amax propagates it), otherwise max(row_max/divisor, floor).
PGOLF_HOST_DEVICE float fake_quant_scale(float row_max, bool row_has_nan, float divisor, float scale_floor) {
    if (row_has_nan) return NAN;
    const float scale = hd_div(row_max, divisor);
    return scale < scale_floor ? scale_floor : scale;
}

// clamp(round(x/scale), low, high)·scale with std::clamp's comparisons, so a NaN level stays NaN.
PGOLF_HOST_DEVICE float fake_quant_element(float x, float scale, float low, float high) {
    const float level = fake_quant_round(hd_div(x, scale));
    const float clamped = level < low ? low : (high < level ? high : level);
    return clamped * scale;
}

}  // namespace pgolf
