// Fake quantization for quantization-aware training: each row of a weight matrix is rounded to an integer grid with
// a per-row absmax scale in the forward pass, while the gradient passes straight through (STE), as the seeds do.
#pragma once

#include "core/tensor.h"

namespace pgolf {

struct FakeQuantSpec {
    int min_q = -32;  // S1/S3/S2-CastedLinear: [−32, 31]; S2 core banks: [−31, 31]
    int max_q = 31;
    double divisor = 31.0;      // s_r = max(max_j |w_rj| / divisor, scale_floor)
    double scale_floor = 1e-8;  // S1/S3: 1e-8; S2/S4: 1/31
};

// w: (rows, cols) -> clamp(round_half_even(w / s_r), min_q, max_q) · s_r, computed in the tensor's dtype with the
// scale in f32 as the reference (w.float()) does.
Tensor fake_quantize_rows(const Tensor& w, const FakeQuantSpec& spec);

}  // namespace pgolf
