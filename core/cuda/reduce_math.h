// Arithmetic of the deterministic two-pass reductions (core/cuda/reduce.cu): each block sums its elements (or their
// squares) in fp32 into one partial, and a single block adds the partials in double in a fixed order.
#pragma once

#include <cstdint>

#include "core/cuda/host_device.h"

namespace pgolf {

inline constexpr int kReduceThreads = 256;
inline constexpr std::int64_t kReduceMaxBlocks = 1024;

// Partials for count elements: one block per 4·kReduceThreads elements (a 16-byte vector of f32 per thread), at most
// kReduceMaxBlocks, so the second pass stays one small block. Depends on count only, which fixes the summation order.
inline std::int64_t reduce_partial_count(std::int64_t count) {
    const std::int64_t per_block = 4 * kReduceThreads;
    const std::int64_t blocks = (count + per_block - 1) / per_block;
    return blocks < 1 ? 1 : (blocks > kReduceMaxBlocks ? kReduceMaxBlocks : blocks);
}

// One element into a thread's fp32 running sum: x, or x² for norms.
PGOLF_HOST_DEVICE float reduce_accumulate(float sum, float x, bool square) { return sum + (square ? x * x : x); }

// One block's fp32 partial into the double total of the second pass.
PGOLF_HOST_DEVICE double reduce_combine_partial(double total, float partial) {
    return total + static_cast<double>(partial);
}

// clip_grad_norm's factor: max_norm/(total + 1e-6), applied only when below 1.
PGOLF_HOST_DEVICE double clip_grad_coefficient(double max_norm, double total_norm) {
    return max_norm / (total_norm + 1e-6);
}

}  // namespace pgolf
