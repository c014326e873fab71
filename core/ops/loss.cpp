// Softcapped cross-entropy per token, forward and backward, one row per OpenMP iteration. Each row is evaluated in
// double (softcap, log-sum-exp, softmax) from the stored logits, so f32 loses precision only in its inputs and output.
#include "core/ops/loss.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/ops/dispatch.h"

namespace pgolf {

namespace {

// One thread handles smaller problems: a row of a typical vocabulary is ~1k exp/tanh, cheap next to a thread team.
constexpr std::int64_t kParallelElements = 1 << 14;

void check_inputs(const Tensor& logits, const Tensor& targets, const char* op) {
    tensor_check_floating(logits, op, "logits");
    if (logits.dim() != 2) {
        throw Error(std::string(op) + ": logits has shape " + shape_string(logits.shape()) + ", expected (N, V)");
    }
    const std::int64_t n = logits.size(0);
    const std::int64_t vocab = logits.size(1);
    tensor_check_dtype(targets, DType::i64, op, "targets");
    tensor_check_shape(targets, {n}, op, "targets");
    const std::int64_t* values = targets.data<std::int64_t>();
    for (std::int64_t i = 0; i < n; ++i) {
        if (values[i] < 0 || values[i] >= vocab) {
            throw Error(std::string(op) + ": target " + std::to_string(values[i]) + " at position " +
                        std::to_string(i) + " is outside [0, " + std::to_string(vocab) + ")");
        }
    }
}

// z: (V,) = cap·tanh(l/cap) (or l when cap ≤ 0); tanh_out receives tanh(l/cap) for the backward's chain factor.
// Returns max(z), the shift that keeps exp() in range.
template <typename T>
double softcap_row(const T* logits, std::int64_t vocab, double cap, double* z, double* tanh_out) {
    double max_z = -std::numeric_limits<double>::infinity();
    for (std::int64_t j = 0; j < vocab; ++j) {
        const double l = static_cast<double>(logits[j]);
        if (cap > 0.0) {
            const double t = std::tanh(l / cap);
            if (tanh_out != nullptr) tanh_out[j] = t;
            z[j] = cap * t;
        } else {
            z[j] = l;
        }
        max_z = std::max(max_z, z[j]);
    }
    return max_z;
}

}  // namespace

Tensor softcap_cross_entropy_forward(const Tensor& logits, const Tensor& targets, double cap) {
    check_inputs(logits, targets, "softcap_cross_entropy");
    const std::int64_t n = logits.size(0);
    const std::int64_t vocab = logits.size(1);
    Tensor nll = Tensor::empty({n}, logits.dtype());
    dispatch_floating(logits.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* ls = logits.data<T>();
        const std::int64_t* ts = targets.data<std::int64_t>();
        T* out = nll.data<T>();
        // logits: (N, V) -> nll: (N,)
#pragma omp parallel if (n * vocab >= kParallelElements)
        {
            std::vector<double> z(static_cast<std::size_t>(vocab));
#pragma omp for schedule(static)
            for (std::int64_t i = 0; i < n; ++i) {
                const double max_z = softcap_row(ls + i * vocab, vocab, cap, z.data(), nullptr);
                double sum = 0.0;
                for (std::int64_t j = 0; j < vocab; ++j) sum += std::exp(z[j] - max_z);
                out[i] = static_cast<T>(max_z + std::log(sum) - z[static_cast<std::size_t>(ts[i])]);
            }
        }
    });
    return nll;
}

Tensor softcap_cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& dnll, double cap) {
    check_inputs(logits, targets, "softcap_cross_entropy_backward");
    const std::int64_t n = logits.size(0);
    const std::int64_t vocab = logits.size(1);
    tensor_check_dtype(dnll, logits.dtype(), "softcap_cross_entropy_backward", "dnll");
    tensor_check_shape(dnll, {n}, "softcap_cross_entropy_backward", "dnll");
    Tensor dlogits = Tensor::empty(logits.shape(), logits.dtype());
    dispatch_floating(logits.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* ls = logits.data<T>();
        const std::int64_t* ts = targets.data<std::int64_t>();
        const T* gs = dnll.data<T>();
        T* out = dlogits.data<T>();
        // dl_j = dnll·(softmax(z)_j − [j = target])·dz_j/dl_j, dz/dl = 1 − tanh²(l/cap) (1 without a cap)
#pragma omp parallel if (n * vocab >= kParallelElements)
        {
            std::vector<double> z(static_cast<std::size_t>(vocab));
            std::vector<double> th(cap > 0.0 ? static_cast<std::size_t>(vocab) : 0);
#pragma omp for schedule(static)
            for (std::int64_t i = 0; i < n; ++i) {
                const double max_z = softcap_row(ls + i * vocab, vocab, cap, z.data(), cap > 0.0 ? th.data() : nullptr);
                double sum = 0.0;
                for (std::int64_t j = 0; j < vocab; ++j) {
                    z[j] = std::exp(z[j] - max_z);  // z now holds the unnormalised probabilities
                    sum += z[j];
                }
                const double g = static_cast<double>(gs[i]);
                const double inv_sum = 1.0 / sum;
                T* row = out + i * vocab;
                for (std::int64_t j = 0; j < vocab; ++j) {
                    double dz = z[j] * inv_sum - (j == ts[i] ? 1.0 : 0.0);
                    if (cap > 0.0) dz *= 1.0 - th[j] * th[j];
                    row[j] = static_cast<T>(g * dz);
                }
            }
        }
    });
    return dlogits;
}

}  // namespace pgolf
