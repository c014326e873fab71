// Device dispatch for the autograd layer: each function runs the CUDA entry point for a cuda tensor and the CPU
// reference op otherwise. The CUDA calls exist only in CUDA builds; without CUDA no tensor can be on cuda.
#include "core/device_ops.h"

#include <string>

#include "core/error.h"
#include "core/ops/embedding.h"
#include "core/ops/loss.h"

#ifdef PGOLF_WITH_CUDA
#include "core/cuda/attention.h"
#include "core/cuda/convert.h"
#include "core/cuda/elementwise.h"
#include "core/cuda/embedding.h"
#include "core/cuda/fake_quant.h"
#include "core/cuda/gemm.h"
#include "core/cuda/loss.h"
#include "core/cuda/norm.h"
#include "core/cuda/reduce.h"
#include "core/cuda/rope.h"
#include "core/cuda/smear.h"
#include "core/cuda/xsa.h"
// Returns the CUDA op's result when the tensor lives on the GPU.
#define PGOLF_ON_CUDA(tensor, expression) \
    if ((tensor).device() == Device::cuda) return expression
#else
#define PGOLF_ON_CUDA(tensor, expression)
#endif

namespace pgolf {

Tensor device_linear_forward(const Tensor& x, const Tensor& w) {
    PGOLF_ON_CUDA(x, cuda_linear_forward(x, w));
    return linear_forward(x, w);
}

LinearGrads device_linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, bool need_dx, bool need_dw) {
    PGOLF_ON_CUDA(x, cuda_linear_backward(x, w, dy, need_dx, need_dw));
    return linear_backward(x, w, dy, need_dx, need_dw);
}

Tensor device_embedding_forward(const Tensor& table, const Tensor& ids) {
    PGOLF_ON_CUDA(table, cuda_embedding_forward(table, ids));
    return embedding_forward(table, ids);
}

Tensor device_embedding_backward(const Tensor& dy, const Tensor& ids, std::int64_t vocab_size) {
    PGOLF_ON_CUDA(dy, cuda_embedding_backward(dy, ids, vocab_size));
    return embedding_backward(dy, ids, vocab_size);
}

Tensor device_add(const Tensor& a, const Tensor& b) {
    PGOLF_ON_CUDA(a, cuda_add(a, b));
    return add(a, b);
}

void device_add_into(Tensor& a, const Tensor& b) {
    PGOLF_ON_CUDA(a, cuda_add_into(a, b));
    add_into(a, b);
}

Tensor device_scale(const Tensor& x, double factor) {
    PGOLF_ON_CUDA(x, cuda_scale(x, factor));
    return scale(x, factor);
}

Tensor device_mul_broadcast(const Tensor& x, const Tensor& g, std::int64_t axis) {
    PGOLF_ON_CUDA(x, cuda_mul_broadcast(x, g, axis));
    return mul_broadcast(x, g, axis);
}

MulBroadcastGrads device_mul_broadcast_backward(const Tensor& x, const Tensor& g, std::int64_t axis, const Tensor& dy) {
#ifdef PGOLF_WITH_CUDA
    if (x.device() == Device::cuda && g.numel() == 1 && g.dtype() == DType::f32 && x.dtype() == DType::f32) {
        // A one-element gain (the seeds' learned scalars): the per-channel column sum would run one column on a few
        // threads; the whole-tensor reduction does the same fixed-order sum at full width.
        MulBroadcastGrads grads;
        grads.dx = cuda_mul_broadcast(dy, g, axis);
        grads.dg = cuda_sum_all(cuda_mul(dy, x)).reshape({1});
        return grads;
    }
#endif
    PGOLF_ON_CUDA(x, cuda_mul_broadcast_backward(x, g, axis, dy));
    return mul_broadcast_backward(x, g, axis, dy);
}

namespace {

[[noreturn]] void device_ops_cuda_only(const char* op) {
    throw Error(std::string(op) +
                ": a fused CUDA op; on the CPU the autograd layer composes it from the reference ops");
}

}  // namespace

// The parameters are unused in a CPU-only build, where these only throw.
Tensor device_residual_mix([[maybe_unused]] const Tensor& x, [[maybe_unused]] const Tensor& x0,
                           [[maybe_unused]] const Tensor& mix) {
    PGOLF_ON_CUDA(x, cuda_residual_mix(x, x0, mix));
    device_ops_cuda_only("residual_mix");
}

ResidualMixGrads device_residual_mix_backward([[maybe_unused]] const Tensor& x, [[maybe_unused]] const Tensor& x0,
                                              [[maybe_unused]] const Tensor& mix, [[maybe_unused]] const Tensor& dy) {
    PGOLF_ON_CUDA(x, cuda_residual_mix_backward(x, x0, mix, dy));
    device_ops_cuda_only("residual_mix backward");
}

Tensor device_residual_add_scaled([[maybe_unused]] const Tensor& x, [[maybe_unused]] const Tensor& y,
                                  [[maybe_unused]] const Tensor& g) {
    PGOLF_ON_CUDA(x, cuda_residual_add_scaled(x, y, g));
    device_ops_cuda_only("residual_add_scaled");
}

ResidualAddScaledGrads device_residual_add_scaled_backward([[maybe_unused]] const Tensor& y,
                                                           [[maybe_unused]] const Tensor& g,
                                                           [[maybe_unused]] const Tensor& dout) {
    PGOLF_ON_CUDA(y, cuda_residual_add_scaled_backward(y, g, dout));
    device_ops_cuda_only("residual_add_scaled backward");
}

Tensor device_relu_squared(const Tensor& x) {
    PGOLF_ON_CUDA(x, cuda_relu_squared(x));
    return relu_squared(x);
}

Tensor device_relu_squared_backward(const Tensor& x, const Tensor& dy) {
    PGOLF_ON_CUDA(x, cuda_relu_squared_backward(x, dy));
    return relu_squared_backward(x, dy);
}

Tensor device_leaky_relu_squared(const Tensor& x, double slope) {
    PGOLF_ON_CUDA(x, cuda_leaky_relu_squared(x, slope));
    return leaky_relu_squared(x, slope);
}

Tensor device_leaky_relu_squared_backward(const Tensor& x, double slope, const Tensor& dy) {
    PGOLF_ON_CUDA(x, cuda_leaky_relu_squared_backward(x, slope, dy));
    return leaky_relu_squared_backward(x, slope, dy);
}

RmsNormResult device_rmsnorm_forward(const Tensor& x, double eps, double factor) {
    PGOLF_ON_CUDA(x, cuda_rmsnorm_forward(x, eps, factor));
    return rmsnorm_forward(x, eps, factor);
}

Tensor device_rmsnorm_backward(const Tensor& x, const Tensor& rstd, const Tensor& dy, double factor) {
    PGOLF_ON_CUDA(x, cuda_rmsnorm_backward(x, rstd, dy, factor));
    return rmsnorm_backward(x, rstd, dy, factor);
}

Tensor device_rope_forward(const Tensor& x, const RopeSpec& spec) {
    PGOLF_ON_CUDA(x, cuda_rope_forward(x, spec));
    return rope_forward(x, spec);
}

Tensor device_rope_backward(const Tensor& dy, const RopeSpec& spec) {
    PGOLF_ON_CUDA(dy, cuda_rope_backward(dy, spec));
    return rope_backward(dy, spec);
}

AttentionResult device_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
    PGOLF_ON_CUDA(q, cuda_attention_forward(q, k, v, scale));
    return attention_forward(q, k, v, scale, true);
}

AttentionGrads device_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                         const AttentionResult& forward, const Tensor& dy, double scale) {
    PGOLF_ON_CUDA(q, cuda_attention_backward(q, k, v, forward, dy, scale));
    return attention_backward(q, k, v, forward, dy, scale, true);
}

Tensor device_permute_0213(const Tensor& x) {
    PGOLF_ON_CUDA(x, cuda_permute_0213(x));
    return permute_0213(x);
}

Tensor device_softcap_cross_entropy_forward(const Tensor& logits, const Tensor& targets, double cap) {
    PGOLF_ON_CUDA(logits, cuda_softcap_cross_entropy_forward(logits, targets, cap));
    return softcap_cross_entropy_forward(logits, targets, cap);
}

Tensor device_softcap_cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& dnll,
                                             double cap) {
    PGOLF_ON_CUDA(logits, cuda_softcap_cross_entropy_backward(logits, targets, dnll, cap));
    return softcap_cross_entropy_backward(logits, targets, dnll, cap);
}

Tensor device_sum_all(const Tensor& x) {
    PGOLF_ON_CUDA(x, cuda_sum_all(x));
    return sum_all(x);
}

Tensor device_mean_backward(const Tensor& x, const Tensor& dy) {
    const auto count = static_cast<double>(x.numel());
    PGOLF_ON_CUDA(x, cuda_sum_all_backward(x, cuda_scale(dy, 1.0 / count)));
    return Tensor::full(x.shape(), dy.item(0) / count, x.dtype());  // dy / n in double, as the CPU path always did
}

Tensor device_xsa_forward(const Tensor& y, const Tensor& v) {
    PGOLF_ON_CUDA(y, cuda_xsa_forward(y, v));
    return xsa_forward(y, v);
}

XsaGrads device_xsa_backward(const Tensor& y, const Tensor& v, const Tensor& dout) {
    PGOLF_ON_CUDA(y, cuda_xsa_backward(y, v, dout));
    return xsa_backward(y, v, dout);
}

Tensor device_smear_forward(const Tensor& h, const Tensor& g) {
    PGOLF_ON_CUDA(h, cuda_smear_forward(h, g));
    return smear_forward(h, g);
}

SmearGrads device_smear_backward(const Tensor& h, const Tensor& g, const Tensor& dout) {
    PGOLF_ON_CUDA(h, cuda_smear_backward(h, g, dout));
    return smear_backward(h, g, dout);
}

Tensor device_fake_quantize_rows(const Tensor& w, const FakeQuantSpec& spec) {
    PGOLF_ON_CUDA(w, cuda_fake_quantize_rows(w, spec));
    return fake_quantize_rows(w, spec);
}

Tensor device_full(const Shape& shape, double value, DType dtype, Device device) {
    if (device == Device::cpu) return Tensor::full(shape, value, dtype);
    Tensor tensor = Tensor::empty(shape, dtype, device);
    tensor.fill(value);
    return tensor;
}

}  // namespace pgolf
