// Differentiable ops: each computes its output with the core/ops kernels and, when a tape is given and an input needs
// a gradient, records the matching backward. Shapes are those of the kernels (see core/ops/*.h).
#pragma once

#include "core/autograd.h"
#include "core/ops/attention.h"
#include "core/ops/fake_quant.h"
#include "core/ops/rope.h"

namespace pgolf::ag {

// y: (..., N) = x: (..., K) · wᵀ, w: (N, K)
Var linear(Tape* tape, const Var& x, const Var& w);
// y: (ids..., D) = table: (V, D)[ids]; ids: i64
Var embedding(Tape* tape, const Var& table, const Tensor& ids);
Var add(Tape* tape, const Var& a, const Var& b);
Var scale(Tape* tape, const Var& x, double factor);
// y = x ⊙ g along axis; g: (x.size(axis),)
Var mul_broadcast(Tape* tape, const Var& x, const Var& g, std::int64_t axis);
// The block input mix: h = mix[0] ⊙ x + mix[1] ⊙ x0 along the last axis; x, x0: (..., D), mix: (2, D). On the CPU the
// composition of mul_broadcast and add (the specification); on cuda one fused kernel each way.
Var residual_mix(Tape* tape, const Var& x, const Var& x0, const Var& mix);
// The scaled residual: out = x + g ⊙ y along the last axis; x, y: (..., D), g: (D,). Composed on the CPU, fused on
// cuda.
Var residual_add_scaled(Tape* tape, const Var& x, const Var& y, const Var& g);
Var relu_squared(Tape* tape, const Var& x);
Var leaky_relu_squared(Tape* tape, const Var& x, double slope);
// RMSNorm over the last axis, no gain: factor · x / sqrt(mean(x²) + eps)
Var rmsnorm(Tape* tape, const Var& x, double eps, double factor = 1.0);
// x: (B, H, T, Dh)
Var rope(Tape* tape, const Var& x, const RopeSpec& spec);
// q: (B, H, T, Dh), k, v: (B, Hkv, T, Dh) -> (B, H, T, Dh)
Var attention(Tape* tape, const Var& q, const Var& k, const Var& v, double scale = 0.0);
// (A, B, C, D) -> (A, C, B, D)
Var permute_0213(Tape* tape, const Var& x);
// A view with another shape (same element count).
Var reshape(Tape* tape, const Var& x, const Shape& shape);
// x[index] along the first axis as a view (x: (R, …) -> (…)); its gradient lands in that slice of x's gradient.
// Rows of a (R, D) matrix, slices of a (R, N, K) parameter bank.
Var row(Tape* tape, const Var& x, std::int64_t index);
// Per-token NLL of softcapped logits: logits (N, V), targets (N,) i64 -> (N,)
Var softcap_cross_entropy(Tape* tape, const Var& logits, const Tensor& targets, double cap);
// Mean of all elements (accumulated in double) -> shape ()
Var mean(Tape* tape, const Var& x);
// XSA: y (B, H, T, Dh) minus its component along the token's own unit value, v (B, Hkv, T, Dh).
Var xsa(Tape* tape, const Var& y, const Var& v);
// SmearGate: h (B, T, D), gate g (D,).
Var smear(Tape* tape, const Var& h, const Var& g);
// Fake-quantized w (rows, cols) in the forward pass, identity gradient (straight-through estimator).
Var fake_quantize(Tape* tape, const Var& w, const FakeQuantSpec& spec);
// S2's Jacobian proxy: λ·ReLU(‖h_out − h_in‖_F / (‖h_in‖_F + 1e-6) − 1)² over whole tensors -> shape ().
Var jacobian_proxy(Tape* tape, const Var& h_in, const Var& h_out, double lambda);

}  // namespace pgolf::ag
