// CUDA elementwise arithmetic, activations, broadcast gains, the head/time permute and the fused residual ops (host
// entry points; kernels in elementwise.cu). Same semantics as core/ops/elementwise.h on f32 or bf16 cuda tensors,
// fp32 arithmetic, outputs in the input dtype; the channel reductions (dg, dmix) are deterministic.
#pragma once

#include <cstdint>

#include "core/ops/elementwise.h"
#include "core/tensor.h"

namespace pgolf {

// a, b: same shape and dtype -> a + b, a ⊙ b
Tensor cuda_add(const Tensor& a, const Tensor& b);
Tensor cuda_mul(const Tensor& a, const Tensor& b);
// a: any shape -> a · factor (factor rounded to f32)
Tensor cuda_scale(const Tensor& a, double factor);
// a += b in place; a, b: same shape and dtype
void cuda_add_into(Tensor& a, const Tensor& b);

// x: any shape -> relu(x)², and its backward given dy: like x
Tensor cuda_relu_squared(const Tensor& x);
Tensor cuda_relu_squared_backward(const Tensor& x, const Tensor& dy);
// x: any shape -> leaky_relu(x, slope)², and its backward given dy: like x
Tensor cuda_leaky_relu_squared(const Tensor& x, double slope);
Tensor cuda_leaky_relu_squared_backward(const Tensor& x, double slope, const Tensor& dy);

// x: (…, C, …) with C = x.size(axis), g: (C,) -> x ⊙ g broadcast along axis
Tensor cuda_mul_broadcast(const Tensor& x, const Tensor& g, std::int64_t axis);
// dy: like x -> dx = dy ⊙ g, dg: (C,) = Σ dy ⊙ x over every other axis (fp32, fixed summation order)
MulBroadcastGrads cuda_mul_broadcast_backward(const Tensor& x, const Tensor& g, std::int64_t axis, const Tensor& dy);

// x: (A, B, C, D) -> (A, C, B, D); its own inverse, so also its backward
Tensor cuda_permute_0213(const Tensor& x);

// The block input mix of the seeds' GPT, fused: x, x0: (…, D), mix: (2, D) -> y = mix[0] ⊙ x + mix[1] ⊙ x0.
Tensor cuda_residual_mix(const Tensor& x, const Tensor& x0, const Tensor& mix);
struct ResidualMixGrads {
    Tensor dx;    // like x: dy ⊙ mix[0]
    Tensor dx0;   // like x0: dy ⊙ mix[1]
    Tensor dmix;  // (2, D): (Σ dy ⊙ x, Σ dy ⊙ x0) over every row
};
ResidualMixGrads cuda_residual_mix_backward(const Tensor& x, const Tensor& x0, const Tensor& mix, const Tensor& dy);

// The scaled residual add, fused: x, y: (…, D), g: (D,) -> out = x + g ⊙ y.
Tensor cuda_residual_add_scaled(const Tensor& x, const Tensor& y, const Tensor& g);
struct ResidualAddScaledGrads {
    Tensor dx;  // like x: a fresh copy of dout (never the same storage, so callers may accumulate into it)
    Tensor dy;  // like y: dout ⊙ g
    Tensor dg;  // (D,): Σ dout ⊙ y over every row
};
// dout: like x
ResidualAddScaledGrads cuda_residual_add_scaled_backward(const Tensor& y, const Tensor& g, const Tensor& dout);

}  // namespace pgolf
