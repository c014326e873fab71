// Matrix products through CBLAS (sgemm for f32, dgemm for f64), row-major, transposes passed to BLAS instead of
// materialised copies. Every GEMM in the CPU engine (linear layers, attention projections) goes through gemm() here.
#include "core/ops/linear.h"

#include <cblas.h>

#include <algorithm>
#include <string>
#include <type_traits>

#include "core/error.h"
#include "core/ops/dispatch.h"

namespace pgolf {

namespace {

// BLAS runs single-threaded and the engine splits GEMMs across OpenMP threads itself: OpenBLAS's own thread pool
// spinning next to OpenMP's made the CPU training step 3-4x slower on 2 cores (measured with pgolf bench train).
void blas_use_one_thread() {
    static const bool once = [] {
        openblas_set_num_threads(1);
        return true;
    }();
    (void)once;
}

// Output rows per BLAS call when a GEMM is split, and the size (m·n·k) from which splitting pays.
constexpr std::int64_t kRowBlock = 256;
constexpr std::int64_t kParallelFlops = std::int64_t{1} << 21;

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
    blas_use_one_thread();
    const CBLAS_TRANSPOSE op_a = transpose_a ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE op_b = transpose_b ? CblasTrans : CblasNoTrans;
    const auto lda = static_cast<blasint>(transpose_a ? m : k);
    const auto ldb = static_cast<blasint>(transpose_b ? k : n);
    const auto bn = static_cast<blasint>(n);
    const auto bk = static_cast<blasint>(k);
    // Rows of c in fixed blocks, one BLAS call each: the blocking depends on the shape only, so results do not depend
    // on the thread count.
    const std::int64_t blocks = (m + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for schedule(dynamic, 1) if (blocks > 1 && m * n * k >= kParallelFlops)
    for (std::int64_t block = 0; block < blocks; ++block) {
        const std::int64_t first = block * kRowBlock;
        const auto rows = static_cast<blasint>(std::min(kRowBlock, m - first));
        // Row block of op(a): rows of a, or columns of a when it is transposed.
        const T* a_block = transpose_a ? a + first : a + first * k;
        T* c_block = c + first * n;
        if constexpr (std::is_same_v<T, float>) {
            cblas_sgemm(CblasRowMajor, op_a, op_b, rows, bn, bk, 1.0f, a_block, lda, b, ldb, 0.0f, c_block, bn);
        } else {
            cblas_dgemm(CblasRowMajor, op_a, op_b, rows, bn, bk, 1.0, a_block, lda, b, ldb, 0.0, c_block, bn);
        }
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
