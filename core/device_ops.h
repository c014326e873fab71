// The ops the autograd layer runs, dispatched on the device of their first tensor argument: the CPU reference ops
// (core/ops) for cpu tensors, the CUDA backend (core/cuda) for cuda tensors. Same shapes and semantics as the CPU ops;
// see core/ops/*.h. In a build without CUDA every tensor is a cpu tensor, so only the CPU branch exists.
#pragma once

#include <cstdint>

#include "core/cuda/elementwise.h"
#include "core/ops/attention.h"
#include "core/ops/elementwise.h"
#include "core/ops/fake_quant.h"
#include "core/ops/linear.h"
#include "core/ops/norm.h"
#include "core/ops/rope.h"
#include "core/ops/smear.h"
#include "core/ops/xsa.h"
#include "core/tensor.h"

namespace pgolf {

Tensor device_linear_forward(const Tensor& x, const Tensor& w);
LinearGrads device_linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, bool need_dx, bool need_dw);
Tensor device_embedding_forward(const Tensor& table, const Tensor& ids);
Tensor device_embedding_backward(const Tensor& dy, const Tensor& ids, std::int64_t vocab_size);
Tensor device_add(const Tensor& a, const Tensor& b);
void device_add_into(Tensor& a, const Tensor& b);
Tensor device_scale(const Tensor& x, double factor);
Tensor device_mul_broadcast(const Tensor& x, const Tensor& g, std::int64_t axis);
MulBroadcastGrads device_mul_broadcast_backward(const Tensor& x, const Tensor& g, std::int64_t axis, const Tensor& dy);
// The fused residual ops exist on cuda only (the CPU composes mul_broadcast and add; see ag::residual_mix).
Tensor device_residual_mix(const Tensor& x, const Tensor& x0, const Tensor& mix);
ResidualMixGrads device_residual_mix_backward(const Tensor& x, const Tensor& x0, const Tensor& mix, const Tensor& dy);
Tensor device_residual_add_scaled(const Tensor& x, const Tensor& y, const Tensor& g);
ResidualAddScaledGrads device_residual_add_scaled_backward(const Tensor& y, const Tensor& g, const Tensor& dout);
Tensor device_relu_squared(const Tensor& x);
Tensor device_relu_squared_backward(const Tensor& x, const Tensor& dy);
Tensor device_leaky_relu_squared(const Tensor& x, double slope);
Tensor device_leaky_relu_squared_backward(const Tensor& x, double slope, const Tensor& dy);
RmsNormResult device_rmsnorm_forward(const Tensor& x, double eps, double factor);
Tensor device_rmsnorm_backward(const Tensor& x, const Tensor& rstd, const Tensor& dy, double factor);
Tensor device_rope_forward(const Tensor& x, const RopeSpec& spec);
Tensor device_rope_backward(const Tensor& dy, const RopeSpec& spec);
// Causal. On cuda: cuDNN's fused attention when it can run the shape, pgolf's own kernels otherwise.
AttentionResult device_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale);
AttentionGrads device_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                         const AttentionResult& forward, const Tensor& dy, double scale);
Tensor device_permute_0213(const Tensor& x);
Tensor device_softcap_cross_entropy_forward(const Tensor& logits, const Tensor& targets, double cap);
Tensor device_softcap_cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& dnll,
                                             double cap);
// x: any shape -> () in x's dtype on the cpu (accumulated in double), () f32 on cuda.
Tensor device_sum_all(const Tensor& x);
// The gradient of mean(x) given dy: (): every element dy / numel, without reading dy on the host.
Tensor device_mean_backward(const Tensor& x, const Tensor& dy);
Tensor device_xsa_forward(const Tensor& y, const Tensor& v);
XsaGrads device_xsa_backward(const Tensor& y, const Tensor& v, const Tensor& dout);
Tensor device_smear_forward(const Tensor& h, const Tensor& g);
SmearGrads device_smear_backward(const Tensor& h, const Tensor& g, const Tensor& dout);
Tensor device_fake_quantize_rows(const Tensor& w, const FakeQuantSpec& spec);
// A tensor of shape filled with value on device.
Tensor device_full(const Shape& shape, double value, DType dtype, Device device);

}  // namespace pgolf
