// CUDA softcapped cross-entropy (the reference is core/ops/loss.h): forward, backward, and the fused training form
// that writes the nll and the scaled logit gradient from one online-softmax pass per row.
#pragma once

#include "core/tensor.h"

namespace pgolf {

// Targets are not range-checked on the host (that would need a device sync): a row whose target lies outside [0, V)
// gets a NaN nll and a NaN gradient row, so the mistake shows in the loss. cap ≤ 0 disables the softcap. All
// arithmetic is fp32; each row's max and rescaled sum come from one pass over the row (one block per row).

// logits: (N, V) f32/bf16, targets: (N,) i64 -> nll: (N,) f32.
Tensor cuda_softcap_cross_entropy_forward(const Tensor& logits, const Tensor& targets, double cap);

// logits: (N, V) f32/bf16, targets: (N,) i64, dnll: (N,) f32/bf16 -> dlogits: (N, V) in logits' dtype.
Tensor cuda_softcap_cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& dnll, double cap);

struct CudaCrossEntropyFused {
    Tensor nll;      // (N,) f32
    Tensor dlogits;  // (N, V) in logits' dtype: grad_scale · ∂nll_i/∂logits_i
};

// The training step's loss and gradient in one kernel: logits: (N, V) f32/bf16, targets: (N,) i64. grad_scale is the
// upstream factor of every row (1/N for a mean loss). Softmax is never stored: each row is read once for its
// statistics and once more to write dlogits.
CudaCrossEntropyFused cuda_softcap_cross_entropy_fused(const Tensor& logits, const Tensor& targets, double cap,
                                                       double grad_scale);

}  // namespace pgolf
