// RMSNorm over the last axis without a learned gain (the seeds' F.rms_norm), with an optional constant factor.
#pragma once

#include "core/tensor.h"

namespace pgolf {

// torch.finfo(float32).eps: what F.rms_norm uses when eps is None on fp32 inputs.
inline constexpr double kRmsNormEpsF32 = 1.1920928955078125e-07;

struct RmsNormResult {
    Tensor y;     // (..., D) = factor · x / sqrt(mean(x²) + eps)
    Tensor rstd;  // (...,) = 1 / sqrt(mean(x²) + eps), kept for backward
};
RmsNormResult rmsnorm_forward(const Tensor& x, double eps = kRmsNormEpsF32, double factor = 1.0);
Tensor rmsnorm_backward(const Tensor& x, const Tensor& rstd, const Tensor& dy, double factor = 1.0);

// sqrt(Σ over tensors of Σ x²), accumulated in double (global gradient norm for clipping).
double global_norm(const std::vector<Tensor>& tensors);

}  // namespace pgolf
