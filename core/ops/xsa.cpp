// XSA forward and backward: the CPU reference of the seeds' _xsa_efficient, y − (y·v̂)v̂ with v̂ = F.normalize(v).
// Dot products and norms accumulate in double; each (b, KV head) group is owned by one thread in backward.
#include "core/ops/xsa.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/ops/dispatch.h"

namespace pgolf {

namespace {

// F.normalize's default eps: v̂ = v / max(‖v‖, eps).
constexpr double kNormalizeEps = 1e-12;

struct XsaLayout {
    std::int64_t batch = 0;
    std::int64_t heads = 0;
    std::int64_t kv_heads = 0;
    std::int64_t time = 0;
    std::int64_t head_dim = 0;
    std::int64_t group() const { return heads / kv_heads; }
};

XsaLayout xsa_check(const Tensor& y, const Tensor& v, const char* op) {
    tensor_check_floating(y, op, "y");
    if (y.dim() != 4) {
        throw Error(std::string(op) + ": y must be 4-D (B, H, T, Dh), got shape " + shape_string(y.shape()));
    }
    tensor_check_dtype(v, y.dtype(), op, "v");
    if (v.dim() != 4) {
        throw Error(std::string(op) + ": v must be 4-D (B, Hkv, T, Dh), got shape " + shape_string(v.shape()));
    }
    XsaLayout layout;
    layout.batch = y.size(0);
    layout.heads = y.size(1);
    layout.time = y.size(2);
    layout.head_dim = y.size(3);
    layout.kv_heads = v.size(1);
    tensor_check_shape(v, {layout.batch, layout.kv_heads, layout.time, layout.head_dim}, op, "v");
    if (layout.kv_heads == 0 || layout.heads % layout.kv_heads != 0) {
        throw Error(std::string(op) + ": " + std::to_string(layout.heads) + " query heads are not a multiple of " +
                    std::to_string(layout.kv_heads) + " KV heads");
    }
    return layout;
}

// The unit value v̂ of one position, divided (not multiplied by a reciprocal) as torch does; returns ‖v‖.
template <typename T>
double xsa_unit(const T* v_row, std::int64_t dh, T* unit, T* denominator) {
    double squares = 0.0;
    for (std::int64_t d = 0; d < dh; ++d) squares += static_cast<double>(v_row[d]) * static_cast<double>(v_row[d]);
    const double norm = std::sqrt(squares);
    *denominator = static_cast<T>(std::max(norm, kNormalizeEps));
    for (std::int64_t d = 0; d < dh; ++d) unit[d] = v_row[d] / *denominator;
    return norm;
}

template <typename T>
double xsa_dot(const T* a, const T* b, std::int64_t n) {
    double sum = 0.0;
    for (std::int64_t d = 0; d < n; ++d) sum += static_cast<double>(a[d]) * static_cast<double>(b[d]);
    return sum;
}

// y, out: (B, H, T, Dh); v: (B, Hkv, T, Dh). Every output row depends on its own inputs only.
template <typename T>
void xsa_forward_rows(const XsaLayout& layout, const T* y, const T* v, T* out) {
    const std::int64_t time = layout.time;
    const std::int64_t dh = layout.head_dim;
#pragma omp parallel for schedule(static)
    for (std::int64_t bh = 0; bh < layout.batch * layout.heads; ++bh) {
        const std::int64_t b = bh / layout.heads;
        const std::int64_t kv_head = (bh % layout.heads) / layout.group();
        std::vector<T> unit(static_cast<std::size_t>(dh));
        for (std::int64_t t = 0; t < time; ++t) {
            const T* v_row = v + ((b * layout.kv_heads + kv_head) * time + t) * dh;
            const T* y_row = y + (bh * time + t) * dh;
            T* out_row = out + (bh * time + t) * dh;
            T denominator;
            xsa_unit(v_row, dh, unit.data(), &denominator);
            const T projection = static_cast<T>(xsa_dot(y_row, unit.data(), dh));
            for (std::int64_t d = 0; d < dh; ++d) out_row[d] = y_row[d] - projection * unit[d];
        }
    }
}

// With u = v / max(‖v‖, eps), s = y·u and c = dout·u:
//   dy = dout − c u,   ∂L/∂u = −(c y + s dout) summed over the group's query heads,
//   dv = (∂L/∂u − (∂L/∂u · u) u) / ‖v‖ when ‖v‖ ≥ eps (torch's clamp_min passes the gradient at equality),
//   dv = ∂L/∂u / eps otherwise (the divisor is the constant eps).
// Parallel over (b, KV head), so each dv row is summed by one thread in a fixed head order.
template <typename T>
void xsa_backward_groups(const XsaLayout& layout, const T* y, const T* v, const T* dout, T* dy, T* dv) {
    const std::int64_t time = layout.time;
    const std::int64_t dh = layout.head_dim;
    const std::int64_t group = layout.group();
#pragma omp parallel for schedule(static)
    for (std::int64_t bkv = 0; bkv < layout.batch * layout.kv_heads; ++bkv) {
        const std::int64_t b = bkv / layout.kv_heads;
        const std::int64_t kv_head = bkv % layout.kv_heads;
        std::vector<T> unit(static_cast<std::size_t>(dh));
        std::vector<double> du(static_cast<std::size_t>(dh));
        for (std::int64_t t = 0; t < time; ++t) {
            const T* v_row = v + (bkv * time + t) * dh;
            T denominator;
            const double norm = xsa_unit(v_row, dh, unit.data(), &denominator);
            std::fill(du.begin(), du.end(), 0.0);
            for (std::int64_t g = 0; g < group; ++g) {
                const std::int64_t bh = b * layout.heads + kv_head * group + g;
                const T* y_row = y + (bh * time + t) * dh;
                const T* dout_row = dout + (bh * time + t) * dh;
                T* dy_row = dy + (bh * time + t) * dh;
                const double s = xsa_dot(y_row, unit.data(), dh);
                const double c = xsa_dot(dout_row, unit.data(), dh);
                const T c_cast = static_cast<T>(c);
                for (std::int64_t d = 0; d < dh; ++d) {
                    dy_row[d] = dout_row[d] - c_cast * unit[d];
                    du[d] -= c * static_cast<double>(y_row[d]) + s * static_cast<double>(dout_row[d]);
                }
            }
            T* dv_row = dv + (bkv * time + t) * dh;
            const double divisor = static_cast<double>(denominator);
            if (norm >= kNormalizeEps) {
                double radial = 0.0;
                for (std::int64_t d = 0; d < dh; ++d) radial += du[d] * static_cast<double>(unit[d]);
                for (std::int64_t d = 0; d < dh; ++d) {
                    dv_row[d] = static_cast<T>((du[d] - radial * static_cast<double>(unit[d])) / divisor);
                }
            } else {
                for (std::int64_t d = 0; d < dh; ++d) dv_row[d] = static_cast<T>(du[d] / divisor);
            }
        }
    }
}

}  // namespace

Tensor xsa_forward(const Tensor& y, const Tensor& v) {
    const XsaLayout layout = xsa_check(y, v, "xsa");
    Tensor out = Tensor::empty(y.shape(), y.dtype());
    dispatch_floating(y.dtype(), [&](auto tag) {
        using T = decltype(tag);
        xsa_forward_rows<T>(layout, y.data<T>(), v.data<T>(), out.data<T>());
    });
    return out;
}

XsaGrads xsa_backward(const Tensor& y, const Tensor& v, const Tensor& dout) {
    const XsaLayout layout = xsa_check(y, v, "xsa_backward");
    tensor_check_dtype(dout, y.dtype(), "xsa_backward", "dout");
    tensor_check_shape(dout, y.shape(), "xsa_backward", "dout");
    XsaGrads grads;
    grads.dy = Tensor::empty(y.shape(), y.dtype());
    grads.dv = Tensor::empty(v.shape(), y.dtype());
    dispatch_floating(y.dtype(), [&](auto tag) {
        using T = decltype(tag);
        xsa_backward_groups<T>(layout, y.data<T>(), v.data<T>(), dout.data<T>(), grads.dy.data<T>(),
                               grads.dv.data<T>());
    });
    return grads;
}

}  // namespace pgolf
