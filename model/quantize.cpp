// The seeds' non-GPTQ quantizers, dequantization and ±1 pruning, written to reproduce the reference float32 torch
// arithmetic (see quantize.h for each rule; SEED-SYSTEMS.md §1.4–§5.4 for where it comes from).
#include "model/quantize.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"

namespace pgolf {

namespace {

// A 2-D, non-empty, finite f32 tensor, or a one-line error naming the op and the tensor.

void check_tensor(const Tensor& w, const char* op, const std::string& name) {
    if (!w.defined()) throw Error(std::string(op) + ": tensor '" + name + "' is undefined");
    if (w.dtype() != DType::f32) {
        throw Error(std::string(op) + ": tensor '" + name + "' must be f32, got " + dtype_name(w.dtype()));
    }
    if (w.numel() == 0) throw Error(std::string(op) + ": tensor '" + name + "' is empty " + shape_string(w.shape()));
    const float* data = w.data<float>();
    for (std::int64_t i = 0; i < w.numel(); ++i) {
        if (!std::isfinite(data[i])) {
            throw Error(std::string(op) + ": tensor '" + name + "' has a non-finite value at flat index " +
                        std::to_string(i));
        }
    }
}

// check_tensor, and 2-D.
void check_matrix(const Tensor& w, const char* op, const std::string& name) {
    if (w.defined() && w.dim() != 2) {
        throw Error(std::string(op) + ": tensor '" + name + "' must be 2-D, got shape " + shape_string(w.shape()));
    }
    check_tensor(w, op, name);
}

// The integer range and the scale divisor of one quantizer call.
struct Grid {
    std::int32_t qmin;
    std::int32_t qmax;
    double divisor;
};

void check_grid(const Grid& grid, const char* op) {
    if (grid.qmin > grid.qmax || grid.qmin < -128 || grid.qmax > 127 || !(grid.divisor > 0.0) ||
        !std::isfinite(grid.divisor)) {
        throw Error(std::string(op) + ": bad integer grid [" + std::to_string(grid.qmin) + ", " +
                    std::to_string(grid.qmax) + "] / " + std::to_string(grid.divisor) +
                    " (needs qmin ≤ qmax within int8 and a positive divisor)");
    }
}

void check_quantile_value(double q, const char* op) {
    if (!(q >= 0.0 && q <= 1.0)) throw Error(std::string(op) + ": quantile " + std::to_string(q) + " is not in [0, 1]");
}

// torch.quantile's linear interpolation on sorted float32 values (see quantize_quantile).
float quantile_of_sorted(const float* sorted, std::int64_t n, float q) {
    const float rank = q * static_cast<float>(n - 1);
    // rank ≥ 0, so the cast truncates to the floor, as torch's conversion of ranks to long does.
    const auto below = static_cast<std::int64_t>(rank);
    const auto above = static_cast<std::int64_t>(std::ceil(rank));
    const float weight = rank - static_cast<float>(below);
    const float a = sorted[below];
    const float b = sorted[above];
    const float difference = b - a;
    // torch's CPU lerp is one fused multiply-add from whichever end is nearer the weight.
    return weight < 0.5f ? std::fma(weight, difference, a) : std::fma(weight - 1.0f, difference, b);
}

// |row| sorted ascending.
std::vector<float> sorted_abs(const float* row, std::int64_t n) {
    std::vector<float> result(static_cast<std::size_t>(n));
    for (std::int64_t j = 0; j < n; ++j) result[static_cast<std::size_t>(j)] = std::fabs(row[j]);
    std::sort(result.begin(), result.end());
    return result;
}

// clamp(round_half_even(x), qmin, qmax); torch.round rounds half to even, as nearbyint does in the default mode.
std::int8_t round_clamp(float x, const Grid& grid) {
    float r = std::nearbyint(x);
    r = std::min(std::max(r, static_cast<float>(grid.qmin)), static_cast<float>(grid.qmax));
    return static_cast<std::int8_t>(r);
}

// s = max(clip / divisor, 1 / divisor) in f32: torch divides a float32 tensor by a Python number (cast to f32) and
// clamps with the f32 cast of the Python double 1/divisor.
float floored_scale(float clip, const Grid& grid) {
    const float divided = clip / static_cast<float>(grid.divisor);
    return std::max(divided, static_cast<float>(1.0 / grid.divisor));
}

std::uint16_t f16_scale(float scale, const char* op, const std::string& name, std::int64_t row) {
    const std::uint16_t bits = f16_from_float(scale);
    if (!std::isfinite(float_from_f16(bits))) {
        throw Error(std::string(op) + ": row " + std::to_string(row) + " of tensor '" + name + "' has scale " +
                    std::to_string(scale) + ", which overflows fp16");
    }
    return bits;
}

QuantizedTensor per_row_result(const std::string& name, const Tensor& w, const std::string& method, const Grid& grid,
                               Tensor values, Tensor scales) {
    QuantizedTensor result;
    result.name = name;
    result.shape = w.shape();
    result.encoding = QuantEncoding::per_row;
    result.method = method;
    result.qmin = grid.qmin;
    result.qmax = grid.qmax;
    result.values = std::move(values);
    result.scales = std::move(scales);
    return result;
}

// Σ(w − q·s)² over a row in double, with q·s formed in f32 as the references reconstruct.
double row_squared_error(const float* w, const std::int8_t* q, std::int64_t cols, float scale) {
    double sum = 0.0;
    for (std::int64_t j = 0; j < cols; ++j) {
        const float difference = w[j] - static_cast<float>(q[j]) * scale;
        sum += static_cast<double>(difference) * static_cast<double>(difference);
    }
    return sum;
}

}  // namespace

std::string quant_encoding_name(QuantEncoding encoding) {
    switch (encoding) {
        case QuantEncoding::passthrough:
            return "passthrough";
        case QuantEncoding::per_row:
            return "per_row";
        case QuantEncoding::per_tensor:
            return "per_tensor";
    }
    throw Error("quant_encoding_name: unknown encoding " + std::to_string(static_cast<int>(encoding)));
}

QuantEncoding quant_encoding_parse(const std::string& name) {
    if (name == "passthrough") return QuantEncoding::passthrough;
    if (name == "per_row") return QuantEncoding::per_row;
    if (name == "per_tensor") return QuantEncoding::per_tensor;
    throw Error("unknown quantization encoding '" + name + "' (expected passthrough, per_row or per_tensor)");
}

double quantize_quantile(std::span<const float> values, double q) {
    check_quantile_value(q, "quantize_quantile");
    if (values.empty()) throw Error("quantize_quantile: no values");
    for (const float value : values) {
        if (!std::isfinite(value)) throw Error("quantize_quantile: values include a non-finite number");
    }
    std::vector<float> sorted(values.begin(), values.end());
    std::sort(sorted.begin(), sorted.end());
    return quantile_of_sorted(sorted.data(), static_cast<std::int64_t>(sorted.size()), static_cast<float>(q));
}

Tensor quantize_row_abs_quantile(const Tensor& w, double q) {
    check_matrix(w, "quantize_row_abs_quantile", "w");
    check_quantile_value(q, "quantize_row_abs_quantile");
    const std::int64_t rows = w.size(0), cols = w.size(1);
    Tensor result = Tensor::empty({rows});
    const float* data = w.data<float>();
    float* out = result.data<float>();
    for (std::int64_t r = 0; r < rows; ++r) {
        const std::vector<float> sorted = sorted_abs(data + r * cols, cols);
        out[r] = quantile_of_sorted(sorted.data(), cols, static_cast<float>(q));
    }
    return result;
}

Tensor quantize_quantile_row_scales(const Tensor& w, double q, double divisor) {
    const Grid grid{-127, 127, divisor};
    check_grid(grid, "quantize_quantile_row_scales");
    const Tensor clips = quantize_row_abs_quantile(w, q);
    Tensor scales = Tensor::empty({clips.numel()}, DType::f16);
    const float* clip = clips.data<float>();
    std::uint16_t* out = scales.data<std::uint16_t>();
    for (std::int64_t r = 0; r < clips.numel(); ++r) {
        out[r] = f16_scale(floored_scale(clip[r], grid), "quantize_quantile_row_scales", "w", r);
    }
    return scales;
}

Tensor quantize_sdclip_row_scales(const Tensor& w, double k, double divisor) {
    const Grid grid{-127, 127, divisor};
    check_matrix(w, "quantize_sdclip_row_scales", "w");
    check_grid(grid, "quantize_sdclip_row_scales");
    if (!(k > 0.0) || !std::isfinite(k))
        throw Error("quantize_sdclip_row_scales: k must be positive, got " + std::to_string(k));
    const std::int64_t rows = w.size(0), cols = w.size(1);
    if (cols < 2) throw Error("quantize_sdclip_row_scales: an unbiased row std needs at least 2 columns, got 1");
    Tensor scales = Tensor::empty({rows}, DType::f16);
    const float* data = w.data<float>();
    std::uint16_t* out = scales.data<std::uint16_t>();
    for (std::int64_t r = 0; r < rows; ++r) {
        const float* row = data + r * cols;
        // torch's CPU std accumulates in double and rounds the result to f32; a two-pass sum reproduces it.
        double mean = 0.0;
        for (std::int64_t j = 0; j < cols; ++j) mean += row[j];
        mean /= static_cast<double>(cols);
        double squares = 0.0;
        for (std::int64_t j = 0; j < cols; ++j) squares += (row[j] - mean) * (row[j] - mean);
        const auto row_std = static_cast<float>(std::sqrt(squares / static_cast<double>(cols - 1)));
        const float clip = std::max(static_cast<float>(k) * row_std, static_cast<float>(1e-8));
        out[r] = f16_scale(floored_scale(clip, grid), "quantize_sdclip_row_scales", "w", r);
    }
    return scales;
}

Tensor quantize_round_to_nearest(const Tensor& w, const Tensor& scales, std::int32_t qmin, std::int32_t qmax) {
    const Grid grid{qmin, qmax, 1.0};
    check_matrix(w, "quantize_round_to_nearest", "w");
    check_grid(grid, "quantize_round_to_nearest");
    const std::int64_t rows = w.size(0), cols = w.size(1);
    tensor_check_dtype(scales, DType::f16, "quantize_round_to_nearest", "scales");
    tensor_check_shape(scales, {rows}, "quantize_round_to_nearest", "scales");
    Tensor values = Tensor::empty({rows, cols}, DType::i8);
    const float* data = w.data<float>();
    const std::uint16_t* scale_bits = scales.data<std::uint16_t>();
    std::int8_t* q = values.data<std::int8_t>();
    for (std::int64_t r = 0; r < rows; ++r) {
        const float scale = float_from_f16(scale_bits[r]);
        if (!(scale > 0.0f) || !std::isfinite(scale)) {
            throw Error("quantize_round_to_nearest: row " + std::to_string(r) + " has scale " + std::to_string(scale) +
                        "; scales must be positive and finite");
        }
        for (std::int64_t j = 0; j < cols; ++j) q[r * cols + j] = round_clamp(data[r * cols + j] / scale, grid);
    }
    return values;
}

QuantizedTensor quantize_int8_clip_rows(const std::string& name, const Tensor& w, double clip_quantile,
                                        std::int32_t qmin, std::int32_t qmax, double divisor) {
    const Grid grid{qmin, qmax, divisor};
    check_matrix(w, "quantize_int8_clip_rows", name);
    check_grid(grid, "quantize_int8_clip_rows");
    check_quantile_value(clip_quantile, "quantize_int8_clip_rows");
    const std::int64_t rows = w.size(0), cols = w.size(1);
    Tensor values = Tensor::empty({rows, cols}, DType::i8);
    Tensor scales = Tensor::empty({rows}, DType::f16);
    const float* data = w.data<float>();
    std::int8_t* q = values.data<std::int8_t>();
    std::uint16_t* scale_bits = scales.data<std::uint16_t>();
    for (std::int64_t r = 0; r < rows; ++r) {
        const float* row = data + r * cols;
        const std::vector<float> sorted = sorted_abs(row, cols);
        const float clip = quantile_of_sorted(sorted.data(), cols, static_cast<float>(clip_quantile));
        // The f32 scale divides; only the stored copy is rounded to fp16 (the baseline's order of operations).
        const float scale = floored_scale(clip, grid);
        for (std::int64_t j = 0; j < cols; ++j) {
            const float clipped = std::max(std::min(row[j], clip), -clip);
            q[r * cols + j] = round_clamp(clipped / scale, grid);
        }
        scale_bits[r] = f16_scale(scale, "quantize_int8_clip_rows", name, r);
    }
    return per_row_result(name, w, "int8_clip", grid, std::move(values), std::move(scales));
}

QuantizedTensor quantize_int8_clip_tensor(const std::string& name, const Tensor& w, double clip_quantile,
                                          std::int32_t qmin, std::int32_t qmax, double divisor) {
    const Grid grid{qmin, qmax, divisor};
    check_tensor(w, "quantize_int8_clip_tensor", name);
    check_grid(grid, "quantize_int8_clip_tensor");
    check_quantile_value(clip_quantile, "quantize_int8_clip_tensor");
    const float* data = w.data<float>();
    const std::vector<float> sorted = sorted_abs(data, w.numel());
    const float clip = quantile_of_sorted(sorted.data(), w.numel(), static_cast<float>(clip_quantile));
    // The reference takes the clip as a Python float and divides in double before making an f32 scale tensor.
    const float scale = clip > 0.0f ? static_cast<float>(static_cast<double>(clip) / grid.divisor) : 1.0f;
    Tensor values = Tensor::empty(w.shape(), DType::i8);
    std::int8_t* q = values.data<std::int8_t>();
    for (std::int64_t i = 0; i < w.numel(); ++i) {
        const float clipped = std::max(std::min(data[i], clip), -clip);
        q[i] = round_clamp(clipped / scale, grid);
    }
    QuantizedTensor result;
    result.name = name;
    result.shape = w.shape();
    result.encoding = QuantEncoding::per_tensor;
    result.method = "int8_clip";
    result.qmin = grid.qmin;
    result.qmax = grid.qmax;
    result.values = std::move(values);
    result.scales = Tensor::scalar(scale, DType::f32);
    return result;
}

QuantizedTensor quantize_int8_clip(const std::string& name, const Tensor& w) {
    if (w.defined() && w.dim() == 2) return quantize_int8_clip_rows(name, w);
    return quantize_int8_clip_tensor(name, w);
}

QuantizedTensor quantize_row_search(const std::string& name, const Tensor& w, std::span<const double> quantiles,
                                    std::int32_t qmin, std::int32_t qmax, double divisor) {
    const Grid grid{qmin, qmax, divisor};
    check_matrix(w, "quantize_row_search", name);
    check_grid(grid, "quantize_row_search");
    if (quantiles.empty()) throw Error("quantize_row_search: no quantiles to search");
    for (const double q : quantiles) check_quantile_value(q, "quantize_row_search");
    const std::int64_t rows = w.size(0), cols = w.size(1);
    Tensor values = Tensor::empty({rows, cols}, DType::i8);
    Tensor scales = Tensor::empty({rows}, DType::f16);
    const float* data = w.data<float>();
    std::int8_t* best_q = values.data<std::int8_t>();
    std::uint16_t* scale_bits = scales.data<std::uint16_t>();
    std::vector<std::int8_t> candidate(static_cast<std::size_t>(cols));
    for (std::int64_t r = 0; r < rows; ++r) {
        const float* row = data + r * cols;
        const std::vector<float> sorted = sorted_abs(row, cols);
        double best_error = std::numeric_limits<double>::infinity();
        float best_scale = 0.0f;
        for (std::size_t p = 0; p < quantiles.size(); ++p) {
            const float clip = quantile_of_sorted(sorted.data(), cols, static_cast<float>(quantiles[p]));
            // S1 divides by the f32 scale, with no pre-clip (the clamp to [qmin, qmax] does the clipping), and scores
            // the reconstruction with that f32 scale.
            const float scale = floored_scale(clip, grid);
            for (std::int64_t j = 0; j < cols; ++j)
                candidate[static_cast<std::size_t>(j)] = round_clamp(row[j] / scale, grid);
            const double error = row_squared_error(row, candidate.data(), cols, scale);
            // The first quantile always sets the row; later ones must be strictly better (torch's `err < best_err`).
            if (p == 0 || error < best_error) {
                best_error = error;
                best_scale = scale;
                std::copy(candidate.begin(), candidate.end(), best_q + r * cols);
            }
        }
        scale_bits[r] = f16_scale(best_scale, "quantize_row_search", name, r);
    }
    return per_row_result(name, w, "row_search", grid, std::move(values), std::move(scales));
}

QuantizedTensor quantize_tensor_search(const std::string& name, const Tensor& w, std::span<const double> quantiles,
                                       std::int32_t qmin, std::int32_t qmax, double divisor) {
    const Grid grid{qmin, qmax, divisor};
    check_matrix(w, "quantize_tensor_search", name);
    check_grid(grid, "quantize_tensor_search");
    if (quantiles.empty()) throw Error("quantize_tensor_search: no quantiles to search");
    for (const double q : quantiles) check_quantile_value(q, "quantize_tensor_search");
    const std::int64_t rows = w.size(0), cols = w.size(1);
    const float* data = w.data<float>();
    QuantizedTensor best;
    double best_error = std::numeric_limits<double>::infinity();
    for (std::size_t p = 0; p < quantiles.size(); ++p) {
        Tensor scales = quantize_quantile_row_scales(w, quantiles[p], divisor);
        Tensor values = quantize_round_to_nearest(w, scales, qmin, qmax);
        const std::int8_t* q = values.data<std::int8_t>();
        const std::uint16_t* scale_bits = scales.data<std::uint16_t>();
        double sum = 0.0;
        for (std::int64_t r = 0; r < rows; ++r) {
            sum += row_squared_error(data + r * cols, q + r * cols, cols, float_from_f16(scale_bits[r]));
        }
        const double error = sum / static_cast<double>(w.numel());
        if (p == 0 || error < best_error) {
            best_error = error;
            best = per_row_result(name, w, "tensor_search", grid, std::move(values), std::move(scales));
            best.chosen_quantile = quantiles[p];
        }
    }
    return best;
}

QuantizedTensor quantize_sdclip_rows(const std::string& name, const Tensor& w, double k, std::int32_t qmin,
                                     std::int32_t qmax, double divisor) {
    const Grid grid{qmin, qmax, divisor};
    check_matrix(w, "quantize_sdclip_rows", name);
    check_grid(grid, "quantize_sdclip_rows");
    Tensor scales = quantize_sdclip_row_scales(w, k, divisor);
    Tensor values = quantize_round_to_nearest(w, scales, qmin, qmax);
    return per_row_result(name, w, "sdclip", grid, std::move(values), std::move(scales));
}

QuantizedTensor quantize_passthrough(const std::string& name, const Tensor& w, DType stored) {
    if (!w.defined()) throw Error("quantize_passthrough: tensor '" + name + "' is undefined");
    if (!dtype_is_floating(w.dtype())) {
        throw Error("quantize_passthrough: tensor '" + name + "' must be floating point, got " + dtype_name(w.dtype()));
    }
    if (stored != DType::f32 && stored != DType::f16) {
        throw Error("quantize_passthrough: tensor '" + name + "' can be stored as f32 or f16, not " +
                    dtype_name(stored));
    }
    QuantizedTensor result;
    result.name = name;
    result.shape = w.shape();
    result.encoding = QuantEncoding::passthrough;
    result.method = "passthrough";
    result.values = w.to(stored);
    return result;
}

bool quantize_is_control_name(const std::string& name) {
    // Substring matches, as the references test `pattern in name`; each singular also matches its plural.
    static const char* const patterns[] = {"attn_scale", "mlp_scale", "resid_mix", "q_gain", "skip_weight", "smear"};
    for (const char* pattern : patterns) {
        if (name.find(pattern) != std::string::npos) return true;
    }
    return false;
}

Tensor quantized_dequantize(const QuantizedTensor& tensor) {
    const std::string where = "quantized_dequantize: tensor '" + tensor.name + "'";
    if (!tensor.values.defined()) throw Error(where + " has no values");
    switch (tensor.encoding) {
        case QuantEncoding::passthrough: {
            if (tensor.values.dtype() != DType::f32 && tensor.values.dtype() != DType::f16) {
                throw Error(where + ": passthrough values must be f32 or f16, got " +
                            dtype_name(tensor.values.dtype()));
            }
            if (tensor.values.numel() != shape_numel(tensor.shape)) {
                throw Error(where + ": " + std::to_string(tensor.values.numel()) + " values for shape " +
                            shape_string(tensor.shape));
            }
            return tensor.values.to(DType::f32).reshape(tensor.shape);
        }
        case QuantEncoding::per_row: {
            if (tensor.shape.size() != 2)
                throw Error(where + ": per_row needs a 2-D shape, got " + shape_string(tensor.shape));
            if (tensor.values.dtype() != DType::i8 || tensor.values.shape() != tensor.shape) {
                throw Error(where + ": per_row values must be i8 " + shape_string(tensor.shape) + ", got " +
                            dtype_name(tensor.values.dtype()) + " " + shape_string(tensor.values.shape()));
            }
            const std::int64_t rows = tensor.shape[0], cols = tensor.shape[1];
            if (!tensor.scales.defined() || tensor.scales.dtype() != DType::f16 || tensor.scales.numel() != rows) {
                throw Error(where + ": per_row scales must be f16 with " + std::to_string(rows) + " entries");
            }
            Tensor result = Tensor::empty(tensor.shape);
            const std::int8_t* q = tensor.values.data<std::int8_t>();
            const std::uint16_t* scale_bits = tensor.scales.data<std::uint16_t>();
            float* out = result.data<float>();
            for (std::int64_t r = 0; r < rows; ++r) {
                const float scale = float_from_f16(scale_bits[r]);
                for (std::int64_t j = 0; j < cols; ++j) out[r * cols + j] = static_cast<float>(q[r * cols + j]) * scale;
            }
            return result;
        }
        case QuantEncoding::per_tensor: {
            if (tensor.values.dtype() != DType::i8 || tensor.values.numel() != shape_numel(tensor.shape)) {
                throw Error(where + ": per_tensor values must be i8 with " + std::to_string(shape_numel(tensor.shape)) +
                            " entries");
            }
            if (!tensor.scales.defined() || tensor.scales.dtype() != DType::f32 || tensor.scales.numel() != 1) {
                throw Error(where + ": per_tensor scale must be one f32 value");
            }
            const float scale = tensor.scales.data<float>()[0];
            Tensor result = Tensor::empty(tensor.shape);
            const std::int8_t* q = tensor.values.data<std::int8_t>();
            float* out = result.data<float>();
            for (std::int64_t i = 0; i < result.numel(); ++i) out[i] = static_cast<float>(q[i]) * scale;
            return result;
        }
    }
    throw Error(where + " has an unknown encoding");
}

std::vector<PruneCandidate> quantize_prune_candidates(const std::vector<QuantizedTensor>& tensors) {
    std::vector<PruneCandidate> candidates;
    for (std::size_t t = 0; t < tensors.size(); ++t) {
        const QuantizedTensor& tensor = tensors[t];
        if (tensor.encoding != QuantEncoding::per_row || tensor.qmax != 31) continue;
        const std::string where = "quantize_prune_candidates: tensor '" + tensor.name + "'";
        if (!tensor.values.defined() || tensor.values.dtype() != DType::i8 || tensor.values.dim() != 2) {
            throw Error(where + ": per_row values must be 2-D i8");
        }
        const std::int64_t rows = tensor.values.size(0), cols = tensor.values.size(1);
        if (!tensor.scales.defined() || tensor.scales.dtype() != DType::f16 || tensor.scales.numel() != rows) {
            throw Error(where + ": per_row scales must be f16 with " + std::to_string(rows) + " entries");
        }
        const std::int8_t* q = tensor.values.data<std::int8_t>();
        const std::uint16_t* scale_bits = tensor.scales.data<std::uint16_t>();
        for (std::int64_t r = 0; r < rows; ++r) {
            const float scale = float_from_f16(scale_bits[r]);
            for (std::int64_t j = 0; j < cols; ++j) {
                const std::int8_t value = q[r * cols + j];
                if (value == 1 || value == -1) candidates.push_back({t, r * cols + j, scale * scale});
            }
        }
    }
    // Python's sort is stable: equal scales keep tensor order, then flat-index order.
    std::stable_sort(candidates.begin(), candidates.end(), [](const PruneCandidate& a, const PruneCandidate& b) {
        return a.scale_squared < b.scale_squared;
    });
    return candidates;
}

PruneResult quantize_prune_to_target(std::vector<QuantizedTensor>& tensors, const QuantizedSizeFunction& total_bytes,
                                     std::int64_t target_bytes) {
    if (!total_bytes) throw Error("quantize_prune_to_target: no size function");
    const std::vector<PruneCandidate> candidates = quantize_prune_candidates(tensors);
    const auto count = static_cast<std::int64_t>(candidates.size());

    // Work on private copies of the values we may write, so a tensor shared with the caller's other copies is safe.
    std::vector<bool> has_candidates(tensors.size(), false);
    for (const PruneCandidate& candidate : candidates) has_candidates[candidate.tensor] = true;
    for (std::size_t t = 0; t < tensors.size(); ++t) {
        if (has_candidates[t]) tensors[t].values = tensors[t].values.clone();
    }
    std::vector<std::int8_t*> data(tensors.size(), nullptr);
    for (std::size_t t = 0; t < tensors.size(); ++t) {
        if (has_candidates[t]) data[t] = tensors[t].values.data<std::int8_t>();
    }
    std::vector<std::int8_t> original(candidates.size());
    for (std::size_t i = 0; i < candidates.size(); ++i) {
        original[i] = data[candidates[i].tensor][candidates[i].index];
    }

    // Moves the tensors to "the first n candidates zeroed" and measures them, caching sizes by prefix length.
    std::int64_t applied = 0;
    std::map<std::int64_t, std::int64_t> sizes;
    auto apply = [&](std::int64_t n) {
        for (std::int64_t i = applied; i < n; ++i) {
            data[candidates[static_cast<std::size_t>(i)].tensor][candidates[static_cast<std::size_t>(i)].index] = 0;
        }
        for (std::int64_t i = n; i < applied; ++i) {
            const PruneCandidate& candidate = candidates[static_cast<std::size_t>(i)];
            data[candidate.tensor][candidate.index] = original[static_cast<std::size_t>(i)];
        }
        applied = n;
    };
    auto size_at = [&](std::int64_t n) {
        apply(n);
        const auto found = sizes.find(n);
        if (found != sizes.end()) return found->second;
        const std::int64_t bytes = total_bytes(tensors);
        sizes[n] = bytes;
        return bytes;
    };

    PruneResult result;
    result.candidates = count;
    result.bytes_before = size_at(0);
    if (result.bytes_before <= target_bytes) {
        result.bytes_after = result.bytes_before;
        result.reached = true;
        return result;
    }
    const std::int64_t full = size_at(count);
    if (full > target_bytes) {
        // The references apply every candidate even when that is not enough.
        result.pruned = count;
        result.bytes_after = full;
        result.reached = false;
        return result;
    }
    std::int64_t lo = 0, hi = count;
    while (lo < hi) {
        const std::int64_t mid = (lo + hi) / 2;
        if (size_at(mid) <= target_bytes) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    result.pruned = lo;
    result.bytes_after = size_at(lo);
    result.reached = result.bytes_after <= target_bytes;
    return result;
}

}  // namespace pgolf
