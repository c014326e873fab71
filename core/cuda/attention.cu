// CUDA attention: the backend choice (cuDNN's fused SDPA or pgolf's own kernels) and pgolf's kernels themselves,
// flash-style tiles of 32 rows in shared memory with an online softmax in fp32. Per-row math: attention_math.h.
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iostream>
#include <set>
#include <string>
#include <type_traits>

#include "core/cuda/attention.h"
#include "core/cuda/attention_cudnn.h"
#include "core/cuda/attention_math.h"
#include "core/cuda/convert.h"
#include "core/cuda/device_math.cuh"
#include "core/cuda/op_checks.h"

namespace pgolf {

namespace {

constexpr unsigned int kFullMask = 0xFFFFFFFFu;
constexpr int kAttentionThreads = kAttentionWarps * 32;

struct AttentionShape {
    std::int64_t batch = 0;
    std::int64_t heads = 0;     // H
    std::int64_t kv_heads = 0;  // Hkv
    std::int64_t seq_len = 0;   // T
    std::int64_t head_dim = 0;  // Dh
    __host__ __device__ std::int64_t group() const { return heads / kv_heads; }
};

// Copies rows [first_row, first_row + rows) of one head (seq_len × dims, row-major) into shared memory as floats with
// the padded stride; rows past seq_len become zeros, so masked products stay finite. vectorized: dims is a whole
// number of 16-byte vectors and the head is aligned (then so is every row).
template <typename T>
__device__ void attention_load_rows(const T* head, std::int64_t first_row, int rows, std::int64_t seq_len, int dims,
                                    bool vectorized, float* out) {
    const int stride = attention_shared_stride(dims);
    const std::int64_t remaining = seq_len - first_row;
    const int valid_rows = remaining <= 0 ? 0 : (remaining < rows ? static_cast<int>(remaining) : rows);
    const int valid = valid_rows * dims;
    const T* source = head + first_row * dims;
    if (vectorized) {
        constexpr int kWidth = cuda_vector_width<T>();
        for (int e = static_cast<int>(threadIdx.x) * kWidth; e < valid; e += static_cast<int>(blockDim.x) * kWidth) {
            float values[kWidth];
            cuda_load_vector(source, e, values);
#pragma unroll
            for (int k = 0; k < kWidth; ++k) out[(e + k) / dims * stride + (e + k) % dims] = values[k];
        }
    } else {
        for (int e = static_cast<int>(threadIdx.x); e < valid; e += static_cast<int>(blockDim.x)) {
            out[e / dims * stride + e % dims] = cuda_load(source, e);
        }
    }
    for (int e = valid + static_cast<int>(threadIdx.x); e < rows * dims; e += static_cast<int>(blockDim.x)) {
        out[e / dims * stride + e % dims] = 0.0f;
    }
}

// values[first_row + lane] for the lanes of one tile (0 past seq_len), into shared memory; called by the first warp.
__device__ void attention_load_row_values(const float* values, std::int64_t first_row, std::int64_t seq_len,
                                          float* out) {
    const int lane = static_cast<int>(threadIdx.x);
    if (lane < kAttentionTileRows) {
        const std::int64_t row = first_row + lane;
        out[lane] = row < seq_len ? values[row] : 0.0f;
    }
}

// q, y: (B, H, T, Dh); k, v: (B, Hkv, T, Dh); lse: (B, H, T). Block: kAttentionBlockRows query rows of one (b, h);
// warp w owns rows w·R … w·R + R − 1 of them and keeps their running max, sum and output (lane ℓ: dims ℓ + 32c) in
// registers while the key/value tiles stream through shared memory.
template <typename T, int DimsPerLane>
__global__ void __launch_bounds__(kAttentionThreads)
    attention_forward_kernel(const T* q, const T* k, const T* v, T* y, float* lse, AttentionShape shape, float scale,
                             bool causal, bool vectorized) {
    extern __shared__ float shared[];
    const int dims = static_cast<int>(shape.head_dim);
    const int stride = attention_shared_stride(dims);
    float* query_rows = shared;                                   // kAttentionBlockRows × stride
    float* key_tile = query_rows + kAttentionBlockRows * stride;  // kAttentionTileRows × stride
    float* value_tile = key_tile + kAttentionTileRows * stride;

    const std::int64_t seq_len = shape.seq_len;
    const std::int64_t row_blocks = (seq_len + kAttentionBlockRows - 1) / kAttentionBlockRows;
    const std::int64_t bh = blockIdx.x / row_blocks;
    const std::int64_t first_query = (blockIdx.x % row_blocks) * kAttentionBlockRows;
    const std::int64_t b = bh / shape.heads;
    const std::int64_t kv_index = b * shape.kv_heads + (bh % shape.heads) / shape.group();
    const std::int64_t head_size = seq_len * shape.head_dim;
    const int lane = static_cast<int>(threadIdx.x) & 31;
    const int warp = static_cast<int>(threadIdx.x) >> 5;

    attention_load_rows(q + bh * head_size, first_query, kAttentionBlockRows, seq_len, dims, vectorized, query_rows);

    float row_max[kAttentionRowsPerWarp];
    float row_sum[kAttentionRowsPerWarp];
    float output[kAttentionRowsPerWarp][DimsPerLane];
#pragma unroll
    for (int r = 0; r < kAttentionRowsPerWarp; ++r) {
        row_max[r] = -INFINITY;
        row_sum[r] = 0.0f;
#pragma unroll
        for (int c = 0; c < DimsPerLane; ++c) output[r][c] = 0.0f;
    }

    const std::int64_t tiles = attention_key_tile_count(first_query, seq_len, causal);
    for (std::int64_t tile = 0; tile < tiles; ++tile) {
        const std::int64_t tile_start = tile * kAttentionTileRows;
        __syncthreads();  // the previous tile is no longer read
        attention_load_rows(k + kv_index * head_size, tile_start, kAttentionTileRows, seq_len, dims, vectorized,
                            key_tile);
        attention_load_rows(v + kv_index * head_size, tile_start, kAttentionTileRows, seq_len, dims, vectorized,
                            value_tile);
        __syncthreads();
#pragma unroll
        for (int r = 0; r < kAttentionRowsPerWarp; ++r) {
            const int local_row = warp * kAttentionRowsPerWarp + r;
            const int visible = attention_visible_keys(first_query + local_row, tile_start, seq_len, causal);
            if (visible == 0) continue;  // the same for the whole warp
            const float score =
                lane < visible ? attention_score(query_rows + local_row * stride, key_tile + lane * stride, dims, scale)
                               : -INFINITY;
            const float new_max = fmaxf(row_max[r], cuda_warp_max(score));
            const float rescale = attention_rescale(row_max[r], new_max);
            const float weight = attention_weight(score, new_max);
            row_sum[r] = attention_online_sum(row_sum[r], rescale, cuda_warp_sum(weight));
            row_max[r] = new_max;
#pragma unroll
            for (int c = 0; c < DimsPerLane; ++c) output[r][c] *= rescale;
            for (int key = 0; key < visible; ++key) {
                const float key_weight = __shfl_sync(kFullMask, weight, key);
#pragma unroll
                for (int c = 0; c < DimsPerLane; ++c) {
                    const int d = lane + 32 * c;
                    if (d < dims) output[r][c] += key_weight * value_tile[key * stride + d];
                }
            }
        }
    }

#pragma unroll
    for (int r = 0; r < kAttentionRowsPerWarp; ++r) {
        const std::int64_t query = first_query + warp * kAttentionRowsPerWarp + r;
        if (query >= seq_len) continue;
        const float inverse_sum = 1.0f / row_sum[r];
        T* y_row = y + bh * head_size + query * shape.head_dim;
#pragma unroll
        for (int c = 0; c < DimsPerLane; ++c) {
            const int d = lane + 32 * c;
            if (d < dims) cuda_store(y_row, d, output[r][c] * inverse_sum);
        }
        if (lane == 0) lse[bh * seq_len + query] = attention_lse(row_max[r], row_sum[r]);
    }
}

// D_i = dy_i · y_i for every row of (rows, dims): one warp per row, lane ℓ summing dims ℓ, ℓ + 32, … before the warp's
// butterfly sum.
template <typename T>
__global__ void attention_row_dot_kernel(const T* dy, const T* y, float* row_dot, std::int64_t rows, int dims) {
    const int lane = static_cast<int>(threadIdx.x) & 31;
    const std::int64_t warps_per_block = blockDim.x >> 5;
    const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * warps_per_block;
    for (std::int64_t row = blockIdx.x * warps_per_block + (threadIdx.x >> 5); row < rows; row += step) {
        float partial = 0.0f;
        for (int d = lane; d < dims; d += 32) partial += cuda_load(dy, row * dims + d) * cuda_load(y, row * dims + d);
        const float total = cuda_warp_sum(partial);
        if (lane == 0) row_dot[row] = total;
    }
}

// dq for kAttentionBlockRows query rows of one (b, h), like the forward: q, dy, dq: (B, H, T, Dh); k, v: (B, Hkv, T,
// Dh); lse, row_dot: (B, H, T) f32. dq_i = scale · Σ_j ds_ij k_j.
template <typename T, int DimsPerLane>
__global__ void __launch_bounds__(kAttentionThreads)
    attention_backward_query_kernel(const T* q, const T* k, const T* v, const float* lse, const float* row_dot,
                                    const T* dy, T* dq, AttentionShape shape, float scale, bool causal,
                                    bool vectorized) {
    extern __shared__ float shared[];
    const int dims = static_cast<int>(shape.head_dim);
    const int stride = attention_shared_stride(dims);
    float* query_rows = shared;                                        // kAttentionBlockRows × stride
    float* gradient_rows = query_rows + kAttentionBlockRows * stride;  // dy rows, kAttentionBlockRows × stride
    float* key_tile = gradient_rows + kAttentionBlockRows * stride;    // kAttentionTileRows × stride
    float* value_tile = key_tile + kAttentionTileRows * stride;

    const std::int64_t seq_len = shape.seq_len;
    const std::int64_t row_blocks = (seq_len + kAttentionBlockRows - 1) / kAttentionBlockRows;
    const std::int64_t bh = blockIdx.x / row_blocks;
    const std::int64_t first_query = (blockIdx.x % row_blocks) * kAttentionBlockRows;
    const std::int64_t b = bh / shape.heads;
    const std::int64_t kv_index = b * shape.kv_heads + (bh % shape.heads) / shape.group();
    const std::int64_t head_size = seq_len * shape.head_dim;
    const int lane = static_cast<int>(threadIdx.x) & 31;
    const int warp = static_cast<int>(threadIdx.x) >> 5;

    attention_load_rows(q + bh * head_size, first_query, kAttentionBlockRows, seq_len, dims, vectorized, query_rows);
    attention_load_rows(dy + bh * head_size, first_query, kAttentionBlockRows, seq_len, dims, vectorized,
                        gradient_rows);

    float row_lse[kAttentionRowsPerWarp];
    float row_dots[kAttentionRowsPerWarp];
    float accumulated[kAttentionRowsPerWarp][DimsPerLane];
#pragma unroll
    for (int r = 0; r < kAttentionRowsPerWarp; ++r) {
        const std::int64_t query = first_query + warp * kAttentionRowsPerWarp + r;
        row_lse[r] = query < seq_len ? lse[bh * seq_len + query] : 0.0f;
        row_dots[r] = query < seq_len ? row_dot[bh * seq_len + query] : 0.0f;
#pragma unroll
        for (int c = 0; c < DimsPerLane; ++c) accumulated[r][c] = 0.0f;
    }

    const std::int64_t tiles = attention_key_tile_count(first_query, seq_len, causal);
    for (std::int64_t tile = 0; tile < tiles; ++tile) {
        const std::int64_t tile_start = tile * kAttentionTileRows;
        __syncthreads();
        attention_load_rows(k + kv_index * head_size, tile_start, kAttentionTileRows, seq_len, dims, vectorized,
                            key_tile);
        attention_load_rows(v + kv_index * head_size, tile_start, kAttentionTileRows, seq_len, dims, vectorized,
                            value_tile);
        __syncthreads();
#pragma unroll
        for (int r = 0; r < kAttentionRowsPerWarp; ++r) {
            const int local_row = warp * kAttentionRowsPerWarp + r;
            const int visible = attention_visible_keys(first_query + local_row, tile_start, seq_len, causal);
            if (visible == 0) continue;
            float score_gradient = 0.0f;
            if (lane < visible) {
                const float score =
                    attention_score(query_rows + local_row * stride, key_tile + lane * stride, dims, scale);
                const float probability = attention_probability(score, row_lse[r]);
                const float dp = attention_dot(gradient_rows + local_row * stride, value_tile + lane * stride, dims);
                score_gradient = attention_score_gradient(probability, dp, row_dots[r]);
            }
            for (int key = 0; key < visible; ++key) {
                const float key_gradient = __shfl_sync(kFullMask, score_gradient, key);
#pragma unroll
                for (int c = 0; c < DimsPerLane; ++c) {
                    const int d = lane + 32 * c;
                    if (d < dims) accumulated[r][c] += key_gradient * key_tile[key * stride + d];
                }
            }
        }
    }

#pragma unroll
    for (int r = 0; r < kAttentionRowsPerWarp; ++r) {
        const std::int64_t query = first_query + warp * kAttentionRowsPerWarp + r;
        if (query >= seq_len) continue;
        T* dq_row = dq + bh * head_size + query * shape.head_dim;
#pragma unroll
        for (int c = 0; c < DimsPerLane; ++c) {
            const int d = lane + 32 * c;
            if (d < dims) cuda_store(dq_row, d, scale * accumulated[r][c]);
        }
    }
}

// dk, dv for kAttentionBlockRows key rows of one (b, kv head): the block loops over the group's query heads and their
// query tiles (lane = query) in a fixed order and owns its rows' sums, so no two blocks write one row. dk_j = scale ·
// Σ_{h, i} ds_ij q_i, dv_j = Σ_{h, i} p_ij dy_i. k, v, dk, dv: (B, Hkv, T, Dh); q, dy: (B, H, T, Dh).
template <typename T, int DimsPerLane>
__global__ void __launch_bounds__(kAttentionThreads)
    attention_backward_key_kernel(const T* q, const T* k, const T* v, const float* lse, const float* row_dot,
                                  const T* dy, T* dk, T* dv, AttentionShape shape, float scale, bool causal,
                                  bool vectorized) {
    extern __shared__ float shared[];
    const int dims = static_cast<int>(shape.head_dim);
    const int stride = attention_shared_stride(dims);
    float* key_rows = shared;                                         // kAttentionBlockRows × stride
    float* value_rows = key_rows + kAttentionBlockRows * stride;      // kAttentionBlockRows × stride
    float* query_tile = value_rows + kAttentionBlockRows * stride;    // kAttentionTileRows × stride
    float* gradient_tile = query_tile + kAttentionTileRows * stride;  // dy rows, kAttentionTileRows × stride
    float* lse_tile = gradient_tile + kAttentionTileRows * stride;    // kAttentionTileRows
    float* row_dot_tile = lse_tile + kAttentionTileRows;              // kAttentionTileRows

    const std::int64_t seq_len = shape.seq_len;
    const std::int64_t row_blocks = (seq_len + kAttentionBlockRows - 1) / kAttentionBlockRows;
    const std::int64_t kv_index = blockIdx.x / row_blocks;  // b · Hkv + kv head
    const std::int64_t first_key = (blockIdx.x % row_blocks) * kAttentionBlockRows;
    const std::int64_t b = kv_index / shape.kv_heads;
    const std::int64_t kv_head = kv_index % shape.kv_heads;
    const std::int64_t group = shape.group();
    const std::int64_t head_size = seq_len * shape.head_dim;
    const int lane = static_cast<int>(threadIdx.x) & 31;
    const int warp = static_cast<int>(threadIdx.x) >> 5;

    attention_load_rows(k + kv_index * head_size, first_key, kAttentionBlockRows, seq_len, dims, vectorized, key_rows);
    attention_load_rows(v + kv_index * head_size, first_key, kAttentionBlockRows, seq_len, dims, vectorized,
                        value_rows);

    float key_gradient[kAttentionRowsPerWarp][DimsPerLane];
    float value_gradient[kAttentionRowsPerWarp][DimsPerLane];
#pragma unroll
    for (int r = 0; r < kAttentionRowsPerWarp; ++r) {
#pragma unroll
        for (int c = 0; c < DimsPerLane; ++c) {
            key_gradient[r][c] = 0.0f;
            value_gradient[r][c] = 0.0f;
        }
    }

    const std::int64_t first_tile = attention_first_query_tile(first_key, causal);
    const std::int64_t tiles = (seq_len + kAttentionTileRows - 1) / kAttentionTileRows;
    for (std::int64_t g = 0; g < group; ++g) {
        const std::int64_t bh = b * shape.heads + kv_head * group + g;
        for (std::int64_t tile = first_tile; tile < tiles; ++tile) {
            const std::int64_t tile_start = tile * kAttentionTileRows;
            __syncthreads();
            attention_load_rows(q + bh * head_size, tile_start, kAttentionTileRows, seq_len, dims, vectorized,
                                query_tile);
            attention_load_rows(dy + bh * head_size, tile_start, kAttentionTileRows, seq_len, dims, vectorized,
                                gradient_tile);
            attention_load_row_values(lse + bh * seq_len, tile_start, seq_len, lse_tile);
            attention_load_row_values(row_dot + bh * seq_len, tile_start, seq_len, row_dot_tile);
            __syncthreads();
#pragma unroll
            for (int r = 0; r < kAttentionRowsPerWarp; ++r) {
                const int local_row = warp * kAttentionRowsPerWarp + r;
                const AttentionLaneRange queries =
                    attention_visible_queries(first_key + local_row, tile_start, seq_len, causal);
                if (queries.begin >= queries.end) continue;  // the same for the whole warp
                float probability = 0.0f;
                float score_gradient = 0.0f;
                if (lane >= queries.begin && lane < queries.end) {
                    const float score =
                        attention_score(query_tile + lane * stride, key_rows + local_row * stride, dims, scale);
                    probability = attention_probability(score, lse_tile[lane]);
                    const float dp =
                        attention_dot(gradient_tile + lane * stride, value_rows + local_row * stride, dims);
                    score_gradient = attention_score_gradient(probability, dp, row_dot_tile[lane]);
                }
                for (int query = queries.begin; query < queries.end; ++query) {
                    const float query_probability = __shfl_sync(kFullMask, probability, query);
                    const float query_gradient = __shfl_sync(kFullMask, score_gradient, query);
#pragma unroll
                    for (int c = 0; c < DimsPerLane; ++c) {
                        const int d = lane + 32 * c;
                        if (d < dims) {
                            value_gradient[r][c] += query_probability * gradient_tile[query * stride + d];
                            key_gradient[r][c] += query_gradient * query_tile[query * stride + d];
                        }
                    }
                }
            }
        }
    }

#pragma unroll
    for (int r = 0; r < kAttentionRowsPerWarp; ++r) {
        const std::int64_t key = first_key + warp * kAttentionRowsPerWarp + r;
        if (key >= seq_len) continue;
        T* dk_row = dk + kv_index * head_size + key * shape.head_dim;
        T* dv_row = dv + kv_index * head_size + key * shape.head_dim;
#pragma unroll
        for (int c = 0; c < DimsPerLane; ++c) {
            const int d = lane + 32 * c;
            if (d < dims) {
                cuda_store(dk_row, d, scale * key_gradient[r][c]);
                cuda_store(dv_row, d, value_gradient[r][c]);
            }
        }
    }
}

// Shared memory of each kernel in bytes.
std::size_t attention_forward_shared_bytes(int dims) {
    return sizeof(float) *
           static_cast<std::size_t>((kAttentionBlockRows + 2 * kAttentionTileRows) * attention_shared_stride(dims));
}
std::size_t attention_query_shared_bytes(int dims) {
    return sizeof(float) *
           static_cast<std::size_t>((2 * kAttentionBlockRows + 2 * kAttentionTileRows) * attention_shared_stride(dims));
}
std::size_t attention_key_shared_bytes(int dims) {
    return sizeof(float) *
           static_cast<std::size_t>((2 * kAttentionBlockRows + 2 * kAttentionTileRows) * attention_shared_stride(dims) +
                                    2 * kAttentionTileRows);
}

// Past the default 48 KiB of dynamic shared memory (Dh > 128) a kernel has to opt in.
template <typename Kernel>
void attention_allow_shared_bytes(Kernel kernel, std::size_t bytes) {
    if (bytes > 48 * 1024) {
        PGOLF_CUDA_CHECK(
            cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
    }
}

// Calls body with std::integral_constant<int, DimsPerLane> for the head dim (checked ≤ kAttentionMaxHeadDim before).
template <typename Body>
void attention_dispatch_dims(std::int64_t head_dim, Body&& body) {
    switch (attention_dims_per_lane(static_cast<int>(head_dim))) {
        case 1:
            body(std::integral_constant<int, 1>{});
            break;
        case 2:
            body(std::integral_constant<int, 2>{});
            break;
        case 4:
            body(std::integral_constant<int, 4>{});
            break;
        default:
            body(std::integral_constant<int, 8>{});
            break;
    }
}

// One block per kAttentionBlockRows rows of every (b, head) in a 1-D grid (whose limit is 2³¹ − 1 blocks).
unsigned int attention_blocks(const AttentionShape& shape, std::int64_t heads, const char* op) {
    const std::int64_t row_blocks = (shape.seq_len + kAttentionBlockRows - 1) / kAttentionBlockRows;
    const std::int64_t blocks = row_blocks * shape.batch * heads;
    if (blocks > 0x7FFFFFFF) {
        throw Error(std::string(op) + ": " + std::to_string(blocks) + " blocks exceed the grid limit");
    }
    return static_cast<unsigned int>(blocks);
}

// The shape of q, k, v after checking them: cuda, one dtype f32/bf16, 4-D, the same B, T and Dh, H a multiple of Hkv.
AttentionShape attention_check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const char* op) {
    cuda_check_float_input(q, op, "q");
    if (q.dim() != 4) {
        throw Error(std::string(op) + ": q must be 4-D (B, H, T, Dh), got shape " + shape_string(q.shape()));
    }
    cuda_check_input(k, q.dtype(), op, "k");
    cuda_check_input(v, q.dtype(), op, "v");
    AttentionShape shape;
    shape.batch = q.size(0);
    shape.heads = q.size(1);
    shape.seq_len = q.size(2);
    shape.head_dim = q.size(3);
    shape.kv_heads = k.dim() == 4 ? k.size(1) : shape.heads;
    const Shape kv_shape = {shape.batch, shape.kv_heads, shape.seq_len, shape.head_dim};
    tensor_check_shape(k, kv_shape, op, "k");
    tensor_check_shape(v, kv_shape, op, "v");
    if (shape.kv_heads == 0 || shape.heads % shape.kv_heads != 0) {
        throw Error(std::string(op) + ": " + std::to_string(shape.heads) + " query heads are not a multiple of " +
                    std::to_string(shape.kv_heads) + " KV heads");
    }
    if (shape.head_dim == 0)
        throw Error(std::string(op) + ": q has an empty head dim, shape " + shape_string(q.shape()));
    return shape;
}

float attention_effective_scale(double scale, const AttentionShape& shape) {
    return static_cast<float>(scale == 0.0 ? 1.0 / std::sqrt(static_cast<double>(shape.head_dim)) : scale);
}

// The backend this call runs: automatic resolved (non-causal always runs the kernels), cudnn checked (throws with the
// reason when it cannot run), the kernels' head-dim limit checked.
CudaAttentionBackend attention_choose_backend(CudaAttentionBackend backend, const AttentionShape& shape, bool causal,
                                              const char* op) {
    if (backend == CudaAttentionBackend::automatic) {
        backend = causal ? cuda_attention_resolve_backend(shape.batch, shape.heads, shape.kv_heads, shape.seq_len,
                                                          shape.head_dim)
                         : CudaAttentionBackend::kernels;
    }
    if (backend == CudaAttentionBackend::cudnn) {
        if (!causal) throw Error(std::string(op) + ": the cudnn backend runs causal attention only");
        std::string reason;
        if (!cuda_cudnn_attention_available(&reason)) {
            throw Error(std::string(op) + ": the cudnn backend is not available: " + reason);
        }
        reason = cuda_cudnn_attention_unsupported_reason(shape.batch, shape.heads, shape.kv_heads, shape.seq_len,
                                                         shape.head_dim);
        if (!reason.empty())
            throw Error(std::string(op) + ": the cudnn backend does not support this shape: " + reason);
    } else if (shape.head_dim > kAttentionMaxHeadDim) {
        throw Error(std::string(op) + ": head dim " + std::to_string(shape.head_dim) + " exceeds " +
                    std::to_string(kAttentionMaxHeadDim) + ", the most pgolf's attention kernels take");
    }
    return backend;
}

// Shapes cuDNN accepted on paper but failed to run (no engine, a plan that did not finalize) in automatic mode: they
// run on pgolf's kernels from then on, slower but correct, after one line on stderr naming the shape and cuDNN's
// error. Asking for the cudnn backend explicitly still throws (the tests and benchmarks do, so a failure shows there).
std::set<std::array<std::int64_t, 5>>& attention_cudnn_failures() {
    thread_local std::set<std::array<std::int64_t, 5>> failures;
    return failures;
}

std::array<std::int64_t, 5> attention_shape_key(const AttentionShape& shape) {
    return {shape.batch, shape.heads, shape.kv_heads, shape.seq_len, shape.head_dim};
}

bool attention_cudnn_failed(const AttentionShape& shape) {
    return attention_cudnn_failures().count(attention_shape_key(shape)) > 0;
}

void attention_record_cudnn_failure(const AttentionShape& shape, const std::string& reason) {
    if (!attention_cudnn_failures().insert(attention_shape_key(shape)).second) return;
    std::cerr << "pgolf: warning: cuDNN attention failed for (B " << shape.batch << ", H " << shape.heads << ", Hkv "
              << shape.kv_heads << ", T " << shape.seq_len << ", Dh " << shape.head_dim
              << "); pgolf's attention kernels run this shape instead: " << reason << std::endl;
}

// A tensor as cuDNN takes it: in dtype and 16-byte aligned (its descriptors promise that alignment and
// cuda_cudnn_attention_* refuse anything less), so f32 inputs and views at an odd offset go as a converted copy.
Tensor attention_for_cudnn(const Tensor& tensor, DType dtype) {
    const bool aligned = reinterpret_cast<std::uintptr_t>(tensor.raw_data()) % 16 == 0;
    return tensor.dtype() == dtype && aligned ? tensor : cuda_convert(tensor, dtype);
}

Tensor attention_to_dtype(const Tensor& tensor, DType dtype) {
    return tensor.dtype() == dtype ? tensor : cuda_convert(tensor, dtype);
}

AttentionResult attention_kernels_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                          const AttentionShape& shape, float scale, bool causal, const char* op) {
    AttentionResult result;
    result.y = Tensor::empty(q.shape(), q.dtype(), Device::cuda);
    result.lse = Tensor::empty({shape.batch, shape.heads, shape.seq_len}, DType::f32, Device::cuda);
    if (q.numel() == 0) return result;
    const int dims = static_cast<int>(shape.head_dim);
    const std::size_t shared_bytes = attention_forward_shared_bytes(dims);
    cuda_dispatch_float(q.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        const T* q_data = cuda_pointer<T>(q);
        const T* k_data = cuda_pointer<T>(k);
        const T* v_data = cuda_pointer<T>(v);
        const bool vectorized = cuda_can_vectorize<T>(shape.head_dim, {q_data, k_data, v_data});
        attention_dispatch_dims(shape.head_dim, [&](auto dims_tag) {
            const auto kernel = attention_forward_kernel<T, decltype(dims_tag)::value>;
            attention_allow_shared_bytes(kernel, shared_bytes);
            kernel<<<attention_blocks(shape, shape.heads, op), kAttentionThreads, shared_bytes, cuda_stream()>>>(
                q_data, k_data, v_data, cuda_pointer<T>(result.y), cuda_pointer<float>(result.lse), shape, scale,
                causal, vectorized);
            PGOLF_CUDA_CHECK_LAUNCH();
        });
    });
    return result;
}

AttentionGrads attention_kernels_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                          const AttentionResult& forward, const Tensor& dy, const AttentionShape& shape,
                                          float scale, bool causal, const char* op) {
    AttentionGrads grads;
    grads.dq = Tensor::empty(q.shape(), q.dtype(), Device::cuda);
    grads.dk = Tensor::empty(k.shape(), k.dtype(), Device::cuda);
    grads.dv = Tensor::empty(v.shape(), v.dtype(), Device::cuda);
    if (q.numel() == 0) return grads;
    const int dims = static_cast<int>(shape.head_dim);
    const std::int64_t rows = shape.batch * shape.heads * shape.seq_len;
    Tensor row_dot = Tensor::empty({shape.batch, shape.heads, shape.seq_len}, DType::f32, Device::cuda);
    const std::size_t query_bytes = attention_query_shared_bytes(dims);
    const std::size_t key_bytes = attention_key_shared_bytes(dims);
    cuda_dispatch_float(q.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        const T* q_data = cuda_pointer<T>(q);
        const T* k_data = cuda_pointer<T>(k);
        const T* v_data = cuda_pointer<T>(v);
        const T* dy_data = cuda_pointer<T>(dy);
        const float* lse_data = cuda_pointer<float>(forward.lse);
        float* row_dot_data = cuda_pointer<float>(row_dot);
        const bool vectorized = cuda_can_vectorize<T>(shape.head_dim, {q_data, k_data, v_data, dy_data});

        constexpr int kRowDotThreads = 256;
        attention_row_dot_kernel<T><<<cuda_grid_size(rows, kRowDotThreads / 32), kRowDotThreads, 0, cuda_stream()>>>(
            dy_data, cuda_pointer<T>(forward.y), row_dot_data, rows, dims);
        PGOLF_CUDA_CHECK_LAUNCH();

        attention_dispatch_dims(shape.head_dim, [&](auto dims_tag) {
            constexpr int kDimsPerLane = decltype(dims_tag)::value;
            const auto query_kernel = attention_backward_query_kernel<T, kDimsPerLane>;
            attention_allow_shared_bytes(query_kernel, query_bytes);
            query_kernel<<<attention_blocks(shape, shape.heads, op), kAttentionThreads, query_bytes, cuda_stream()>>>(
                q_data, k_data, v_data, lse_data, row_dot_data, dy_data, cuda_pointer<T>(grads.dq), shape, scale,
                causal, vectorized);
            PGOLF_CUDA_CHECK_LAUNCH();

            const auto key_kernel = attention_backward_key_kernel<T, kDimsPerLane>;
            attention_allow_shared_bytes(key_kernel, key_bytes);
            key_kernel<<<attention_blocks(shape, shape.kv_heads, op), kAttentionThreads, key_bytes, cuda_stream()>>>(
                q_data, k_data, v_data, lse_data, row_dot_data, dy_data, cuda_pointer<T>(grads.dk),
                cuda_pointer<T>(grads.dv), shape, scale, causal, vectorized);
            PGOLF_CUDA_CHECK_LAUNCH();
        });
    });
    return grads;
}

}  // namespace

std::string cuda_attention_backend_name(CudaAttentionBackend backend) {
    switch (backend) {
        case CudaAttentionBackend::automatic:
            return "automatic";
        case CudaAttentionBackend::cudnn:
            return "cudnn";
        case CudaAttentionBackend::kernels:
            return "kernels";
    }
    return "unknown";
}

CudaAttentionBackend cuda_attention_resolve_backend(std::int64_t batch, std::int64_t heads, std::int64_t kv_heads,
                                                    std::int64_t seq_len, std::int64_t head_dim) {
    if (!cuda_cudnn_attention_available()) return CudaAttentionBackend::kernels;
    return cuda_cudnn_attention_unsupported_reason(batch, heads, kv_heads, seq_len, head_dim).empty()
               ? CudaAttentionBackend::cudnn
               : CudaAttentionBackend::kernels;
}

AttentionResult cuda_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                                       CudaAttentionBackend backend, bool causal) {
    const char* op = "cuda_attention_forward";
    const AttentionShape shape = attention_check_inputs(q, k, v, op);
    const float effective_scale = attention_effective_scale(scale, shape);
    const bool automatic = backend == CudaAttentionBackend::automatic;
    if (attention_choose_backend(backend, shape, causal, op) == CudaAttentionBackend::kernels ||
        (automatic && attention_cudnn_failed(shape))) {
        return attention_kernels_forward(q, k, v, shape, effective_scale, causal, op);
    }
    try {
        AttentionResult result =
            cuda_cudnn_attention_forward(attention_for_cudnn(q, DType::bf16), attention_for_cudnn(k, DType::bf16),
                                         attention_for_cudnn(v, DType::bf16), static_cast<double>(effective_scale));
        result.y = attention_to_dtype(result.y, q.dtype());
        return result;
    } catch (const Error& error) {
        if (!automatic) throw;
        attention_record_cudnn_failure(shape, error.what());
        return attention_kernels_forward(q, k, v, shape, effective_scale, causal, op);
    }
}

AttentionGrads cuda_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                       const AttentionResult& forward, const Tensor& dy, double scale,
                                       CudaAttentionBackend backend, bool causal) {
    const char* op = "cuda_attention_backward";
    const AttentionShape shape = attention_check_inputs(q, k, v, op);
    cuda_check_input(forward.y, q.dtype(), op, "y");
    tensor_check_shape(forward.y, q.shape(), op, "y");
    cuda_check_input(forward.lse, DType::f32, op, "lse");
    tensor_check_shape(forward.lse, {shape.batch, shape.heads, shape.seq_len}, op, "lse");
    cuda_check_input(dy, q.dtype(), op, "dy");
    tensor_check_shape(dy, q.shape(), op, "dy");
    const float effective_scale = attention_effective_scale(scale, shape);
    const bool automatic = backend == CudaAttentionBackend::automatic;
    if (attention_choose_backend(backend, shape, causal, op) == CudaAttentionBackend::kernels ||
        (automatic && attention_cudnn_failed(shape))) {
        return attention_kernels_backward(q, k, v, forward, dy, shape, effective_scale, causal, op);
    }
    try {
        // cuDNN takes bf16 only: f32 callers' y came from bf16 (exact in f32), so converting back loses nothing.
        const AttentionResult bf16_forward{attention_for_cudnn(forward.y, DType::bf16),
                                           attention_for_cudnn(forward.lse, DType::f32)};
        AttentionGrads grads =
            cuda_cudnn_attention_backward(attention_for_cudnn(q, DType::bf16), attention_for_cudnn(k, DType::bf16),
                                          attention_for_cudnn(v, DType::bf16), bf16_forward,
                                          attention_for_cudnn(dy, DType::bf16), static_cast<double>(effective_scale));
        grads.dq = attention_to_dtype(grads.dq, q.dtype());
        grads.dk = attention_to_dtype(grads.dk, q.dtype());
        grads.dv = attention_to_dtype(grads.dv, q.dtype());
        return grads;
    } catch (const Error& error) {
        // The kernels' backward takes a forward from either backend (the same y and natural-log lse).
        if (!automatic) throw;
        attention_record_cudnn_failure(shape, error.what());
        return attention_kernels_backward(q, k, v, forward, dy, shape, effective_scale, causal, op);
    }
}

}  // namespace pgolf
