// CPU checks of the host-device arithmetic behind the CUDA XSA and SmearGate kernels (core/cuda/{xsa,smear}_math.h),
// run on every machine: each kernel's schedule (lane partial sums and butterflies for XSA, the per-thread chunk walk
// for SmearGate) is replayed on the host with the same functions and compared with the CPU reference ops.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/cuda/smear_math.h"
#include "core/cuda/xsa_math.h"
#include "core/ops/smear.h"
#include "core/ops/xsa.h"
#include "core/tensor.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using test::float_bits;
using test::random_floats;

std::vector<float> bf16_rounded(std::vector<float> values) {
    for (float& value : values) value = bf16_round(value);
    return values;
}

Tensor tensor_of(const std::vector<float>& values, const Shape& shape, DType dtype) {
    Tensor tensor = Tensor::from_floats(values, shape);
    return dtype == DType::f32 ? tensor : tensor.to(dtype);
}

// Elements whose bits differ.
std::int64_t bit_mismatches(const std::vector<float>& got, const Tensor& expected) {
    EXPECT_EQ(static_cast<std::int64_t>(got.size()), expected.numel());
    std::int64_t mismatches = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        if (float_bits(got[i]) != float_bits(static_cast<float>(expected.item(static_cast<std::int64_t>(i))))) {
            ++mismatches;
        }
    }
    return mismatches;
}

// max |got − expected| / max(1, |expected|), the harness's measure.
double max_relative_error(const std::vector<float>& got, const Tensor& expected) {
    EXPECT_EQ(static_cast<std::int64_t>(got.size()), expected.numel());
    double worst = 0.0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double reference = expected.item(static_cast<std::int64_t>(i));
        const double error = std::abs(static_cast<double>(got[i]) - reference) / std::max(1.0, std::abs(reference));
        worst = std::max(worst, std::isnan(error) ? INFINITY : error);
    }
    return worst;
}

// --- XSA ---------------------------------------------------------------------------------------------------------

struct XsaDims {
    std::int64_t batch;
    std::int64_t heads;
    std::int64_t kv_heads;
    std::int64_t time;
    std::int64_t head_dim;
    std::int64_t query_count() const { return batch * heads * time * head_dim; }
    std::int64_t value_count() const { return batch * kv_heads * time * head_dim; }
    Shape query_shape() const { return {batch, heads, time, head_dim}; }
    Shape value_shape() const { return {batch, kv_heads, time, head_dim}; }
};

// The kernels' load width: 16-byte vectors (4 floats, 8 bf16) when Dh allows (the tensors are 256-byte aligned).
int xsa_width(std::int64_t head_dim, bool bf16) {
    const int vector = bf16 ? 8 : 4;
    return head_dim % vector == 0 ? vector : 1;
}

// One row's dot product as the kernel forms it: lane j of the row's `lanes` lanes adds its load groups j, j + lanes,
// … element by element, then the lanes combine by an xor butterfly (lane i adds lane i ^ offset's value).
float replay_row_dot(const float* a, const float* b, std::int64_t head_dim, int width) {
    const std::int64_t groups = head_dim / width;
    const int lanes = xsa_lanes_per_row(groups);
    std::vector<float> partial(static_cast<std::size_t>(lanes), 0.0f);
    for (int lane = 0; lane < lanes; ++lane) {
        float sum = 0.0f;
        for (std::int64_t group = lane; group < groups; group += lanes) {
            for (int k = 0; k < width; ++k) sum = xsa_accumulate(sum, a[group * width + k], b[group * width + k]);
        }
        partial[static_cast<std::size_t>(lane)] = sum;
    }
    for (int offset = lanes / 2; offset > 0; offset /= 2) {
        std::vector<float> next(partial.size());
        for (int lane = 0; lane < lanes; ++lane) {
            next[static_cast<std::size_t>(lane)] =
                hd_add(partial[static_cast<std::size_t>(lane)], partial[static_cast<std::size_t>(lane ^ offset)]);
        }
        partial = next;
    }
    // The butterfly leaves every lane of the row with the same bits (each step adds the same two values).
    for (int lane = 1; lane < lanes; ++lane) EXPECT_EQ(float_bits(partial[0]), float_bits(partial[lane]));
    return partial[0];
}

struct XsaReplayRow {
    float norm = 0.0f;
    float denominator = 0.0f;
    std::vector<float> unit;
};

XsaReplayRow replay_unit(const float* value, std::int64_t head_dim, int width) {
    XsaReplayRow row;
    row.norm = xsa_norm(replay_row_dot(value, value, head_dim, width));
    row.denominator = xsa_denominator(row.norm);
    row.unit.resize(static_cast<std::size_t>(head_dim));
    for (std::int64_t d = 0; d < head_dim; ++d)
        row.unit[static_cast<std::size_t>(d)] = xsa_unit(value[d], row.denominator);
    return row;
}

// Output rounding of the kernel's store: f32 as is, bf16 rounded to nearest even.
float stored(float value, bool bf16) { return bf16 ? bf16_round(value) : value; }

std::vector<float> replay_xsa_forward(const XsaDims& dims, const std::vector<float>& y, const std::vector<float>& v,
                                      bool bf16) {
    const std::int64_t dh = dims.head_dim;
    const std::int64_t group_size = dims.heads / dims.kv_heads;
    const int width = xsa_width(dh, bf16);
    std::vector<float> out(y.size());
    for (std::int64_t b = 0; b < dims.batch; ++b) {
        for (std::int64_t kv = 0; kv < dims.kv_heads; ++kv) {
            for (std::int64_t t = 0; t < dims.time; ++t) {
                const XsaReplayRow row = replay_unit(
                    &v[static_cast<std::size_t>(((b * dims.kv_heads + kv) * dims.time + t) * dh)], dh, width);
                for (std::int64_t g = 0; g < group_size; ++g) {
                    const std::int64_t offset = ((b * dims.heads + kv * group_size + g) * dims.time + t) * dh;
                    const float* y_row = &y[static_cast<std::size_t>(offset)];
                    const float projection = replay_row_dot(y_row, row.unit.data(), dh, width);
                    for (std::int64_t d = 0; d < dh; ++d) {
                        out[static_cast<std::size_t>(offset + d)] =
                            stored(xsa_output(y_row[d], projection, row.unit[static_cast<std::size_t>(d)]), bf16);
                    }
                }
            }
        }
    }
    return out;
}

struct XsaReplayGrads {
    std::vector<float> dy;
    std::vector<float> dv;
};

XsaReplayGrads replay_xsa_backward(const XsaDims& dims, const std::vector<float>& y, const std::vector<float>& v,
                                   const std::vector<float>& dout, bool bf16) {
    const std::int64_t dh = dims.head_dim;
    const std::int64_t group_size = dims.heads / dims.kv_heads;
    const int width = xsa_width(dh, bf16);
    XsaReplayGrads grads{std::vector<float>(y.size()), std::vector<float>(v.size())};
    for (std::int64_t b = 0; b < dims.batch; ++b) {
        for (std::int64_t kv = 0; kv < dims.kv_heads; ++kv) {
            for (std::int64_t t = 0; t < dims.time; ++t) {
                const std::int64_t value_offset = ((b * dims.kv_heads + kv) * dims.time + t) * dh;
                const XsaReplayRow row = replay_unit(&v[static_cast<std::size_t>(value_offset)], dh, width);
                std::vector<float> unit_gradient(static_cast<std::size_t>(dh), 0.0f);
                for (std::int64_t g = 0; g < group_size; ++g) {
                    const std::int64_t offset = ((b * dims.heads + kv * group_size + g) * dims.time + t) * dh;
                    const float* y_row = &y[static_cast<std::size_t>(offset)];
                    const float* dout_row = &dout[static_cast<std::size_t>(offset)];
                    const float s = replay_row_dot(y_row, row.unit.data(), dh, width);
                    const float c = replay_row_dot(dout_row, row.unit.data(), dh, width);
                    for (std::int64_t d = 0; d < dh; ++d) {
                        const auto i = static_cast<std::size_t>(d);
                        unit_gradient[i] = xsa_unit_gradient_step(unit_gradient[i], c, y_row[d], s, dout_row[d]);
                        grads.dy[static_cast<std::size_t>(offset + d)] =
                            stored(xsa_input_gradient(dout_row[d], c, row.unit[i]), bf16);
                    }
                }
                const float radial = replay_row_dot(unit_gradient.data(), row.unit.data(), dh, width);
                const bool passes = xsa_norm_passes_gradient(row.norm);
                for (std::int64_t d = 0; d < dh; ++d) {
                    const auto i = static_cast<std::size_t>(d);
                    grads.dv[static_cast<std::size_t>(value_offset + d)] = stored(
                        xsa_value_gradient(unit_gradient[i], radial, row.unit[i], row.denominator, passes), bf16);
                }
            }
        }
    }
    return grads;
}

struct XsaInputs {
    std::vector<float> y;
    std::vector<float> v;
    std::vector<float> dout;
};

XsaInputs random_xsa_inputs(const XsaDims& dims, std::uint64_t seed) {
    return XsaInputs{random_floats(static_cast<std::size_t>(dims.query_count()), -1.0, 1.0, seed),
                     random_floats(static_cast<std::size_t>(dims.value_count()), -1.0, 1.0, seed + 1),
                     random_floats(static_cast<std::size_t>(dims.query_count()), -1.0, 1.0, seed + 2)};
}

std::string xsa_label(const XsaDims& dims) {
    return "B" + std::to_string(dims.batch) + " H" + std::to_string(dims.heads) + " Hkv" +
           std::to_string(dims.kv_heads) + " T" + std::to_string(dims.time) + " Dh" + std::to_string(dims.head_dim);
}

// GQA ratios 1, 2, 4 (and 3), T = 1, Dh not a multiple of 4 or 8, rows of one lane up to rows of a full warp with
// several load groups per lane (Dh 160 in f32 vectors, Dh 200 in single elements).
const std::vector<XsaDims>& xsa_shapes() {
    static const std::vector<XsaDims> shapes = {
        {2, 4, 4, 3, 5},  {2, 4, 2, 3, 32}, {1, 8, 2, 4, 12},  {1, 4, 1, 1, 6},   {2, 3, 1, 2, 36},
        {1, 2, 1, 3, 64}, {1, 2, 2, 2, 4},  {1, 4, 1, 2, 160}, {1, 2, 1, 2, 200}, {1, 2, 2, 2, 1},
    };
    return shapes;
}

TEST(CudaMathXsa, LanesPerRowAndGroupsPerLane) {
    EXPECT_EQ(xsa_lanes_per_row(1), 1);
    EXPECT_EQ(xsa_lanes_per_row(2), 2);
    EXPECT_EQ(xsa_lanes_per_row(5), 8);
    EXPECT_EQ(xsa_lanes_per_row(8), 8);  // Dh 32 in f32 vectors: 4 rows per warp
    EXPECT_EQ(xsa_lanes_per_row(4), 4);  // Dh 32 in bf16 vectors: 8 rows per warp
    EXPECT_EQ(xsa_lanes_per_row(32), 32);
    EXPECT_EQ(xsa_lanes_per_row(200), 32);
    EXPECT_EQ(xsa_groups_per_lane(8, 8), 1);
    EXPECT_EQ(xsa_groups_per_lane(40, 32), 2);
    EXPECT_EQ(xsa_groups_per_lane(200, 32), 7);  // the kernel's 8-group variant
    EXPECT_LE(xsa_groups_per_lane(256, 32), kXsaMaxGroupsPerLane);
}

// The fp32 replay against the f32 reference (which sums in double) and the f64 reference: within a few f32 roundings
// of each row's scale: 10 shapes x 2 references x (output, dy, dv).
TEST(CudaMathXsa, F32ReplayMatchesTheReference) {
    std::uint64_t seed = 100;
    for (const XsaDims& dims : xsa_shapes()) {
        const XsaInputs in = random_xsa_inputs(dims, seed += 10);
        const std::vector<float> out = replay_xsa_forward(dims, in.y, in.v, false);
        const XsaReplayGrads grads = replay_xsa_backward(dims, in.y, in.v, in.dout, false);
        for (DType dtype : {DType::f32, DType::f64}) {
            const Tensor y = tensor_of(in.y, dims.query_shape(), dtype);
            const Tensor v = tensor_of(in.v, dims.value_shape(), dtype);
            const Tensor dout = tensor_of(in.dout, dims.query_shape(), dtype);
            const XsaGrads reference = xsa_backward(y, v, dout);
            const std::string label = xsa_label(dims) + " vs " + dtype_name(dtype);
            EXPECT_LE(max_relative_error(out, xsa_forward(y, v)), 2e-6) << label;
            EXPECT_LE(max_relative_error(grads.dy, reference.dy), 2e-6) << label;
            EXPECT_LE(max_relative_error(grads.dv, reference.dv), 4e-6) << label;
        }
    }
}

// Where every dot product has one nonzero term (v one-hot, any scale, including below eps) or none (v = 0), the
// fp32 partial sums are exact and the replay equals the f32 reference bit for bit: the forward output and dy, and
// dv = 0 for zero rows.
TEST(CudaMathXsa, ExactRowsAreBitwise) {
    const XsaDims dims{2, 4, 2, 5, 12};
    XsaInputs in = random_xsa_inputs(dims, 900);
    const std::vector<float> scales = {0.0f, 3.5f, -0.25f, 1e-13f, 0.0f};  // per t: zero, one-hot, tiny one-hot, zero
    for (std::int64_t row = 0; row < dims.batch * dims.kv_heads * dims.time; ++row) {
        const std::int64_t t = row % dims.time;
        for (std::int64_t d = 0; d < dims.head_dim; ++d) {
            const bool hot = d == (row * 5) % dims.head_dim;
            in.v[static_cast<std::size_t>(row * dims.head_dim + d)] = hot ? scales[static_cast<std::size_t>(t)] : 0.0f;
        }
    }
    const Tensor y = tensor_of(in.y, dims.query_shape(), DType::f32);
    const Tensor v = tensor_of(in.v, dims.value_shape(), DType::f32);
    const Tensor dout = tensor_of(in.dout, dims.query_shape(), DType::f32);
    EXPECT_EQ(bit_mismatches(replay_xsa_forward(dims, in.y, in.v, false), xsa_forward(y, v)), 0);
    const XsaReplayGrads grads = replay_xsa_backward(dims, in.y, in.v, in.dout, false);
    const XsaGrads reference = xsa_backward(y, v, dout);
    EXPECT_EQ(bit_mismatches(grads.dy, reference.dy), 0);
    // dv: zero rows exactly (+0), the rest within rounding (dv of the tiny row is of order 1e11).
    std::int64_t zero_rows_checked = 0;
    for (std::int64_t row = 0; row < dims.batch * dims.kv_heads * dims.time; ++row) {
        if (scales[static_cast<std::size_t>(row % dims.time)] != 0.0f) continue;
        for (std::int64_t d = 0; d < dims.head_dim; ++d) {
            const auto i = row * dims.head_dim + d;
            EXPECT_EQ(float_bits(grads.dv[static_cast<std::size_t>(i)]), 0u) << i;
            EXPECT_EQ(reference.dv.item(i), 0.0) << i;
        }
        ++zero_rows_checked;
    }
    EXPECT_EQ(zero_rows_checked, 8);
    double worst = 0.0;
    for (std::int64_t i = 0; i < reference.dv.numel(); ++i) {
        const double expected = reference.dv.item(i);
        worst = std::max(
            worst, std::abs(grads.dv[static_cast<std::size_t>(i)] - expected) / std::max(1.0, std::abs(expected)));
    }
    EXPECT_LE(worst, 1e-6);
}

// bf16 storage: inputs rounded to bf16, fp32 arithmetic, outputs rounded once to bf16, against the f64 reference on
// the same rounded inputs: within one bf16 rounding (2^-8 relative: 8 significant bits) plus fp32 noise.
TEST(CudaMathXsa, Bf16ReplayIsWithinOneRounding) {
    std::uint64_t seed = 500;
    for (const XsaDims& dims : xsa_shapes()) {
        XsaInputs in = random_xsa_inputs(dims, seed += 10);
        in.y = bf16_rounded(in.y);
        in.v = bf16_rounded(in.v);
        in.dout = bf16_rounded(in.dout);
        const Tensor y = tensor_of(in.y, dims.query_shape(), DType::f64);
        const Tensor v = tensor_of(in.v, dims.value_shape(), DType::f64);
        const Tensor dout = tensor_of(in.dout, dims.query_shape(), DType::f64);
        const XsaGrads reference = xsa_backward(y, v, dout);
        const XsaReplayGrads grads = replay_xsa_backward(dims, in.y, in.v, in.dout, true);
        const double tolerance = 1.0 / 256 + 1e-5;
        EXPECT_LE(max_relative_error(replay_xsa_forward(dims, in.y, in.v, true), xsa_forward(y, v)), tolerance)
            << xsa_label(dims);
        EXPECT_LE(max_relative_error(grads.dy, reference.dy), tolerance) << xsa_label(dims);
        EXPECT_LE(max_relative_error(grads.dv, reference.dv), tolerance) << xsa_label(dims);
    }
}

// --- SmearGate ---------------------------------------------------------------------------------------------------

struct SmearDims {
    std::int64_t batch;
    std::int64_t time;
    std::int64_t dim;
    std::int64_t rows() const { return batch * time; }
    Shape shape() const { return {batch, time, dim}; }
};

std::string smear_label(const SmearDims& dims) {
    return "B" + std::to_string(dims.batch) + " T" + std::to_string(dims.time) + " D" + std::to_string(dims.dim);
}

// The forward kernel's walk: a thread per channel and chunk of 32 rows, h_{t−1} carried from row to row and read from
// memory at a chunk start inside a sequence; t advanced by one and wrapped at T.
std::vector<float> replay_smear_forward(const SmearDims& dims, const std::vector<float>& h, const std::vector<float>& g,
                                        bool bf16) {
    constexpr std::int64_t kChunkRows = 32;
    std::vector<float> out(h.size());
    for (std::int64_t channel = 0; channel < dims.dim; ++channel) {
        const float gate = smear_gate(g[static_cast<std::size_t>(channel)]);
        for (std::int64_t begin = 0; begin < dims.rows(); begin += kChunkRows) {
            const std::int64_t end = std::min(dims.rows(), begin + kChunkRows);
            std::int64_t t = begin % dims.time;
            float previous = t != 0 ? h[static_cast<std::size_t>((begin - 1) * dims.dim + channel)] : 0.0f;
            for (std::int64_t row = begin; row < end; ++row) {
                const auto i = static_cast<std::size_t>(row * dims.dim + channel);
                out[i] = stored(smear_output(h[i], t == 0 ? 0.0f : previous, gate), bf16);
                previous = h[i];
                t = t + 1 == dims.time ? 0 : t + 1;
            }
        }
    }
    return out;
}

struct SmearReplayGrads {
    std::vector<float> dh;
    std::vector<float> dg;
};

// The backward kernel's walk over chunks of kSmearGateRowBlock rows (dout_{t+1} carried, the chunk's double sum in
// row order), then the gate-gradient kernel's sum of the chunks in order.
SmearReplayGrads replay_smear_backward(const SmearDims& dims, const std::vector<float>& h, const std::vector<float>& g,
                                       const std::vector<float>& dout, bool bf16) {
    const std::int64_t chunks = (dims.rows() + kSmearGateRowBlock - 1) / kSmearGateRowBlock;
    std::vector<double> partial(static_cast<std::size_t>(chunks * dims.dim));
    SmearReplayGrads grads{std::vector<float>(h.size()), std::vector<float>(g.size())};
    for (std::int64_t channel = 0; channel < dims.dim; ++channel) {
        const float gate = smear_gate(g[static_cast<std::size_t>(channel)]);
        for (std::int64_t chunk = 0; chunk < chunks; ++chunk) {
            const std::int64_t begin = chunk * kSmearGateRowBlock;
            const std::int64_t end = std::min(dims.rows(), begin + kSmearGateRowBlock);
            std::int64_t t = begin % dims.time;
            float previous = t != 0 ? h[static_cast<std::size_t>((begin - 1) * dims.dim + channel)] : 0.0f;
            float gradient = dout[static_cast<std::size_t>(begin * dims.dim + channel)];
            double sum = 0.0;
            for (std::int64_t row = begin; row < end; ++row) {
                const auto i = static_cast<std::size_t>(row * dims.dim + channel);
                const float current = h[i];
                const float following = row + 1 < dims.rows() ? dout[i + static_cast<std::size_t>(dims.dim)] : 0.0f;
                const bool first = t == 0;
                const bool last = t + 1 == dims.time;
                grads.dh[i] = stored(smear_input_gradient(gradient, last ? 0.0f : following, gate), bf16);
                sum = smear_gate_gradient_step(sum, gradient, previous, current, first);
                previous = current;
                gradient = following;
                t = last ? 0 : t + 1;
            }
            partial[static_cast<std::size_t>(chunk * dims.dim + channel)] = sum;
        }
    }
    for (std::int64_t channel = 0; channel < dims.dim; ++channel) {
        double total = 0.0;
        for (std::int64_t chunk = 0; chunk < chunks; ++chunk) {
            total = hd_add(total, partial[static_cast<std::size_t>(chunk * dims.dim + channel)]);
        }
        grads.dg[static_cast<std::size_t>(channel)] =
            stored(smear_gate_gradient(g[static_cast<std::size_t>(channel)], total), bf16);
    }
    return grads;
}

// T = 1, D not a multiple of 4 or 8, sequences ending inside forward chunks (32 rows) and gate blocks (256 rows),
// a last block of fewer than 256 rows, and one sequence of several blocks.
const std::vector<SmearDims>& smear_shapes() {
    static const std::vector<SmearDims> shapes = {
        {2, 4, 3}, {2, 1, 3}, {3, 5, 2}, {3, 300, 5}, {1, 1000, 9}, {4, 77, 8}, {2, 256, 4}, {5, 1, 6},
    };
    return shapes;
}

std::vector<float> random_gate_logits(std::int64_t dim, std::uint64_t seed) {
    return random_floats(static_cast<std::size_t>(dim), -4.0, 4.0, seed);
}

TEST(CudaMathSmear, GateIsTheReferenceSigmoidRoundedOnce) {
    for (const float g : random_floats(1000, -20.0, 20.0, 11)) {
        const double sigma = 1.0 / (1.0 + std::exp(-static_cast<double>(g)));
        EXPECT_EQ(float_bits(smear_gate(g)), float_bits(static_cast<float>(sigma))) << g;
    }
    EXPECT_EQ(smear_gate(0.0f), 0.5f);
}

// f32: the forward output, dh and dg all equal core/ops/smear.cpp bit for bit (same fp32 steps, same double sums in
// the same order). Each shape: B·T·D forward and dh elements, D gate gradients.
TEST(CudaMathSmear, F32ReplayIsBitwise) {
    std::uint64_t seed = 200;
    for (const SmearDims& dims : smear_shapes()) {
        const std::vector<float> h = random_floats(static_cast<std::size_t>(dims.rows() * dims.dim), -1.0, 1.0, ++seed);
        const std::vector<float> g = random_gate_logits(dims.dim, ++seed);
        const std::vector<float> dout =
            random_floats(static_cast<std::size_t>(dims.rows() * dims.dim), -1.0, 1.0, ++seed);
        const Tensor h_tensor = tensor_of(h, dims.shape(), DType::f32);
        const Tensor g_tensor = tensor_of(g, {dims.dim}, DType::f32);
        const Tensor dout_tensor = tensor_of(dout, dims.shape(), DType::f32);
        EXPECT_EQ(bit_mismatches(replay_smear_forward(dims, h, g, false), smear_forward(h_tensor, g_tensor)), 0)
            << smear_label(dims);
        const SmearGrads reference = smear_backward(h_tensor, g_tensor, dout_tensor);
        const SmearReplayGrads grads = replay_smear_backward(dims, h, g, dout, false);
        EXPECT_EQ(bit_mismatches(grads.dh, reference.dh), 0) << smear_label(dims);
        EXPECT_EQ(bit_mismatches(grads.dg, reference.dg), 0) << smear_label(dims);
    }
}

// Exact zeros survive: h = 0 gives out = +0 and dout = 0 gives dh = +0 and dg = +0, as in the reference.
TEST(CudaMathSmear, ZerosStayPositiveZeros) {
    const SmearDims dims{2, 3, 4};
    const std::vector<float> zeros(static_cast<std::size_t>(dims.rows() * dims.dim), 0.0f);
    const std::vector<float> negative_zeros(zeros.size(), -0.0f);
    const std::vector<float> g = random_gate_logits(dims.dim, 3);
    const Tensor g_tensor = tensor_of(g, {dims.dim}, DType::f32);
    const Tensor h_tensor = tensor_of(negative_zeros, dims.shape(), DType::f32);
    EXPECT_EQ(bit_mismatches(replay_smear_forward(dims, negative_zeros, g, false), smear_forward(h_tensor, g_tensor)),
              0);
    const SmearReplayGrads grads = replay_smear_backward(dims, negative_zeros, g, negative_zeros, false);
    const SmearGrads reference = smear_backward(h_tensor, g_tensor, h_tensor);
    EXPECT_EQ(bit_mismatches(grads.dh, reference.dh), 0);
    EXPECT_EQ(bit_mismatches(grads.dg, reference.dg), 0);
    for (const float value : grads.dg) EXPECT_EQ(float_bits(value), 0u);
}

// bf16 storage: the f64 reference on the same rounded inputs; the replay's only extra error is the output rounding.
TEST(CudaMathSmear, Bf16ReplayIsWithinOneRounding) {
    std::uint64_t seed = 700;
    for (const SmearDims& dims : smear_shapes()) {
        const std::vector<float> h =
            bf16_rounded(random_floats(static_cast<std::size_t>(dims.rows() * dims.dim), -1.0, 1.0, ++seed));
        const std::vector<float> g = bf16_rounded(random_gate_logits(dims.dim, ++seed));
        const std::vector<float> dout =
            bf16_rounded(random_floats(static_cast<std::size_t>(dims.rows() * dims.dim), -1.0, 1.0, ++seed));
        const Tensor h_tensor = tensor_of(h, dims.shape(), DType::f64);
        const Tensor g_tensor = tensor_of(g, {dims.dim}, DType::f64);
        const Tensor dout_tensor = tensor_of(dout, dims.shape(), DType::f64);
        const double tolerance = 1.0 / 256 + 1e-6;
        EXPECT_LE(max_relative_error(replay_smear_forward(dims, h, g, true), smear_forward(h_tensor, g_tensor)),
                  tolerance)
            << smear_label(dims);
        const SmearGrads reference = smear_backward(h_tensor, g_tensor, dout_tensor);
        const SmearReplayGrads grads = replay_smear_backward(dims, h, g, dout, true);
        EXPECT_LE(max_relative_error(grads.dh, reference.dh), tolerance) << smear_label(dims);
        // dg: relative to its own size (sums of hundreds of rows), one bf16 rounding of an f64-exact sum.
        for (std::int64_t d = 0; d < dims.dim; ++d) {
            const double expected = reference.dg.item(d);
            EXPECT_LE(std::abs(grads.dg[static_cast<std::size_t>(d)] - expected), std::abs(expected) / 256 + 1e-12)
                << smear_label(dims) << " channel " << d;
        }
    }
}

}  // namespace
}  // namespace pgolf
