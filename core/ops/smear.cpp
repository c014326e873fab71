// SmearGate forward and backward: out_t = (1 − σ(g)) ⊙ h_t + σ(g) ⊙ h_{t−1}, h_{−1} = 0 per sequence. The gate
// gradient is summed in double over fixed blocks of rows, so it does not depend on the thread count.
#include "core/ops/smear.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/ops/dispatch.h"

namespace pgolf {

namespace {

// Rows (b, t) per block of the gate-gradient reduction; fixed so the summation order never changes.
constexpr std::int64_t kGateRowBlock = 256;
constexpr std::int64_t kParallelElements = 1 << 15;

struct SmearLayout {
    std::int64_t batch = 0;
    std::int64_t time = 0;
    std::int64_t dim = 0;
};

SmearLayout smear_check(const Tensor& h, const Tensor& g, const char* op) {
    tensor_check_floating(h, op, "h");
    if (h.dim() != 3) throw Error(std::string(op) + ": h must be 3-D (B, T, D), got shape " + shape_string(h.shape()));
    tensor_check_dtype(g, h.dtype(), op, "g");
    tensor_check_shape(g, {h.size(2)}, op, "g");
    return SmearLayout{h.size(0), h.size(1), h.size(2)};
}

double smear_sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// σ(g) per channel, evaluated in double and rounded once to the tensor's dtype.
template <typename T>
std::vector<T> smear_gate(const T* g, std::int64_t dim) {
    std::vector<T> gate(static_cast<std::size_t>(dim));
    for (std::int64_t d = 0; d < dim; ++d) gate[d] = static_cast<T>(smear_sigmoid(static_cast<double>(g[d])));
    return gate;
}

}  // namespace

Tensor smear_forward(const Tensor& h, const Tensor& g) {
    const SmearLayout layout = smear_check(h, g, "smear");
    Tensor out = Tensor::empty(h.shape(), h.dtype());
    dispatch_floating(h.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* in = h.data<T>();
        T* result = out.data<T>();
        const std::int64_t dim = layout.dim;
        const std::vector<T> gate = smear_gate(g.data<T>(), dim);
        // h, out: (B·T, D); row r = b·T + t.
#pragma omp parallel for schedule(static) if (h.numel() >= kParallelElements)
        for (std::int64_t r = 0; r < layout.batch * layout.time; ++r) {
            const bool first = r % layout.time == 0;
            const T* row = in + r * dim;
            T* out_row = result + r * dim;
            for (std::int64_t d = 0; d < dim; ++d) {
                const T previous = first ? T{0} : row[d - dim];
                out_row[d] = (T{1} - gate[d]) * row[d] + gate[d] * previous;
            }
        }
    });
    return out;
}

SmearGrads smear_backward(const Tensor& h, const Tensor& g, const Tensor& dout) {
    const SmearLayout layout = smear_check(h, g, "smear_backward");
    tensor_check_dtype(dout, h.dtype(), "smear_backward", "dout");
    tensor_check_shape(dout, h.shape(), "smear_backward", "dout");
    SmearGrads grads;
    grads.dh = Tensor::empty(h.shape(), h.dtype());
    grads.dg = Tensor::empty(g.shape(), h.dtype());
    dispatch_floating(h.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* in = h.data<T>();
        const T* grad = dout.data<T>();
        T* dh = grads.dh.data<T>();
        const std::int64_t dim = layout.dim;
        const std::int64_t rows = layout.batch * layout.time;
        const std::vector<T> gate = smear_gate(g.data<T>(), dim);
        // dh_t = (1 − σ) ⊙ dout_t + σ ⊙ dout_{t+1} (the second term absent at the last position);
        // dg = σ(1 − σ) ⊙ Σ_{b,t} dout_t ⊙ (h_{t−1} − h_t), Σ in double per block of rows, blocks added in order.
        const std::int64_t blocks = (rows + kGateRowBlock - 1) / kGateRowBlock;
        std::vector<double> partial(static_cast<std::size_t>(blocks * dim), 0.0);
#pragma omp parallel for schedule(static) if (h.numel() >= kParallelElements)
        for (std::int64_t block = 0; block < blocks; ++block) {
            double* sums = partial.data() + block * dim;
            for (std::int64_t r = block * kGateRowBlock; r < std::min(rows, (block + 1) * kGateRowBlock); ++r) {
                const std::int64_t t = r % layout.time;
                const T* row = in + r * dim;
                const T* grad_row = grad + r * dim;
                T* dh_row = dh + r * dim;
                for (std::int64_t d = 0; d < dim; ++d) {
                    const T next = t + 1 < layout.time ? grad_row[d + dim] : T{0};
                    dh_row[d] = (T{1} - gate[d]) * grad_row[d] + gate[d] * next;
                    const double previous = t == 0 ? 0.0 : static_cast<double>(row[d - dim]);
                    sums[d] += static_cast<double>(grad_row[d]) * (previous - static_cast<double>(row[d]));
                }
            }
        }
        const T* gs = g.data<T>();
        T* dg = grads.dg.data<T>();
        for (std::int64_t d = 0; d < dim; ++d) {
            double total = 0.0;
            for (std::int64_t block = 0; block < blocks; ++block) total += partial[block * dim + d];
            const double sigma = smear_sigmoid(static_cast<double>(gs[d]));
            dg[d] = static_cast<T>(sigma * (1.0 - sigma) * total);
        }
    });
    return grads;
}

}  // namespace pgolf
