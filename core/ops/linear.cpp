// Matrix products through CBLAS (sgemm for f32, dgemm for f64), row-major, transposes passed to BLAS instead of
// materialised copies. Every GEMM in the CPU engine (linear layers, attention projections) goes through gemm() here.
#include "core/ops/linear.h"

#include <cblas.h>

#include <string>
#include <type_traits>

#include "core/error.h"
#include "core/ops/dispatch.h"

namespace pgolf {

namespace {

// Runs f(T{}) with T the C++ scalar of a floating dtype (f32 or f64, checked by the caller).
// c: (m, n) = op(a) · op(b), row-major, c overwritten. a is (m, k) or, transposed, (k, m); b is (k, n) or (n, k).
template <typename T>
void gemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k, const T* a, const T* b,
          T* c) {
    if (m == 0 || n == 0) return;
    if (k == 0) {
        // BLAS rejects a leading dimension of 0; an empty sum is zero.
        for (std::int64_t i = 0; i < m * n; ++i) c[i] = T(0);
        return;
    }
    const CBLAS_TRANSPOSE op_a = transpose_a ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE op_b = transpose_b ? CblasTrans : CblasNoTrans;
    const auto lda = static_cast<blasint>(transpose_a ? m : k);
    const auto ldb = static_cast<blasint>(transpose_b ? k : n);
    const auto bm = static_cast<blasint>(m);
    const auto bn = static_cast<blasint>(n);
    const auto bk = static_cast<blasint>(k);
    if constexpr (std::is_same_v<T, float>) {
        cblas_sgemm(CblasRowMajor, op_a, op_b, bm, bn, bk, 1.0f, a, lda, b, ldb, 0.0f, c, bn);
    } else {
        cblas_dgemm(CblasRowMajor, op_a, op_b, bm, bn, bk, 1.0, a, lda, b, ldb, 0.0, c, bn);
    }
}

std::int64_t leading_rows(const Tensor& x) { return x.dim() == 0 ? 0 : x.numel() / x.size(-1); }

void check_weight(const Tensor& x, const Tensor& w, const char* op) {
    tensor_check_floating(x, op, "x");
    tensor_check_dtype(w, x.dtype(), op, "w");
    if (x.dim() == 0) throw Error(std::string(op) + ": x has shape (), expected (..., K)");
    if (w.dim() != 2 || w.size(1) != x.size(-1)) {
        throw Error(std::string(op) + ": w has shape " + shape_string(w.shape()) + ", expected (N, " +
                    std::to_string(x.size(-1)) + ")");
    }
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
    tensor_check_floating(a, "matmul", "a");
    tensor_check_dtype(b, a.dtype(), "matmul", "b");
    if (a.dim() != 2) throw Error("matmul: a has shape " + shape_string(a.shape()) + ", expected 2 axes");
    if (b.dim() != 2) throw Error("matmul: b has shape " + shape_string(b.shape()) + ", expected 2 axes");
    const std::int64_t m = transpose_a ? a.size(1) : a.size(0);
    const std::int64_t k = transpose_a ? a.size(0) : a.size(1);
    const std::int64_t n = transpose_b ? b.size(0) : b.size(1);
    const std::int64_t b_k = transpose_b ? b.size(1) : b.size(0);
    if (b_k != k) {
        throw Error("matmul: b has shape " + shape_string(b.shape()) + ", expected " +
                    (transpose_b ? "(N, " + std::to_string(k) + ")" : "(" + std::to_string(k) + ", N)"));
    }
    Tensor c = Tensor::empty({m, n}, a.dtype());
    dispatch_floating(a.dtype(), [&](auto tag) {
        using T = decltype(tag);
        gemm<T>(transpose_a, transpose_b, m, n, k, a.data<T>(), b.data<T>(), c.data<T>());
    });
    return c;
}

Tensor linear_forward(const Tensor& x, const Tensor& w) {
    check_weight(x, w, "linear");
    const std::int64_t k = w.size(1);
    const std::int64_t n = w.size(0);
    const std::int64_t m = leading_rows(x);
    Shape y_shape = x.shape();
    y_shape.back() = n;
    Tensor y = Tensor::empty(y_shape, x.dtype());
    // y: (M, N) = x: (M, K) · wᵀ
    dispatch_floating(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        gemm<T>(false, true, m, n, k, x.data<T>(), w.data<T>(), y.data<T>());
    });
    return y;
}

LinearGrads linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, bool need_dx, bool need_dw) {
    check_weight(x, w, "linear_backward");
    const std::int64_t k = w.size(1);
    const std::int64_t n = w.size(0);
    const std::int64_t m = leading_rows(x);
    tensor_check_dtype(dy, x.dtype(), "linear_backward", "dy");
    Shape dy_shape = x.shape();
    dy_shape.back() = n;
    tensor_check_shape(dy, dy_shape, "linear_backward", "dy");
    LinearGrads grads;
    dispatch_floating(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        if (need_dx) {
            // dx: (M, K) = dy: (M, N) · w: (N, K)
            grads.dx = Tensor::empty(x.shape(), x.dtype());
            gemm<T>(false, false, m, k, n, dy.data<T>(), w.data<T>(), grads.dx.template data<T>());
        }
        if (need_dw) {
            // dw: (N, K) = dyᵀ: (N, M) · x: (M, K)
            grads.dw = Tensor::empty(w.shape(), w.dtype());
            gemm<T>(true, false, n, k, m, dy.data<T>(), x.data<T>(), grads.dw.template data<T>());
        }
    });
    return grads;
}

}  // namespace pgolf
