// Elementwise arithmetic and activations (f32 or f64, same-shape operands unless stated).
#pragma once

#include "core/tensor.h"

namespace pgolf {

Tensor add(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& a, double factor);
// Adds b into a in place (gradient accumulation); same shape and dtype.
void add_into(Tensor& a, const Tensor& b);

// y = x ⊙ g broadcast along one axis: g has shape (x.size(axis),), e.g. a per-channel gain (axis -1, x: (..., D))
// or a per-head gain (axis 1, x: (B, H, T, Dh)).
Tensor mul_broadcast(const Tensor& x, const Tensor& g, std::int64_t axis);
struct MulBroadcastGrads {
    Tensor dx;  // like x
    Tensor dg;  // like g: Σ dy ⊙ x over every other axis (accumulated in double)
};
MulBroadcastGrads mul_broadcast_backward(const Tensor& x, const Tensor& g, std::int64_t axis, const Tensor& dy);

// x viewed as (outer, channels, inner) around the broadcast axis, g checked to be (channels,): the geometry both the
// CPU op and the CUDA kernels work on. Throws pgolf::Error naming op when the axis is out of range or g's shape is off
// (dtypes and devices are each caller's to check).
struct BroadcastView {
    std::int64_t outer = 1;
    std::int64_t channels = 1;
    std::int64_t inner = 1;
};
BroadcastView broadcast_view(const Tensor& x, const Tensor& g, std::int64_t axis, const char* op);

// relu(x)²
Tensor relu_squared(const Tensor& x);
Tensor relu_squared_backward(const Tensor& x, const Tensor& dy);
// leaky_relu(x, slope)², slope 0.5 in the seeds
Tensor leaky_relu_squared(const Tensor& x, double slope);
Tensor leaky_relu_squared_backward(const Tensor& x, double slope, const Tensor& dy);

// Sum of all elements, accumulated in double; result shape ().
Tensor sum_all(const Tensor& x);
// (a: (A, B, C, D)) -> (A, C, B, D); its own inverse, so it is also its backward.
Tensor permute_0213(const Tensor& x);

}  // namespace pgolf
