// Rotary position embedding on (B, H, T, Dh): the reference's Rotary tables (float32 angles) and apply_rotary_emb,
// with the backward as the transposed rotation.
#include "core/ops/rope.h"

#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"

namespace pgolf {

namespace {

struct RopeLayout {
    std::int64_t rows = 0;  // B·H·T rows of Dh values
    std::int64_t time = 0;  // T
    std::int64_t head_dim = 0;
    std::int64_t half = 0;  // rotary_dims / 2: dim j pairs with j + half
    std::int64_t frequency_dims = 0;
};

std::string rope_number(double value) {
    std::string text = std::to_string(value);
    text.erase(text.find_last_not_of('0') + 1);
    if (!text.empty() && text.back() == '.') text.pop_back();
    return text;
}

RopeLayout rope_check(const Tensor& x, const RopeSpec& spec, const char* name) {
    tensor_check_floating(x, "rope", name);
    if (x.dim() != 4) {
        throw Error(std::string("rope: ") + name + " must be 4-D (B, H, T, Dh), got shape " + shape_string(x.shape()));
    }
    RopeLayout layout;
    layout.head_dim = x.size(3);
    layout.time = x.size(2);
    layout.rows = x.size(0) * x.size(1) * x.size(2);
    const std::int64_t rotary_dims = spec.rotary_dims == 0 ? layout.head_dim : spec.rotary_dims;
    if (rotary_dims <= 0 || rotary_dims % 2 != 0 || rotary_dims > layout.head_dim) {
        throw Error("rope: rotary_dims must be even, positive and at most the head dim " +
                    std::to_string(layout.head_dim) + ", got " + std::to_string(rotary_dims));
    }
    layout.half = rotary_dims / 2;
    layout.frequency_dims = spec.frequency_dims == 0 ? rotary_dims : spec.frequency_dims;
    // Fewer frequency dims than rotated dims would leave pairs without a frequency.
    if (layout.frequency_dims % 2 != 0 || layout.frequency_dims < rotary_dims) {
        throw Error("rope: frequency_dims must be even and at least rotary_dims " + std::to_string(rotary_dims) +
                    ", got " + std::to_string(layout.frequency_dims));
    }
    if (!(spec.base > 0.0) || !std::isfinite(spec.base)) {
        throw Error("rope: base must be positive and finite, got " + rope_number(spec.base));
    }
    if (spec.position_offset < 0) {
        throw Error("rope: position_offset must be non-negative, got " + std::to_string(spec.position_offset));
    }
    return layout;
}

// angles: (T, half), float32 at every step as torch computes them: inv_freq = 1 / base^(arange(0, F, 2) / F), then
// outer(positions, inv_freq). Matching the f32 rounding here is what lets the tables agree with the reference.
std::vector<float> rope_angles(const RopeLayout& layout, const RopeSpec& spec) {
    const float base = static_cast<float>(spec.base);
    const float frequency_dims = static_cast<float>(layout.frequency_dims);
    std::vector<float> inv_freq(static_cast<std::size_t>(layout.half));
    for (std::int64_t j = 0; j < layout.half; ++j) {
        const float exponent = static_cast<float>(2 * j) / frequency_dims;
        inv_freq[j] = 1.0f / std::pow(base, exponent);
    }
    std::vector<float> angles(static_cast<std::size_t>(layout.time * layout.half));
    for (std::int64_t t = 0; t < layout.time; ++t) {
        const float position = static_cast<float>(t + spec.position_offset);
        for (std::int64_t j = 0; j < layout.half; ++j) angles[t * layout.half + j] = position * inv_freq[j];
    }
    return angles;
}

// The reference takes cos/sin of the f32 angle in f32 and casts them to the activations' dtype; the f64 path does the
// same, so both dtypes rotate by exactly the same (f32) cos/sin values.
float rope_cos(float angle, float) { return std::cos(angle); }
float rope_sin(float angle, float) { return std::sin(angle); }
double rope_cos(float angle, double) { return static_cast<double>(std::cos(angle)); }
double rope_sin(float angle, double) { return static_cast<double>(std::sin(angle)); }

// direction +1 applies the rotation (forward), −1 its transpose (backward: the inverse rotation).
template <typename Scalar>
Tensor rope_rotate(const Tensor& x, const RopeLayout& layout, const RopeSpec& spec, int direction) {
    const std::vector<float> angles = rope_angles(layout, spec);
    // cos, sin: (T, half)
    std::vector<Scalar> cos(angles.size());
    std::vector<Scalar> sin(angles.size());
    for (std::size_t n = 0; n < angles.size(); ++n) {
        cos[n] = rope_cos(angles[n], Scalar{});
        sin[n] = static_cast<Scalar>(direction) * rope_sin(angles[n], Scalar{});
    }

    Tensor y = Tensor::empty(x.shape(), x.dtype());
    const Scalar* in = x.data<Scalar>();
    Scalar* out = y.data<Scalar>();
    const std::int64_t head_dim = layout.head_dim;
    const std::int64_t half = layout.half;
#pragma omp parallel for schedule(static)
    for (std::int64_t row = 0; row < layout.rows; ++row) {
        const std::int64_t t = row % layout.time;
        const Scalar* x_row = in + row * head_dim;
        Scalar* y_row = out + row * head_dim;
        const Scalar* c = cos.data() + t * half;
        const Scalar* s = sin.data() + t * half;
        for (std::int64_t j = 0; j < half; ++j) {
            const Scalar x1 = x_row[j];
            const Scalar x2 = x_row[j + half];
            y_row[j] = x1 * c[j] + x2 * s[j];
            y_row[j + half] = -x1 * s[j] + x2 * c[j];
        }
        for (std::int64_t d = 2 * half; d < head_dim; ++d) y_row[d] = x_row[d];
    }
    return y;
}

Tensor rope_dispatch(const Tensor& x, const RopeSpec& spec, const char* name, int direction) {
    const RopeLayout layout = rope_check(x, spec, name);
    if (x.dtype() == DType::f32) return rope_rotate<float>(x, layout, spec, direction);
    return rope_rotate<double>(x, layout, spec, direction);
}

}  // namespace

// x: (B, H, T, Dh)
Tensor rope_forward(const Tensor& x, const RopeSpec& spec) { return rope_dispatch(x, spec, "x", +1); }

// dy: (B, H, T, Dh). The op is linear and orthogonal per pair, so its gradient is the transposed rotation of dy.
Tensor rope_backward(const Tensor& dy, const RopeSpec& spec) { return rope_dispatch(dy, spec, "dy", -1); }

}  // namespace pgolf
