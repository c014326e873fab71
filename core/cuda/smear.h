// CUDA SmearGate (host entry points; kernels in smear.cu): out_t = (1 − σ(g)) ⊙ h_t + σ(g) ⊙ h_{t−1}, h_{−1} = 0 per
// sequence, with the CPU reference's arithmetic (core/ops/smear.h): σ in double rounded to f32, the rest in fp32.
#pragma once

#include "core/ops/smear.h"
#include "core/tensor.h"

namespace pgolf {

// h: (B, T, D), g: (D,), one dtype (f32 or bf16) -> (B, T, D) in that dtype.
Tensor cuda_smear_forward(const Tensor& h, const Tensor& g);
// h, dout: (B, T, D), g: (D,) -> dh (B, T, D) and dg (D,) in g's dtype. dg is summed in double over blocks of 256
// rows, then the blocks in order, as the CPU reference does, so it does not depend on the launch.
SmearGrads cuda_smear_backward(const Tensor& h, const Tensor& g, const Tensor& dout);

}  // namespace pgolf
