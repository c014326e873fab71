// Muon on cuda f32 weights (host entry points; kernels in muon.cu): the momentum, Newton–Schulz over a batch of
// same-shape matrices with strided-batched GEMMs, and the scaled update, as Muon::step does them on the CPU
// (element arithmetic in core/cuda/muon_math.h). Plain C++ header.
#pragma once

#include "core/cuda/muon_math.h"
#include "core/tensor.h"

namespace pgolf {

// grad: (...) f32 cuda; momentum_buffer: grad's shape, f32 cuda, updated in place (zeros before the first step);
// update: grad's shape, f32 cuda, written (a view into a Newton–Schulz batch is fine). Uses options.momentum,
// nesterov and bf16_state.
void cuda_muon_momentum(const Tensor& grad, Tensor& momentum_buffer, Tensor& update, const MuonUpdateOptions& options);

// x: (n, rows, cols) f32 cuda, overwritten with each matrix's orthogonalized direction: optim_newton_schulz (model/
// optim.h) of every x[i], bf16-valued in bf16 mode. All n matrices go through each GEMM in one strided-batched call;
// the norms stay on the device.
void cuda_newton_schulz_batched(Tensor& x, int steps, CudaMuonPrecision precision);

// param: (rows, cols) or (banks, rows, cols), f32 cuda, updated in place; update: param's shape, f32 cuda (the
// Newton–Schulz output). Uses options.lr, weight_decay, decay_order and precision.
void cuda_muon_apply(Tensor& param, const Tensor& update, const MuonUpdateOptions& options);

}  // namespace pgolf
