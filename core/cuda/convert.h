// Dtype conversion and fill of cuda tensors: f32 <-> bf16 with the host's rounding (round-to-nearest-even, NaN kept
// a quiet NaN), e.g. the bf16 working copy of the fp32 master weights refreshed every step. Plain C++ header.
#pragma once

#include "core/tensor.h"

namespace pgolf {

// x: (...) cuda -> a new cuda tensor of the same shape in dtype. f32 -> bf16 rounds exactly as bf16_from_float;
// bf16 -> f32 is exact; the same dtype (any dtype) is a copy. Other pairs throw.
Tensor cuda_convert(const Tensor& x, DType dtype);
// destination: (...) (cuda, f32 or bf16) = source: same shape (cuda, f32 or bf16) converted, without allocating.
// The two must not overlap unless they are the same tensor of the same dtype.
void cuda_convert_into(Tensor& destination, const Tensor& source);
// Every element of tensor (cuda, f32 or bf16) = value (rounded to bf16 as bf16_from_float for bf16).
void cuda_fill(Tensor& tensor, double value);

}  // namespace pgolf
