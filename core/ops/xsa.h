// XSA, "exclusive self-attention" (S1–S4): removes from each head's attention output the component along the token's
// own value direction, y ← y − (y·v̂)v̂ with v̂ = v/‖v‖ the unit value of the same position in the head's KV group.
#pragma once

#include "core/tensor.h"

namespace pgolf {

// y: (B, H, T, Dh), v: (B, Hkv, T, Dh) with H a multiple of Hkv (query head h uses KV head h / (H/Hkv)).
// The normalisation follows torch's F.normalize: v̂ = v / max(‖v‖, 1e-12).
Tensor xsa_forward(const Tensor& y, const Tensor& v);
struct XsaGrads {
    Tensor dy;  // (B, H, T, Dh)
    Tensor dv;  // (B, Hkv, T, Dh), summed over the query heads of each group
};
XsaGrads xsa_backward(const Tensor& y, const Tensor& v, const Tensor& dout);

}  // namespace pgolf
