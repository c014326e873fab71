// CPU checks of the host-device arithmetic behind the CUDA loss, reduction and fake-quant kernels
// (core/cuda/{loss,reduce,fake_quant}_math.h), run on every machine: each kernel's schedule is replayed on the host
// with the same functions and compared with the CPU reference ops.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/cuda/fake_quant_math.h"
#include "core/cuda/loss_math.h"
#include "core/cuda/reduce_math.h"
#include "core/ops/elementwise.h"
#include "core/ops/fake_quant.h"
#include "core/ops/loss.h"
#include "core/ops/norm.h"
#include "tests/core/op_harness.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using test::float_bits;
using test::random_floats;

// --- cross-entropy -----------------------------------------------------------------------------------------------

// The kernel's butterfly over one warp: the lane whose offset bit is clear passes its own state first.
SoftmaxState replay_warp_merge(std::vector<SoftmaxState> lanes) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        std::vector<SoftmaxState> next(32);
        for (int lane = 0; lane < 32; ++lane) {
            const SoftmaxState other = lanes[static_cast<std::size_t>(lane ^ offset)];
            const SoftmaxState own = lanes[static_cast<std::size_t>(lane)];
            next[static_cast<std::size_t>(lane)] =
                (lane & offset) == 0 ? softmax_state_merge(own, other) : softmax_state_merge(other, own);
        }
        lanes = next;
    }
    return lanes[0];
}

// One row block of cross_entropy_rows_kernel on f32 logits: each thread adds its 16-byte vectors (4 floats) in
// grid-stride order (single elements when V is not a multiple of 4), warps merge by butterfly, warp 0 merges the
// warps' states.
SoftmaxState replay_row_state(const std::vector<float>& row, float cap) {
    const auto vocab = static_cast<std::int64_t>(row.size());
    const int threads = cross_entropy_block_threads(vocab);
    const int width = vocab % 4 == 0 ? 4 : 1;
    std::vector<SoftmaxState> states(static_cast<std::size_t>(threads), softmax_state_empty());
    for (int t = 0; t < threads; ++t) {
        for (std::int64_t v = t; v < vocab / width; v += threads) {
            for (int k = 0; k < width; ++k) {
                const float z = softcap_logit(row[static_cast<std::size_t>(v * width + k)], cap);
                states[static_cast<std::size_t>(t)] = softmax_state_add(states[static_cast<std::size_t>(t)], z);
            }
        }
    }
    std::vector<SoftmaxState> warp_states(32, softmax_state_empty());
    for (int warp = 0; warp < threads / 32; ++warp) {
        warp_states[static_cast<std::size_t>(warp)] =
            replay_warp_merge(std::vector<SoftmaxState>(states.begin() + warp * 32, states.begin() + warp * 32 + 32));
    }
    return replay_warp_merge(warp_states);
}

struct CrossEntropyRowCase {
    std::string name;
    std::int64_t vocab;
    double low;
    double high;
    float cap;
};

// Rows through the replayed kernel against softcap_cross_entropy_forward/backward in f64 on the same f32 logits. The
// bounds are f32 rounding: the softcapped logits reach ±30 (one ulp 1.9e-6) and tanhf/expf/logf are within ~1 ulp.
TEST(CudaMathLoss, OnlineSoftmaxRowMatchesTheReference) {
    const std::vector<CrossEntropyRowCase> cases = {
        {"v1024_cap30", 1024, -20.0, 20.0, 30.0f},
        {"v8192_cap30", 8192, -20.0, 20.0, 30.0f},
        {"v8192_cap30_saturated", 8192, -1000.0, 1000.0, 30.0f},
        {"v1001_cap5_scalar_path", 1001, -8.0, 8.0, 5.0f},
        {"v10_cap30", 10, -5.0, 5.0, 30.0f},
        {"v8192_cap0", 8192, -30.0, 30.0, 0.0f},
        {"v1024_cap0_large", 1024, -80.0, 80.0, 0.0f},
        {"v1024_cap0_offset_1e4", 1024, 1e4 - 20.0, 1e4 + 20.0, 0.0f},
    };
    int rows_checked = 0;
    for (std::size_t c = 0; c < cases.size(); ++c) {
        const CrossEntropyRowCase& row_case = cases[c];
        const std::int64_t n = 4;
        const std::int64_t vocab = row_case.vocab;
        const std::vector<float> values =
            random_floats(static_cast<std::size_t>(n * vocab), row_case.low, row_case.high, 700 + c);
        std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
        for (std::int64_t i = 0; i < n; ++i) ids[static_cast<std::size_t>(i)] = (i * 7919 + 13) % vocab;
        std::vector<double> dnll_values = {0.5, -1.25, 2.0, 1.0 / 3.0};
        const Tensor logits = Tensor::from_floats(values, {n, vocab}).to(DType::f64);
        const Tensor targets = Tensor::from_ids(ids, {n});
        const Tensor dnll = Tensor::from_values(dnll_values, {n}, DType::f32).to(DType::f64);
        const Tensor nll = softcap_cross_entropy_forward(logits, targets, row_case.cap);
        const Tensor dlogits = softcap_cross_entropy_backward(logits, targets, dnll, row_case.cap);
        for (std::int64_t i = 0; i < n; ++i) {
            const std::vector<float> row(values.begin() + i * vocab, values.begin() + (i + 1) * vocab);
            const std::int64_t target = ids[static_cast<std::size_t>(i)];
            const SoftmaxState state = replay_row_state(row, row_case.cap);
            const float got_nll =
                softmax_nll(state, softcap_logit(row[static_cast<std::size_t>(target)], row_case.cap));
            const double expected_nll = nll.item(i);
            EXPECT_NEAR(got_nll, expected_nll, 4e-6 * std::max(1.0, std::abs(expected_nll)))
                << row_case.name << " row " << i;
            const float inverse_sum = 1.0f / state.sum;
            const auto scale = static_cast<float>(dnll.item(i));
            double worst = 0.0;
            for (std::int64_t j = 0; j < vocab; ++j) {
                const float got = softcap_logit_gradient(row[static_cast<std::size_t>(j)], row_case.cap, state,
                                                         inverse_sum, j == target, scale);
                worst = std::max(worst, std::abs(got - dlogits.item(i * vocab + j)));
            }
            // Gradients are probabilities (≤ 1) times |dnll| ≤ 2: a few f32 ulps of 1.
            EXPECT_LE(worst, 1e-6) << row_case.name << " row " << i;
            ++rows_checked;
        }
    }
    EXPECT_EQ(rows_checked, 32);
}

TEST(CudaMathLoss, SoftmaxStateMergeIsTheStateOfTheUnion) {
    const std::vector<float> z = random_floats(1000, -30.0, 30.0, 731);
    SoftmaxState whole = softmax_state_empty();
    for (const float value : z) whole = softmax_state_add(whole, value);
    for (const std::size_t split : {std::size_t{0}, std::size_t{1}, std::size_t{417}, std::size_t{999}, z.size()}) {
        SoftmaxState first = softmax_state_empty();
        SoftmaxState second = softmax_state_empty();
        for (std::size_t j = 0; j < z.size(); ++j) {
            if (j < split) {
                first = softmax_state_add(first, z[j]);
            } else {
                second = softmax_state_add(second, z[j]);
            }
        }
        const SoftmaxState merged = softmax_state_merge(first, second);
        const SoftmaxState swapped = softmax_state_merge(second, first);
        EXPECT_EQ(merged.max, whole.max) << "split " << split;
        EXPECT_NEAR(merged.sum, whole.sum, 1e-5 * whole.sum) << "split " << split;
        EXPECT_EQ(swapped.max, merged.max) << "split " << split;
        EXPECT_NEAR(swapped.sum, merged.sum, 1e-6 * merged.sum) << "split " << split;
    }
    // The empty state is the identity, bit for bit, on either side; a −inf logit adds nothing.
    const SoftmaxState empty = softmax_state_empty();
    EXPECT_EQ(float_bits(softmax_state_merge(empty, whole).sum), float_bits(whole.sum));
    EXPECT_EQ(float_bits(softmax_state_merge(whole, empty).sum), float_bits(whole.sum));
    EXPECT_EQ(float_bits(softmax_state_add(whole, -INFINITY).sum), float_bits(whole.sum));
    EXPECT_EQ(softmax_state_merge(empty, empty).max, -INFINITY);
    // A single logit: sum 1 at max = z; a NaN logit poisons the sum.
    const SoftmaxState single = softmax_state_add(empty, 3.5f);
    EXPECT_EQ(single.max, 3.5f);
    EXPECT_EQ(single.sum, 1.0f);
    EXPECT_TRUE(std::isnan(softmax_state_add(single, std::numeric_limits<float>::quiet_NaN()).sum));
}

TEST(CudaMathLoss, SoftcapAndBlockSize) {
    EXPECT_EQ(softcap_logit(12.0f, 0.0f), 12.0f);
    EXPECT_EQ(softcap_logit(-1e9f, 30.0f), -30.0f);
    EXPECT_NEAR(softcap_logit(15.0f, 30.0f), 30.0 * std::tanh(0.5), 4e-6);
    EXPECT_EQ(cross_entropy_block_threads(1024), 128);
    EXPECT_EQ(cross_entropy_block_threads(8192), 1024);
    EXPECT_EQ(cross_entropy_block_threads(50000), 1024);
    EXPECT_EQ(cross_entropy_block_threads(2), 32);
    EXPECT_EQ(cross_entropy_block_threads(1001), 128);
}

// --- fake quantization -------------------------------------------------------------------------------------------

// fake_quant_rows_kernel's arithmetic on the host: the row's absmax and NaN flag, its scale, then every element.
Tensor replay_fake_quant(const Tensor& w, const FakeQuantSpec& spec) {
    const std::int64_t rows = w.size(0);
    const std::int64_t cols = w.size(1);
    const float* in = w.data<float>();
    std::vector<float> out(static_cast<std::size_t>(w.numel()));
    for (std::int64_t r = 0; r < rows; ++r) {
        float row_max = 0.0f;
        bool has_nan = false;
        for (std::int64_t c = 0; c < cols; ++c) {
            row_max = fake_quant_absmax(row_max, in[r * cols + c]);
            has_nan = has_nan || std::isnan(in[r * cols + c]);
        }
        const float scale =
            fake_quant_scale(row_max, has_nan, static_cast<float>(spec.divisor), static_cast<float>(spec.scale_floor));
        for (std::int64_t c = 0; c < cols; ++c) {
            out[static_cast<std::size_t>(r * cols + c)] = fake_quant_element(
                in[r * cols + c], scale, static_cast<float>(spec.min_q), static_cast<float>(spec.max_q));
        }
    }
    return Tensor::from_floats(out, w.shape());
}

// Same bits, except that any NaN matches any NaN.
void expect_same_floats(const Tensor& got, const Tensor& expected, const std::string& what) {
    ASSERT_EQ(got.shape(), expected.shape()) << what;
    const float* a = got.data<float>();
    const float* b = expected.data<float>();
    int mismatches = 0;
    for (std::int64_t i = 0; i < got.numel(); ++i) {
        const bool same = (std::isnan(a[i]) && std::isnan(b[i])) || float_bits(a[i]) == float_bits(b[i]);
        if (!same && ++mismatches <= 5) ADD_FAILURE() << what << " element " << i << ": " << a[i] << " vs " << b[i];
    }
    EXPECT_EQ(mismatches, 0) << what;
}

const FakeQuantSpec kSpecS1{-32, 31, 31.0, 1e-8};
const FakeQuantSpec kSpecS2{-31, 31, 31.0, 1.0 / 31.0};

TEST(CudaMathFakeQuant, RandomRowsMatchTheReferenceBitForBit) {
    struct Case {
        const char* name;
        FakeQuantSpec spec;
        double scale;
    };
    const std::vector<Case> cases = {{"s1_weights", kSpecS1, 0.05},     {"s1_wide", kSpecS1, 3.0},
                                     {"s1_tiny_floor", kSpecS1, 1e-10}, {"s2_weights", kSpecS2, 2.0},
                                     {"s2_floor", kSpecS2, 0.5},        {"clamp_divisor_15", {-8, 7, 15.0, 1e-8}, 1.0}};
    for (std::size_t c = 0; c < cases.size(); ++c) {
        const Tensor w =
            Tensor::from_floats(random_floats(64 * 512, -cases[c].scale, cases[c].scale, 800 + c), {64, 512});
        expect_same_floats(replay_fake_quant(w, cases[c].spec), fake_quantize_rows(w, cases[c].spec), cases[c].name);
    }
}

// Rows built so that w/s lands exactly on k + 0.5 (s a power of two): round half to even, including −0.5 → −0.
TEST(CudaMathFakeQuant, TiesRoundHalfToEven) {
    for (const auto& [spec, scale] : {std::pair{kSpecS1, 1.0f / 32.0f}, std::pair{kSpecS2, 1.0f / 16.0f}}) {
        std::vector<float> row;
        row.push_back(31.0f * scale);  // the absmax: s = 31·scale/31 = scale exactly
        for (int k = -31; k <= 30; ++k) row.push_back((static_cast<float>(k) + 0.5f) * scale);
        const Tensor w = Tensor::from_floats(row, {1, static_cast<std::int64_t>(row.size())});
        const Tensor expected = fake_quantize_rows(w, spec);
        expect_same_floats(replay_fake_quant(w, spec), expected, "ties");
        const float s = scale;
        EXPECT_EQ(fake_quant_element(2.5f * s, s, -32.0f, 31.0f), 2.0f * s);
        EXPECT_EQ(fake_quant_element(3.5f * s, s, -32.0f, 31.0f), 4.0f * s);
        EXPECT_EQ(fake_quant_element(-2.5f * s, s, -32.0f, 31.0f), -2.0f * s);
        EXPECT_EQ(float_bits(fake_quant_element(-0.5f * s, s, -32.0f, 31.0f)), float_bits(-0.0f));
    }
}

TEST(CudaMathFakeQuant, NanRowsAndClampingMatchTheReference) {
    std::vector<float> values = random_floats(3 * 16, -1.0, 1.0, 851);
    values[16 + 5] = std::numeric_limits<float>::quiet_NaN();  // row 1 holds a NaN: the whole row is NaN
    values[32 + 3] = INFINITY;                                 // row 2: an infinite absmax
    const Tensor w = Tensor::from_floats(values, {3, 16});
    expect_same_floats(replay_fake_quant(w, kSpecS1), fake_quantize_rows(w, kSpecS1), "nan and inf rows");
    EXPECT_TRUE(std::isnan(fake_quant_scale(1.0f, true, 31.0f, 1e-8f)));
    EXPECT_EQ(fake_quant_scale(0.0f, false, 31.0f, 1.0f / 31.0f), 1.0f / 31.0f);
    EXPECT_EQ(fake_quant_element(100.0f, 1.0f, -8.0f, 7.0f), 7.0f);
    EXPECT_EQ(fake_quant_element(-100.0f, 1.0f, -8.0f, 7.0f), -8.0f);
}

// --- reductions --------------------------------------------------------------------------------------------------

// reduce_partials_kernel and reduce_final_kernel on the host for f32 tensors: per block, each of kReduceThreads
// threads sums its grid-stride slice of 4-float vectors (or single floats) in fp32, the block adds its threads'
// sums in fp32 (the device adds them by butterfly; the order is the only difference), and the partials are added in
// double.
double replay_reduction(const std::vector<Tensor>& tensors, bool square) {
    double total = 0.0;
    for (const Tensor& tensor : tensors) {
        const float* x = tensor.data<float>();
        const std::int64_t count = tensor.numel();
        if (count == 0) continue;
        const std::int64_t blocks = reduce_partial_count(count);
        const int width = count % 4 == 0 ? 4 : 1;
        const std::int64_t stride = blocks * kReduceThreads;
        for (std::int64_t block = 0; block < blocks; ++block) {
            float partial = 0.0f;
            for (int thread = 0; thread < kReduceThreads; ++thread) {
                float sum = 0.0f;
                for (std::int64_t v = block * kReduceThreads + thread; v < count / width; v += stride) {
                    for (int k = 0; k < width; ++k) sum = reduce_accumulate(sum, x[v * width + k], square);
                }
                partial += sum;
            }
            total = reduce_combine_partial(total, partial);
        }
    }
    return total;
}

TEST(CudaMathReduce, PartialsCombineToGlobalNorm) {
    const std::vector<std::vector<Shape>> lists = {
        {{512, 1536}, {1536, 512}, {512}}, {{1001, 333}, {7}}, {{3, 4}, {5}}, {{1}}, {{4096, 1024}}};
    for (std::size_t l = 0; l < lists.size(); ++l) {
        std::vector<Tensor> tensors;
        for (std::size_t t = 0; t < lists[l].size(); ++t) {
            tensors.push_back(test::op_harness_random(lists[l][t], 900 + 10 * l + t).to(DType::f32));
        }
        const double expected = global_norm(tensors);
        const double got = std::sqrt(replay_reduction(tensors, true));
        // fp32 partials of positive terms: relative error of a few ulps of f32.
        EXPECT_NEAR(got, expected, 1e-6 * expected) << "list " << l;
    }
}

// sum_all's full-scale harness cases (same inputs) stay within the harness's f32 tolerance of 1e-5 relative to
// max(1, |sum|) with the kernel's fp32 partials.
TEST(CudaMathReduce, PartialsCombineToSumAll) {
    const std::vector<std::pair<Shape, std::uint64_t>> inputs = {
        {{1024, 1536}, 311}, {{1001, 777}, 313}, {{3, 4, 5}, 57}, {{1}, 5}};
    for (const auto& [shape, seed] : inputs) {
        const Tensor x = test::op_harness_random(shape, seed);
        const double expected = sum_all(x).item();
        const double got = static_cast<float>(replay_reduction({x.to(DType::f32)}, false));
        EXPECT_LE(std::abs(got - expected) / std::max(1.0, std::abs(expected)), 1e-5) << "seed " << seed;
    }
}

TEST(CudaMathReduce, PartialCountAndClipCoefficient) {
    EXPECT_EQ(reduce_partial_count(0), 1);
    EXPECT_EQ(reduce_partial_count(1), 1);
    EXPECT_EQ(reduce_partial_count(1024), 1);
    EXPECT_EQ(reduce_partial_count(1025), 2);
    EXPECT_EQ(reduce_partial_count(512 * 1536), 768);
    EXPECT_EQ(reduce_partial_count(std::int64_t{1} << 30), kReduceMaxBlocks);
    EXPECT_EQ(clip_grad_coefficient(1.0, 4.0), 1.0 / (4.0 + 1e-6));
    EXPECT_GT(clip_grad_coefficient(1.0, 0.5), 1.0);
}

}  // namespace
}  // namespace pgolf
