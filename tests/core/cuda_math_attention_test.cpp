// CPU checks of the host-device arithmetic behind pgolf's CUDA attention kernels (core/cuda/attention_math.h), run on
// every machine: the tile geometry against brute force, and the kernels' schedules replayed on the host with the same
// functions (key tiles of 32 lanes, online softmax, butterfly warp sums) against attention_forward/backward in f64.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/cuda/attention_math.h"
#include "core/ops/attention.h"

namespace pgolf {
namespace {

using Lanes = std::array<float, 32>;

// cuda_warp_sum: every lane adds its partner's value at offsets 16, 8, 4, 2, 1 (all lanes end with lane 0's value).
float replay_warp_sum(Lanes lanes) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        Lanes next{};
        for (int lane = 0; lane < 32; ++lane) next[lane] = lanes[lane] + lanes[lane ^ offset];
        lanes = next;
    }
    return lanes[0];
}

struct ReplayCase {
    std::string name;
    std::int64_t batch, heads, kv_heads, seq_len, head_dim;
    double scale;
    bool causal;
    double input_scale;  // inputs uniform in ±input_scale: large ones make the running max move between tiles
    // max |replay − reference| / max(1, |reference|) of every output: f32 rounding of scores of order |s| shifts
    // each p by ~|s|·6e-8 relative, so the case with scores near 60 gets a wider bound.
    double tolerance = 2e-6;
};

// q: (B, H, T, Dh), k, v: (B, Hkv, T, Dh) as floats, the kernels' view of f32 inputs.
struct ReplayTensors {
    std::vector<float> q, k, v, dy;
};

std::vector<float> floats_of(const Tensor& tensor) {
    const Tensor single = tensor.to(DType::f32);
    return std::vector<float>(single.data<float>(), single.data<float>() + single.numel());
}

float effective_scale(const ReplayCase& c) {
    return static_cast<float>(c.scale == 0.0 ? 1.0 / std::sqrt(static_cast<double>(c.head_dim)) : c.scale);
}

struct ReplayForward {
    std::vector<float> y;    // (B, H, T, Dh)
    std::vector<float> lse;  // (B, H, T)
};

// attention_forward_kernel, one query row at a time (a row's arithmetic does not depend on the other rows of its
// block): the block's key tiles, the visible prefix of each, the warp max and butterfly sum, the rescaled output.
ReplayForward replay_forward(const ReplayCase& c, const ReplayTensors& in) {
    const std::int64_t T = c.seq_len, Dh = c.head_dim, group = c.heads / c.kv_heads;
    const auto dims = static_cast<int>(Dh);
    const float scale = effective_scale(c);
    ReplayForward out;
    out.y.assign(in.q.size(), 0.0f);
    out.lse.assign(static_cast<std::size_t>(c.batch * c.heads * T), 0.0f);
    for (std::int64_t bh = 0; bh < c.batch * c.heads; ++bh) {
        const std::int64_t kv_index = (bh / c.heads) * c.kv_heads + (bh % c.heads) / group;
        for (std::int64_t i = 0; i < T; ++i) {
            const float* q_row = &in.q[static_cast<std::size_t>((bh * T + i) * Dh)];
            const std::int64_t first_query = i / kAttentionBlockRows * kAttentionBlockRows;
            float row_max = -INFINITY;
            float row_sum = 0.0f;
            std::vector<float> output(static_cast<std::size_t>(Dh), 0.0f);
            const std::int64_t tiles = attention_key_tile_count(first_query, T, c.causal);
            for (std::int64_t tile = 0; tile < tiles; ++tile) {
                const std::int64_t tile_start = tile * kAttentionTileRows;
                const int visible = attention_visible_keys(i, tile_start, T, c.causal);
                if (visible == 0) continue;
                Lanes scores{};
                float tile_max = -INFINITY;
                for (int lane = 0; lane < 32; ++lane) {
                    const float* key = &in.k[static_cast<std::size_t>((kv_index * T + tile_start + lane) * Dh)];
                    scores[lane] = lane < visible ? attention_score(q_row, key, dims, scale) : -INFINITY;
                    tile_max = std::max(tile_max, scores[lane]);
                }
                const float new_max = std::fmax(row_max, tile_max);
                const float rescale = attention_rescale(row_max, new_max);
                Lanes weights{};
                for (int lane = 0; lane < 32; ++lane) weights[lane] = attention_weight(scores[lane], new_max);
                row_sum = attention_online_sum(row_sum, rescale, replay_warp_sum(weights));
                row_max = new_max;
                for (float& value : output) value *= rescale;
                for (int key = 0; key < visible; ++key) {
                    const float* value_row = &in.v[static_cast<std::size_t>((kv_index * T + tile_start + key) * Dh)];
                    for (int d = 0; d < dims; ++d) output[d] += weights[key] * value_row[d];
                }
            }
            const float inverse_sum = 1.0f / row_sum;
            for (int d = 0; d < dims; ++d) {
                out.y[static_cast<std::size_t>((bh * T + i) * Dh + d)] = output[d] * inverse_sum;
            }
            out.lse[static_cast<std::size_t>(bh * T + i)] = attention_lse(row_max, row_sum);
        }
    }
    return out;
}

struct ReplayGrads {
    std::vector<float> dq, dk, dv;
};

// attention_row_dot_kernel, attention_backward_query_kernel and attention_backward_key_kernel, row by row.
ReplayGrads replay_backward(const ReplayCase& c, const ReplayTensors& in, const ReplayForward& forward) {
    const std::int64_t T = c.seq_len, Dh = c.head_dim, group = c.heads / c.kv_heads;
    const auto dims = static_cast<int>(Dh);
    const float scale = effective_scale(c);
    const auto at = [Dh](std::int64_t head, std::int64_t row, std::int64_t seq_len) {
        return static_cast<std::size_t>((head * seq_len + row) * Dh);
    };

    // D_i: lane ℓ sums dims ℓ, ℓ + 32, …, then the butterfly.
    std::vector<float> row_dot(static_cast<std::size_t>(c.batch * c.heads * T));
    for (std::size_t row = 0; row < row_dot.size(); ++row) {
        Lanes partial{};
        for (int lane = 0; lane < 32; ++lane) {
            for (int d = lane; d < dims; d += 32) {
                partial[lane] +=
                    in.dy[row * static_cast<std::size_t>(Dh) + d] * forward.y[row * static_cast<std::size_t>(Dh) + d];
            }
        }
        row_dot[row] = replay_warp_sum(partial);
    }

    ReplayGrads grads;
    grads.dq.assign(in.q.size(), 0.0f);
    grads.dk.assign(in.k.size(), 0.0f);
    grads.dv.assign(in.v.size(), 0.0f);
    for (std::int64_t bh = 0; bh < c.batch * c.heads; ++bh) {
        const std::int64_t kv_index = (bh / c.heads) * c.kv_heads + (bh % c.heads) / group;
        for (std::int64_t i = 0; i < T; ++i) {
            const float* q_row = &in.q[at(bh, i, T)];
            const float* dy_row = &in.dy[at(bh, i, T)];
            const float lse = forward.lse[static_cast<std::size_t>(bh * T + i)];
            const float d_i = row_dot[static_cast<std::size_t>(bh * T + i)];
            std::vector<float> accumulated(static_cast<std::size_t>(Dh), 0.0f);
            const std::int64_t tiles =
                attention_key_tile_count(i / kAttentionBlockRows * kAttentionBlockRows, T, c.causal);
            for (std::int64_t tile = 0; tile < tiles; ++tile) {
                const std::int64_t tile_start = tile * kAttentionTileRows;
                const int visible = attention_visible_keys(i, tile_start, T, c.causal);
                Lanes score_gradient{};
                for (int lane = 0; lane < visible; ++lane) {
                    const float score = attention_score(q_row, &in.k[at(kv_index, tile_start + lane, T)], dims, scale);
                    const float dp = attention_dot(dy_row, &in.v[at(kv_index, tile_start + lane, T)], dims);
                    score_gradient[lane] = attention_score_gradient(attention_probability(score, lse), dp, d_i);
                }
                for (int key = 0; key < visible; ++key) {
                    const float* key_row = &in.k[at(kv_index, tile_start + key, T)];
                    for (int d = 0; d < dims; ++d) accumulated[d] += score_gradient[key] * key_row[d];
                }
            }
            for (int d = 0; d < dims; ++d) grads.dq[at(bh, i, T) + d] = scale * accumulated[d];
        }
    }

    for (std::int64_t kv_index = 0; kv_index < c.batch * c.kv_heads; ++kv_index) {
        const std::int64_t b = kv_index / c.kv_heads;
        const std::int64_t kv_head = kv_index % c.kv_heads;
        for (std::int64_t j = 0; j < T; ++j) {
            const float* key_row = &in.k[at(kv_index, j, T)];
            const float* value_row = &in.v[at(kv_index, j, T)];
            std::vector<float> key_gradient(static_cast<std::size_t>(Dh), 0.0f);
            std::vector<float> value_gradient(static_cast<std::size_t>(Dh), 0.0f);
            const std::int64_t first_tile =
                attention_first_query_tile(j / kAttentionBlockRows * kAttentionBlockRows, c.causal);
            const std::int64_t tiles = (T + kAttentionTileRows - 1) / kAttentionTileRows;
            for (std::int64_t g = 0; g < group; ++g) {
                const std::int64_t bh = b * c.heads + kv_head * group + g;
                for (std::int64_t tile = first_tile; tile < tiles; ++tile) {
                    const std::int64_t tile_start = tile * kAttentionTileRows;
                    const AttentionLaneRange queries = attention_visible_queries(j, tile_start, T, c.causal);
                    Lanes probability{};
                    Lanes score_gradient{};
                    for (int lane = queries.begin; lane < queries.end; ++lane) {
                        const std::int64_t i = tile_start + lane;
                        const float score = attention_score(&in.q[at(bh, i, T)], key_row, dims, scale);
                        probability[lane] =
                            attention_probability(score, forward.lse[static_cast<std::size_t>(bh * T + i)]);
                        const float dp = attention_dot(&in.dy[at(bh, i, T)], value_row, dims);
                        score_gradient[lane] = attention_score_gradient(probability[lane], dp,
                                                                        row_dot[static_cast<std::size_t>(bh * T + i)]);
                    }
                    for (int query = queries.begin; query < queries.end; ++query) {
                        const std::int64_t i = tile_start + query;
                        for (int d = 0; d < dims; ++d) {
                            value_gradient[d] += probability[query] * in.dy[at(bh, i, T) + d];
                            key_gradient[d] += score_gradient[query] * in.q[at(bh, i, T) + d];
                        }
                    }
                }
            }
            for (int d = 0; d < dims; ++d) {
                grads.dk[at(kv_index, j, T) + d] = scale * key_gradient[d];
                grads.dv[at(kv_index, j, T) + d] = value_gradient[d];
            }
        }
    }
    return grads;
}

// max |got − expected| / max(1, |expected|), the op harness's measure.
double worst_relative(const std::vector<float>& got, const Tensor& expected) {
    EXPECT_EQ(static_cast<std::int64_t>(got.size()), expected.numel());
    double worst = 0.0;
    for (std::int64_t n = 0; n < expected.numel(); ++n) {
        const double reference = expected.item(n);
        const double error = std::abs(static_cast<double>(got[static_cast<std::size_t>(n)]) - reference) /
                             std::max(1.0, std::abs(reference));
        worst = std::isnan(error) ? INFINITY : std::max(worst, error);
    }
    return worst;
}

const std::vector<ReplayCase>& replay_cases() {
    static const std::vector<ReplayCase> cases = {
        // Several tiles, the last one partial, GQA, a head dim under one lane's share.
        {"gqa_t70_d8", 2, 4, 2, 70, 8, 0.0, true, 1.0},
        // Two register slots per lane, the second partly used; an explicit scale.
        {"gqa_t45_d40_scale0p7", 1, 6, 3, 45, 40, 0.7, true, 1.0},
        {"noncausal_t33_d4", 1, 2, 1, 33, 4, 0.0, false, 1.0},
        {"noncausal_t70_d8_mqa", 1, 4, 1, 70, 8, 0.0, false, 1.0},
        // Scores up to ±60: the running max moves between tiles and the rescale matters.
        {"large_scores_t100_d16", 1, 2, 2, 100, 16, 0.0, true, 4.0, 1e-5},
        // The seeds' head dims at a short length.
        {"baseline_dims_t64_d64", 1, 4, 2, 64, 64, 0.0, true, 1.0},
        {"s1_dims_t40_d32", 1, 4, 1, 40, 32, 0.0, true, 1.0},
        {"t1", 2, 2, 1, 1, 4, 0.0, true, 1.0},
    };
    return cases;
}

// Uniform in ±range, rounded to f32 and held in f64 (what the reference gets for f32 inputs).
Tensor random_tensor(const Shape& shape, std::uint64_t seed, double range) {
    std::mt19937_64 generator(seed);
    std::uniform_real_distribution<double> uniform(-range, range);
    Tensor tensor = Tensor::empty(shape, DType::f64);
    for (std::int64_t n = 0; n < tensor.numel(); ++n) tensor.data<double>()[n] = static_cast<float>(uniform(generator));
    return tensor;
}

struct ReplayInputsAndReference {
    ReplayTensors floats;
    std::vector<Tensor> reference_inputs;  // q, k, v, dy: the same f32 values in f64
};

ReplayInputsAndReference replay_inputs(const ReplayCase& c, std::uint64_t seed) {
    const Shape q_shape = {c.batch, c.heads, c.seq_len, c.head_dim};
    const Shape kv_shape = {c.batch, c.kv_heads, c.seq_len, c.head_dim};
    ReplayInputsAndReference out;
    for (const Shape& shape : {q_shape, kv_shape, kv_shape, q_shape}) {
        const double range = out.reference_inputs.size() == 3 ? 1.0 : c.input_scale;
        out.reference_inputs.push_back(random_tensor(shape, seed++, range));
    }
    out.floats.q = floats_of(out.reference_inputs[0]);
    out.floats.k = floats_of(out.reference_inputs[1]);
    out.floats.v = floats_of(out.reference_inputs[2]);
    out.floats.dy = floats_of(out.reference_inputs[3]);
    return out;
}

// --- tile geometry -----------------------------------------------------------------------------------------------

// Over the tiles a query's block visits, the visible prefixes are exactly the keys j < T with j ≤ i (causal) or all;
// over the tiles a key's block visits, the visible lanes are exactly the queries i < T with i ≥ j (causal) or all,
// and the tiles it skips hold no such query.
TEST(CudaMathAttention, TileGeometryCoversExactlyTheVisiblePairs) {
    int pairs_checked = 0;
    for (const std::int64_t T : {1, 5, 15, 16, 17, 31, 32, 33, 64, 70, 100}) {
        for (const bool causal : {true, false}) {
            const std::int64_t all_tiles = (T + kAttentionTileRows - 1) / kAttentionTileRows;
            // Queries, including the padding rows of the last block.
            const std::int64_t padded = (T + kAttentionBlockRows - 1) / kAttentionBlockRows * kAttentionBlockRows;
            for (std::int64_t i = 0; i < padded; ++i) {
                const std::int64_t tiles =
                    attention_key_tile_count(i / kAttentionBlockRows * kAttentionBlockRows, T, causal);
                EXPECT_LE(tiles, all_tiles);
                std::vector<int> seen(static_cast<std::size_t>(T), 0);
                for (std::int64_t tile = 0; tile < tiles; ++tile) {
                    const int visible = attention_visible_keys(i, tile * kAttentionTileRows, T, causal);
                    ASSERT_GE(visible, 0);
                    ASSERT_LE(visible, kAttentionTileRows);
                    for (int lane = 0; lane < visible; ++lane) ++seen[static_cast<std::size_t>(tile * 32 + lane)];
                }
                for (std::int64_t j = 0; j < T; ++j) {
                    const int expected = i < T && (!causal || j <= i) ? 1 : 0;
                    EXPECT_EQ(seen[static_cast<std::size_t>(j)], expected) << "T " << T << " i " << i << " j " << j;
                    ++pairs_checked;
                }
            }
            for (std::int64_t j = 0; j < padded; ++j) {
                const std::int64_t first_tile =
                    attention_first_query_tile(j / kAttentionBlockRows * kAttentionBlockRows, causal);
                std::vector<int> seen(static_cast<std::size_t>(T), 0);
                for (std::int64_t tile = 0; tile < all_tiles; ++tile) {
                    const AttentionLaneRange queries =
                        attention_visible_queries(j, tile * kAttentionTileRows, T, causal);
                    if (tile < first_tile) {
                        // Skipped by the kernel: nothing in it may see key j.
                        for (std::int64_t i = tile * 32; i < std::min(T, tile * 32 + 32); ++i) {
                            EXPECT_TRUE(j >= T || (causal && i < j)) << "T " << T << " j " << j << " i " << i;
                        }
                        continue;
                    }
                    ASSERT_GE(queries.begin, 0);
                    ASSERT_LE(queries.end, kAttentionTileRows);
                    for (int lane = queries.begin; lane < queries.end; ++lane) {
                        ++seen[static_cast<std::size_t>(tile * 32 + lane)];
                    }
                }
                for (std::int64_t i = 0; i < T; ++i) {
                    const int expected = j < T && (!causal || i >= j) ? 1 : 0;
                    EXPECT_EQ(seen[static_cast<std::size_t>(i)], expected) << "T " << T << " j " << j << " i " << i;
                    ++pairs_checked;
                }
            }
        }
    }
    EXPECT_EQ(pairs_checked, 2 * 2 *
                                 (1 * 16 + 5 * 16 + 15 * 16 + 16 * 16 + 17 * 32 + 31 * 32 + 32 * 32 + 33 * 48 +
                                  64 * 64 + 70 * 80 + 100 * 112));
}

TEST(CudaMathAttention, OnlineSoftmaxPiecesAndRegisterSlots) {
    // Nothing seen yet rescales to 0 (never NaN), masked lanes weigh 0, one visible key gives lse = its score.
    EXPECT_EQ(attention_rescale(-INFINITY, -INFINITY), 0.0f);
    EXPECT_EQ(attention_rescale(-INFINITY, 2.0f), 0.0f);
    EXPECT_EQ(attention_rescale(2.0f, 2.0f), 1.0f);
    EXPECT_EQ(attention_weight(-INFINITY, -INFINITY), 0.0f);
    EXPECT_EQ(attention_weight(1.5f, 1.5f), 1.0f);
    EXPECT_EQ(attention_lse(1.5f, 1.0f), 1.5f);
    EXPECT_NEAR(attention_lse(0.0f, 3.0f), std::log(3.0), 1e-7);
    EXPECT_EQ(attention_online_sum(0.0f, 0.0f, 2.5f), 2.5f);
    EXPECT_EQ(attention_score_gradient(0.5f, 3.0f, 1.0f), 1.0f);
    const std::vector<float> a = {1.0f, 2.0f, -3.0f};
    const std::vector<float> b = {4.0f, 0.5f, 1.0f};
    EXPECT_EQ(attention_dot(a.data(), b.data(), 3), 2.0f);
    EXPECT_EQ(attention_score(a.data(), b.data(), 3, 0.25f), 0.5f);
    for (int head_dim = 1; head_dim <= kAttentionMaxHeadDim; ++head_dim) {
        const int slots = attention_dims_per_lane(head_dim);
        EXPECT_GE(32 * slots, head_dim);
        EXPECT_TRUE(slots == 1 || 32 * slots / 2 < head_dim) << head_dim;  // the smallest power of two that fits
    }
    EXPECT_EQ(attention_dims_per_lane(kAttentionMaxHeadDim + 1), 0);
    EXPECT_EQ(attention_shared_stride(64), 65);
}

// --- replayed kernels against the reference ----------------------------------------------------------------------

// f32 arithmetic over at most 100 keys: a few f32 ulps of the largest terms (bounds: ReplayCase::tolerance).
TEST(CudaMathAttention, ForwardReplayMatchesTheReference) {
    int cases_checked = 0;
    std::uint64_t seed = 900;
    for (const ReplayCase& c : replay_cases()) {
        const ReplayInputsAndReference inputs = replay_inputs(c, seed);
        seed += 10;
        const std::vector<Tensor>& ref = inputs.reference_inputs;
        const AttentionResult expected = attention_forward(ref[0], ref[1], ref[2], c.scale, c.causal);
        const ReplayForward got = replay_forward(c, inputs.floats);
        EXPECT_LE(worst_relative(got.y, expected.y), c.tolerance) << c.name;
        EXPECT_LE(worst_relative(got.lse, expected.lse), c.tolerance) << c.name;
        ++cases_checked;
    }
    EXPECT_EQ(cases_checked, 8);
}

TEST(CudaMathAttention, BackwardReplayMatchesTheReference) {
    int cases_checked = 0;
    std::uint64_t seed = 900;
    for (const ReplayCase& c : replay_cases()) {
        const ReplayInputsAndReference inputs = replay_inputs(c, seed);
        seed += 10;
        const std::vector<Tensor>& ref = inputs.reference_inputs;
        const AttentionResult expected_forward = attention_forward(ref[0], ref[1], ref[2], c.scale, c.causal);
        const AttentionGrads expected =
            attention_backward(ref[0], ref[1], ref[2], expected_forward, ref[3], c.scale, c.causal);
        const ReplayForward forward = replay_forward(c, inputs.floats);
        const ReplayGrads got = replay_backward(c, inputs.floats, forward);
        // dk/dv sum over up to 3 heads × 100 queries: a few times the forward's bound.
        EXPECT_LE(worst_relative(got.dq, expected.dq), 3 * c.tolerance) << c.name;
        EXPECT_LE(worst_relative(got.dk, expected.dk), 3 * c.tolerance) << c.name;
        EXPECT_LE(worst_relative(got.dv, expected.dv), 3 * c.tolerance) << c.name;
        ++cases_checked;
    }
    EXPECT_EQ(cases_checked, 8);
}

// The backward bounds are not vacuous: an lse off by 0.01 (p off by 1%) shows far above them.
TEST(CudaMathAttention, BackwardReplayDetectsAWrongLse) {
    const ReplayCase c = {"gqa_t70_d8", 1, 2, 1, 70, 8, 0.0, true, 1.0};
    const ReplayInputsAndReference inputs = replay_inputs(c, 950);
    const std::vector<Tensor>& ref = inputs.reference_inputs;
    const AttentionResult expected_forward = attention_forward(ref[0], ref[1], ref[2], c.scale, c.causal);
    const AttentionGrads expected =
        attention_backward(ref[0], ref[1], ref[2], expected_forward, ref[3], c.scale, c.causal);
    ReplayForward forward = replay_forward(c, inputs.floats);
    EXPECT_LE(worst_relative(replay_backward(c, inputs.floats, forward).dv, expected.dv), 6e-6);
    for (float& value : forward.lse) value += 0.01f;
    EXPECT_GT(worst_relative(replay_backward(c, inputs.floats, forward).dv, expected.dv), 1e-3);
}

}  // namespace
}  // namespace pgolf
