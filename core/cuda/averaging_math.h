// Per-element arithmetic of SWA and EMA (model/averaging.cpp), one definition for the CPU loops and the CUDA kernels
// (core/cuda/averaging.cu), so the two devices give the same bits.
#pragma once

#include "core/cuda/host_device.h"

namespace pgolf {

// SWA: each snapshot adds the f32 weight to its f64 sum (one add: nothing for the compiler to fuse).
PGOLF_HOST_DEVICE double averaging_accumulate(double sum, float weight) { return sum + static_cast<double>(weight); }
// The mean sum/count in double (a correctly rounded division on both sides), rounded once to f32.
PGOLF_HOST_DEVICE float averaging_mean(double sum, double count) { return static_cast<float>(sum / count); }

// EMA factors as the reference's Python floats give them: d rounded to f32, and 1 − d taken in double, then rounded.
PGOLF_HOST_DEVICE float averaging_ema_decay(double decay) { return static_cast<float>(decay); }
PGOLF_HOST_DEVICE float averaging_ema_weight(double decay) { return static_cast<float>(1.0 - decay); }
// ema ← fl(fl(d·ema) + fl((1 − d)·w)): two rounded products and a rounded sum, never an FMA (torch fuses on CUDA; the
// engine keeps the unfused order on both devices).
PGOLF_HOST_DEVICE float averaging_ema_step(float ema, float weight, float decay, float one_minus_decay) {
    return hd_add(hd_mul(ema, decay), hd_mul(one_minus_decay, weight));
}

}  // namespace pgolf
