// Scaled-dot-product attention (causal or not, grouped-query heads) forward and backward: the CPU reference of what
// the reference model gets from F.scaled_dot_product_attention(…, is_causal=True, enable_gqa=…).
#include "core/ops/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"

namespace pgolf {

namespace {

struct AttentionLayout {
    std::int64_t batch = 0;
    std::int64_t heads = 0;     // H, query heads
    std::int64_t kv_heads = 0;  // Hkv
    std::int64_t time = 0;
    std::int64_t head_dim = 0;
    std::int64_t group() const { return heads / kv_heads; }  // query heads per KV head
};

AttentionLayout attention_check(const Tensor& q, const Tensor& k, const Tensor& v) {
    tensor_check_floating(q, "attention", "q");
    if (q.dim() != 4) {
        throw Error("attention: q must be 4-D (B, H, T, Dh), got shape " + shape_string(q.shape()));
    }
    AttentionLayout layout;
    layout.batch = q.size(0);
    layout.heads = q.size(1);
    layout.time = q.size(2);
    layout.head_dim = q.size(3);
    layout.kv_heads = k.defined() && k.dim() == 4 ? k.size(1) : layout.heads;
    const Shape kv_shape = {layout.batch, layout.kv_heads, layout.time, layout.head_dim};
    tensor_check_shape(k, kv_shape, "attention", "k");
    tensor_check_shape(v, kv_shape, "attention", "v");
    tensor_check_dtype(k, q.dtype(), "attention", "k");
    tensor_check_dtype(v, q.dtype(), "attention", "v");
    if (layout.kv_heads == 0 || layout.heads % layout.kv_heads != 0) {
        throw Error("attention: " + std::to_string(layout.heads) + " query heads are not a multiple of " +
                    std::to_string(layout.kv_heads) + " KV heads");
    }
    if (layout.head_dim == 0) throw Error("attention: q has an empty head dim, shape " + shape_string(q.shape()));
    return layout;
}

template <typename Scalar>
Scalar attention_dot(const Scalar* a, const Scalar* b, std::int64_t n) {
    Scalar sum = 0;
    for (std::int64_t d = 0; d < n; ++d) sum += a[d] * b[d];
    return sum;
}

// Keys visible to query i: the causal prefix j ≤ i, or all of them.
std::int64_t attention_keys(std::int64_t i, std::int64_t time, bool causal) { return causal ? i + 1 : time; }

// q, y: (B, H, T, Dh); k, v: (B, Hkv, T, Dh); lse: (B, H, T). One (b, h) per iteration, so the thread count never
// changes any result.
template <typename Scalar>
void attention_forward_heads(const AttentionLayout& layout, const Scalar* q, const Scalar* k, const Scalar* v,
                             Scalar* y, Scalar* lse, Scalar scale, bool causal) {
    const std::int64_t T = layout.time;
    const std::int64_t Dh = layout.head_dim;
    const std::int64_t head_size = T * Dh;
#pragma omp parallel for schedule(static)
    for (std::int64_t bh = 0; bh < layout.batch * layout.heads; ++bh) {
        const std::int64_t b = bh / layout.heads;
        const std::int64_t kv_head = (bh % layout.heads) / layout.group();
        const Scalar* q_head = q + bh * head_size;
        const Scalar* k_head = k + (b * layout.kv_heads + kv_head) * head_size;
        const Scalar* v_head = v + (b * layout.kv_heads + kv_head) * head_size;
        Scalar* y_head = y + bh * head_size;
        std::vector<Scalar> p(static_cast<std::size_t>(T));  // scores, then unnormalised probabilities
        for (std::int64_t i = 0; i < T; ++i) {
            const std::int64_t keys = attention_keys(i, T, causal);
            const Scalar* q_i = q_head + i * Dh;
            Scalar row_max = -std::numeric_limits<Scalar>::infinity();
            for (std::int64_t j = 0; j < keys; ++j) {
                p[j] = scale * attention_dot(q_i, k_head + j * Dh, Dh);
                row_max = std::max(row_max, p[j]);
            }
            // The normaliser is summed in double: it sets lse, which backward trusts to rebuild every p_ij.
            double sum = 0.0;
            for (std::int64_t j = 0; j < keys; ++j) {
                p[j] = std::exp(p[j] - row_max);
                sum += static_cast<double>(p[j]);
            }
            Scalar* y_i = y_head + i * Dh;
            std::fill(y_i, y_i + Dh, Scalar{0});
            for (std::int64_t j = 0; j < keys; ++j) {
                const Scalar* v_j = v_head + j * Dh;
                for (std::int64_t d = 0; d < Dh; ++d) y_i[d] += p[j] * v_j[d];
            }
            const Scalar inverse_sum = static_cast<Scalar>(1.0 / sum);
            for (std::int64_t d = 0; d < Dh; ++d) y_i[d] *= inverse_sum;
            lse[bh * T + i] = static_cast<Scalar>(static_cast<double>(row_max) + std::log(sum));
        }
    }
}

// Parallel over (b, KV head): the query heads of one group all add into the same dk/dv rows, so one thread owns the
// group and adds them in a fixed order (query head, then query position), which keeps the sums bitwise reproducible.
template <typename Scalar>
void attention_backward_groups(const AttentionLayout& layout, const Scalar* q, const Scalar* k, const Scalar* v,
                               const Scalar* y, const Scalar* lse, const Scalar* dy, Scalar* dq, Scalar* dk, Scalar* dv,
                               Scalar scale, bool causal) {
    const std::int64_t T = layout.time;
    const std::int64_t Dh = layout.head_dim;
    const std::int64_t head_size = T * Dh;
    const std::int64_t group = layout.group();
#pragma omp parallel for schedule(static)
    for (std::int64_t bkv = 0; bkv < layout.batch * layout.kv_heads; ++bkv) {
        const std::int64_t b = bkv / layout.kv_heads;
        const std::int64_t kv_head = bkv % layout.kv_heads;
        const Scalar* k_head = k + bkv * head_size;
        const Scalar* v_head = v + bkv * head_size;
        Scalar* dk_head = dk + bkv * head_size;  // zeroed by the caller
        Scalar* dv_head = dv + bkv * head_size;
        std::vector<Scalar> p(static_cast<std::size_t>(T));
        std::vector<Scalar> ds(static_cast<std::size_t>(T));
        for (std::int64_t g = 0; g < group; ++g) {
            const std::int64_t bh = b * layout.heads + kv_head * group + g;
            for (std::int64_t i = 0; i < T; ++i) {
                const std::int64_t keys = attention_keys(i, T, causal);
                const Scalar* q_i = q + bh * head_size + i * Dh;
                const Scalar* dy_i = dy + bh * head_size + i * Dh;
                // D_i = Σ_j p_ij dp_ij, which equals dy_i · y_i.
                const Scalar d_i = attention_dot(dy_i, y + bh * head_size + i * Dh, Dh);
                const Scalar lse_i = lse[bh * T + i];
                for (std::int64_t j = 0; j < keys; ++j) {
                    p[j] = std::exp(scale * attention_dot(q_i, k_head + j * Dh, Dh) - lse_i);
                    const Scalar dp = attention_dot(dy_i, v_head + j * Dh, Dh);
                    ds[j] = p[j] * (dp - d_i);
                }
                Scalar* dq_i = dq + bh * head_size + i * Dh;
                std::fill(dq_i, dq_i + Dh, Scalar{0});
                for (std::int64_t j = 0; j < keys; ++j) {
                    const Scalar* k_j = k_head + j * Dh;
                    for (std::int64_t d = 0; d < Dh; ++d) dq_i[d] += ds[j] * k_j[d];
                }
                for (std::int64_t d = 0; d < Dh; ++d) dq_i[d] *= scale;
                for (std::int64_t j = 0; j < keys; ++j) {
                    const Scalar dk_weight = scale * ds[j];
                    Scalar* dk_j = dk_head + j * Dh;
                    Scalar* dv_j = dv_head + j * Dh;
                    for (std::int64_t d = 0; d < Dh; ++d) {
                        dk_j[d] += dk_weight * q_i[d];
                        dv_j[d] += p[j] * dy_i[d];
                    }
                }
            }
        }
    }
}

double attention_scale(double scale, const AttentionLayout& layout) {
    return scale == 0.0 ? 1.0 / std::sqrt(static_cast<double>(layout.head_dim)) : scale;
}

}  // namespace

AttentionResult attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal) {
    const AttentionLayout layout = attention_check(q, k, v);
    const double effective_scale = attention_scale(scale, layout);
    AttentionResult result;
    result.y = Tensor::empty(q.shape(), q.dtype());
    result.lse = Tensor::empty({layout.batch, layout.heads, layout.time}, q.dtype());
    if (q.dtype() == DType::f32) {
        attention_forward_heads<float>(layout, q.data<float>(), k.data<float>(), v.data<float>(),
                                       result.y.data<float>(), result.lse.data<float>(),
                                       static_cast<float>(effective_scale), causal);
    } else {
        attention_forward_heads<double>(layout, q.data<double>(), k.data<double>(), v.data<double>(),
                                        result.y.data<double>(), result.lse.data<double>(), effective_scale, causal);
    }
    return result;
}

AttentionGrads attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionResult& forward,
                                  const Tensor& dy, double scale, bool causal) {
    const AttentionLayout layout = attention_check(q, k, v);
    tensor_check_shape(forward.y, q.shape(), "attention", "y");
    tensor_check_shape(forward.lse, {layout.batch, layout.heads, layout.time}, "attention", "lse");
    tensor_check_shape(dy, q.shape(), "attention", "dy");
    tensor_check_dtype(forward.y, q.dtype(), "attention", "y");
    tensor_check_dtype(forward.lse, q.dtype(), "attention", "lse");
    tensor_check_dtype(dy, q.dtype(), "attention", "dy");
    const double effective_scale = attention_scale(scale, layout);
    AttentionGrads grads;
    grads.dq = Tensor::empty(q.shape(), q.dtype());
    grads.dk = Tensor::zeros(k.shape(), q.dtype());
    grads.dv = Tensor::zeros(v.shape(), q.dtype());
    if (q.dtype() == DType::f32) {
        attention_backward_groups<float>(layout, q.data<float>(), k.data<float>(), v.data<float>(),
                                         forward.y.data<float>(), forward.lse.data<float>(), dy.data<float>(),
                                         grads.dq.data<float>(), grads.dk.data<float>(), grads.dv.data<float>(),
                                         static_cast<float>(effective_scale), causal);
    } else {
        attention_backward_groups<double>(layout, q.data<double>(), k.data<double>(), v.data<double>(),
                                          forward.y.data<double>(), forward.lse.data<double>(), dy.data<double>(),
                                          grads.dq.data<double>(), grads.dk.data<double>(), grads.dv.data<double>(),
                                          effective_scale, causal);
    }
    return grads;
}

}  // namespace pgolf
