// Per-element and per-row arithmetic of pgolf's own attention kernels (core/cuda/attention.cu): the tile geometry,
// which keys a query sees, the scaled dot, the online softmax of a query row over key tiles and the backward's p, ds.
#pragma once

#include <math.h>

#include <cstdint>

#include "core/cuda/host_device.h"

namespace pgolf {

// A block owns kAttentionBlockRows rows of one head (query rows in forward and dq, key rows in dk/dv), a warp
// kAttentionRowsPerWarp of them, and streams the other side through shared memory in tiles of kAttentionTileRows rows:
// one per lane, so a warp scores a whole tile against one of its rows in one step.
constexpr int kAttentionWarps = 4;
constexpr int kAttentionRowsPerWarp = 4;
constexpr int kAttentionBlockRows = kAttentionWarps * kAttentionRowsPerWarp;
constexpr int kAttentionTileRows = 32;
// Each lane keeps head_dim / 32 output dims per row in registers; 8 per lane is the most the kernels are built for.
constexpr int kAttentionMaxHeadDim = 256;

// Shared-memory rows are padded by one float so lanes reading one column of consecutive rows hit different banks.
PGOLF_HOST_DEVICE int attention_shared_stride(int head_dim) { return head_dim + 1; }

// Key tiles a block of query rows starting at first_query visits: up to its last row's causal prefix, or all.
PGOLF_HOST_DEVICE std::int64_t attention_key_tile_count(std::int64_t first_query, std::int64_t seq_len, bool causal) {
    std::int64_t keys = seq_len;
    if (causal) {
        const std::int64_t last = first_query + kAttentionBlockRows;
        keys = last < seq_len ? last : seq_len;
    }
    return (keys + kAttentionTileRows - 1) / kAttentionTileRows;
}

// How many keys of the tile starting at tile_start query `query` sees. Visible keys are always a prefix of the tile
// (j ≤ query and j < seq_len), so the kernels score lanes [0, count) and skip the rest; 0 for rows past the end.
PGOLF_HOST_DEVICE int attention_visible_keys(std::int64_t query, std::int64_t tile_start, std::int64_t seq_len,
                                             bool causal) {
    if (query >= seq_len) return 0;
    const std::int64_t end = causal ? query + 1 : seq_len;
    const std::int64_t count = end - tile_start;
    return count <= 0 ? 0 : (count > kAttentionTileRows ? kAttentionTileRows : static_cast<int>(count));
}

// The first query tile a block of key rows starting at first_key needs: earlier queries never see these keys.
PGOLF_HOST_DEVICE std::int64_t attention_first_query_tile(std::int64_t first_key, bool causal) {
    return causal ? first_key / kAttentionTileRows : 0;
}

// The lanes [begin, end) of the query tile starting at tile_start that see key `key`: a suffix of the tile (i ≥ key
// and i < seq_len); empty (begin ≥ end) when none does.
struct AttentionLaneRange {
    int begin;
    int end;
};

PGOLF_HOST_DEVICE AttentionLaneRange attention_visible_queries(std::int64_t key, std::int64_t tile_start,
                                                               std::int64_t seq_len, bool causal) {
    if (key >= seq_len) return AttentionLaneRange{0, 0};
    const std::int64_t remaining = seq_len - tile_start;
    const int end =
        remaining <= 0 ? 0 : (remaining > kAttentionTileRows ? kAttentionTileRows : static_cast<int>(remaining));
    std::int64_t begin = causal ? key - tile_start : 0;
    if (begin < 0) begin = 0;
    return AttentionLaneRange{begin > end ? end : static_cast<int>(begin), end};
}

// Σ_d a_d·b_d in order d = 0, 1, …: forward, dq and dk/dv all call this with (query row, key row), so every kernel
// rebuilds exactly the score the forward put into the lse.
PGOLF_HOST_DEVICE float attention_dot(const float* a, const float* b, int dims) {
    float sum = 0.0f;
    for (int d = 0; d < dims; ++d) sum += a[d] * b[d];
    return sum;
}

PGOLF_HOST_DEVICE float attention_score(const float* query, const float* key, int dims, float scale) {
    return scale * attention_dot(query, key, dims);
}

// Online softmax: a row keeps its running max and Σ exp(s − max). When a tile raises the max, what was summed (and the
// output accumulated with those weights) is rescaled by exp(old − new); nothing seen yet (max −inf) rescales to 0
// instead of exp(−inf − (−inf)) = NaN.
PGOLF_HOST_DEVICE float attention_rescale(float old_max, float new_max) {
    return old_max == -INFINITY ? 0.0f : expf(old_max - new_max);
}

// exp(score − max) for a visible key; masked lanes carry score −inf and weigh 0.
PGOLF_HOST_DEVICE float attention_weight(float score, float max) {
    return score == -INFINITY ? 0.0f : expf(score - max);
}

PGOLF_HOST_DEVICE float attention_online_sum(float old_sum, float rescale, float tile_sum) {
    return old_sum * rescale + tile_sum;
}

// lse = max + log Σ exp(s − max), natural log, as the reference's.
PGOLF_HOST_DEVICE float attention_lse(float max, float sum) { return max + logf(sum); }

// Backward: p_ij = exp(s_ij − lse_i), recomputed instead of stored.
PGOLF_HOST_DEVICE float attention_probability(float score, float lse) { return expf(score - lse); }

// ds_ij = p_ij·(dp_ij − D_i), dp_ij = dy_i·v_j, D_i = dy_i·y_i (= Σ_j p_ij dp_ij).
PGOLF_HOST_DEVICE float attention_score_gradient(float probability, float dp, float row_dot) {
    return probability * (dp - row_dot);
}

// Register slots per lane for head_dim output dims (lane ℓ owns dims ℓ, ℓ + 32, …): 1, 2, 4 or 8; 0 when head_dim
// exceeds kAttentionMaxHeadDim.
PGOLF_HOST_DEVICE int attention_dims_per_lane(int head_dim) {
    if (head_dim <= 32) return 1;
    if (head_dim <= 64) return 2;
    if (head_dim <= 128) return 4;
    if (head_dim <= kAttentionMaxHeadDim) return 8;
    return 0;
}

}  // namespace pgolf
