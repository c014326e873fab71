// Softcapped cross-entropy kernels: one block per row, an online softmax (running max and rescaled sum in fp32) over
// the row, then the nll and/or a second pass writing the logit gradient. Per-element math: core/cuda/loss_math.h.
#include <string>

#include "core/cuda/device_math.cuh"
#include "core/cuda/loss.h"
#include "core/cuda/loss_math.h"
#include "core/cuda/op_checks.h"

namespace pgolf {

namespace {

// Butterfly merge over the warp. The lane whose offset bit is clear passes its own state first, so both partners
// evaluate the same expression and agree bit for bit.
__device__ __forceinline__ SoftmaxState cross_entropy_warp_merge(SoftmaxState state) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        const SoftmaxState other{__shfl_xor_sync(0xFFFFFFFFu, state.max, offset),
                                 __shfl_xor_sync(0xFFFFFFFFu, state.sum, offset)};
        state = (lane & offset) == 0 ? softmax_state_merge(state, other) : softmax_state_merge(other, state);
    }
    return state;
}

// The row's state, the same in every thread (blockDim.x a multiple of 32).
__device__ SoftmaxState cross_entropy_block_merge(SoftmaxState state) {
    __shared__ SoftmaxState warp_states[32];
    __shared__ SoftmaxState row_state;
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    state = cross_entropy_warp_merge(state);
    if (lane == 0) warp_states[warp] = state;
    __syncthreads();
    if (warp == 0) {
        const int warps = static_cast<int>(blockDim.x >> 5);
        state = cross_entropy_warp_merge(lane < warps ? warp_states[lane] : softmax_state_empty());
        if (lane == 0) row_state = state;
    }
    __syncthreads();
    return row_state;
}

// logits: (N, V); targets: (N,). nll (N,) is written when not null; dlogits (N, V) when not null, scaled per row by
// dnll[row] when dnll is not null, otherwise by grad_scale. Vectorized: V is a whole number of 16-byte vectors and the
// pointers are aligned, so every row starts on a vector boundary.
template <typename T, typename G, bool Vectorized>
__global__ void cross_entropy_rows_kernel(const T* logits, const std::int64_t* targets, std::int64_t vocab, float cap,
                                          const G* dnll, float grad_scale, float* nll, T* dlogits) {
    constexpr int kWidth = cuda_vector_width<T>();
    const std::int64_t row = blockIdx.x;
    const T* row_logits = logits + row * vocab;

    SoftmaxState state = softmax_state_empty();
    if constexpr (Vectorized) {
        for (std::int64_t v = threadIdx.x; v < vocab / kWidth; v += blockDim.x) {
            float values[kWidth];
            cuda_load_vector(row_logits, v * kWidth, values);
#pragma unroll
            for (int k = 0; k < kWidth; ++k) state = softmax_state_add(state, softcap_logit(values[k], cap));
        }
    } else {
        for (std::int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
            state = softmax_state_add(state, softcap_logit(cuda_load(row_logits, j), cap));
        }
    }
    state = cross_entropy_block_merge(state);

    const std::int64_t target = targets[row];
    const bool valid = target >= 0 && target < vocab;
    if (nll != nullptr && threadIdx.x == 0) {
        nll[row] = valid ? softmax_nll(state, softcap_logit(cuda_load(row_logits, target), cap)) : NAN;
    }
    if (dlogits == nullptr) return;

    float scale = dnll != nullptr ? cuda_load(dnll, row) : grad_scale;
    if (!valid) scale = NAN;
    const float inverse_sum = 1.0f / state.sum;
    T* row_grad = dlogits + row * vocab;
    if constexpr (Vectorized) {
        for (std::int64_t v = threadIdx.x; v < vocab / kWidth; v += blockDim.x) {
            float values[kWidth];
            cuda_load_vector(row_logits, v * kWidth, values);
#pragma unroll
            for (int k = 0; k < kWidth; ++k) {
                values[k] = softcap_logit_gradient(values[k], cap, state, inverse_sum, v * kWidth + k == target, scale);
            }
            cuda_store_vector(row_grad, v * kWidth, values);
        }
    } else {
        for (std::int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
            cuda_store(row_grad, j,
                       softcap_logit_gradient(cuda_load(row_logits, j), cap, state, inverse_sum, j == target, scale));
        }
    }
}

void cross_entropy_check(const Tensor& logits, const Tensor& targets, const char* op) {
    cuda_check_float_input(logits, op, "logits");
    if (logits.dim() != 2 || logits.size(1) == 0) {
        throw Error(std::string(op) + ": logits has shape " + shape_string(logits.shape()) +
                    ", expected (N, V) with V > 0");
    }
    cuda_check_input(targets, DType::i64, op, "targets");
    tensor_check_shape(targets, {logits.size(0)}, op, "targets");
}

// Launches the row kernel for every row; dnll (when defined) picks its own storage type.
void cross_entropy_launch(const Tensor& logits, const Tensor& targets, double cap, const Tensor* dnll,
                          double grad_scale, Tensor* nll, Tensor* dlogits, const char* op) {
    const std::int64_t rows = logits.size(0);
    const std::int64_t vocab = logits.size(1);
    if (rows == 0) return;
    const int threads = cross_entropy_block_threads(vocab);
    const auto cap_value = static_cast<float>(cap);
    const auto scale_value = static_cast<float>(grad_scale);
    const DType dnll_dtype = dnll != nullptr ? dnll->dtype() : DType::f32;
    cuda_dispatch_float(logits.dtype(), op, [&](auto logits_tag) {
        using T = decltype(logits_tag);
        cuda_dispatch_float(dnll_dtype, op, [&](auto dnll_tag) {
            using G = decltype(dnll_tag);
            const T* logits_data = cuda_pointer<T>(logits);
            float* nll_data = nll != nullptr ? cuda_pointer<float>(*nll) : nullptr;
            T* dlogits_data = dlogits != nullptr ? cuda_pointer<T>(*dlogits) : nullptr;
            const G* dnll_data = dnll != nullptr ? cuda_pointer<G>(*dnll) : nullptr;
            const std::int64_t* target_data = static_cast<const std::int64_t*>(targets.raw_data());
            const bool vectorized = cuda_can_vectorize<T>(vocab, {logits_data, dlogits_data});
            const auto kernel =
                vectorized ? cross_entropy_rows_kernel<T, G, true> : cross_entropy_rows_kernel<T, G, false>;
            kernel<<<static_cast<unsigned int>(rows), threads, 0, cuda_stream()>>>(
                logits_data, target_data, vocab, cap_value, dnll_data, scale_value, nll_data, dlogits_data);
            PGOLF_CUDA_CHECK_LAUNCH();
        });
    });
}

}  // namespace

Tensor cuda_softcap_cross_entropy_forward(const Tensor& logits, const Tensor& targets, double cap) {
    const char* op = "cuda_softcap_cross_entropy_forward";
    cross_entropy_check(logits, targets, op);
    Tensor nll = Tensor::empty({logits.size(0)}, DType::f32, Device::cuda);
    cross_entropy_launch(logits, targets, cap, nullptr, 1.0, &nll, nullptr, op);
    return nll;
}

Tensor cuda_softcap_cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& dnll,
                                           double cap) {
    const char* op = "cuda_softcap_cross_entropy_backward";
    cross_entropy_check(logits, targets, op);
    cuda_check_float_input(dnll, op, "dnll");
    tensor_check_shape(dnll, {logits.size(0)}, op, "dnll");
    Tensor dlogits = Tensor::empty(logits.shape(), logits.dtype(), Device::cuda);
    cross_entropy_launch(logits, targets, cap, &dnll, 1.0, nullptr, &dlogits, op);
    return dlogits;
}

CudaCrossEntropyFused cuda_softcap_cross_entropy_fused(const Tensor& logits, const Tensor& targets, double cap,
                                                       double grad_scale) {
    const char* op = "cuda_softcap_cross_entropy_fused";
    cross_entropy_check(logits, targets, op);
    CudaCrossEntropyFused result;
    result.nll = Tensor::empty({logits.size(0)}, DType::f32, Device::cuda);
    result.dlogits = Tensor::empty(logits.shape(), logits.dtype(), Device::cuda);
    cross_entropy_launch(logits, targets, cap, nullptr, grad_scale, &result.nll, &result.dlogits, op);
    return result;
}

}  // namespace pgolf
