// RMSNorm over the last axis (forward and backward, row-parallel) and the global gradient norm. Row statistics are
// accumulated in double so f32 rows of a few thousand elements lose no precision in the mean.
#include "core/ops/norm.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/ops/dispatch.h"

namespace pgolf {

namespace {

// Rows are split across threads once the tensor holds this many elements.
constexpr std::int64_t kParallelElements = 1 << 15;

Shape row_shape(const Tensor& x) { return Shape(x.shape().begin(), x.shape().end() - 1); }

template <typename T>
double sum_of_squares(const T* values, std::int64_t n) {
    return chunked_sum(n, [values](std::int64_t i) {
        const double v = static_cast<double>(values[i]);
        return v * v;
    });
}

}  // namespace

RmsNormResult rmsnorm_forward(const Tensor& x, double eps, double factor) {
    tensor_check_floating(x, "rmsnorm", "x");
    if (x.dim() == 0) throw Error("rmsnorm: x has shape (), expected (..., D)");
    const std::int64_t d = x.size(-1);
    const std::int64_t rows = d == 0 ? 0 : x.numel() / d;
    RmsNormResult result;
    result.y = Tensor::empty(x.shape(), x.dtype());
    result.rstd = Tensor::empty(row_shape(x), x.dtype());
    if (d == 0) {
        // An empty row has no mean; taking it as 0 keeps rstd finite (the empty y needs no value).
        result.rstd.fill(1.0 / std::sqrt(eps));
        return result;
    }
    dispatch_floating(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* in = x.data<T>();
        T* out = result.y.template data<T>();
        T* rstd = result.rstd.template data<T>();
        // x: (rows, D) -> y: (rows, D), rstd: (rows,)
#pragma omp parallel for schedule(static) if (x.numel() >= kParallelElements)
        for (std::int64_t r = 0; r < rows; ++r) {
            const T* row = in + r * d;
            double squares = 0.0;
            for (std::int64_t j = 0; j < d; ++j) squares += static_cast<double>(row[j]) * static_cast<double>(row[j]);
            const double inv = 1.0 / std::sqrt(squares / static_cast<double>(d) + eps);
            rstd[r] = static_cast<T>(inv);
            const T row_scale = static_cast<T>(factor * inv);
            for (std::int64_t j = 0; j < d; ++j) out[r * d + j] = row[j] * row_scale;
        }
    });
    return result;
}

Tensor rmsnorm_backward(const Tensor& x, const Tensor& rstd, const Tensor& dy, double factor) {
    tensor_check_floating(x, "rmsnorm_backward", "x");
    if (x.dim() == 0) throw Error("rmsnorm_backward: x has shape (), expected (..., D)");
    tensor_check_dtype(rstd, x.dtype(), "rmsnorm_backward", "rstd");
    tensor_check_shape(rstd, row_shape(x), "rmsnorm_backward", "rstd");
    tensor_check_dtype(dy, x.dtype(), "rmsnorm_backward", "dy");
    tensor_check_shape(dy, x.shape(), "rmsnorm_backward", "dy");
    const std::int64_t d = x.size(-1);
    const std::int64_t rows = d == 0 ? 0 : x.numel() / d;
    Tensor dx = Tensor::empty(x.shape(), x.dtype());
    dispatch_floating(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* xs = x.data<T>();
        const T* gs = dy.data<T>();
        const T* rs = rstd.data<T>();
        T* out = dx.data<T>();
        // y_j = f·x_j·r with r = (mean(x²) + eps)^(−1/2), ∂r/∂x_k = −r³·x_k/D, so
        // dx_k = f·r·(dy_k − x_k·r²·mean(dy ⊙ x)).
#pragma omp parallel for schedule(static) if (x.numel() >= kParallelElements)
        for (std::int64_t r = 0; r < rows; ++r) {
            const T* xrow = xs + r * d;
            const T* grow = gs + r * d;
            double dot = 0.0;
            for (std::int64_t j = 0; j < d; ++j) dot += static_cast<double>(grow[j]) * static_cast<double>(xrow[j]);
            const double inv = static_cast<double>(rs[r]);
            const T outer = static_cast<T>(factor * inv);
            const T inner = static_cast<T>(inv * inv * dot / static_cast<double>(d));
            for (std::int64_t j = 0; j < d; ++j) out[r * d + j] = outer * (grow[j] - xrow[j] * inner);
        }
    });
    return dx;
}

double global_norm(const std::vector<Tensor>& tensors) {
    double total = 0.0;
    for (std::size_t t = 0; t < tensors.size(); ++t) {
        const std::string name = "tensors[" + std::to_string(t) + "]";
        tensor_check_floating(tensors[t], "global_norm", name.c_str());
        dispatch_floating(tensors[t].dtype(), [&](auto tag) {
            using T = decltype(tag);
            total += sum_of_squares<T>(tensors[t].data<T>(), tensors[t].numel());
        });
    }
    return std::sqrt(total);
}

}  // namespace pgolf
