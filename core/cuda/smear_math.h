// Per-element arithmetic of the CUDA SmearGate kernels (core/cuda/smear.cu), shared with the host so the CPU tests
// check it bit for bit against core/ops/smear.cpp: the gate σ(g) and the gate gradient are in double as there.
#pragma once

#include <cstdint>

#include "core/cuda/host_device.h"

namespace pgolf {

// Rows (b, t) per block of the gate-gradient sum, as core/ops/smear.cpp's kGateRowBlock: each block is summed
// sequentially in double, then the blocks in order, so the CUDA dg equals the CPU reference's.
inline constexpr std::int64_t kSmearGateRowBlock = 256;

// σ(x) = 1/(1 + e^−x) in double. The device's exp is within 1 ulp in double, not always the host libm's value, so a
// gate rounded to f32 can in rare cases differ by one f32 ulp from the CPU's.
PGOLF_HOST_DEVICE double smear_sigmoid(double x) {
#if defined(__CUDA_ARCH__)
    const double power = exp(-x);
#else
    const double power = std::exp(-x);
#endif
    return hd_div(1.0, hd_add(1.0, power));
}

// The gate of one channel, σ(g) in double rounded once to f32.
PGOLF_HOST_DEVICE float smear_gate(float g) { return static_cast<float>(smear_sigmoid(static_cast<double>(g))); }

// out_t = (1 − σ)·h_t + σ·h_{t−1}, each step rounded in fp32 (h_{−1} = 0 at a sequence start, added all the same).
PGOLF_HOST_DEVICE float smear_output(float h, float previous, float gate) {
    return hd_add(hd_mul(hd_sub(1.0f, gate), h), hd_mul(gate, previous));
}

// dh_t = (1 − σ)·dout_t + σ·dout_{t+1}, the same formula with dout_{t+1} = 0 at a sequence end.
PGOLF_HOST_DEVICE float smear_input_gradient(float dout, float next_dout, float gate) {
    return smear_output(dout, next_dout, gate);
}

// One row's term of the gate gradient's sum: sum + dout_t·(h_{t−1} − h_t) in double (h_{t−1} = 0 at a start).
PGOLF_HOST_DEVICE double smear_gate_gradient_step(double sum, float dout, float previous, float h, bool first) {
    const double before = first ? 0.0 : static_cast<double>(previous);
    return hd_add(sum, hd_mul(static_cast<double>(dout), hd_sub(before, static_cast<double>(h))));
}

// dg = σ(1 − σ)·Σ with σ in double, rounded once to f32.
PGOLF_HOST_DEVICE float smear_gate_gradient(float g, double total) {
    const double sigma = smear_sigmoid(static_cast<double>(g));
    return static_cast<float>(hd_mul(hd_mul(sigma, hd_sub(1.0, sigma)), total));
}

}  // namespace pgolf
