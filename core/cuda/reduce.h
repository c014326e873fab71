// CUDA reductions: the sum of all elements, the global L2 norm over a list of tensors and torch's clip_grad_norm_.
// Deterministic: per-block fp32 partials, then one block adds them in double in a fixed order.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace pgolf {

// x: any shape, f32/bf16 -> () f32.
Tensor cuda_sum_all(const Tensor& x);
// The backward of sum_all: x: any shape (only its shape and dtype are used), dy: () f32/bf16 -> dx: x's shape and
// dtype, every element dy.
Tensor cuda_sum_all_backward(const Tensor& x, const Tensor& dy);

// sqrt(Σ over tensors of Σ x²) over f32/bf16 cuda tensors (the reference is global_norm in core/ops/norm.h). Returns
// a host value, so this call synchronises the current stream once (the only op here that does).
double cuda_global_norm(const std::vector<Tensor>& tensors);

// optim_clip_grad_norm (model/optim.h) on cuda gradients: undefined gradients are skipped; when
// max_norm/(total + 1e-6) < 1 every gradient is multiplied in place by that factor (rounded to f32). Returns the
// pre-clip total norm; synchronises once, like cuda_global_norm.
double cuda_clip_grad_norm(const std::vector<Tensor>& grads, double max_norm);

}  // namespace pgolf
