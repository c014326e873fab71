// CPU replay of Muon on cuda weights (core/cuda/muon.cu): the kernels' element math (core/cuda/muon_math.h), their
// batching of same-shape matrices, the norm's summation order and the GEMMs' operand orientation (tall matrices
// through transposed GEMMs instead of a transposed copy), run on the host and compared with optim_newton_schulz and
// Muon::step. Runs everywhere, CPU-only builds included.
#include "core/cuda/muon_math.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/ops/linear.h"
#include "model/optim.h"
#include "tests/model/muon_test_configs.h"

namespace pgolf {
namespace {

std::vector<float> random_floats(std::int64_t count, double scale, std::uint64_t seed) {
    std::mt19937_64 generator(seed);
    std::normal_distribution<double> normal(0.0, scale);
    std::vector<float> values(static_cast<std::size_t>(count));
    for (float& value : values) value = static_cast<float>(normal(generator));
    return values;
}

std::vector<float> host_floats(const Tensor& tensor) {
    const float* data = tensor.data<float>();
    return std::vector<float>(data, data + tensor.numel());
}

std::int64_t bit_mismatches(const std::vector<float>& got, const std::vector<float>& expected) {
    if (got.size() != expected.size()) return -1;
    std::int64_t mismatches = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        if (std::memcmp(&got[i], &expected[i], sizeof(float)) != 0) ++mismatches;
    }
    return mismatches;
}

double max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
    double worst = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        worst = std::max(worst, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
    }
    return worst;
}

double max_magnitude(const std::vector<float>& values) {
    double largest = 0.0;
    for (const float value : values) largest = std::max(largest, std::abs(static_cast<double>(value)));
    return largest;
}

CudaMuonPrecision cuda_precision(MuonPrecision precision) {
    return precision == MuonPrecision::bf16 ? CudaMuonPrecision::bf16 : CudaMuonPrecision::f32;
}

// --- replay of the device algorithm ----------------------------------------------------------------------------

// c (batch, m, n) = op(a[i]) · op(b[i]) with fp32 accumulation and an f32 result, as the device's strided-batched
// GEMMs give it (the rounding to bf16 is the next kernel's). a is (batch, m, k) or (batch, k, m) when transposed; b is
// (batch, k, n) or (batch, n, k).
using BatchedGemm = std::function<void(const std::vector<float>& a, const std::vector<float>& b, std::vector<float>& c,
                                       std::int64_t batch, std::int64_t m, std::int64_t n, std::int64_t k,
                                       bool transpose_a, bool transpose_b)>;

// Through the CPU engine's GEMM (CBLAS sgemm, as optim_newton_schulz uses), one matrix at a time.
void blas_gemm(const std::vector<float>& a, const std::vector<float>& b, std::vector<float>& c, std::int64_t batch,
               std::int64_t m, std::int64_t n, std::int64_t k, bool transpose_a, bool transpose_b) {
    c.assign(static_cast<std::size_t>(batch * m * n), 0.0f);
    const Shape a_shape = transpose_a ? Shape{k, m} : Shape{m, k};
    const Shape b_shape = transpose_b ? Shape{n, k} : Shape{k, n};
    for (std::int64_t i = 0; i < batch; ++i) {
        const Tensor a_matrix = Tensor::from_floats(
            std::span(a).subspan(static_cast<std::size_t>(i * m * k), static_cast<std::size_t>(m * k)), a_shape);
        const Tensor b_matrix = Tensor::from_floats(
            std::span(b).subspan(static_cast<std::size_t>(i * k * n), static_cast<std::size_t>(k * n)), b_shape);
        const Tensor product = matmul(a_matrix, b_matrix, transpose_a, transpose_b);
        std::copy(product.data<float>(), product.data<float>() + m * n, c.begin() + i * m * n);
    }
}

// Plain loops adding the k products from the last to the first: an accumulation order no BLAS uses, standing in for
// cuBLAS's (tiles, split-K, tensor-core fragments), which no host code can reproduce.
void reversed_loop_gemm(const std::vector<float>& a, const std::vector<float>& b, std::vector<float>& c,
                        std::int64_t batch, std::int64_t m, std::int64_t n, std::int64_t k, bool transpose_a,
                        bool transpose_b) {
    c.assign(static_cast<std::size_t>(batch * m * n), 0.0f);
    for (std::int64_t i = 0; i < batch; ++i) {
        const float* a_matrix = a.data() + i * m * k;
        const float* b_matrix = b.data() + i * k * n;
        for (std::int64_t row = 0; row < m; ++row) {
            for (std::int64_t col = 0; col < n; ++col) {
                float sum = 0.0f;
                for (std::int64_t p = k - 1; p >= 0; --p) {
                    const float left = transpose_a ? a_matrix[p * m + row] : a_matrix[row * k + p];
                    const float right = transpose_b ? b_matrix[col * k + p] : b_matrix[p * n + col];
                    sum += left * right;
                }
                c[static_cast<std::size_t>(i * m * n + row * n + col)] = sum;
            }
        }
    }
}

// The norm kernels for one matrix: block b of muon_norm_blocks, thread t of kMuonNormThreads adds the squares of its
// vectors b·T + t, then every blocks·T-th one after it (4 elements each when the matrix size allows, else single
// elements) in double; a halving tree adds each block's threads, then the blocks are added in order.
float replay_norm_denominator(const float* x, std::int64_t matrix_size, bool bf16) {
    const std::int64_t width = matrix_size % 4 == 0 ? 4 : 1;
    const std::int64_t blocks = muon_norm_blocks(matrix_size);
    std::vector<double> block_sums;
    for (std::int64_t block = 0; block < blocks; ++block) {
        std::vector<double> thread_sums(kMuonNormThreads, 0.0);
        for (int thread = 0; thread < kMuonNormThreads; ++thread) {
            double sum = 0.0;
            for (std::int64_t v = block * kMuonNormThreads + thread; v < matrix_size / width;
                 v += blocks * kMuonNormThreads) {
                for (std::int64_t k = 0; k < width; ++k) sum = muon_add_square(sum, x[v * width + k]);
            }
            thread_sums[static_cast<std::size_t>(thread)] = sum;
        }
        for (int half = kMuonNormThreads / 2; half > 0; half >>= 1) {
            for (int thread = 0; thread < half; ++thread) {
                thread_sums[static_cast<std::size_t>(thread)] =
                    muon_add_partials(thread_sums[static_cast<std::size_t>(thread)],
                                      thread_sums[static_cast<std::size_t>(thread + half)]);
            }
        }
        block_sums.push_back(thread_sums[0]);
    }
    double sum = block_sums[0];
    for (std::size_t block = 1; block < block_sums.size(); ++block) sum = muon_add_partials(sum, block_sums[block]);
    return muon_norm_denominator(sum, bf16);
}

// cuda_newton_schulz_batched on x: (batch, rows, cols), in place, step by step as the device runs it.
void replay_newton_schulz_batched(std::vector<float>& x, std::int64_t batch, std::int64_t rows, std::int64_t cols,
                                  int steps, CudaMuonPrecision precision, const BatchedGemm& gemm) {
    const bool bf16 = precision == CudaMuonPrecision::bf16;
    const std::int64_t matrix_size = rows * cols;
    for (std::int64_t i = 0; i < batch; ++i) {
        float* matrix = x.data() + i * matrix_size;
        for (std::int64_t e = 0; e < matrix_size; ++e) matrix[e] = muon_round(matrix[e], bf16);
        const float denominator = replay_norm_denominator(matrix, matrix_size, bf16);
        for (std::int64_t e = 0; e < matrix_size; ++e) matrix[e] = muon_normalize_element(matrix[e], denominator, bf16);
    }
    const bool tall = muon_is_tall(rows, cols);
    const std::int64_t m = tall ? cols : rows;
    const std::int64_t n = tall ? rows : cols;
    std::vector<float> gram_accumulated, gram_squared, product;
    std::vector<float> gram(static_cast<std::size_t>(batch * m * m));
    std::vector<float> scaled_gram(gram.size()), poly(gram.size());
    for (int iteration = 0; iteration < steps; ++iteration) {
        gemm(x, x, gram_accumulated, batch, m, m, n, tall, !tall);
        for (std::size_t e = 0; e < gram.size(); ++e)
            muon_gram_element(gram_accumulated[e], bf16, gram[e], scaled_gram[e]);
        gemm(scaled_gram, gram, gram_squared, batch, m, m, m, false, false);
        for (std::size_t e = 0; e < gram.size(); ++e) poly[e] = muon_poly_element(gram[e], gram_squared[e], bf16);
        if (tall) {
            gemm(x, poly, product, batch, n, m, m, false, true);
        } else {
            gemm(poly, x, product, batch, m, n, m, false, false);
        }
        for (std::size_t e = 0; e < x.size(); ++e) x[e] = muon_iterate_element(x[e], product[e], bf16);
    }
}

// The CPU reference for the same batch: optim_newton_schulz per matrix.
std::vector<float> cpu_newton_schulz_batched(const std::vector<float>& x, std::int64_t batch, std::int64_t rows,
                                             std::int64_t cols, int steps, MuonPrecision precision) {
    std::vector<float> result;
    const std::int64_t matrix_size = rows * cols;
    for (std::int64_t i = 0; i < batch; ++i) {
        const Tensor matrix = Tensor::from_floats(
            std::span(x).subspan(static_cast<std::size_t>(i * matrix_size), static_cast<std::size_t>(matrix_size)),
            {rows, cols});
        const std::vector<float> out = host_floats(optim_newton_schulz(matrix, steps, precision));
        result.insert(result.end(), out.begin(), out.end());
    }
    return result;
}

struct NewtonSchulzShape {
    std::int64_t batch, rows, cols;
};

// Wide, tall and square; matrix sizes that take the 4-wide and the scalar paths; the seeds' aspect ratio (4:1 MLP);
// matrices whose norm takes several blocks (more than 8192 elements).
const std::vector<NewtonSchulzShape> kNewtonSchulzShapes = {{3, 24, 40}, {3, 40, 24},  {2, 32, 32}, {2, 7, 13},
                                                            {2, 13, 7},  {2, 16, 64},  {2, 64, 16}, {1, 1, 9},
                                                            {1, 9, 1},   {2, 96, 200}, {1, 99, 101}};

std::string shape_label(const NewtonSchulzShape& shape, MuonPrecision precision, int steps) {
    return "(" + std::to_string(shape.batch) + ", " + std::to_string(shape.rows) + ", " + std::to_string(shape.cols) +
           ") " + (precision == MuonPrecision::bf16 ? "bf16" : "f32") + " steps " + std::to_string(steps);
}

// How far another fp32 accumulation order inside the GEMMs may move Newton–Schulz's result (5 steps), as the largest
// |difference| relative to the largest |element| and as the Frobenius norm of the difference relative to the
// result's. bf16: a different order flips an occasional bf16 rounding (the fp32 sums differ in their last bits only),
// which later iterations carry and amplify; f32: a few fp32 ulps per GEMM, amplified likewise.
// NewtonSchulzUnderAnotherAccumulationOrder measures them on the host; the GPU test (tests/model/optim_cuda_test.cpp),
// whose cuBLAS sums in its own order, uses the same bounds. Measured with k summed backwards at the seeds' shapes
// (512, 2048), (2048, 512) and (512, 512) (too slow to keep in the suite): bf16 max 0.072, 0.045, 0.031 and Frobenius
// 0.011, 0.0096, 0.013; f32 max 9e-6, 9e-6, 4.6e-6 and Frobenius 3.8e-6, 3.8e-6, 2.8e-6.
struct NewtonSchulzBound {
    double max_relative;
    double frobenius_relative;
};
constexpr NewtonSchulzBound kNewtonSchulzOrderBoundBf16{0.25, 0.05};
constexpr NewtonSchulzBound kNewtonSchulzOrderBoundF32{1e-4, 4e-5};

NewtonSchulzBound order_bound(MuonPrecision precision) {
    return precision == MuonPrecision::bf16 ? kNewtonSchulzOrderBoundBf16 : kNewtonSchulzOrderBoundF32;
}

NewtonSchulzBound deviation(const std::vector<float>& got, const std::vector<float>& expected) {
    double difference_squares = 0.0;
    double expected_squares = 0.0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double difference = static_cast<double>(got[i]) - static_cast<double>(expected[i]);
        difference_squares += difference * difference;
        expected_squares += static_cast<double>(expected[i]) * static_cast<double>(expected[i]);
    }
    return {max_abs_difference(got, expected) / max_magnitude(expected),
            std::sqrt(difference_squares / expected_squares)};
}

// A tall matrix: the replay, like the device, hands BLAS the stored matrix with a transpose flag where the CPU loop
// hands it a transposed copy, and BLAS may then sum in another order. Measured here: at most 6e-7 (f32) and no
// difference at all (bf16) on these shapes; bf16 may still flip a rounding on another CPU's BLAS kernels.
constexpr double kTallBoundF32 = 4e-6;

// Bitwise for wide and square matrices (the same BLAS calls as the CPU loop); within the bound above for tall ones.
void expect_replay_matches(const std::vector<float>& replay, const std::vector<float>& expected, bool tall,
                           MuonPrecision precision, double scale, const std::string& what) {
    if (!tall) {
        EXPECT_EQ(bit_mismatches(replay, expected), 0) << what;
        return;
    }
    const double bound = precision == MuonPrecision::bf16 ? kNewtonSchulzOrderBoundBf16.max_relative : kTallBoundF32;
    EXPECT_LE(max_abs_difference(replay, expected), bound * scale) << what;
}

TEST(MuonMath, BatchedNewtonSchulzReplayEqualsOptimNewtonSchulz) {
    // The same element ops as the CPU loop, and the norm summed in another order in double: the float it rounds to is
    // the same (it could differ only for a sum within 1e-16 relative of a float rounding boundary).
    int cases = 0;
    for (const NewtonSchulzShape& shape : kNewtonSchulzShapes) {
        for (const MuonPrecision precision : {MuonPrecision::bf16, MuonPrecision::f32}) {
            for (const int steps : {0, 1, 5}) {
                const std::vector<float> input =
                    random_floats(shape.batch * shape.rows * shape.cols, 0.3, 7 + static_cast<std::uint64_t>(cases));
                std::vector<float> replay = input;
                replay_newton_schulz_batched(replay, shape.batch, shape.rows, shape.cols, steps,
                                             cuda_precision(precision), blas_gemm);
                const std::vector<float> expected =
                    cpu_newton_schulz_batched(input, shape.batch, shape.rows, shape.cols, steps, precision);
                // Without iterations there is no GEMM: bitwise whatever the orientation.
                const bool tall = steps > 0 && muon_is_tall(shape.rows, shape.cols);
                expect_replay_matches(replay, expected, tall, precision, 1.0, shape_label(shape, precision, steps));
                ++cases;
            }
        }
    }
    EXPECT_EQ(cases, 66);
}

TEST(MuonMath, NewtonSchulzUnderAnotherAccumulationOrderStaysWithinTheGpuBound) {
    // The test shapes plus two of a seed's MLP aspect (4:1) at a size where bf16 roundings do flip.
    std::vector<NewtonSchulzShape> shapes = kNewtonSchulzShapes;
    shapes.push_back({1, 96, 384});
    shapes.push_back({1, 384, 96});
    for (const NewtonSchulzShape& shape : shapes) {
        for (const MuonPrecision precision : {MuonPrecision::bf16, MuonPrecision::f32}) {
            const std::vector<float> input = random_floats(shape.batch * shape.rows * shape.cols, 0.3, 99);
            std::vector<float> replay = input;
            replay_newton_schulz_batched(replay, shape.batch, shape.rows, shape.cols, 5, cuda_precision(precision),
                                         reversed_loop_gemm);
            const std::vector<float> expected =
                cpu_newton_schulz_batched(input, shape.batch, shape.rows, shape.cols, 5, precision);
            const NewtonSchulzBound measured = deviation(replay, expected);
            EXPECT_LE(measured.max_relative, order_bound(precision).max_relative) << shape_label(shape, precision, 5);
            EXPECT_LE(measured.frobenius_relative, order_bound(precision).frobenius_relative)
                << shape_label(shape, precision, 5);
            char text[64];
            std::snprintf(text, sizeof text, "max %.3g frobenius %.3g", measured.max_relative,
                          measured.frobenius_relative);
            RecordProperty(shape_label(shape, precision, 5), text);
        }
    }
}

// --- Muon::step ----------------------------------------------------------------------------------------------------

// One parameter of the replayed optimizer: its values and momentum buffer as host vectors.
struct ReplayParam {
    Shape shape;
    std::vector<float> value;
    std::vector<float> buffer;  // empty until the first step with a gradient
};

// One Muon group as optim_muon_step_cuda runs it: every momentum into its slot of a per-shape batch, one batched
// Newton–Schulz per shape, then every update. grads[i] empty: no gradient this step.
void replay_muon_group_step(std::vector<ReplayParam>& params, const std::vector<std::vector<float>>& grads,
                            const MuonOptions& options) {
    const MuonUpdateOptions update = optim_muon_update_options(options);
    const MuonMomentumConstants momentum = muon_momentum_constants(update);
    struct Slot {
        std::size_t index;
        std::int64_t first;
        std::int64_t count;
    };
    std::map<std::pair<std::int64_t, std::int64_t>, std::vector<Slot>> batches;
    for (std::size_t index = 0; index < params.size(); ++index) {
        if (grads[index].empty()) continue;
        const Shape& shape = params[index].shape;
        const bool bank = shape.size() == 3;
        std::vector<Slot>& slots = batches[{shape[shape.size() - 2], shape.back()}];
        const std::int64_t first = slots.empty() ? 0 : slots.back().first + slots.back().count;
        slots.push_back(Slot{index, first, bank ? shape[0] : 1});
    }
    for (const auto& [shape, slots] : batches) {
        const auto [rows, cols] = shape;
        const std::int64_t matrices = slots.back().first + slots.back().count;
        std::vector<float> directions(static_cast<std::size_t>(matrices * rows * cols));
        for (const Slot& slot : slots) {
            ReplayParam& param = params[slot.index];
            if (param.buffer.empty()) param.buffer.assign(param.value.size(), 0.0f);
            const std::size_t offset = static_cast<std::size_t>(slot.first * rows * cols);
            for (std::size_t e = 0; e < param.value.size(); ++e) {
                directions[offset + e] = muon_momentum_element(grads[slot.index][e], param.buffer[e], momentum);
            }
        }
        replay_newton_schulz_batched(directions, matrices, rows, cols, options.backend_steps, update.precision,
                                     blas_gemm);
        const MuonApplyConstants apply = muon_apply_constants(update, rows, cols);
        for (const Slot& slot : slots) {
            ReplayParam& param = params[slot.index];
            const std::size_t offset = static_cast<std::size_t>(slot.first * rows * cols);
            for (std::size_t e = 0; e < param.value.size(); ++e) {
                muon_apply_element(param.value[e], directions[offset + e], apply);
            }
        }
    }
}

using test::MuonConfig;

std::vector<MuonConfig> muon_configs() {
    std::vector<MuonConfig> configs = test::muon_grid_configs();
    // No decay at all (the multiply is skipped, as on the CPU), and no iterations (no GEMM: bitwise for every shape).
    MuonOptions no_decay;
    no_decay.lr = 0.05;
    configs.push_back({"bf16 no decay", no_decay});
    MuonOptions no_iterations;
    no_iterations.backend_steps = 0;
    no_iterations.precision = MuonPrecision::f32;
    no_iterations.weight_decay = 0.1;
    configs.push_back({"f32 no iterations", no_iterations});
    return configs;
}

// Three same-shape matrices, a bank of that shape (batched together with them), a tall matrix, a wide one of another
// shape, a matrix whose size takes the scalar path, and one that gets no gradient on odd steps.
const std::vector<std::pair<std::string, Shape>> kMuonParams = {
    {"a0", {16, 24}},   {"a1", {16, 24}},  {"bank", {3, 16, 24}}, {"a2", {16, 24}},
    {"tall", {40, 16}}, {"wide", {8, 32}}, {"odd", {5, 7}},       {"sometimes", {16, 24}}};

bool options_has_iterations(const MuonOptions& options) { return options.backend_steps > 0; }

TEST(MuonMath, GroupReplayEqualsMuonStep) {
    constexpr int kSteps = 3;
    int compared = 0;
    for (const MuonConfig& config : muon_configs()) {
        Muon muon;
        std::vector<OptimParam> optim_params;
        std::vector<ReplayParam> replay;
        std::uint64_t seed = 1000;
        for (const auto& [name, shape] : kMuonParams) {
            const std::vector<float> init = random_floats(shape_numel(shape), 0.5, seed++);
            optim_params.push_back({name, Tensor::from_floats(init, shape), Tensor()});
            replay.push_back({shape, init, {}});
        }
        muon.add_group(optim_params, config.options);
        for (int step = 0; step < kSteps; ++step) {
            // The trainer schedules lr and momentum per step.
            muon.set_lr(0, config.options.lr * (1.0 - 0.2 * step));
            muon.set_momentum(0, 0.85 + 0.04 * step);
            std::vector<std::vector<float>> grads;
            for (std::size_t i = 0; i < kMuonParams.size(); ++i) {
                OptimParam& param = muon.group_params(0)[i];
                if (kMuonParams[i].first == "sometimes" && step % 2 == 1) {
                    param.grad = Tensor();
                    grads.emplace_back();
                    continue;
                }
                grads.push_back(random_floats(param.value.numel(), 0.1, seed++));
                param.grad = Tensor::from_floats(grads.back(), param.value.shape());
            }
            muon.step();
            replay_muon_group_step(replay, grads, muon.options(0));
            const NamedTensors state = muon.state_tensors();
            for (std::size_t i = 0; i < kMuonParams.size(); ++i) {
                const std::string what = config.name + " step " + std::to_string(step) + " " + kMuonParams[i].first;
                // Each step moves a value by lr·√(rows/cols)·(direction), so a tall matrix's direction bound becomes
                // (steps so far)·lr·1.6 here.
                const Shape& shape = kMuonParams[i].second;
                const bool tall =
                    options_has_iterations(muon.options(0)) && muon_is_tall(shape[shape.size() - 2], shape.back());
                expect_replay_matches(replay[i].value, host_floats(muon.group_params(0)[i].value), tall,
                                      config.options.precision, (step + 1) * config.options.lr * 1.6, what + " value");
                for (const auto& [key, tensor] : state) {
                    if (key == kMuonParams[i].first + ".momentum_buffer") {
                        EXPECT_EQ(bit_mismatches(replay[i].buffer, host_floats(tensor)), 0) << what << " buffer";
                        ++compared;
                    }
                }
            }
        }
    }
    // 18 configurations × 8 parameters × 3 steps (the one skipped on odd steps has its buffer from step 0 on).
    EXPECT_EQ(compared, 18 * 8 * 3);
}

TEST(MuonMath, ApplyConstantsMirrorMuonStep) {
    MuonUpdateOptions options;
    options.lr = 0.02;
    options.weight_decay = 0.0;
    const MuonApplyConstants no_decay = muon_apply_constants(options, 2048, 512);
    EXPECT_FALSE(no_decay.decay_before);
    EXPECT_FALSE(no_decay.decay_after);
    EXPECT_EQ(no_decay.scale, 2.0f);
    EXPECT_TRUE(no_decay.bf16);
    options.weight_decay = 0.5;
    options.decay_order = CudaMuonDecayOrder::after_update;
    options.precision = CudaMuonPrecision::f32;
    const MuonApplyConstants after = muon_apply_constants(options, 512, 2048);
    EXPECT_FALSE(after.decay_before);
    EXPECT_TRUE(after.decay_after);
    EXPECT_EQ(after.decay, static_cast<float>(1.0 - 0.02 * 0.5));
    EXPECT_EQ(after.scale, 1.0f);  // wide matrices are not scaled
    EXPECT_FALSE(after.bf16);
    EXPECT_TRUE(muon_is_tall(3, 2));
    EXPECT_FALSE(muon_is_tall(2, 2));  // square works as wide, like the CPU loop
}

}  // namespace
}  // namespace pgolf
