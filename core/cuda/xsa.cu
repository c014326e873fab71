// CUDA XSA kernels: a group of lanes (a power of two, at most a warp) per (b, KV head, t) row normalises the value row
// once and handles every query head of its group, so dv is summed over the heads in registers, without atomics.
// Each lane keeps fp32 partial dot products over its load groups; the row's lanes combine them by a butterfly.
#include <string>
#include <type_traits>

#include "core/cuda/device_math.cuh"
#include "core/cuda/op_checks.h"
#include "core/cuda/xsa.h"
#include "core/cuda/xsa_math.h"

namespace pgolf {

namespace {

constexpr int kXsaThreads = 256;

struct XsaShape {
    std::int64_t heads = 0;
    std::int64_t kv_heads = 0;
    std::int64_t time = 0;
    std::int64_t head_dim = 0;
    std::int64_t rows = 0;  // B·Hkv·T value rows, t fastest
};

// Where one lane stands: its row, whether the row exists (lanes past the last row still join every shuffle), and
// the offsets of the row's value and of its group's first query head (head stride: T·Dh).
struct XsaLaneRow {
    bool active = false;
    std::int64_t value_offset = 0;
    std::int64_t query_offset = 0;
};

__device__ __forceinline__ XsaLaneRow xsa_lane_row(const XsaShape& shape, std::int64_t row) {
    XsaLaneRow result;
    result.active = row < shape.rows;
    const std::int64_t safe_row = result.active ? row : 0;
    const std::int64_t t = safe_row % shape.time;
    const std::int64_t batch_kv = safe_row / shape.time;
    const std::int64_t b = batch_kv / shape.kv_heads;
    const std::int64_t kv_head = batch_kv % shape.kv_heads;
    const std::int64_t group_size = shape.heads / shape.kv_heads;
    result.value_offset = safe_row * shape.head_dim;
    result.query_offset = ((b * shape.heads + kv_head * group_size) * shape.time + t) * shape.head_dim;
    return result;
}

// Sum over the `lanes` lanes of a row (a power of two; a row's lanes are contiguous and aligned in the warp) by a
// butterfly, so every lane of the row gets the same total. All 32 lanes of the warp must call it.
__device__ __forceinline__ float xsa_row_sum(float value, int lanes) {
    for (int offset = lanes / 2; offset > 0; offset /= 2) {
        value = hd_add(value, __shfl_xor_sync(0xFFFFFFFFu, value, offset));
    }
    return value;
}

// The lane's load groups of one row: lane j of the row takes groups j, j + lanes, …; zeros where it has none.
template <int W, int K, typename T>
__device__ __forceinline__ void xsa_load(const T* row, bool active, int lane_in_row, int lanes, std::int64_t groups,
                                         float (&values)[K][W]) {
#pragma unroll
    for (int j = 0; j < K; ++j) {
        const std::int64_t group = lane_in_row + static_cast<std::int64_t>(j) * lanes;
        if (active && group < groups) {
            cuda_load_elements<W>(row, group * W, values[j]);
        } else {
#pragma unroll
            for (int k = 0; k < W; ++k) values[j][k] = 0.0f;
        }
    }
}

template <int W, int K, typename T>
__device__ __forceinline__ void xsa_store(T* row, bool active, int lane_in_row, int lanes, std::int64_t groups,
                                          const float (&values)[K][W]) {
#pragma unroll
    for (int j = 0; j < K; ++j) {
        const std::int64_t group = lane_in_row + static_cast<std::int64_t>(j) * lanes;
        if (active && group < groups) cuda_store_elements<W>(row, group * W, values[j]);
    }
}

// The lane's partial a·b over its groups in order (the zero padding adds exact zeros).
template <int W, int K>
__device__ __forceinline__ float xsa_lane_dot(const float (&a)[K][W], const float (&b)[K][W]) {
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < K; ++j) {
#pragma unroll
        for (int k = 0; k < W; ++k) sum = xsa_accumulate(sum, a[j][k], b[j][k]);
    }
    return sum;
}

// y, out: (B, H, T, Dh); v: (B, Hkv, T, Dh). W elements per load (W divides Dh), K load groups per lane at most.
template <typename T, int W, int K>
__global__ void __launch_bounds__(kXsaThreads) xsa_forward_kernel(const T* __restrict__ y, const T* __restrict__ v,
                                                                  T* __restrict__ out, XsaShape shape, int lanes) {
    const std::int64_t groups = shape.head_dim / W;
    const std::int64_t group_size = shape.heads / shape.kv_heads;
    const std::int64_t head_stride = shape.time * shape.head_dim;
    const int lane = static_cast<int>(threadIdx.x & 31);
    const int lane_in_row = lane & (lanes - 1);
    const int rows_per_warp = 32 / lanes;
    const std::int64_t warp = (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
    const std::int64_t warp_count = static_cast<std::int64_t>(gridDim.x) * blockDim.x / 32;
    // The loop bound is the warp's, so all 32 lanes stay together for the shuffles.
    for (std::int64_t first = warp * rows_per_warp; first < shape.rows; first += warp_count * rows_per_warp) {
        const XsaLaneRow place = xsa_lane_row(shape, first + lane / lanes);
        float unit[K][W];
        xsa_load<W, K>(v + place.value_offset, place.active, lane_in_row, lanes, groups, unit);
        const float norm = xsa_norm(xsa_row_sum(xsa_lane_dot(unit, unit), lanes));
        const float denominator = xsa_denominator(norm);
#pragma unroll
        for (int j = 0; j < K; ++j) {
#pragma unroll
            for (int k = 0; k < W; ++k) unit[j][k] = xsa_unit(unit[j][k], denominator);
        }
        for (std::int64_t g = 0; g < group_size; ++g) {
            const std::int64_t offset = place.query_offset + g * head_stride;
            float values[K][W];
            xsa_load<W, K>(y + offset, place.active, lane_in_row, lanes, groups, values);
            const float projection = xsa_row_sum(xsa_lane_dot(values, unit), lanes);
#pragma unroll
            for (int j = 0; j < K; ++j) {
#pragma unroll
                for (int k = 0; k < W; ++k) values[j][k] = xsa_output(values[j][k], projection, unit[j][k]);
            }
            xsa_store<W, K>(out + offset, place.active, lane_in_row, lanes, groups, values);
        }
    }
}

// y, dout, dy: (B, H, T, Dh); v, dv: (B, Hkv, T, Dh). The row's lanes sum ∂L/∂v̂ over the group's heads in order.
template <typename T, int W, int K>
__global__ void __launch_bounds__(kXsaThreads)
    xsa_backward_kernel(const T* __restrict__ y, const T* __restrict__ v, const T* __restrict__ dout,
                        T* __restrict__ dy, T* __restrict__ dv, XsaShape shape, int lanes) {
    const std::int64_t groups = shape.head_dim / W;
    const std::int64_t group_size = shape.heads / shape.kv_heads;
    const std::int64_t head_stride = shape.time * shape.head_dim;
    const int lane = static_cast<int>(threadIdx.x & 31);
    const int lane_in_row = lane & (lanes - 1);
    const int rows_per_warp = 32 / lanes;
    const std::int64_t warp = (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
    const std::int64_t warp_count = static_cast<std::int64_t>(gridDim.x) * blockDim.x / 32;
    for (std::int64_t first = warp * rows_per_warp; first < shape.rows; first += warp_count * rows_per_warp) {
        const XsaLaneRow place = xsa_lane_row(shape, first + lane / lanes);
        float unit[K][W];
        xsa_load<W, K>(v + place.value_offset, place.active, lane_in_row, lanes, groups, unit);
        const float norm = xsa_norm(xsa_row_sum(xsa_lane_dot(unit, unit), lanes));
        const float denominator = xsa_denominator(norm);
        float unit_gradient[K][W];
#pragma unroll
        for (int j = 0; j < K; ++j) {
#pragma unroll
            for (int k = 0; k < W; ++k) {
                unit[j][k] = xsa_unit(unit[j][k], denominator);
                unit_gradient[j][k] = 0.0f;
            }
        }
        for (std::int64_t g = 0; g < group_size; ++g) {
            const std::int64_t offset = place.query_offset + g * head_stride;
            float values[K][W];
            float gradient[K][W];
            xsa_load<W, K>(y + offset, place.active, lane_in_row, lanes, groups, values);
            xsa_load<W, K>(dout + offset, place.active, lane_in_row, lanes, groups, gradient);
            const float s = xsa_row_sum(xsa_lane_dot(values, unit), lanes);
            const float c = xsa_row_sum(xsa_lane_dot(gradient, unit), lanes);
#pragma unroll
            for (int j = 0; j < K; ++j) {
#pragma unroll
                for (int k = 0; k < W; ++k) {
                    unit_gradient[j][k] =
                        xsa_unit_gradient_step(unit_gradient[j][k], c, values[j][k], s, gradient[j][k]);
                    gradient[j][k] = xsa_input_gradient(gradient[j][k], c, unit[j][k]);
                }
            }
            xsa_store<W, K>(dy + offset, place.active, lane_in_row, lanes, groups, gradient);
        }
        // Every lane joins the radial sum; rows whose norm is below eps then ignore it.
        const float radial = xsa_row_sum(xsa_lane_dot(unit_gradient, unit), lanes);
        const bool passes = xsa_norm_passes_gradient(norm);
#pragma unroll
        for (int j = 0; j < K; ++j) {
#pragma unroll
            for (int k = 0; k < W; ++k) {
                unit_gradient[j][k] = xsa_value_gradient(unit_gradient[j][k], radial, unit[j][k], denominator, passes);
            }
        }
        xsa_store<W, K>(dv + place.value_offset, place.active, lane_in_row, lanes, groups, unit_gradient);
    }
}

XsaShape xsa_check(const Tensor& y, const Tensor& v, const char* op) {
    cuda_check_float_input(y, op, "y");
    if (y.dim() != 4) {
        throw Error(std::string(op) + ": y must be 4-D (B, H, T, Dh), got shape " + shape_string(y.shape()));
    }
    cuda_check_input(v, y.dtype(), op, "v");
    if (v.dim() != 4) {
        throw Error(std::string(op) + ": v must be 4-D (B, Hkv, T, Dh), got shape " + shape_string(v.shape()));
    }
    XsaShape shape;
    shape.heads = y.size(1);
    shape.kv_heads = v.size(1);
    shape.time = y.size(2);
    shape.head_dim = y.size(3);
    tensor_check_shape(v, {y.size(0), shape.kv_heads, shape.time, shape.head_dim}, op, "v");
    if (shape.kv_heads == 0 || shape.heads % shape.kv_heads != 0) {
        throw Error(std::string(op) + ": " + std::to_string(shape.heads) + " query heads are not a multiple of " +
                    std::to_string(shape.kv_heads) + " KV heads");
    }
    shape.rows = y.size(0) * shape.kv_heads * shape.time;
    return shape;
}

// Runs launch(W, K) for the load width (16-byte vectors when vectorize, else single elements) and the smallest
// per-lane group count variant that holds the row; throws naming the op when Dh is beyond the largest.
template <typename T, typename Launch>
void xsa_dispatch(const XsaShape& shape, bool vectorize, const char* op, Launch&& launch) {
    const auto with_width = [&](auto width) {
        constexpr int W = decltype(width)::value;
        const std::int64_t groups = shape.head_dim / W;
        const int lanes = xsa_lanes_per_row(groups);
        const std::int64_t per_lane = xsa_groups_per_lane(groups, lanes);
        if (per_lane <= 1) {
            launch(width, std::integral_constant<int, 1>{}, lanes);
        } else if (per_lane <= 2) {
            launch(width, std::integral_constant<int, 2>{}, lanes);
        } else if (per_lane <= 4) {
            launch(width, std::integral_constant<int, 4>{}, lanes);
        } else if (per_lane <= kXsaMaxGroupsPerLane) {
            launch(width, std::integral_constant<int, kXsaMaxGroupsPerLane>{}, lanes);
        } else {
            throw Error(std::string(op) + ": head dim " + std::to_string(shape.head_dim) +
                        " exceeds the kernel's limit of " + std::to_string(32 * kXsaMaxGroupsPerLane * W) +
                        " for this dtype and alignment");
        }
    };
    if (vectorize) {
        with_width(std::integral_constant<int, cuda_vector_width<T>()>{});
    } else {
        with_width(std::integral_constant<int, 1>{});
    }
}

unsigned int xsa_grid(const XsaShape& shape, int lanes) {
    const std::int64_t rows_per_warp = 32 / lanes;
    const std::int64_t warps = (shape.rows + rows_per_warp - 1) / rows_per_warp;
    return cuda_grid_size(warps * 32, kXsaThreads);
}

}  // namespace

Tensor cuda_xsa_forward(const Tensor& y, const Tensor& v) {
    const char* op = "cuda_xsa_forward";
    const XsaShape shape = xsa_check(y, v, op);
    Tensor out = Tensor::empty(y.shape(), y.dtype(), Device::cuda);
    if (out.numel() == 0) return out;
    cuda_dispatch_float(y.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        const T* queries = cuda_pointer<T>(y);
        const T* values = cuda_pointer<T>(v);
        T* result = cuda_pointer<T>(out);
        const bool vectorize = cuda_can_vectorize<T>(shape.head_dim, {queries, values, result});
        xsa_dispatch<T>(shape, vectorize, op, [&](auto width, auto per_lane, int lanes) {
            constexpr int W = decltype(width)::value;
            constexpr int K = decltype(per_lane)::value;
            xsa_forward_kernel<T, W, K>
                <<<xsa_grid(shape, lanes), kXsaThreads, 0, cuda_stream()>>>(queries, values, result, shape, lanes);
            PGOLF_CUDA_CHECK_LAUNCH();
        });
    });
    return out;
}

XsaGrads cuda_xsa_backward(const Tensor& y, const Tensor& v, const Tensor& dout) {
    const char* op = "cuda_xsa_backward";
    const XsaShape shape = xsa_check(y, v, op);
    cuda_check_input(dout, y.dtype(), op, "dout");
    tensor_check_shape(dout, y.shape(), op, "dout");
    XsaGrads grads;
    grads.dy = Tensor::empty(y.shape(), y.dtype(), Device::cuda);
    grads.dv = Tensor::empty(v.shape(), y.dtype(), Device::cuda);
    if (grads.dy.numel() == 0) {
        // No query head (H = 0) leaves nothing to sum into dv; any other empty shape leaves dv empty too.
        grads.dv.zero();
        return grads;
    }
    cuda_dispatch_float(y.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        const T* queries = cuda_pointer<T>(y);
        const T* values = cuda_pointer<T>(v);
        const T* gradient = cuda_pointer<T>(dout);
        T* query_gradient = cuda_pointer<T>(grads.dy);
        T* value_gradient = cuda_pointer<T>(grads.dv);
        const bool vectorize =
            cuda_can_vectorize<T>(shape.head_dim, {queries, values, gradient, query_gradient, value_gradient});
        xsa_dispatch<T>(shape, vectorize, op, [&](auto width, auto per_lane, int lanes) {
            constexpr int W = decltype(width)::value;
            constexpr int K = decltype(per_lane)::value;
            xsa_backward_kernel<T, W, K><<<xsa_grid(shape, lanes), kXsaThreads, 0, cuda_stream()>>>(
                queries, values, gradient, query_gradient, value_gradient, shape, lanes);
            PGOLF_CUDA_CHECK_LAUNCH();
        });
    });
    return grads;
}

}  // namespace pgolf
