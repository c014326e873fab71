// Per-row absmax fake quantization (the forward of the seeds' QAT; the STE backward is the identity). f32 weights
// are quantized entirely in f32, as the reference does on w.float(); f64 weights entirely in f64 (for grad checks).
#include "core/ops/fake_quant.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "core/error.h"
#include "core/ops/dispatch.h"

namespace pgolf {

namespace {

constexpr std::int64_t kParallelElements = 1 << 15;

std::string spec_number(double value) {
    std::string text = std::to_string(value);
    text.erase(text.find_last_not_of('0') + 1);
    if (!text.empty() && text.back() == '.') text.pop_back();
    return text;
}

void fake_quant_check(const Tensor& w, const FakeQuantSpec& spec) {
    tensor_check_floating(w, "fake_quantize_rows", "w");
    if (w.dim() != 2) {
        throw Error("fake_quantize_rows: w must be 2-D (rows, cols), got shape " + shape_string(w.shape()));
    }
    if (spec.min_q > spec.max_q) {
        throw Error("fake_quantize_rows: spec.min_q " + std::to_string(spec.min_q) + " exceeds spec.max_q " +
                    std::to_string(spec.max_q));
    }
    if (!(spec.divisor > 0.0) || !std::isfinite(spec.divisor)) {
        throw Error("fake_quantize_rows: spec.divisor must be positive and finite, got " + spec_number(spec.divisor));
    }
    if (!(spec.scale_floor > 0.0) || !std::isfinite(spec.scale_floor)) {
        throw Error("fake_quantize_rows: spec.scale_floor must be positive and finite, got " +
                    spec_number(spec.scale_floor));
    }
}

}  // namespace

Tensor fake_quantize_rows(const Tensor& w, const FakeQuantSpec& spec) {
    fake_quant_check(w, spec);
    const std::int64_t rows = w.size(0);
    const std::int64_t cols = w.size(1);
    Tensor out = Tensor::empty(w.shape(), w.dtype());
    dispatch_floating(w.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* in = w.data<T>();
        T* result = out.data<T>();
        // The divisor, floor and range are rounded to T once, as torch casts Python scalars to the tensor's dtype.
        const T divisor = static_cast<T>(spec.divisor);
        const T floor = static_cast<T>(spec.scale_floor);
        const T low = static_cast<T>(spec.min_q);
        const T high = static_cast<T>(spec.max_q);
        // w, out: (rows, cols); one scale per row.
#pragma omp parallel for schedule(static) if (w.numel() >= kParallelElements)
        for (std::int64_t r = 0; r < rows; ++r) {
            const T* row = in + r * cols;
            T* out_row = result + r * cols;
            T row_max = 0;
            bool has_nan = false;
            for (std::int64_t c = 0; c < cols; ++c) {
                has_nan = has_nan || std::isnan(row[c]);
                row_max = std::max(row_max, std::abs(row[c]));
            }
            // amax propagates NaN, and so does clamp_min.
            const T scale = has_nan ? std::numeric_limits<T>::quiet_NaN() : std::max(row_max / divisor, floor);
            for (std::int64_t c = 0; c < cols; ++c) {
                // nearbyint under the default rounding mode is round-half-to-even, like torch.round.
                const T level = std::clamp(std::nearbyint(row[c] / scale), low, high);
                out_row[c] = level * scale;
            }
        }
    });
    return out;
}

}  // namespace pgolf
