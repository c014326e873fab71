// CUDA causal attention with grouped-query heads (the reference is core/ops/attention.h): one entry point that runs
// cuDNN's fused SDPA where it can and pgolf's own fp32 kernels otherwise, or the backend the caller names.
#pragma once

#include <cstdint>
#include <string>

#include "core/ops/attention.h"
#include "core/tensor.h"

namespace pgolf {

// automatic: cudnn where it is available and supports the shape, else kernels. kernels: pgolf's own (fp32 arithmetic,
// deterministic; the fallback and the cross-check of cuDNN).
enum class CudaAttentionBackend { automatic, cudnn, kernels };

std::string cuda_attention_backend_name(CudaAttentionBackend backend);  // "automatic", "cudnn", "kernels"

// Which backend `automatic` picks for this causal shape here: cudnn when available and the shape is supported.
CudaAttentionBackend cuda_attention_resolve_backend(std::int64_t batch, std::int64_t heads, std::int64_t kv_heads,
                                                    std::int64_t seq_len, std::int64_t head_dim);

// q: (B, H, T, Dh), k, v: (B, Hkv, T, Dh), one dtype f32 or bf16, cuda, H a multiple of Hkv -> y: (B, H, T, Dh) in
// the inputs' dtype, lse: (B, H, T) f32. scale 0 means 1/√Dh. cudnn: f32 inputs go to cuDNN as bf16 and y comes back
// in f32 (so its precision is bf16's). Asking for cudnn where it is not available or does not support the shape
// throws with the reason. The kernels take Dh ≤ 256. causal = false (the model never asks for it) runs the kernels
// under automatic and is refused by cudnn.
AttentionResult cuda_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale = 0.0,
                                       CudaAttentionBackend backend = CudaAttentionBackend::automatic,
                                       bool causal = true);

// q, k, v as in the forward; forward: this call's result for them (same backend, same scale and causal); dy: like q
// -> dq: like q, dk, dv: like k (summed over the query heads of each group), all in the inputs' dtype.
AttentionGrads cuda_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                       const AttentionResult& forward, const Tensor& dy, double scale = 0.0,
                                       CudaAttentionBackend backend = CudaAttentionBackend::automatic,
                                       bool causal = true);

}  // namespace pgolf
