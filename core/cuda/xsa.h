// CUDA XSA (host entry points; kernels in xsa.cu): y − (y·v̂)v̂ per query head with v̂ the unit value of the same
// position in the head's KV group, one group of lanes per (b, KV head, t) handling all of the group's query heads.
#pragma once

#include "core/ops/xsa.h"
#include "core/tensor.h"

namespace pgolf {

// y: (B, H, T, Dh), v: (B, Hkv, T, Dh), H a multiple of Hkv, one dtype (f32 or bf16) -> (B, H, T, Dh) in that dtype.
// v̂ = v / max(‖v‖, 1e-12) as core/ops/xsa.h; dot products and norms in fp32 (the CPU reference sums in double).
Tensor cuda_xsa_forward(const Tensor& y, const Tensor& v);
// y, dout: (B, H, T, Dh), v: (B, Hkv, T, Dh) -> dy (B, H, T, Dh) and dv (B, Hkv, T, Dh), dv summed over the group's
// query heads in head order by the lanes that own the row (no atomics).
XsaGrads cuda_xsa_backward(const Tensor& y, const Tensor& v, const Tensor& dout);

}  // namespace pgolf
