// SmearGate (S1–S4): each position mixes in the previous position's vector with a learned per-channel gate,
// out_t = (1 − σ(g)) ⊙ h_t + σ(g) ⊙ h_{t−1}, with h_{−1} = 0 at the start of every sequence.
#pragma once

#include "core/tensor.h"

namespace pgolf {

// h: (B, T, D), g: (D,) -> (B, T, D)
Tensor smear_forward(const Tensor& h, const Tensor& g);
struct SmearGrads {
    Tensor dh;  // (B, T, D)
    Tensor dg;  // (D,), accumulated in double in a fixed order
};
SmearGrads smear_backward(const Tensor& h, const Tensor& g, const Tensor& dout);

}  // namespace pgolf
