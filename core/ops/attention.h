// Causal scaled-dot-product attention with grouped-query heads: q: (B, H, T, Dh), k, v: (B, Hkv, T, Dh), H a
// multiple of Hkv; query head h reads KV head h / (H / Hkv). The softmax runs in the inputs' dtype with the
// row max subtracted; the log-sum-exp is kept so backward recomputes probabilities instead of storing them.
#pragma once

#include "core/tensor.h"

namespace pgolf {

struct AttentionResult {
    Tensor y;    // (B, H, T, Dh)
    Tensor lse;  // (B, H, T) log Σ_j exp(s_ij), s = scale·q·kᵀ (causal: j ≤ i)
};
// scale 0 means 1/√Dh.
AttentionResult attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale = 0.0,
                                  bool causal = true);
struct AttentionGrads {
    Tensor dq;  // (B, H, T, Dh)
    Tensor dk;  // (B, Hkv, T, Dh), summed over the query heads sharing each KV head
    Tensor dv;  // (B, Hkv, T, Dh)
};
AttentionGrads attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionResult& forward,
                                  const Tensor& dy, double scale = 0.0, bool causal = true);

}  // namespace pgolf
