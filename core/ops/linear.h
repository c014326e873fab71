// Matrix products through BLAS (sgemm for f32, dgemm for f64). The CPU reference of every GEMM in the engine.
#pragma once

#include "core/tensor.h"

namespace pgolf {

// c: (M, N) = op(a) · op(b), op = transpose when the flag is set. a: (M, K) or (K, M); b: (K, N) or (N, K).
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b);

// y: (..., N) = x: (..., K) · wᵀ, w: (N, K) (torch's Linear layout).
Tensor linear_forward(const Tensor& x, const Tensor& w);
struct LinearGrads {
    Tensor dx;  // (..., K)
    Tensor dw;  // (N, K)
};
// dy: (..., N). Either gradient can be skipped (left undefined) to save work.
LinearGrads linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, bool need_dx, bool need_dw);

}  // namespace pgolf
