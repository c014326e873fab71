// The fused CUDA optimizer updates against the CPU optimizers of model/optim.h: the host-device element updates
// (core/cuda/optim_math.h) replayed on the CPU reproduce Adam, AdamW and SGD bit for bit (runs everywhere), and the
// CUDA kernels on device tensors do the same over several steps (skips without a GPU), as does the CUDA gradient
// clip against optim_clip_grad_norm. Then the optimizers themselves on cuda parameters (Muon with batched
// Newton–Schulz, Adam, SGD, the clip) against the same optimizers on CPU copies; Muon's host replay is
// tests/model/muon_math_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/cuda/optim_math.h"
#ifdef PGOLF_WITH_CUDA
#include "core/cuda/gemm.h"
#include "core/cuda/muon.h"
#include "core/cuda/optim_update.h"
#include "core/cuda/reduce.h"
#endif
#include "core/device.h"
#include "core/error.h"
#include "model/optim.h"
#include "tests/model/muon_test_configs.h"

namespace pgolf {
namespace {

constexpr int kSteps = 6;

std::vector<float> random_floats(std::int64_t count, double scale, std::uint64_t seed) {
    std::mt19937_64 generator(seed);
    std::uniform_real_distribution<double> uniform(-scale, scale);
    std::vector<float> values(static_cast<std::size_t>(count));
    for (float& value : values) value = static_cast<float>(uniform(generator));
    return values;
}

std::vector<float> host_floats(const Tensor& tensor) {
    const Tensor host = tensor.device() == Device::cpu ? tensor : tensor.to_device(Device::cpu);
    const float* data = host.data<float>();
    return std::vector<float>(data, data + host.numel());
}

// Number of elements whose bits differ (0 is the claim: the replay and the kernels do the optimizer's float
// operations in its order, each correctly rounded and none fused).
std::int64_t bit_mismatches(const std::vector<float>& got, const std::vector<float>& expected) {
    if (got.size() != expected.size()) return -1;
    std::int64_t mismatches = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        if (std::memcmp(&got[i], &expected[i], sizeof(float)) != 0) ++mismatches;
    }
    return mismatches;
}

const Tensor& state_entry(const NamedTensors& state, const std::string& name) {
    for (const auto& [key, tensor] : state) {
        if (key == name) return tensor;
    }
    static const Tensor missing;
    ADD_FAILURE() << "no state entry " << name;
    return missing;
}

struct AdamConfig {
    const char* name;
    AdamOptions options;
};

std::vector<AdamConfig> adam_configs() {
    std::vector<AdamConfig> configs;
    configs.push_back({"adam", AdamOptions{}});
    configs.push_back({"adam_coupled_decay", AdamOptions{1e-2, 0.9, 0.999, 1e-8, 0.1, false}});
    configs.push_back({"adamw", AdamOptions{1e-2, 0.9, 0.95, 1e-8, 0.1, true}});
    configs.push_back({"adamw_no_decay", AdamOptions{1e-2, 0.8, 0.99, 1e-6, 0.0, true}});
    configs.push_back({"adam_large_eps", AdamOptions{3e-3, 0.5, 0.9, 1e-3, 0.0, false}});
    return configs;
}

struct SgdConfig {
    const char* name;
    SgdOptions options;
};

std::vector<SgdConfig> sgd_configs() {
    std::vector<SgdConfig> configs;
    configs.push_back({"plain", SgdOptions{0.1, 0.0, 0.0, 0.0, false}});
    configs.push_back({"weight_decay", SgdOptions{0.1, 0.0, 0.0, 0.01, false}});
    configs.push_back({"momentum", SgdOptions{0.1, 0.9, 0.0, 0.0, false}});
    configs.push_back({"momentum_dampening", SgdOptions{0.1, 0.9, 0.1, 0.0, false}});
    configs.push_back({"nesterov", SgdOptions{0.05, 0.9, 0.0, 0.0, true}});
    configs.push_back({"nesterov_weight_decay", SgdOptions{0.05, 0.95, 0.0, 5e-4, true}});
    configs.push_back({"momentum_dampening_decay", SgdOptions{0.2, 0.5, 0.5, 0.01, false}});
    return configs;
}

// The learning rate the test schedules for a step (the trainer changes it every step).
double scheduled_lr(double base, int step) { return base * (1.0 - 0.1 * step); }

// --- host replay (runs everywhere) -------------------------------------------------------------------------------

TEST(OptimCudaMath, AdamElementUpdateReproducesAdamBitForBit) {
    const std::int64_t count = 1027;
    for (const AdamConfig& config : adam_configs()) {
        Tensor value = Tensor::from_floats(random_floats(count, 1.0, 11), {count});
        Tensor grad = Tensor::zeros({count});
        Adam adam;
        adam.add_group({{"p", value, grad}}, config.options);
        std::vector<float> w = host_floats(value);
        std::vector<float> exp_avg(static_cast<std::size_t>(count), 0.0f);
        std::vector<float> exp_avg_sq(static_cast<std::size_t>(count), 0.0f);
        for (int step = 1; step <= kSteps; ++step) {
            const std::vector<float> g = random_floats(count, 0.5, 100 + static_cast<std::uint64_t>(step));
            std::memcpy(grad.data<float>(), g.data(), g.size() * sizeof(float));
            adam.set_lr(0, scheduled_lr(config.options.lr, step));
            adam.step();
            AdamUpdateOptions options = optim_adam_update_options(config.options);
            options.lr = scheduled_lr(config.options.lr, step);
            const AdamStepConstants constants = adam_step_constants(options, step);
            for (std::size_t i = 0; i < w.size(); ++i)
                adam_update_element(w[i], g[i], exp_avg[i], exp_avg_sq[i], constants);
            const NamedTensors state = adam.state_tensors();
            const std::string what = std::string(config.name) + " step " + std::to_string(step);
            EXPECT_EQ(bit_mismatches(w, host_floats(value)), 0) << what << " param";
            EXPECT_EQ(bit_mismatches(exp_avg, host_floats(state_entry(state, "p.exp_avg"))), 0) << what << " exp_avg";
            EXPECT_EQ(bit_mismatches(exp_avg_sq, host_floats(state_entry(state, "p.exp_avg_sq"))), 0)
                << what << " exp_avg_sq";
        }
    }
}

TEST(OptimCudaMath, SgdElementUpdateReproducesSgdBitForBit) {
    const std::int64_t count = 1027;
    for (const SgdConfig& config : sgd_configs()) {
        Tensor value = Tensor::from_floats(random_floats(count, 1.0, 21), {count});
        Tensor grad = Tensor::zeros({count});
        Sgd sgd;
        sgd.add_group({{"p", value, grad}}, config.options);
        std::vector<float> w = host_floats(value);
        std::vector<float> buffer(static_cast<std::size_t>(count), 0.0f);
        for (int step = 1; step <= kSteps; ++step) {
            const std::vector<float> g = random_floats(count, 0.5, 200 + static_cast<std::uint64_t>(step));
            std::memcpy(grad.data<float>(), g.data(), g.size() * sizeof(float));
            sgd.set_lr(0, scheduled_lr(config.options.lr, step));
            sgd.step();
            SgdUpdateOptions options = optim_sgd_update_options(config.options);
            options.lr = scheduled_lr(config.options.lr, step);
            const SgdStepConstants constants = sgd_step_constants(options);
            for (std::size_t i = 0; i < w.size(); ++i) sgd_update_element(w[i], g[i], buffer[i], step == 1, constants);
            const std::string what = std::string(config.name) + " step " + std::to_string(step);
            EXPECT_EQ(bit_mismatches(w, host_floats(value)), 0) << what << " param";
            if (config.options.momentum != 0.0) {
                const NamedTensors state = sgd.state_tensors();
                EXPECT_EQ(bit_mismatches(buffer, host_floats(state_entry(state, "p.momentum_buffer"))), 0)
                    << what << " momentum_buffer";
            }
        }
    }
}

// --- CUDA kernels (skip without a GPU; not compiled without the CUDA backend) ------------------------------------
#ifdef PGOLF_WITH_CUDA

class OptimCuda : public ::testing::Test {
protected:
    void SetUp() override {
        const std::string reason = device_unavailable_reason(Device::cuda);
        if (!reason.empty()) GTEST_SKIP() << reason;
    }
};

// Shapes for the float4 path (a multiple of 4) and the scalar path.
const std::vector<Shape> kDeviceShapes = {{64, 48}, {1027}};

TEST_F(OptimCuda, AdamUpdateMatchesAdamBitForBit) {
    for (const Shape& shape : kDeviceShapes) {
        for (const AdamConfig& config : adam_configs()) {
            const std::int64_t count = shape_numel(shape);
            Tensor value = Tensor::from_floats(random_floats(count, 1.0, 31), shape);
            Tensor grad = Tensor::zeros(shape);
            Adam adam;
            adam.add_group({{"p", value, grad}}, config.options);
            Tensor device_value = value.to_device(Device::cuda);
            Tensor device_grad = Tensor::zeros(shape, DType::f32, Device::cuda);
            Tensor device_exp_avg = Tensor::zeros(shape, DType::f32, Device::cuda);
            Tensor device_exp_avg_sq = Tensor::zeros(shape, DType::f32, Device::cuda);
            for (int step = 1; step <= kSteps; ++step) {
                const std::vector<float> g = random_floats(count, 0.5, 300 + static_cast<std::uint64_t>(step));
                std::memcpy(grad.data<float>(), g.data(), g.size() * sizeof(float));
                device_grad.copy_from(grad);
                adam.set_lr(0, scheduled_lr(config.options.lr, step));
                adam.step();
                AdamUpdateOptions options = optim_adam_update_options(config.options);
                options.lr = scheduled_lr(config.options.lr, step);
                cuda_adam_update(device_value, device_grad, device_exp_avg, device_exp_avg_sq, step, options);
                const NamedTensors state = adam.state_tensors();
                const std::string what =
                    std::string(config.name) + " " + shape_string(shape) + " step " + std::to_string(step);
                EXPECT_EQ(bit_mismatches(host_floats(device_value), host_floats(value)), 0) << what << " param";
                EXPECT_EQ(bit_mismatches(host_floats(device_exp_avg), host_floats(state_entry(state, "p.exp_avg"))), 0)
                    << what << " exp_avg";
                EXPECT_EQ(
                    bit_mismatches(host_floats(device_exp_avg_sq), host_floats(state_entry(state, "p.exp_avg_sq"))), 0)
                    << what << " exp_avg_sq";
            }
        }
    }
}

TEST_F(OptimCuda, SgdUpdateMatchesSgdBitForBit) {
    for (const Shape& shape : kDeviceShapes) {
        for (const SgdConfig& config : sgd_configs()) {
            const std::int64_t count = shape_numel(shape);
            Tensor value = Tensor::from_floats(random_floats(count, 1.0, 41), shape);
            Tensor grad = Tensor::zeros(shape);
            Sgd sgd;
            sgd.add_group({{"p", value, grad}}, config.options);
            Tensor device_value = value.to_device(Device::cuda);
            Tensor device_grad = Tensor::zeros(shape, DType::f32, Device::cuda);
            // Never read before the first step writes it.
            Tensor device_buffer =
                config.options.momentum != 0.0 ? Tensor::empty(shape, DType::f32, Device::cuda) : Tensor();
            for (int step = 1; step <= kSteps; ++step) {
                const std::vector<float> g = random_floats(count, 0.5, 400 + static_cast<std::uint64_t>(step));
                std::memcpy(grad.data<float>(), g.data(), g.size() * sizeof(float));
                device_grad.copy_from(grad);
                sgd.set_lr(0, scheduled_lr(config.options.lr, step));
                sgd.step();
                SgdUpdateOptions options = optim_sgd_update_options(config.options);
                options.lr = scheduled_lr(config.options.lr, step);
                cuda_sgd_update(device_value, device_grad, device_buffer, options, step == 1);
                const std::string what =
                    std::string(config.name) + " " + shape_string(shape) + " step " + std::to_string(step);
                EXPECT_EQ(bit_mismatches(host_floats(device_value), host_floats(value)), 0) << what << " param";
                if (config.options.momentum != 0.0) {
                    const NamedTensors state = sgd.state_tensors();
                    EXPECT_EQ(bit_mismatches(host_floats(device_buffer),
                                             host_floats(state_entry(state, "p.momentum_buffer"))),
                              0)
                        << what << " momentum_buffer";
                }
            }
        }
    }
}

// The norm differs from the CPU's only by the fp32 partial sums (a few 1e-8 relative); the clip factor is rounded to
// f32 from a total that may differ in its last bits: one ulp of the factor moves a product by at most two ulps.
TEST_F(OptimCuda, ClipGradNormMatchesOptimClipGradNorm) {
    for (const double max_norm : {1.0, 1e6}) {
        std::vector<Tensor> host_grads = {Tensor::from_floats(random_floats(512 * 1536, 0.01, 51), {512, 1536}),
                                          Tensor::from_floats(random_floats(1027, 2.0, 53), {1027}), Tensor()};
        std::vector<Tensor> device_grads;
        for (const Tensor& grad : host_grads)
            device_grads.push_back(grad.defined() ? grad.to_device(Device::cuda) : Tensor());
        const double expected = optim_clip_grad_norm(host_grads, max_norm);
        const double got = cuda_clip_grad_norm(device_grads, max_norm);
        EXPECT_NEAR(got, expected, 1e-6 * expected) << "max_norm " << max_norm;
        for (std::size_t t = 0; t < 2; ++t) {
            const std::vector<float> a = host_floats(device_grads[t]);
            const std::vector<float> b = host_floats(host_grads[t]);
            double worst = 0.0;
            for (std::size_t i = 0; i < a.size(); ++i) {
                worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]) /
                                            std::max(1e-30, std::abs(static_cast<double>(b[i]))));
            }
            EXPECT_LE(worst, 2.5e-7) << "max_norm " << max_norm << " grad " << t;
            if (max_norm > expected) {
                EXPECT_EQ(bit_mismatches(a, b), 0) << "unclipped grad " << t;
            }
        }
    }
}

// --- the optimizers on cuda parameters (skip without a GPU) -------------------------------------------------------

// Newton–Schulz against the CPU: the largest |difference| relative to the largest |element| of the CPU result, and
// the Frobenius norm of the difference relative to the result's. cuBLAS sums each GEMM in its own order, which moves
// an occasional bf16 rounding (bf16) or the last fp32 bits (f32), and the iterations carry that on. These are
// tests/model/muon_math_test.cpp's bounds for another accumulation order, which hold on the host with margin 3-10
// (measured there at the seeds' shapes: bf16 max 0.072 and Frobenius 0.013, f32 max 9e-6 and Frobenius 3.8e-6).
struct NewtonSchulzBound {
    double max_relative;
    double frobenius_relative;
};

NewtonSchulzBound newton_schulz_bound(MuonPrecision precision) {
    return precision == MuonPrecision::bf16 ? NewtonSchulzBound{0.25, 0.05} : NewtonSchulzBound{1e-4, 4e-5};
}

double frobenius_difference(const std::vector<float>& a, const std::vector<float>& b) {
    double squares = 0.0;
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
        const double difference = static_cast<double>(a[i]) - static_cast<double>(b[i]);
        squares += difference * difference;
    }
    return std::sqrt(squares);
}

double frobenius_norm(const std::vector<float>& values) {
    return frobenius_difference(values, std::vector<float>(values.size(), 0.0f));
}

double max_magnitude(const std::vector<float>& values) {
    double largest = 0.0;
    for (const float value : values) largest = std::max(largest, std::abs(static_cast<double>(value)));
    return largest;
}

double max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
    double worst = 0.0;
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
        worst = std::max(worst, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
    }
    return worst;
}

std::string error_of(const std::function<void()>& body) {
    try {
        body();
    } catch (const Error& error) {
        return error.what();
    }
    return "(no error)";
}

TEST_F(OptimCuda, NewtonSchulzBatchedMatchesOptimNewtonSchulz) {
    struct Case {
        std::int64_t batch, rows, cols;
    };
    // Wide, tall, square, a matrix size off the vector path, the seeds' MLP and attention shapes.
    const std::vector<Case> cases = {{3, 24, 40},  {3, 40, 24},  {2, 32, 32},    {2, 13, 7},
                                     {2, 96, 384}, {2, 384, 96}, {1, 512, 2048}, {2, 512, 512}};
    for (const Case& shape : cases) {
        for (const MuonPrecision precision : {MuonPrecision::bf16, MuonPrecision::f32}) {
            for (const int steps : {0, 5}) {
                const std::int64_t matrix_size = shape.rows * shape.cols;
                const std::vector<float> input = random_floats(shape.batch * matrix_size, 0.3, 61);
                Tensor x = Tensor::from_floats(input, {shape.batch, shape.rows, shape.cols}).to_device(Device::cuda);
                cuda_newton_schulz_batched(
                    x, steps, precision == MuonPrecision::bf16 ? CudaMuonPrecision::bf16 : CudaMuonPrecision::f32);
                const std::vector<float> got = host_floats(x);
                const std::string what = "(" + std::to_string(shape.batch) + ", " + std::to_string(shape.rows) + ", " +
                                         std::to_string(shape.cols) + ") " +
                                         (precision == MuonPrecision::bf16 ? "bf16" : "f32") + " steps " +
                                         std::to_string(steps);
                for (std::int64_t i = 0; i < shape.batch; ++i) {
                    const auto first = input.begin() + i * matrix_size;
                    const Tensor matrix =
                        Tensor::from_floats(std::vector<float>(first, first + matrix_size), {shape.rows, shape.cols});
                    const std::vector<float> expected = host_floats(optim_newton_schulz(matrix, steps, precision));
                    const std::vector<float> slice(got.begin() + i * matrix_size, got.begin() + (i + 1) * matrix_size);
                    if (steps == 0) {
                        // Only element math and the norm: bitwise.
                        EXPECT_EQ(bit_mismatches(slice, expected), 0) << what << " matrix " << i;
                    } else {
                        const NewtonSchulzBound bound = newton_schulz_bound(precision);
                        EXPECT_LE(max_abs_difference(slice, expected), bound.max_relative * max_magnitude(expected))
                            << what << " matrix " << i;
                        EXPECT_LE(frobenius_difference(slice, expected),
                                  bound.frobenius_relative * frobenius_norm(expected))
                            << what << " matrix " << i;
                    }
                }
                if (precision == MuonPrecision::bf16) {
                    std::int64_t not_bf16 = 0;
                    for (const float value : got) not_bf16 += bf16_round(value) != value ? 1 : 0;
                    EXPECT_EQ(not_bf16, 0) << what << ": bf16 mode gives bf16 values";
                }
            }
        }
    }
}

// The trainer keeps bf16 matmul precision (autocast) set while the optimizers step: f32 Newton–Schulz must still run
// exact fp32 GEMMs, so its result does not depend on the calling thread's precision.
TEST_F(OptimCuda, NewtonSchulzF32IgnoresTheThreadsMatmulPrecision) {
    const std::vector<float> input = random_floats(2 * 96 * 384, 0.3, 67);
    const Tensor host = Tensor::from_floats(input, {2, 96, 384});
    Tensor exact = host.to_device(Device::cuda);
    cuda_newton_schulz_batched(exact, 5, CudaMuonPrecision::f32);
    Tensor under_autocast = host.to_device(Device::cuda);
    {
        const CudaMatmulPrecisionGuard autocast(CudaMatmulPrecision::bf16);
        cuda_newton_schulz_batched(under_autocast, 5, CudaMuonPrecision::f32);
        EXPECT_EQ(cuda_matmul_precision(), CudaMatmulPrecision::bf16) << "the caller's precision is restored";
    }
    EXPECT_EQ(bit_mismatches(host_floats(under_autocast), host_floats(exact)), 0);
}

using CudaMuonConfig = test::MuonConfig;

std::vector<CudaMuonConfig> cuda_muon_configs() {
    std::vector<CudaMuonConfig> configs = test::muon_grid_configs();
    for (const MuonPrecision precision : {MuonPrecision::bf16, MuonPrecision::f32}) {
        MuonOptions options;
        options.backend_steps = 0;  // no GEMM: the whole step is bitwise
        options.precision = precision;
        options.weight_decay = 0.1;
        options.bf16_state = precision == MuonPrecision::bf16;
        configs.push_back({std::string(precision == MuonPrecision::bf16 ? "bf16" : "f32") + " no iterations", options});
    }
    return configs;
}

// Same-shape matrices and a bank of that shape (one batch), a tall, a wide and an odd-sized matrix, and one without a
// gradient on odd steps.
const std::vector<std::pair<std::string, Shape>> kCudaMuonParams = {
    {"a0", {64, 96}},    {"a1", {64, 96}}, {"bank", {3, 64, 96}},  {"tall", {256, 64}},
    {"wide", {32, 128}}, {"odd", {5, 7}},  {"sometimes", {64, 96}}};

TEST_F(OptimCuda, MuonOnCudaParamsMatchesMuonOnTheCpu) {
    constexpr int kMuonSteps = 3;
    for (const CudaMuonConfig& config : cuda_muon_configs()) {
        Muon cpu;
        Muon gpu;
        std::vector<OptimParam> cpu_params;
        std::vector<OptimParam> gpu_params;
        std::uint64_t seed = 700;
        for (const auto& [name, shape] : kCudaMuonParams) {
            const Tensor init = Tensor::from_floats(random_floats(shape_numel(shape), 0.5, seed++), shape);
            cpu_params.push_back({name, init.clone(), Tensor()});
            gpu_params.push_back({name, init.to_device(Device::cuda), Tensor()});
        }
        cpu.add_group(cpu_params, config.options);
        gpu.add_group(gpu_params, config.options);
        for (int step = 0; step < kMuonSteps; ++step) {
            for (Muon* muon : {&cpu, &gpu}) {
                muon->set_lr(0, config.options.lr * (1.0 - 0.2 * step));
                muon->set_momentum(0, 0.85 + 0.04 * step);
            }
            for (std::size_t i = 0; i < kCudaMuonParams.size(); ++i) {
                OptimParam& cpu_param = cpu.group_params(0)[i];
                OptimParam& gpu_param = gpu.group_params(0)[i];
                if (kCudaMuonParams[i].first == "sometimes" && step % 2 == 1) {
                    cpu_param.grad = Tensor();
                    gpu_param.grad = Tensor();
                    continue;
                }
                cpu_param.grad =
                    Tensor::from_floats(random_floats(cpu_param.value.numel(), 0.1, seed++), cpu_param.value.shape());
                gpu_param.grad = cpu_param.grad.to_device(Device::cuda);
            }
            std::vector<std::vector<float>> cpu_before, gpu_before;
            for (std::size_t i = 0; i < kCudaMuonParams.size(); ++i) {
                cpu_before.push_back(host_floats(cpu.group_params(0)[i].value));
                gpu_before.push_back(host_floats(gpu.group_params(0)[i].value));
            }
            cpu.step();
            gpu.step();
            const NamedTensors cpu_state = cpu.state_tensors();
            const NamedTensors gpu_state = gpu.state_tensors();
            for (std::size_t i = 0; i < kCudaMuonParams.size(); ++i) {
                const std::string& name = kCudaMuonParams[i].first;
                const std::string what = config.name + " step " + std::to_string(step) + " " + name;
                // The momentum is element math on the gradients alone: bitwise.
                EXPECT_EQ(bit_mismatches(host_floats(state_entry(gpu_state, name + ".momentum_buffer")),
                                         host_floats(state_entry(cpu_state, name + ".momentum_buffer"))),
                          0)
                    << what << " momentum_buffer";
                const std::vector<float> got = host_floats(gpu.group_params(0)[i].value);
                const std::vector<float> expected = host_floats(cpu.group_params(0)[i].value);
                if (config.options.backend_steps == 0) {
                    EXPECT_EQ(bit_mismatches(got, expected), 0) << what << " value";
                } else {
                    // This step's change of each value (lr times the scaled direction, plus the decay, which differs
                    // only by the values' own tiny difference) within the Newton–Schulz bounds, with a factor 2 for
                    // the bf16 staging of the scaled direction and the decay term.
                    const NewtonSchulzBound bound = newton_schulz_bound(config.options.precision);
                    std::vector<float> cpu_change(expected.size()), gpu_change(got.size());
                    for (std::size_t e = 0; e < expected.size(); ++e) {
                        cpu_change[e] = expected[e] - cpu_before[i][e];
                        gpu_change[e] = got[e] - gpu_before[i][e];
                    }
                    EXPECT_LE(max_abs_difference(gpu_change, cpu_change),
                              2.0 * bound.max_relative * max_magnitude(cpu_change))
                        << what << " change (max)";
                    EXPECT_LE(frobenius_difference(gpu_change, cpu_change),
                              2.0 * bound.frobenius_relative * frobenius_norm(cpu_change))
                        << what << " change (Frobenius)";
                }
            }
        }
        // State lives on the device.
        for (const auto& [name, tensor] : gpu.state_tensors()) {
            if (tensor.numel() > 1) {
                EXPECT_EQ(tensor.device(), Device::cuda) << config.name << " " << name;
            }
        }
    }
}

TEST_F(OptimCuda, AdamAndSgdOnCudaParamsMatchTheCpuBitForBit) {
    const std::vector<Shape> shapes = {{64, 48}, {1027}, {3, 5}};
    for (const AdamConfig& config : adam_configs()) {
        Adam cpu;
        Adam gpu;
        std::vector<OptimParam> cpu_params, gpu_params;
        for (std::size_t i = 0; i < shapes.size(); ++i) {
            const Tensor init = Tensor::from_floats(random_floats(shape_numel(shapes[i]), 1.0, 800 + i), shapes[i]);
            cpu_params.push_back({"p" + std::to_string(i), init.clone(), Tensor()});
            gpu_params.push_back({"p" + std::to_string(i), init.to_device(Device::cuda), Tensor()});
        }
        cpu.add_group(cpu_params, config.options);
        gpu.add_group(gpu_params, config.options);
        for (int step = 1; step <= kSteps; ++step) {
            for (Adam* adam : {&cpu, &gpu}) adam->set_lr(0, scheduled_lr(config.options.lr, step));
            for (std::size_t i = 0; i < shapes.size(); ++i) {
                // p2 gets no gradient on even steps: its step count falls behind, as on the CPU.
                const bool skip = i == 2 && step % 2 == 0;
                cpu.group_params(0)[i].grad =
                    skip ? Tensor()
                         : Tensor::from_floats(random_floats(shape_numel(shapes[i]), 0.5, 900 + 10 * step + i),
                                               shapes[i]);
                gpu.group_params(0)[i].grad = skip ? Tensor() : cpu.group_params(0)[i].grad.to_device(Device::cuda);
            }
            cpu.step();
            gpu.step();
            const NamedTensors cpu_state = cpu.state_tensors();
            const NamedTensors gpu_state = gpu.state_tensors();
            ASSERT_EQ(cpu_state.size(), gpu_state.size());
            for (std::size_t e = 0; e < cpu_state.size(); ++e) {
                EXPECT_EQ(cpu_state[e].first, gpu_state[e].first);
                const Tensor host = gpu_state[e].second.to_device(Device::cpu);
                EXPECT_EQ(host.to_doubles(), cpu_state[e].second.to_doubles())
                    << config.name << " step " << step << " " << cpu_state[e].first;
            }
            for (std::size_t i = 0; i < shapes.size(); ++i) {
                EXPECT_EQ(bit_mismatches(host_floats(gpu.group_params(0)[i].value),
                                         host_floats(cpu.group_params(0)[i].value)),
                          0)
                    << config.name << " step " << step << " p" << i;
            }
        }
    }
    for (const SgdConfig& config : sgd_configs()) {
        Sgd cpu;
        Sgd gpu;
        std::vector<OptimParam> cpu_params, gpu_params;
        for (std::size_t i = 0; i < shapes.size(); ++i) {
            const Tensor init = Tensor::from_floats(random_floats(shape_numel(shapes[i]), 1.0, 810 + i), shapes[i]);
            cpu_params.push_back({"p" + std::to_string(i), init.clone(), Tensor()});
            gpu_params.push_back({"p" + std::to_string(i), init.to_device(Device::cuda), Tensor()});
        }
        cpu.add_group(cpu_params, config.options);
        gpu.add_group(gpu_params, config.options);
        for (int step = 1; step <= kSteps; ++step) {
            for (Sgd* sgd : {&cpu, &gpu}) sgd->set_lr(0, scheduled_lr(config.options.lr, step));
            for (std::size_t i = 0; i < shapes.size(); ++i) {
                const bool skip = i == 2 && step % 2 == 1;  // p2's buffer starts on step 2
                cpu.group_params(0)[i].grad =
                    skip ? Tensor()
                         : Tensor::from_floats(random_floats(shape_numel(shapes[i]), 0.5, 950 + 10 * step + i),
                                               shapes[i]);
                gpu.group_params(0)[i].grad = skip ? Tensor() : cpu.group_params(0)[i].grad.to_device(Device::cuda);
            }
            cpu.step();
            gpu.step();
            const NamedTensors cpu_state = cpu.state_tensors();
            const NamedTensors gpu_state = gpu.state_tensors();
            ASSERT_EQ(cpu_state.size(), gpu_state.size());
            for (std::size_t e = 0; e < cpu_state.size(); ++e) {
                EXPECT_EQ(cpu_state[e].first, gpu_state[e].first);
                EXPECT_EQ(gpu_state[e].second.to_device(Device::cpu).to_doubles(), cpu_state[e].second.to_doubles())
                    << config.name << " step " << step << " " << cpu_state[e].first;
            }
            for (std::size_t i = 0; i < shapes.size(); ++i) {
                EXPECT_EQ(bit_mismatches(host_floats(gpu.group_params(0)[i].value),
                                         host_floats(cpu.group_params(0)[i].value)),
                          0)
                    << config.name << " step " << step << " p" << i;
            }
        }
    }
}

TEST_F(OptimCuda, ClipOfCudaGradientsRunsOnTheDevice) {
    std::vector<Tensor> host_grads = {Tensor::from_floats(random_floats(256 * 96, 0.05, 71), {256, 96}), Tensor(),
                                      Tensor::from_floats(random_floats(33, 3.0, 73), {33})};
    std::vector<Tensor> device_grads;
    for (const Tensor& grad : host_grads) {
        device_grads.push_back(grad.defined() ? grad.to_device(Device::cuda) : Tensor());
    }
    const double expected = optim_clip_grad_norm(host_grads, 0.5);
    const double got = optim_clip_grad_norm(device_grads, 0.5);
    EXPECT_NEAR(got, expected, 1e-6 * expected);
    for (const std::size_t t : {std::size_t{0}, std::size_t{2}}) {
        const std::vector<float> a = host_floats(device_grads[t]);
        const std::vector<float> b = host_floats(host_grads[t]);
        for (std::size_t i = 0; i < a.size(); ++i) {
            // As ClipGradNormMatchesOptimClipGradNorm: one ulp of the f32 factor, at most two of the product.
            ASSERT_LE(std::abs(static_cast<double>(a[i]) - b[i]), 2.5e-7 * std::abs(static_cast<double>(b[i])))
                << "grad " << t << " element " << i;
        }
    }
}

TEST_F(OptimCuda, MixedDevicesAreOneLineErrors) {
    const auto expect_one_line = [](const std::string& message, const std::string& needle) {
        EXPECT_NE(message.find(needle), std::string::npos) << message;
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    };
    expect_one_line(error_of([] {
                        Muon muon;
                        muon.add_group({{"a", Tensor::zeros({4, 4}), Tensor()},
                                        {"b", Tensor::zeros({4, 4}, DType::f32, Device::cuda), Tensor()}},
                                       {});
                    }),
                    "muon: parameter 'b' is on cuda but parameter 'a' is on cpu");
    expect_one_line(error_of([] {
                        Adam adam;
                        adam.add_group({{"a", Tensor::zeros({4}, DType::f32, Device::cuda), Tensor()}}, {});
                        adam.add_group({{"b", Tensor::zeros({4}), Tensor()}}, {});
                    }),
                    "adam: parameter 'b' is on cpu but parameter 'a' is on cuda");
    expect_one_line(error_of([] {
                        Sgd sgd;
                        sgd.add_group({{"w", Tensor::zeros({4}, DType::f32, Device::cuda), Tensor()}}, {});
                        sgd.group_params(0)[0].grad = Tensor::zeros({4});
                        sgd.step();
                    }),
                    "sgd: parameter 'w' has a gradient on cpu for a value on cuda");
    expect_one_line(
        error_of([] {
            (void)optim_clip_grad_norm({Tensor::zeros({4}), Tensor::zeros({4}, DType::f32, Device::cuda)}, 1.0);
        }),
        "clip_grad_norm: gradients on both cpu and cuda");
}

// A snapshot restores the device run exactly, whether it stayed on the device or went through the host (a
// checkpoint): load_state puts the state on the parameters' device.
TEST_F(OptimCuda, MuonSnapshotRestoresBitForBitFromDeviceOrHost) {
    MuonOptions options;
    options.weight_decay = 0.01;
    Muon muon;
    const Tensor init = Tensor::from_floats(random_floats(64 * 96, 0.5, 91), {64, 96});
    muon.add_group({{"w", init.to_device(Device::cuda), Tensor()}}, options);
    const auto run_step = [&muon](int step) {
        muon.group_params(0)[0].grad =
            Tensor::from_floats(random_floats(64 * 96, 0.1, 95 + static_cast<std::uint64_t>(step)), {64, 96})
                .to_device(Device::cuda);
        muon.step();
    };
    run_step(0);
    const NamedTensors snapshot = muon.state_tensors();
    const Tensor value_at_snapshot = muon.group_params(0)[0].value.clone();
    run_step(1);
    run_step(2);
    const std::vector<float> reference = host_floats(muon.group_params(0)[0].value);
    NamedTensors host_snapshot;
    for (const auto& [name, tensor] : snapshot) host_snapshot.emplace_back(name, tensor.to_device(Device::cpu));
    for (const NamedTensors* state : std::vector<const NamedTensors*>{&snapshot, &host_snapshot}) {
        muon.group_params(0)[0].value.copy_from(value_at_snapshot);
        muon.load_state(*state);
        EXPECT_EQ(state_entry(muon.state_tensors(), "w.momentum_buffer").device(), Device::cuda);
        run_step(1);
        run_step(2);
        EXPECT_EQ(bit_mismatches(host_floats(muon.group_params(0)[0].value), reference), 0)
            << (state == &snapshot ? "device snapshot" : "host snapshot");
    }
}
#endif  // PGOLF_WITH_CUDA

}  // namespace
}  // namespace pgolf
