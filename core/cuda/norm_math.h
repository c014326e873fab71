// Per-row and per-element arithmetic of the RMSNorm kernels, shared with the host so the CPU tests check it. Row sums
// are accumulated in fp32 by the kernels (in a block-reduction order); everything after the sum is here.
#pragma once

#include <cstdint>

#include "core/cuda/elementwise_math.h"
#include "core/cuda/host_device.h"

namespace pgolf {

// rstd = 1 / sqrt(Σx²/D + eps), every step correctly rounded in fp32.
PGOLF_HOST_DEVICE float hd_rmsnorm_rstd(float sum_of_squares, std::int64_t d, float eps) {
    return hd_div(1.0f, hd_sqrt(hd_add(hd_div(sum_of_squares, static_cast<float>(d)), eps)));
}

// y = x·(factor·rstd): the reference rounds factor·rstd once per row, then multiplies.
PGOLF_HOST_DEVICE float hd_rmsnorm_row_scale(float rstd, float factor) { return hd_mul(factor, rstd); }
PGOLF_HOST_DEVICE float hd_rmsnorm_output(float x, float row_scale) { return hd_mul(x, row_scale); }

// With r = rstd and dot = Σ dy⊙x over the row: dx = (f·r)·(dy − x·(r²·dot/D)). The two row constants:
PGOLF_HOST_DEVICE float hd_rmsnorm_gradient_inner(float rstd, float dot, std::int64_t d) {
    return hd_div(hd_mul(hd_mul(rstd, rstd), dot), static_cast<float>(d));
}
PGOLF_HOST_DEVICE float hd_rmsnorm_gradient(float x, float dy, float outer, float inner) {
    return hd_mul(outer, hd_sub(dy, hd_mul(x, inner)));
}

}  // namespace pgolf
