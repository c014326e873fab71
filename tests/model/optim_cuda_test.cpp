// The fused CUDA optimizer updates against the CPU optimizers of model/optim.h: the host-device element updates
// (core/cuda/optim_math.h) replayed on the CPU reproduce Adam, AdamW and SGD bit for bit (runs everywhere), and the
// CUDA kernels on device tensors do the same over several steps (skips without a GPU), as does the CUDA gradient
// clip against optim_clip_grad_norm.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/cuda/optim_math.h"
#ifdef PGOLF_WITH_CUDA
#include "core/cuda/optim_update.h"
#include "core/cuda/reduce.h"
#endif
#include "core/device.h"
#include "model/optim.h"

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

AdamUpdateOptions adam_update_options(const AdamOptions& options) {
    return AdamUpdateOptions{options.lr,  options.beta1,        options.beta2,
                             options.eps, options.weight_decay, options.decoupled_weight_decay};
}

SgdUpdateOptions sgd_update_options(const SgdOptions& options) {
    return SgdUpdateOptions{options.lr, options.momentum, options.dampening, options.weight_decay, options.nesterov};
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
            AdamUpdateOptions options = adam_update_options(config.options);
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
            SgdUpdateOptions options = sgd_update_options(config.options);
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
                AdamUpdateOptions options = adam_update_options(config.options);
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
                SgdUpdateOptions options = sgd_update_options(config.options);
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

#endif  // PGOLF_WITH_CUDA

}  // namespace
}  // namespace pgolf
