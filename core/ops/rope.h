// Rotary position embedding on (B, H, T, Dh), rotating the first rotary_dims dims as pairs (i, i + rotary_dims/2):
// y1 = x1·cos + x2·sin, y2 = −x1·sin + x2·cos, the reference's apply_rotary_emb. Dims past rotary_dims pass through.
#pragma once

#include "core/tensor.h"

namespace pgolf {

struct RopeSpec {
    std::int64_t rotary_dims = 0;  // even, ≤ Dh; 0 means all of Dh
    double base = 10000.0;         // already NTK-adjusted by the caller when NTK scaling is on
    // Frequencies are f_j = base^(−2j / frequency_dims), j < rotary_dims/2. S1 builds them over the full head dim
    // (frequency_dims = Dh) while rotating only 16 of 32 dims; 0 means frequency_dims = rotary_dims.
    std::int64_t frequency_dims = 0;
    std::int64_t position_offset = 0;  // position of t = 0
};

// The angles are computed in f32 as the reference does (inv_freq f32, outer product f32, cos/sin f32), then used
// in x's dtype.
Tensor rope_forward(const Tensor& x, const RopeSpec& spec);
Tensor rope_backward(const Tensor& dy, const RopeSpec& spec);

}  // namespace pgolf
