// CUDA rotary position embedding on (B, H, T, Dh) (host entry points; kernels in rope.cu). Angles as the CPU
// reference computes them: inverse frequencies on the host in f32, position · inv_freq in f32, cos/sin in f32.
#pragma once

#include "core/ops/rope.h"
#include "core/tensor.h"

namespace pgolf {

// x: (B, H, T, Dh) f32 or bf16 -> y: like x
Tensor cuda_rope_forward(const Tensor& x, const RopeSpec& spec);
// dy: (B, H, T, Dh) -> dx: like dy, the transposed rotation
Tensor cuda_rope_backward(const Tensor& dy, const RopeSpec& spec);

}  // namespace pgolf
