// Softcapped cross-entropy: logits' = cap·tanh(logits/cap), nll_i = logsumexp(logits'_i) − logits'_i[target_i].
#pragma once

#include "core/tensor.h"

namespace pgolf {

inline constexpr double kLogitSoftcap = 30.0;

// logits: (N, V) f32/f64, targets: (N,) i64 in [0, V). Returns nll: (N,) in logits' dtype, each row's
// log-sum-exp accumulated in double. cap ≤ 0 disables the softcap.
Tensor softcap_cross_entropy_forward(const Tensor& logits, const Tensor& targets, double cap = kLogitSoftcap);
// dnll: (N,) -> dlogits: (N, V), through the softcap.
Tensor softcap_cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& dnll,
                                      double cap = kLogitSoftcap);

}  // namespace pgolf
