// Shared kernel plumbing: dispatch on the floating dtype, and the deterministic chunked sum behind every reduction.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace pgolf {

// Runs a kernel templated on the scalar type for an f32 or f64 tensor: f(float{}) or f(double{}). Callers check the
// dtype first (tensor_check_floating), so anything that is not f32 is f64 here.
template <typename F>
void dispatch_floating(DType dtype, F&& f) {
    if (dtype == DType::f32) {
        f(float{});
    } else {
        f(double{});
    }
}

// Σ term(i) for i < n in double, over fixed chunks of kReduceChunk added in chunk order: the result does not depend
// on the thread count. Chunks run in parallel from kReduceParallelElements on.
inline constexpr std::int64_t kReduceChunk = 1 << 14;
inline constexpr std::int64_t kReduceParallelElements = 1 << 15;
template <typename F>
double chunked_sum(std::int64_t n, F&& term) {
    const std::int64_t chunks = (n + kReduceChunk - 1) / kReduceChunk;
    std::vector<double> partial(static_cast<std::size_t>(chunks), 0.0);
#pragma omp parallel for schedule(static) if (n >= kReduceParallelElements)
    for (std::int64_t chunk = 0; chunk < chunks; ++chunk) {
        const std::int64_t end = std::min(n, (chunk + 1) * kReduceChunk);
        double sum = 0.0;
        for (std::int64_t i = chunk * kReduceChunk; i < end; ++i) sum += term(i);
        partial[static_cast<std::size_t>(chunk)] = sum;
    }
    double total = 0.0;
    for (const double value : partial) total += value;
    return total;
}

}  // namespace pgolf
