// Fused element-wise optimizer updates on cuda f32 tensors, in place: Adam/AdamW and SGD exactly as Adam::step and
// Sgd::step in model/optim.h do them per element (the options and arithmetic are in core/cuda/optim_math.h).
#pragma once

#include <cstdint>

#include "core/cuda/optim_math.h"
#include "core/tensor.h"

namespace pgolf {

// param, grad, exp_avg, exp_avg_sq: same shape, f32, cuda. step is the parameter's step count including this update
// (1 on its first, when exp_avg and exp_avg_sq must hold zeros); the caller keeps and increments it.
void cuda_adam_update(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, std::int64_t step,
                      const AdamUpdateOptions& options);

// param, grad: same shape, f32, cuda. momentum_buffer: same shape f32 cuda when options.momentum != 0 (ignored and
// may be undefined otherwise). first_step: the buffer's first update, which sets it to the direction (its previous
// contents are not read).
void cuda_sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buffer, const SgdUpdateOptions& options,
                     bool first_step);

}  // namespace pgolf
