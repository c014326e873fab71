// Per-row and per-element arithmetic of the CUDA XSA kernels (core/cuda/xsa.cu), shared with the host so the CPU
// tests replay a kernel's row exactly. Row dot products are fp32 partial sums per lane combined by a butterfly.
#pragma once

#include <cstdint>

#include "core/cuda/host_device.h"

namespace pgolf {

// F.normalize's eps as the f32 reference rounds it: v̂ = v / max(‖v‖, eps).
inline constexpr float kXsaNormalizeEps = 1e-12f;
// The most load groups (16-byte vectors, or single elements) one lane holds in registers: Dh ≤ 32·8·width.
inline constexpr int kXsaMaxGroupsPerLane = 8;

// Lanes that share one (b, KV head, t) row: the smallest power of two covering the row's load groups, at most 32,
// so a warp handles 32/lanes consecutive rows and the lanes of a row reduce among themselves.
PGOLF_HOST_DEVICE int xsa_lanes_per_row(std::int64_t groups) {
    int lanes = 1;
    while (lanes < 32 && lanes < groups) lanes *= 2;
    return lanes;
}

// Load groups each lane of a row holds (lane j takes groups j, j + lanes, …), before rounding up to a kernel variant.
PGOLF_HOST_DEVICE std::int64_t xsa_groups_per_lane(std::int64_t groups, int lanes) {
    return (groups + lanes - 1) / lanes;
}

// One step of a lane's partial dot product, product and sum each rounded (never fused).
PGOLF_HOST_DEVICE float xsa_accumulate(float sum, float a, float b) { return hd_add(sum, hd_mul(a, b)); }

// ‖v‖ from the row's sum of squares, and the divisor max(‖v‖, eps) (NaN stays NaN, as std::max(NaN, eps) does).
PGOLF_HOST_DEVICE float xsa_norm(float sum_of_squares) { return hd_sqrt(sum_of_squares); }
PGOLF_HOST_DEVICE float xsa_denominator(float norm) { return norm < kXsaNormalizeEps ? kXsaNormalizeEps : norm; }
// v̂ by division, not by a reciprocal, as torch and the reference compute it.
PGOLF_HOST_DEVICE float xsa_unit(float v, float denominator) { return hd_div(v, denominator); }

// Forward: out = y − s·v̂ with s = y·v̂.
PGOLF_HOST_DEVICE float xsa_output(float y, float projection, float unit) {
    return hd_sub(y, hd_mul(projection, unit));
}

// Backward, with s = y·v̂ and c = dout·v̂ per query head: dy = dout − c·v̂, and ∂L/∂v̂ −= c·y + s·dout per head in the
// group's head order.
PGOLF_HOST_DEVICE float xsa_input_gradient(float dout, float c, float unit) { return hd_sub(dout, hd_mul(c, unit)); }
PGOLF_HOST_DEVICE float xsa_unit_gradient_step(float unit_gradient, float c, float y, float s, float dout) {
    return hd_sub(unit_gradient, hd_add(hd_mul(c, y), hd_mul(s, dout)));
}
// torch's clamp_min passes the gradient through the norm where ‖v‖ ≥ eps (equality included).
PGOLF_HOST_DEVICE bool xsa_norm_passes_gradient(float norm) { return norm >= kXsaNormalizeEps; }
// dv = (∂L/∂v̂ − r·v̂)/max(‖v‖, eps) with r = ∂L/∂v̂ · v̂ where the norm passes the gradient, else ∂L/∂v̂ / eps.
PGOLF_HOST_DEVICE float xsa_value_gradient(float unit_gradient, float radial, float unit, float denominator,
                                           bool passes) {
    return passes ? hd_div(hd_sub(unit_gradient, hd_mul(radial, unit)), denominator)
                  : hd_div(unit_gradient, denominator);
}

}  // namespace pgolf
