// Causal GQA attention forward and backward through cuDNN's fused flash-attention engines (the backend graph API,
// graphs in attention_cudnn_graph.h), bf16 in and out. The public entry core/cuda/attention.h decides when to use it.
// Plain C++: no CUDA or cuDNN types, so g++ code includes it.
#pragma once

#include <cstdint>
#include <string>

#include "core/ops/attention.h"
#include "core/tensor.h"

namespace pgolf {

// Whether cuDNN fused attention can run here: built with cuDNN, a GPU present (sm80 or newer), and the loaded cuDNN
// 9.0 or newer. When not, *reason (if given) says why in one line.
bool cuda_cudnn_attention_available(std::string* reason = nullptr);
// "9.19.0 (built against 9.19.0)": the cuDNN this process loaded and the headers it was built with; or why there is
// none ("pgolf was built without cuDNN"). Needs no GPU.
std::string cuda_cudnn_version_text();

// Shapes cuDNN's fused flash attention takes (Dh a multiple of 8 and at most 128, H a multiple of Hkv, …) with the
// loaded cuDNN: empty when supported, else the reason ("pgolf was built without cuDNN" in a build without it).
std::string cuda_cudnn_attention_unsupported_reason(std::int64_t batch, std::int64_t heads, std::int64_t kv_heads,
                                                    std::int64_t seq_len, std::int64_t head_dim);

// q: (B, H, T, Dh), k, v: (B, Hkv, T, Dh), bf16, cuda; causal; scale 0 → 1/√Dh.
// -> y: (B, H, T, Dh) bf16, lse: (B, H, T) f32 (natural log, as AttentionResult)
AttentionResult cuda_cudnn_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale);

// forward: the result above for these q, k, v; dy: (B, H, T, Dh) bf16
// -> dq (B, H, T, Dh), dk, dv (B, Hkv, T, Dh), bf16 (dk, dv summed over the query heads of each group)
// Deterministic when cuDNN has an engine for the deterministic graph (it needs a B·H·T²·2-byte workspace); otherwise
// the atomic-accumulation graph.
AttentionGrads cuda_cudnn_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const AttentionResult& forward, const Tensor& dy, double scale);

}  // namespace pgolf
