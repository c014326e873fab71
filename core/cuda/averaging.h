// CUDA kernels behind SWA and EMA on cuda weights (host entry points; kernels in averaging.cu), with the arithmetic of
// core/cuda/averaging_math.h, so model/averaging.cpp gives the same bits on either device.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace pgolf {

// sum: f64, weight: f32, same shape, both cuda: sum += f64(weight) elementwise.
void cuda_accumulate_f64(Tensor& sum, const Tensor& weight);
// out: f32, sum: f64, same shape, both cuda; count > 0: out = f32(sum / count) elementwise.
void cuda_mean_from_f64(Tensor& out, const Tensor& sum, std::int64_t count);
// average, weight: f32, same shape, both cuda; decay in [0, 1]: average ← fl(fl(d·average) + fl((1 − d)·weight)) with
// d and 1 − d as averaging_ema_decay / averaging_ema_weight round them.
void cuda_ema_update(Tensor& average, const Tensor& weight, double decay);

}  // namespace pgolf
