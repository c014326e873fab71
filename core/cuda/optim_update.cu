// Fused Adam/AdamW and SGD updates: one grid-stride pass over the parameter reads the gradient and the state and
// writes the parameter and the state back, with the per-step scalars computed on the host (core/cuda/optim_math.h).
#include <string>

#include "core/cuda/device_math.cuh"
#include "core/cuda/op_checks.h"
#include "core/cuda/optim_update.h"

namespace pgolf {

namespace {

constexpr int kOptimThreads = 256;

// param, grad, exp_avg, exp_avg_sq: (count,) f32. Vectorized: count is a multiple of 4 and every pointer 16-byte
// aligned, so each thread moves float4s.
template <bool Vectorized>
__global__ void adam_update_kernel(float* param, const float* grad, float* exp_avg, float* exp_avg_sq,
                                   std::int64_t count, AdamStepConstants constants) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    const std::int64_t first = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
    if constexpr (Vectorized) {
        for (std::int64_t v = first; v < count / 4; v += stride) {
            float4 w = reinterpret_cast<float4*>(param)[v];
            const float4 g = reinterpret_cast<const float4*>(grad)[v];
            float4 m = reinterpret_cast<float4*>(exp_avg)[v];
            float4 s = reinterpret_cast<float4*>(exp_avg_sq)[v];
            adam_update_element(w.x, g.x, m.x, s.x, constants);
            adam_update_element(w.y, g.y, m.y, s.y, constants);
            adam_update_element(w.z, g.z, m.z, s.z, constants);
            adam_update_element(w.w, g.w, m.w, s.w, constants);
            reinterpret_cast<float4*>(param)[v] = w;
            reinterpret_cast<float4*>(exp_avg)[v] = m;
            reinterpret_cast<float4*>(exp_avg_sq)[v] = s;
        }
    } else {
        for (std::int64_t i = first; i < count; i += stride) {
            adam_update_element(param[i], grad[i], exp_avg[i], exp_avg_sq[i], constants);
        }
    }
}

// param, grad, buffer: (count,) f32; buffer is null without momentum.
template <bool Vectorized>
__global__ void sgd_update_kernel(float* param, const float* grad, float* buffer, std::int64_t count,
                                  SgdStepConstants constants, bool first_step) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    const std::int64_t first = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
    if constexpr (Vectorized) {
        for (std::int64_t v = first; v < count / 4; v += stride) {
            float4 w = reinterpret_cast<float4*>(param)[v];
            const float4 g = reinterpret_cast<const float4*>(grad)[v];
            float4 b = buffer != nullptr ? reinterpret_cast<float4*>(buffer)[v] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            sgd_update_element(w.x, g.x, b.x, first_step, constants);
            sgd_update_element(w.y, g.y, b.y, first_step, constants);
            sgd_update_element(w.z, g.z, b.z, first_step, constants);
            sgd_update_element(w.w, g.w, b.w, first_step, constants);
            reinterpret_cast<float4*>(param)[v] = w;
            if (buffer != nullptr) reinterpret_cast<float4*>(buffer)[v] = b;
        }
    } else {
        for (std::int64_t i = first; i < count; i += stride) {
            float unused = 0.0f;
            sgd_update_element(param[i], grad[i], buffer != nullptr ? buffer[i] : unused, first_step, constants);
        }
    }
}

void optim_check_state(const Tensor& tensor, const Tensor& param, const char* op, const char* name) {
    cuda_check_input(tensor, DType::f32, op, name);
    tensor_check_shape(tensor, param.shape(), op, name);
}

bool optim_aligned(std::int64_t count, std::initializer_list<const void*> pointers) {
    if (count % 4 != 0) return false;
    for (const void* pointer : pointers) {
        if (reinterpret_cast<std::uintptr_t>(pointer) % 16 != 0) return false;
    }
    return true;
}

}  // namespace

void cuda_adam_update(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, std::int64_t step,
                      const AdamUpdateOptions& options) {
    const char* op = "cuda_adam_update";
    cuda_check_input(param, DType::f32, op, "param");
    optim_check_state(grad, param, op, "grad");
    optim_check_state(exp_avg, param, op, "exp_avg");
    optim_check_state(exp_avg_sq, param, op, "exp_avg_sq");
    if (step < 1) throw Error(std::string(op) + ": step must be at least 1, got " + std::to_string(step));
    const std::int64_t count = param.numel();
    if (count == 0) return;
    const AdamStepConstants constants = adam_step_constants(options, step);
    float* w = cuda_pointer<float>(param);
    const float* g = cuda_pointer<float>(grad);
    float* m = cuda_pointer<float>(exp_avg);
    float* s = cuda_pointer<float>(exp_avg_sq);
    const bool vectorized = optim_aligned(count, {w, g, m, s});
    const auto kernel = vectorized ? adam_update_kernel<true> : adam_update_kernel<false>;
    kernel<<<cuda_grid_size(vectorized ? count / 4 : count, kOptimThreads), kOptimThreads, 0, cuda_stream()>>>(
        w, g, m, s, count, constants);
    PGOLF_CUDA_CHECK_LAUNCH();
}

void cuda_sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buffer, const SgdUpdateOptions& options,
                     bool first_step) {
    const char* op = "cuda_sgd_update";
    cuda_check_input(param, DType::f32, op, "param");
    optim_check_state(grad, param, op, "grad");
    const SgdStepConstants constants = sgd_step_constants(options);
    if (constants.has_momentum) optim_check_state(momentum_buffer, param, op, "momentum_buffer");
    const std::int64_t count = param.numel();
    if (count == 0) return;
    float* w = cuda_pointer<float>(param);
    const float* g = cuda_pointer<float>(grad);
    float* b = constants.has_momentum ? cuda_pointer<float>(momentum_buffer) : nullptr;
    const bool vectorized = optim_aligned(count, {w, g, b});
    const auto kernel = vectorized ? sgd_update_kernel<true> : sgd_update_kernel<false>;
    kernel<<<cuda_grid_size(vectorized ? count / 4 : count, kOptimThreads), kOptimThreads, 0, cuda_stream()>>>(
        w, g, b, count, constants, first_step);
    PGOLF_CUDA_CHECK_LAUNCH();
}

}  // namespace pgolf
