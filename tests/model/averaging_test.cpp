// SWA and EMA of the weights against hand-computed values: the SWA mean of snapshots and its snapshot rule (with the
// 14 snapshots of an S3-shaped run), the EMA recursion, state round trips, writes into the live (shared) storage, and
// one-line errors; the per-element arithmetic the CUDA kernels share (core/cuda/averaging_math.h), and on a GPU the
// cuda averages against the cpu ones bit for bit.
#include "model/averaging.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/cuda/averaging_math.h"
#include "core/device.h"
#include "core/error.h"
#include "model/schedule.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

Tensor floats(const std::vector<float>& values, const Shape& shape) { return Tensor::from_floats(values, shape); }

std::vector<float> values_of(const Tensor& t) {
    const float* p = t.data<float>();
    return std::vector<float>(p, p + t.numel());
}

void set_values(Tensor& t, const std::vector<float>& values) {
    ASSERT_EQ(static_cast<std::int64_t>(values.size()), t.numel());
    float* p = t.data<float>();
    for (std::size_t i = 0; i < values.size(); ++i) p[i] = values[i];
}

// Runs f and returns the pgolf::Error message it throws (fails the test if it throws nothing).
template <typename F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "expected pgolf::Error";
    return {};
}

void expect_one_line_naming(const std::string& message, const std::string& part) {
    EXPECT_NE(message.find(part), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

// ------------------------------------------------------------------------------------------------------------- SWA

TEST(Swa, MeanOfThreeSnapshots) {
    Tensor a = floats({1, 2, 3, 4}, {2, 2});
    Tensor b = floats({0.5f, -1, 2}, {3});
    WeightAverage swa({{"a", a}, {"b", b}});
    EXPECT_EQ(swa.count(), 0);
    swa.snapshot();
    set_values(a, {3, 4, 5, 6});
    set_values(b, {1.5f, 1, 2});
    swa.snapshot();
    set_values(a, {5, 6, 7, 11});
    set_values(b, {1, 3, 2.5f});
    swa.snapshot();
    EXPECT_EQ(swa.count(), 3);

    const NamedTensors mean = swa.mean();
    ASSERT_EQ(mean.size(), 2u);
    EXPECT_EQ(mean[0].first, "a");
    EXPECT_EQ(mean[1].first, "b");
    EXPECT_EQ(mean[0].second.shape(), (Shape{2, 2}));
    EXPECT_EQ(values_of(mean[0].second), (std::vector<float>{3, 4, 5, 7}));
    EXPECT_EQ(values_of(mean[1].second), (std::vector<float>{1, 1, static_cast<float>(6.5 / 3.0)}));
    EXPECT_FALSE(mean[0].second.same_storage(a));
    EXPECT_EQ(values_of(a), (std::vector<float>{5, 6, 7, 11}));  // mean() leaves the live weights alone
}

TEST(Swa, ApplyMeanWritesIntoLiveStorage) {
    Tensor w = floats({2, 4, 6}, {3});
    const Tensor view = w.reshape({1, 3});  // another handle on the same storage, as the model holds
    WeightAverage swa({{"w", w}});
    swa.snapshot();
    set_values(w, {4, 8, 10});
    swa.snapshot();
    swa.apply_mean();
    EXPECT_EQ(values_of(w), (std::vector<float>{3, 6, 8}));
    EXPECT_EQ(values_of(view), (std::vector<float>{3, 6, 8}));
    // Later snapshots keep accumulating on top of the same sums.
    swa.snapshot();  // (2 + 4 + 3, 4 + 8 + 6, 6 + 10 + 8) / 3
    EXPECT_EQ(values_of(swa.mean()[0].second), (std::vector<float>{3, 6, 8}));
    EXPECT_EQ(swa.count(), 3);
}

TEST(Swa, SumsInDoubleAndRoundsOnce) {
    // 2^24, 1, 1: an f32 running sum loses both ones (2^24 + 1 rounds to 2^24), giving 2^24/3; the exact mean is
    // (2^24 + 2)/3 = 5592406, representable in f32.
    Tensor w = floats({16777216.0f}, {1});
    WeightAverage swa({{"w", w}});
    swa.snapshot();
    set_values(w, {1});
    swa.snapshot();
    swa.snapshot();
    EXPECT_EQ(values_of(swa.mean()[0].second), (std::vector<float>{5592406.0f}));
}

TEST(Swa, SnapshotRule) {
    // S1/S3: every 50 steps (0-based index of the step just taken) once that step's lr_mul < 0.2, strictly.
    EXPECT_TRUE(averaging_swa_should_snapshot(5300, 0.19, 50, 0.2));
    EXPECT_FALSE(averaging_swa_should_snapshot(5300, 0.2, 50, 0.2));  // equal is not below
    EXPECT_FALSE(averaging_swa_should_snapshot(5300, 0.21, 50, 0.2));
    EXPECT_FALSE(averaging_swa_should_snapshot(5301, 0.1, 50, 0.2));
    EXPECT_FALSE(averaging_swa_should_snapshot(5349, 0.1, 50, 0.2));
    EXPECT_TRUE(averaging_swa_should_snapshot(5350, 0.1, 50, 0.2));
    EXPECT_TRUE(averaging_swa_should_snapshot(0, 0.0, 50, 0.2));      // step 0 qualifies when its lr is low
    EXPECT_TRUE(averaging_swa_should_snapshot(7, 0.0, 1, 0.2));       // every step
    EXPECT_FALSE(averaging_swa_should_snapshot(5300, 0.0, 50, 0.0));  // threshold 0: SWA off (SWA_START_FRAC=0)
    EXPECT_FALSE(averaging_swa_should_snapshot(5300, 0.0, 50, -1.0));
}

TEST(Swa, S3ShapedRunTakesFourteenSnapshots) {
    // Cap 600 s at 100 ms per step with the 60 % fraction warmdown: lr_mul(s) = (600000 − 100·s)/360000 from
    // s = 2400 on, below 0.2 from s = 5281; steps 0..5999 run before the cap. Snapshots at 5300, 5350, …, 5950.
    LrSchedule schedule;
    schedule.kind = WarmdownKind::wallclock_fraction;
    std::vector<std::int64_t> steps;
    for (std::int64_t step = 0; step < 6000; ++step) {
        const double lr_mul = schedule_lr_mul(schedule, step, 100.0 * static_cast<double>(step));
        if (averaging_swa_should_snapshot(step, lr_mul, 50, 0.2)) steps.push_back(step);
    }
    ASSERT_EQ(steps.size(), 14u);
    EXPECT_EQ(steps.front(), 5300);
    EXPECT_EQ(steps.back(), 5950);
}

// ------------------------------------------------------------------------------------------------------------- EMA

TEST(Ema, InitialisesToACopyOfTheWeights) {
    Tensor w = floats({1, -2, 3}, {3});
    ExponentialAverage ema({{"w", w}}, 0.997);
    EXPECT_EQ(ema.decay(), 0.997);
    ASSERT_EQ(ema.average().size(), 1u);
    EXPECT_EQ(ema.average()[0].first, "w");
    EXPECT_FALSE(ema.average()[0].second.same_storage(w));
    set_values(w, {10, 20, 30});  // the live weights move; the average does not until update()
    EXPECT_EQ(values_of(ema.average()[0].second), (std::vector<float>{1, -2, 3}));
}

TEST(Ema, TwoUpdatesByHand) {
    // ema₂ = d²·w0 + d(1 − d)·w1 + (1 − d)·w2. With d = 0.5 and small dyadic values every step is exact in f32.
    Tensor w = floats({4, -8, 1}, {3});
    ExponentialAverage ema({{"w", w}}, 0.5);
    set_values(w, {8, 0, 3});
    ema.update();  // (6, -4, 2)
    set_values(w, {0, 4, -2});
    ema.update();  // 0.25·w0 + 0.25·w1 + 0.5·w2
    EXPECT_EQ(values_of(ema.average()[0].second), (std::vector<float>{3, 0, 0}));

    // d = 0.997: within f32 rounding of the closed form, and bitwise equal to the f32 recursion step by step.
    const double d = 0.997;
    Tensor v = floats({1.0f, -0.25f}, {2});
    ExponentialAverage ema2({{"v", v}}, d);
    set_values(v, {2.0f, 0.75f});
    ema2.update();
    set_values(v, {-3.0f, 0.5f});
    ema2.update();
    const std::vector<double> w0 = {1.0, -0.25}, w1 = {2.0, 0.75}, w2 = {-3.0, 0.5};
    const std::vector<float> got = values_of(ema2.average()[0].second);
    const auto df = static_cast<float>(d);
    const auto af = static_cast<float>(1.0 - d);
    for (std::size_t i = 0; i < 2; ++i) {
        const double closed = d * d * w0[i] + d * (1 - d) * w1[i] + (1 - d) * w2[i];
        EXPECT_NEAR(got[i], closed, 1e-6) << i;
        float e = static_cast<float>(w0[i]);
        for (const double x : {w1[i], w2[i]}) {
            const float decayed = e * df;
            const float added = af * static_cast<float>(x);
            e = decayed + added;
        }
        EXPECT_EQ(got[i], e) << i;
    }
}

TEST(Ema, ApplyWritesIntoLiveStorage) {
    Tensor w = floats({2, 2, 2, 2}, {2, 2});
    const Tensor row = w.rows(1, 2);  // a view on the live storage
    ExponentialAverage ema({{"w", w}}, 0.75);
    set_values(w, {6, 6, 10, 10});
    ema.update();  // 0.75·2 + 0.25·w
    ema.apply();
    EXPECT_EQ(values_of(w), (std::vector<float>{3, 3, 4, 4}));
    EXPECT_EQ(values_of(row), (std::vector<float>{4, 4}));
    EXPECT_FALSE(ema.average()[0].second.same_storage(w));  // applying does not alias the average to the weights
    set_values(w, {0, 0, 0, 0});
    EXPECT_EQ(values_of(ema.average()[0].second), (std::vector<float>{3, 3, 4, 4}));
}

TEST(Ema, StateRoundTrip) {
    Tensor a = floats({1, 2}, {2});
    Tensor b = floats({5}, {1});
    ExponentialAverage ema({{"a", a}, {"b", b}}, 0.9);
    set_values(a, {3, 4});
    ema.update();
    const NamedTensors saved = ema.state();
    ASSERT_EQ(saved.size(), 2u);
    EXPECT_EQ(saved[0].first, "a");
    EXPECT_FALSE(saved[0].second.same_storage(ema.average()[0].second));  // deep copies
    const std::vector<float> saved_a = values_of(saved[0].second);
    const std::vector<float> saved_b = values_of(saved[1].second);

    ema.update();
    ema.update();
    EXPECT_NE(values_of(ema.average()[0].second), saved_a);
    const Tensor handle = ema.average()[0].second;
    // Restore from a list in another order: matched by name, written into the existing average tensors.
    ema.load_state({saved[1], saved[0]});
    EXPECT_EQ(values_of(ema.average()[0].second), saved_a);
    EXPECT_EQ(values_of(ema.average()[1].second), saved_b);
    EXPECT_TRUE(handle.same_storage(ema.average()[0].second));

    // The restored average continues bitwise as the original did.
    ema.update();
    ExponentialAverage replay({{"a", a}, {"b", b}}, 0.9);
    replay.load_state(saved);
    replay.update();
    EXPECT_EQ(values_of(ema.average()[0].second), values_of(replay.average()[0].second));
    EXPECT_EQ(values_of(ema.average()[1].second), values_of(replay.average()[1].second));
}

// ---------------------------------------------------------------------------------------------------------- errors

TEST(AveragingErrors, OneLineMessages) {
    expect_one_line_naming(error_of([] { WeightAverage swa(NamedTensors{}); }), "no parameters");
    expect_one_line_naming(error_of([] { ExponentialAverage ema(NamedTensors{}, 0.997); }), "no parameters");
    expect_one_line_naming(error_of([] { WeightAverage swa({{"x", Tensor::zeros({2}, DType::f64)}}); }), "'x'");
    expect_one_line_naming(error_of([] { WeightAverage swa({{"x", Tensor()}}); }), "'x'");
    expect_one_line_naming(error_of([] {
                               WeightAverage swa({{"x", Tensor::zeros({2})}, {"x", Tensor::zeros({3})}});
                           }),
                           "appears twice");
    expect_one_line_naming(error_of([] { ExponentialAverage ema({{"x", Tensor::zeros({2})}}, 1.5); }), "decay");
    expect_one_line_naming(error_of([] { ExponentialAverage ema({{"x", Tensor::zeros({2})}}, -0.1); }), "decay");
    expect_one_line_naming(error_of([] { averaging_swa_should_snapshot(100, 0.1, 0, 0.2); }), "interval");

    WeightAverage swa({{"x", Tensor::zeros({2})}});
    expect_one_line_naming(error_of([&] { swa.apply_mean(); }), "no snapshot");
    expect_one_line_naming(error_of([&] { (void)swa.mean(); }), "no snapshot");

    ExponentialAverage ema({{"x", Tensor::zeros({2, 3})}, {"y", Tensor::zeros({4})}}, 0.997);
    const NamedTensors good = ema.state();
    expect_one_line_naming(error_of([&] { ema.load_state({{"x", Tensor::zeros({3, 2})}, good[1]}); }), "'x'");
    expect_one_line_naming(error_of([&] { ema.load_state({good[0], good[1], {"z", Tensor::zeros({1})}}); }), "'z'");
    expect_one_line_naming(error_of([&] { ema.load_state({good[0]}); }), "'y'");
    expect_one_line_naming(error_of([&] { ema.load_state({good[0], good[0], good[1]}); }), "appears twice");
    expect_one_line_naming(error_of([&] { ema.load_state({good[0], {"y", Tensor::zeros({4}, DType::f64)}}); }), "'y'");
    // A rejected state changes nothing.
    Tensor x = good[0].second;  // shares good[0]'s storage
    x.fill(7.0);
    EXPECT_THROW(ema.load_state({good[0], {"y", Tensor::zeros({5})}}), Error);
    EXPECT_EQ(values_of(ema.average()[0].second), std::vector<float>(6, 0.0f));
}

// ------------------------------------------------------------------------------------ arithmetic shared with CUDA

using test::float_bits;
using test::random_floats;

TEST(AveragingMath, EmaStepIsTheUnfusedRecursion) {
    // The kernels' step against the reference recursion written out (separate roundings), 4 decays x 10000 values.
    const std::vector<float> averages = random_floats(10000, -3.0, 3.0, 21);
    const std::vector<float> weights = random_floats(10000, -3.0, 3.0, 22);
    for (const double decay : {0.997, 0.9, 0.5, 0.0}) {
        const float d = averaging_ema_decay(decay);
        const float one_minus_d = averaging_ema_weight(decay);
        EXPECT_EQ(float_bits(d), float_bits(static_cast<float>(decay)));
        EXPECT_EQ(float_bits(one_minus_d), float_bits(static_cast<float>(1.0 - decay)));
        std::size_t mismatches = 0;
        for (std::size_t i = 0; i < averages.size(); ++i) {
            const float decayed = averages[i] * d;
            const float added = one_minus_d * weights[i];
            const float expected = decayed + added;
            if (float_bits(averaging_ema_step(averages[i], weights[i], d, one_minus_d)) != float_bits(expected)) {
                ++mismatches;
            }
        }
        EXPECT_EQ(mismatches, 0u) << decay;
    }
    // 1 − d in double: 1 − 0.997 rounds to a different f32 than 1 − f32(0.997) would give.
    EXPECT_NE(float_bits(averaging_ema_weight(0.997)), float_bits(1.0f - static_cast<float>(0.997)));
}

TEST(AveragingMath, MeanIsTheDoubleQuotientRoundedOnce) {
    const std::vector<float> weights = random_floats(1000, -100.0, 100.0, 23);
    for (const std::int64_t count : {1, 3, 7, 14}) {
        std::size_t mismatches = 0;
        for (const float w : weights) {
            double sum = 0.0;
            for (std::int64_t k = 0; k < count; ++k) sum = averaging_accumulate(sum, w + static_cast<float>(k));
            double expected_sum = 0.0;
            for (std::int64_t k = 0; k < count; ++k) expected_sum += static_cast<double>(w + static_cast<float>(k));
            const auto expected = static_cast<float>(expected_sum / static_cast<double>(count));
            if (float_bits(averaging_mean(sum, static_cast<double>(count))) != float_bits(expected)) ++mismatches;
        }
        EXPECT_EQ(mismatches, 0u) << count;
    }
}

// ----------------------------------------------------------------------------------------------------- on cuda

#ifdef PGOLF_WITH_CUDA

// Bit-for-bit equality of a cuda f32 tensor with a cpu one.
void expect_same_bits(const Tensor& cuda_tensor, const Tensor& cpu_tensor, const std::string& what) {
    ASSERT_EQ(cuda_tensor.device(), Device::cuda) << what;
    ASSERT_EQ(cpu_tensor.device(), Device::cpu) << what;
    const Tensor downloaded = cuda_tensor.to_device(Device::cpu);
    ASSERT_EQ(downloaded.shape(), cpu_tensor.shape()) << what;
    EXPECT_EQ(std::memcmp(downloaded.raw_data(), cpu_tensor.raw_data(), cpu_tensor.nbytes()), 0) << what;
}

struct TwinWeights {
    NamedTensors cpu;
    NamedTensors cuda;
};

// The same weights on both devices: an odd size (the kernels' single-element path), sizes above the CPU loops'
// threading threshold (the 16-byte path), and a view whose storage starts 8 bytes in (off the 16-byte alignment).
TwinWeights twin_weights() {
    TwinWeights twins;
    const std::vector<Shape> shapes = {{3}, {1000, 37}, {64, 1024}};
    for (std::size_t p = 0; p < shapes.size(); ++p) {
        const auto count = static_cast<std::size_t>(shape_numel(shapes[p]));
        const Tensor values = Tensor::from_floats(random_floats(count, -1, 1, 40 + p), shapes[p]);
        const std::string name = "w" + std::to_string(p);
        twins.cpu.emplace_back(name, values.clone());
        twins.cuda.emplace_back(name, values.to_device(Device::cuda));
    }
    const Tensor pairs = Tensor::from_floats(random_floats(10, -1, 1, 50), {5, 2});
    twins.cpu.emplace_back("view", pairs.clone().rows(1, 5));
    twins.cuda.emplace_back("view", pairs.to_device(Device::cuda).rows(1, 5));
    return twins;
}

// New random values in both copies of every weight (as an optimizer step would write them).
void step_weights(TwinWeights& twins, std::uint64_t seed) {
    for (std::size_t p = 0; p < twins.cpu.size(); ++p) {
        Tensor& cpu = twins.cpu[p].second;
        const Tensor values =
            Tensor::from_floats(random_floats(static_cast<std::size_t>(cpu.numel()), -2, 2, seed + p), cpu.shape());
        cpu.copy_from(values);
        twins.cuda[p].second.copy_from(values);
    }
}

std::string cuda_skip_reason() { return device_unavailable_reason(Device::cuda); }

TEST(AveragingCuda, SwaMatchesTheCpuBitForBit) {
    const std::string reason = cuda_skip_reason();
    if (!reason.empty()) GTEST_SKIP() << reason;
    TwinWeights twins = twin_weights();
    WeightAverage cpu(twins.cpu);
    WeightAverage cuda(twins.cuda);
    for (std::uint64_t step = 0; step < 5; ++step) {
        cpu.snapshot();
        cuda.snapshot();
        step_weights(twins, 100 + 10 * step);
    }
    EXPECT_EQ(cuda.count(), 5);
    const NamedTensors cpu_mean = cpu.mean();
    const NamedTensors cuda_mean = cuda.mean();
    ASSERT_EQ(cuda_mean.size(), cpu_mean.size());
    for (std::size_t p = 0; p < cpu_mean.size(); ++p) {
        EXPECT_EQ(cuda_mean[p].first, cpu_mean[p].first);
        expect_same_bits(cuda_mean[p].second, cpu_mean[p].second, "mean of " + cpu_mean[p].first);
    }
    cpu.apply_mean();
    cuda.apply_mean();
    for (std::size_t p = 0; p < twins.cpu.size(); ++p) {
        expect_same_bits(twins.cuda[p].second, twins.cpu[p].second, "applied " + twins.cpu[p].first);
    }
}

TEST(AveragingCuda, EmaMatchesTheCpuBitForBit) {
    const std::string reason = cuda_skip_reason();
    if (!reason.empty()) GTEST_SKIP() << reason;
    TwinWeights twins = twin_weights();
    ExponentialAverage cpu(twins.cpu, 0.997);
    ExponentialAverage cuda(twins.cuda, 0.997);
    for (std::uint64_t step = 0; step < 6; ++step) {
        step_weights(twins, 200 + 10 * step);
        cpu.update();
        cuda.update();
    }
    for (std::size_t p = 0; p < twins.cpu.size(); ++p) {
        expect_same_bits(cuda.average()[p].second, cpu.average()[p].second, "average of " + twins.cpu[p].first);
    }
    // A cpu state loads into the cuda average, and both continue alike.
    const NamedTensors saved = cpu.state();
    cuda.load_state(saved);
    EXPECT_EQ(cuda.state()[0].second.device(), Device::cuda);
    step_weights(twins, 300);
    cpu.update();
    cuda.update();
    cpu.apply();
    cuda.apply();
    for (std::size_t p = 0; p < twins.cpu.size(); ++p) {
        expect_same_bits(twins.cuda[p].second, twins.cpu[p].second, "applied " + twins.cpu[p].first);
    }
}

TEST(AveragingCuda, MixedDevicesAreRefused) {
    const std::string reason = cuda_skip_reason();
    if (!reason.empty()) GTEST_SKIP() << reason;
    const NamedTensors mixed = {{"a", Tensor::zeros({2})}, {"b", Tensor::zeros({2}, DType::f32, Device::cuda)}};
    const std::string swa_message = error_of([&] { WeightAverage swa(mixed); });
    expect_one_line_naming(swa_message, "'b'");
    expect_one_line_naming(swa_message, "one device");
    expect_one_line_naming(error_of([&] { ExponentialAverage ema(mixed, 0.997); }), "one device");
}

#endif  // PGOLF_WITH_CUDA

}  // namespace
}  // namespace pgolf
