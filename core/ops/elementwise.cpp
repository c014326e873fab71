// Elementwise arithmetic, activations, broadcast gains, sum and the head/time permute. Reductions run over fixed
// chunks combined in a fixed order, so results are bitwise independent of the OpenMP thread count.
#include "core/ops/elementwise.h"

#include <algorithm>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/ops/dispatch.h"

namespace pgolf {

namespace {

// Below this many elements one thread is faster than waking a team.
constexpr std::int64_t kParallelElements = 1 << 15;

void check_same(const Tensor& a, const Tensor& b, const char* op) {
    tensor_check_floating(a, op, "a");
    tensor_check_dtype(b, a.dtype(), op, "b");
    tensor_check_shape(b, a.shape(), op, "b");
}

// Applies out[i] = f(in[i]) over one floating tensor.
template <typename T, typename F>
void map_unary(const Tensor& x, Tensor& y, F f) {
    const T* in = x.data<T>();
    T* out = y.data<T>();
    const std::int64_t n = x.numel();
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
    for (std::int64_t i = 0; i < n; ++i) out[i] = f(in[i]);
}

template <typename T, typename F>
void map_binary(const Tensor& a, const Tensor& b, Tensor& y, F f) {
    const T* lhs = a.data<T>();
    const T* rhs = b.data<T>();
    T* out = y.data<T>();
    const std::int64_t n = a.numel();
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
    for (std::int64_t i = 0; i < n; ++i) out[i] = f(lhs[i], rhs[i]);
}

// The CPU op's view: x and g floating on the cpu, same dtype.
BroadcastView broadcast_view_checked(const Tensor& x, const Tensor& g, std::int64_t axis, const char* op) {
    tensor_check_floating(x, op, "x");
    tensor_check_dtype(g, x.dtype(), op, "g");
    return broadcast_view(x, g, axis, op);
}

}  // namespace

BroadcastView broadcast_view(const Tensor& x, const Tensor& g, std::int64_t axis, const char* op) {
    const std::int64_t rank = x.dim();
    const std::int64_t resolved = axis < 0 ? axis + rank : axis;
    if (resolved < 0 || resolved >= rank) {
        throw Error(std::string(op) + ": axis " + std::to_string(axis) + " out of range for x of shape " +
                    shape_string(x.shape()));
    }
    BroadcastView view;
    view.channels = x.shape()[static_cast<std::size_t>(resolved)];
    tensor_check_shape(g, {view.channels}, op, "g");
    for (std::int64_t i = 0; i < resolved; ++i) view.outer *= x.shape()[static_cast<std::size_t>(i)];
    for (std::int64_t i = resolved + 1; i < rank; ++i) view.inner *= x.shape()[static_cast<std::size_t>(i)];
    return view;
}

namespace {

// y = x ⊙ g[c] on the (outer, channels, inner) view; used for both the forward and dx = dy ⊙ g.
template <typename T>
void scale_channels(const T* x, const T* g, T* y, const BroadcastView& view) {
    const std::int64_t rows = view.outer * view.channels;
    const std::int64_t inner = view.inner;
    const std::int64_t channels = view.channels;
#pragma omp parallel for schedule(static) if (rows * inner >= kParallelElements)
    for (std::int64_t r = 0; r < rows; ++r) {
        const T gain = g[r % channels];
        const T* in = x + r * inner;
        T* out = y + r * inner;
        for (std::int64_t i = 0; i < inner; ++i) out[i] = in[i] * gain;
    }
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
    check_same(a, b, "add");
    Tensor y = Tensor::empty(a.shape(), a.dtype());
    dispatch_floating(a.dtype(), [&](auto tag) {
        using T = decltype(tag);
        map_binary<T>(a, b, y, [](T p, T q) { return p + q; });
    });
    return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
    check_same(a, b, "mul");
    Tensor y = Tensor::empty(a.shape(), a.dtype());
    dispatch_floating(a.dtype(), [&](auto tag) {
        using T = decltype(tag);
        map_binary<T>(a, b, y, [](T p, T q) { return p * q; });
    });
    return y;
}

Tensor scale(const Tensor& a, double factor) {
    tensor_check_floating(a, "scale", "a");
    Tensor y = Tensor::empty(a.shape(), a.dtype());
    dispatch_floating(a.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T f = static_cast<T>(factor);
        map_unary<T>(a, y, [f](T p) { return p * f; });
    });
    return y;
}

void add_into(Tensor& a, const Tensor& b) {
    check_same(a, b, "add_into");
    dispatch_floating(a.dtype(), [&](auto tag) {
        using T = decltype(tag);
        map_binary<T>(a, b, a, [](T p, T q) { return p + q; });
    });
}

Tensor mul_broadcast(const Tensor& x, const Tensor& g, std::int64_t axis) {
    const BroadcastView view = broadcast_view_checked(x, g, axis, "mul_broadcast");
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    dispatch_floating(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        scale_channels<T>(x.data<T>(), g.data<T>(), y.data<T>(), view);
    });
    return y;
}

MulBroadcastGrads mul_broadcast_backward(const Tensor& x, const Tensor& g, std::int64_t axis, const Tensor& dy) {
    const BroadcastView view = broadcast_view_checked(x, g, axis, "mul_broadcast_backward");
    tensor_check_dtype(dy, x.dtype(), "mul_broadcast_backward", "dy");
    tensor_check_shape(dy, x.shape(), "mul_broadcast_backward", "dy");
    MulBroadcastGrads grads;
    grads.dx = Tensor::empty(x.shape(), x.dtype());
    grads.dg = Tensor::empty(g.shape(), g.dtype());
    dispatch_floating(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* xs = x.data<T>();
        const T* dys = dy.data<T>();
        scale_channels<T>(dys, g.data<T>(), grads.dx.template data<T>(), view);

        // dg[c] = Σ_{o, i} dy ⊙ x. Work item (block of outer indices, channel) sums its slice in double in index
        // order; the blocks are then added in block order. Block size depends on the shape only.
        const std::int64_t channels = view.channels;
        const std::int64_t inner = view.inner;
        const std::int64_t slice = std::max<std::int64_t>(1, channels * inner);
        const std::int64_t block = std::max<std::int64_t>(1, kReduceChunk / slice);
        const std::int64_t blocks = (view.outer + block - 1) / block;
        std::vector<double> partial(static_cast<std::size_t>(blocks * channels), 0.0);
        const std::int64_t items = blocks * channels;
#pragma omp parallel for schedule(static) if (x.numel() >= kParallelElements)
        for (std::int64_t item = 0; item < items; ++item) {
            const std::int64_t b = item / channels;
            const std::int64_t c = item % channels;
            const std::int64_t o_end = std::min(view.outer, (b + 1) * block);
            double sum = 0.0;
            for (std::int64_t o = b * block; o < o_end; ++o) {
                const std::int64_t base = (o * channels + c) * inner;
                for (std::int64_t i = 0; i < inner; ++i) {
                    sum += static_cast<double>(dys[base + i]) * static_cast<double>(xs[base + i]);
                }
            }
            partial[static_cast<std::size_t>(item)] = sum;
        }
        T* dg = grads.dg.template data<T>();
        for (std::int64_t c = 0; c < channels; ++c) {
            double sum = 0.0;
            for (std::int64_t b = 0; b < blocks; ++b) sum += partial[static_cast<std::size_t>(b * channels + c)];
            dg[c] = static_cast<T>(sum);
        }
    });
    return grads;
}

Tensor relu_squared(const Tensor& x) {
    tensor_check_floating(x, "relu_squared", "x");
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    dispatch_floating(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        map_unary<T>(x, y, [](T v) { return v > T(0) ? v * v : T(0); });
    });
    return y;
}

Tensor relu_squared_backward(const Tensor& x, const Tensor& dy) {
    check_same(x, dy, "relu_squared_backward");
    Tensor dx = Tensor::empty(x.shape(), x.dtype());
    dispatch_floating(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        // d/dx max(x, 0)² = 2·max(x, 0)
        map_binary<T>(x, dy, dx, [](T v, T g) { return v > T(0) ? T(2) * v * g : T(0); });
    });
    return dx;
}

Tensor leaky_relu_squared(const Tensor& x, double slope) {
    tensor_check_floating(x, "leaky_relu_squared", "x");
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    dispatch_floating(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T s = static_cast<T>(slope);
        map_unary<T>(x, y, [s](T v) {
            const T leaky = v >= T(0) ? v : s * v;
            return leaky * leaky;
        });
    });
    return y;
}

Tensor leaky_relu_squared_backward(const Tensor& x, double slope, const Tensor& dy) {
    check_same(x, dy, "leaky_relu_squared_backward");
    Tensor dx = Tensor::empty(x.shape(), x.dtype());
    dispatch_floating(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T s = static_cast<T>(slope);
        // d/dx (s·x)² = 2·s·(s·x) on the negative side
        map_binary<T>(x, dy, dx, [s](T v, T g) { return v >= T(0) ? T(2) * v * g : T(2) * s * (s * v) * g; });
    });
    return dx;
}

Tensor sum_all(const Tensor& x) {
    tensor_check_floating(x, "sum_all", "x");
    Tensor y = Tensor::empty({}, x.dtype());
    dispatch_floating(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* in = x.data<T>();
        const double total = chunked_sum(x.numel(), [in](std::int64_t i) { return static_cast<double>(in[i]); });
        y.data<T>()[0] = static_cast<T>(total);
    });
    return y;
}

Tensor permute_0213(const Tensor& x) {
    tensor_check_floating(x, "permute_0213", "x");
    if (x.dim() != 4) {
        throw Error("permute_0213: x has shape " + shape_string(x.shape()) + ", expected (A, B, C, D)");
    }
    const std::int64_t a = x.size(0);
    const std::int64_t b = x.size(1);
    const std::int64_t c = x.size(2);
    const std::int64_t d = x.size(3);
    Tensor y = Tensor::empty({a, c, b, d}, x.dtype());
    dispatch_floating(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* in = x.data<T>();
        T* out = y.data<T>();
        // x: (A, B, C, D) -> y: (A, C, B, D); each (a, b) slab of C rows of D is scattered to stride B·D
#pragma omp parallel for schedule(static) if (x.numel() >= kParallelElements)
        for (std::int64_t ab = 0; ab < a * b; ++ab) {
            const std::int64_t ia = ab / b;
            const std::int64_t ib = ab % b;
            for (std::int64_t ic = 0; ic < c; ++ic) {
                const T* source = in + ((ia * b + ib) * c + ic) * d;
                T* target = out + ((ia * c + ic) * b + ib) * d;
                std::copy(source, source + d, target);
            }
        }
    });
    return y;
}

}  // namespace pgolf
