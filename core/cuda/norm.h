// CUDA RMSNorm over the last axis (host entry points; kernels in norm.cu): one block or one warp per row, fp32 sums.
#pragma once

#include "core/ops/norm.h"
#include "core/tensor.h"

namespace pgolf {

// x: (…, D) f32 or bf16 -> y: (…, D) in x's dtype = factor · x · rstd, rstd: (…,) in f32 = 1 / sqrt(mean(x²) + eps)
RmsNormResult cuda_rmsnorm_forward(const Tensor& x, double eps = kRmsNormEpsF32, double factor = 1.0);
// x, dy: (…, D) in one dtype, rstd: (…,) f32 from the forward -> dx: (…, D) in x's dtype
Tensor cuda_rmsnorm_backward(const Tensor& x, const Tensor& rstd, const Tensor& dy, double factor = 1.0);

}  // namespace pgolf
