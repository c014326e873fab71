// Per-element and per-row arithmetic of the softcapped cross-entropy kernels (core/cuda/loss.cu): the softcap, the
// online-softmax state (running max and the sum rescaled to it) with its merge, the nll and the logit gradient.
#pragma once

#include <math.h>

#include <cstdint>

#include "core/cuda/host_device.h"

namespace pgolf {

// Σ exp(z − max) over the elements seen so far; an empty state has max −inf and sum 0.
struct SoftmaxState {
    float max;
    float sum;
};

PGOLF_HOST_DEVICE SoftmaxState softmax_state_empty() { return SoftmaxState{-INFINITY, 0.0f}; }

// cap·tanh(logit/cap), or the logit itself when cap ≤ 0.
PGOLF_HOST_DEVICE float softcap_logit(float logit, float cap) { return cap > 0.0f ? cap * tanhf(logit / cap) : logit; }

// Adds one softcapped logit. A new maximum rescales the sum once, so exp() never sees a positive argument; a NaN
// logit poisons the sum (as it does the reference's).
PGOLF_HOST_DEVICE SoftmaxState softmax_state_add(SoftmaxState state, float z) {
    if (z > state.max) return SoftmaxState{z, state.sum * expf(state.max - z) + 1.0f};
    if (z == -INFINITY) return state;  // contributes exp(−inf) = 0; avoids −inf − (−inf)
    return SoftmaxState{state.max, state.sum + expf(z - state.max)};
}

// The state of the union of two disjoint sets of logits. Not bitwise symmetric in its arguments (the device may fuse
// a multiply-add), so the kernel always passes the lower lane's state first.
PGOLF_HOST_DEVICE SoftmaxState softmax_state_merge(SoftmaxState first, SoftmaxState second) {
    if (first.max == -INFINITY) return second;
    if (second.max == -INFINITY) return first;
    const float max = first.max > second.max ? first.max : second.max;
    return SoftmaxState{max, first.sum * expf(first.max - max) + second.sum * expf(second.max - max)};
}

// nll = logsumexp(z) − z_target, as (max − z_target) + log(sum): the difference of two nearby logits is exact, so
// large uncapped logits (1e4, where one f32 ulp is 1e-3) do not cost the nll its precision.
PGOLF_HOST_DEVICE float softmax_nll(SoftmaxState state, float target_z) {
    return (state.max - target_z) + logf(state.sum);
}

// dnll/dlogit_j · scale = scale·(softmax_j − [j = target])·(1 − tanh²(logit/cap)), the chain factor being 1 without a
// cap; inverse_sum = 1/state.sum. Same association as the reference: scale·(dz·chain).
PGOLF_HOST_DEVICE float softcap_logit_gradient(float logit, float cap, SoftmaxState state, float inverse_sum,
                                               bool is_target, float scale) {
    float z = logit;
    float chain = 1.0f;
    if (cap > 0.0f) {
        const float t = tanhf(logit / cap);
        z = cap * t;
        chain = 1.0f - t * t;
    }
    const float dz = expf(z - state.max) * inverse_sum - (is_target ? 1.0f : 0.0f);
    return scale * (dz * chain);
}

// Threads per row block: about 8 logits per thread (one 16-byte vector of bf16, two of f32), a multiple of 32 within
// [32, 1024], so V = 1024 gets 128 threads and V = 8192 gets 1024.
inline int cross_entropy_block_threads(std::int64_t vocab) {
    const std::int64_t wanted = (vocab + 7) / 8;
    const std::int64_t rounded = (wanted + 31) / 32 * 32;
    return static_cast<int>(rounded < 32 ? 32 : (rounded > 1024 ? 1024 : rounded));
}

}  // namespace pgolf
