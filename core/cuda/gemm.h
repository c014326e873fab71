// GEMMs on the GPU through cuBLASLt: matmul, linear forward/backward and strided-batched products, f32 (exact fp32) or
// bf16 (fp32 accumulation), plus the timings `pgolf bench kernels` compares with plain cuBLAS. Plain C++ header.
#pragma once

#include <cstdint>

#include "core/ops/linear.h"
#include "core/tensor.h"

namespace pgolf {

// Row-major to column-major: cuBLAS reads a buffer as column-major, and a row-major (r, c) buffer read column-major
// is its transpose, a (c, r) matrix with leading dimension c. So instead of c = op(a)·op(b) the GPU computes
//     cᵀ = op(b)ᵀ · op(a)ᵀ   (cuBLAS m = N, n = M, k = K)
// with cuBLAS's first operand the buffer of b and its second the buffer of a, each keeping its own transpose flag
// (b read column-major already is bᵀ, so op(b)ᵀ needs cuBLAS's op only when b was to be transposed), and the output
// written column-major as (N, M) with leading dimension N, which is c row-major. Swapping the operands, or
// transposing a flag, are the classic bugs; the CPU test checks this plan against matmul with a column-major
// reference GEMM.
struct GemmColumnMajorPlan {
    std::int64_t rows = 0;     // cuBLAS m: N
    std::int64_t columns = 0;  // cuBLAS n: M
    std::int64_t depth = 0;    // cuBLAS k: K
    // cuBLAS's first operand: the buffer of b, stored (as cuBLAS sees it) first_rows × first_columns, leading dim.
    bool transpose_first = false;
    std::int64_t first_rows = 0, first_columns = 0, first_leading = 0;
    // cuBLAS's second operand: the buffer of a.
    bool transpose_second = false;
    std::int64_t second_rows = 0, second_columns = 0, second_leading = 0;
    std::int64_t output_leading = 0;  // N
};

// The plan for c: (m, n) = op(a) · op(b) with op(a): (m, k), op(b): (k, n), all row-major.
inline GemmColumnMajorPlan gemm_column_major_plan(std::int64_t m, std::int64_t n, std::int64_t k, bool transpose_a,
                                                  bool transpose_b) {
    GemmColumnMajorPlan plan;
    plan.rows = n;
    plan.columns = m;
    plan.depth = k;
    // b is stored row-major (k, n), or (n, k) when transposed; column-major that is (n, k) or (k, n).
    plan.transpose_first = transpose_b;
    plan.first_rows = transpose_b ? k : n;
    plan.first_columns = transpose_b ? n : k;
    plan.first_leading = plan.first_rows;
    // a is stored row-major (m, k), or (k, m) when transposed; column-major that is (k, m) or (m, k).
    plan.transpose_second = transpose_a;
    plan.second_rows = transpose_a ? m : k;
    plan.second_columns = transpose_a ? k : m;
    plan.second_leading = plan.second_rows;
    plan.output_leading = n;
    return plan;
}

// How GEMMs with f32 operands multiply, per thread (like torch.set_float32_matmul_precision): exact fp32 (the default,
// what the tests compare bit-close with the CPU), or bf16 products with fp32 accumulation (the training step's
// autocast precision, CUBLAS_COMPUTE_32F_FAST_16BF, no conversion pass). bf16 operands are unaffected.
enum class CudaMatmulPrecision { exact, bf16 };
void cuda_set_matmul_precision(CudaMatmulPrecision precision);
CudaMatmulPrecision cuda_matmul_precision();
// Sets a precision for a scope and restores the previous one.
class CudaMatmulPrecisionGuard {
public:
    explicit CudaMatmulPrecisionGuard(CudaMatmulPrecision precision) : previous_(cuda_matmul_precision()) {
        cuda_set_matmul_precision(precision);
    }
    ~CudaMatmulPrecisionGuard() { cuda_set_matmul_precision(previous_); }
    CudaMatmulPrecisionGuard(const CudaMatmulPrecisionGuard&) = delete;
    CudaMatmulPrecisionGuard& operator=(const CudaMatmulPrecisionGuard&) = delete;

private:
    CudaMatmulPrecision previous_;
};

// c: (M, N) = op(a) · op(b), op = transpose when the flag is set; a: (M, K) or (K, M), b: (K, N) or (N, K), both f32
// or both bf16 (mixed dtypes throw). f32: exact fp32 GEMM (no TF32). bf16: fp32 accumulation, output in
// output_dtype (bf16 by default, or f32). K = 0 gives zeros.
Tensor cuda_matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b);
Tensor cuda_matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, DType output_dtype);
// The same product written into c: (M, N) (cuda, f32 or bf16, contiguous; must not overlap a or b): c = op(a)·op(b),
// or c += op(a)·op(b) when accumulate is set (e.g. into an f32 gradient).
void cuda_matmul_into(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, Tensor& c,
                      bool accumulate = false);

// c: (batch, M, N), c[i] = op(a[i]) · op(b[i]) in one strided-batched cuBLASLt call; a: (batch, M, K) or
// (batch, K, M), b: (batch, K, N) or (batch, N, K). Dtypes as cuda_matmul. For Muon's Newton–Schulz over same-shape
// matrices and for per-layer weight banks.
Tensor cuda_matmul_strided_batched(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b);
Tensor cuda_matmul_strided_batched(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b,
                                   DType output_dtype);
// c: (batch, M, N) preallocated; accumulate as cuda_matmul_into.
void cuda_matmul_strided_batched_into(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, Tensor& c,
                                      bool accumulate = false);

// y: (..., N) = x: (..., K) · wᵀ, w: (N, K), as linear_forward; y in x's dtype or output_dtype.
Tensor cuda_linear_forward(const Tensor& x, const Tensor& w);
Tensor cuda_linear_forward(const Tensor& x, const Tensor& w, DType output_dtype);
// y: (..., N) preallocated.
void cuda_linear_forward_into(const Tensor& x, const Tensor& w, Tensor& y);
// dy: (..., N) -> dx: (..., K) = dy · w and dw: (N, K) = dyᵀ · x summed over all leading dims in one GEMM, as
// linear_backward; either can be skipped (left undefined). Gradients in x's dtype.
LinearGrads cuda_linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, bool need_dx, bool need_dw);
// dw: (N, K) = dyᵀ · x, or dw += dyᵀ · x when accumulate is set; dw may be f32 while x and dy are bf16 (the fp32
// gradient of a bf16 forward).
void cuda_linear_weight_grad_into(const Tensor& x, const Tensor& dy, Tensor& dw, bool accumulate = false);

// Benchmarks for `pgolf bench kernels`, both on the current stream, timed with CUDA events after one warm-up call and
// returning milliseconds per call averaged over iterations (>= 1); shapes as cuda_matmul, bf16 in and out, inputs
// preallocated once (filled with a constant).
// The reference: plain cublasGemmEx (cublas_v2 handle, bf16 in, CUBLAS_COMPUTE_32F, bf16 out, default algorithm)
// into a preallocated output — cuBLAS's own rate for the shape, measured in the same run.
double cuda_gemm_cublas_reference_ms(std::int64_t m, std::int64_t n, std::int64_t k, bool transpose_a, bool transpose_b,
                                     int iterations);
// Our cuda_matmul, its output allocated per call through the caching allocator as the engine does.
double cuda_matmul_ms(std::int64_t m, std::int64_t n, std::int64_t k, bool transpose_a, bool transpose_b,
                      int iterations);

}  // namespace pgolf
