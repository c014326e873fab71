// CUDA per-row absmax fake quantization (the reference is fake_quantize_rows in core/ops/fake_quant.h).
#pragma once

#include "core/ops/fake_quant.h"
#include "core/tensor.h"

namespace pgolf {

// w: (rows, cols) f32/bf16 -> (rows, cols) in w's dtype: clamp(round_half_even(w/s_r), min_q, max_q)·s_r with
// s_r = max(max_j |w_rj|/divisor, scale_floor), all in f32 as the reference computes on w.float(); a row holding a
// NaN comes out all NaN. One block per row. The straight-through backward is the identity and needs no kernel.
Tensor cuda_fake_quantize_rows(const Tensor& w, const FakeQuantSpec& spec);

}  // namespace pgolf
