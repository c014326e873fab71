// Post-training quantization of the seeds' exports (SEED-SYSTEMS.md §1.4, §2.4, §3.4, §4.4, §5.4): per-row int8 with
// a percentile clip, int6 values in int8 containers with per-row or per-tensor percentile searches, SDClip k·std row
// scales, full GPTQ with Hessians from calibration inputs (model/gptq.h), passthrough of small tensors, and selective
// ±1 pruning to a byte target. Every quantizer works on an f32 matrix and returns what the artifact stores.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pgolf {

enum class QuantEncoding : std::uint8_t {
    passthrough,  // values hold the tensor itself (f32 or f16); no scales
    per_row,      // values i8 (rows, cols); scales f16 (rows,); w ≈ q · s_row
    per_tensor,   // values i8 (any shape); scales f32 (); w ≈ q · s
};
std::string quant_encoding_name(QuantEncoding encoding);  // "passthrough", "per_row", "per_tensor"
QuantEncoding quant_encoding_parse(const std::string& name);

struct QuantizedTensor {
    std::string name;
    Shape shape;  // the original tensor's shape
    QuantEncoding encoding = QuantEncoding::passthrough;
    // How it was made, recorded in the artifact: "int8_clip", "row_search", "tensor_search", "sdclip", "gptq_sdclip",
    // "gptq_search", "passthrough".
    std::string method;
    std::int32_t qmin = 0, qmax = 0;  // integer range of a quantized encoding
    double chosen_quantile = 0.0;     // tensor_search / gptq_search: the quantile kept (1.0 = row max); else 0
    Tensor values;                    // see QuantEncoding
    Tensor scales;
};

// f32 with the original shape: q·s per row or per tensor (one f32 multiply, the fp16 row scale widened to f32, as the
// references' dequantizers do); passthrough values converted to f32.
Tensor quantized_dequantize(const QuantizedTensor& tensor);

// ---- Reference constants -------------------------------------------------------------------------------------------

// INT8_CLIP_PERCENTILE / 100, spelled as the references compute it.
inline constexpr double quantize_int8_clip_quantile = 99.99984 / 100.0;
// Float tensors with at most this many elements are stored as they are (fp16, or fp32 for control names).
inline constexpr std::int64_t quantize_keep_float_max_numel = 65536;
// S1's per-row search ("GPTQ-lite"), best quantile per row.
inline constexpr std::array<double, 5> quantize_row_search_quantiles = {0.9999, 0.99995, 0.99999, 0.999995, 0.999999};
// S2/S4's search (and S4's GPTQ), one quantile per tensor; 1.0 is the row maximum.
inline constexpr std::array<double, 5> quantize_tensor_search_quantiles = {0.999, 0.9995, 0.9999, 0.99999, 1.0};
inline constexpr double quantize_sdclip_k = 12.85;  // S3's SDClip multiplier

// ---- Building blocks -----------------------------------------------------------------------------------------------

// torch.quantile(values, q) with the default linear interpolation on float32 input, reproduced bit for bit: q is first
// rounded to float32, rank = q·(n−1) in float32, and the lerp between the neighbouring sorted values is one fused
// multiply-add (torch's CPU lerp kernel: a + w·(b−a) for w < 0.5, b + (w−1)·(b−a) otherwise, rounded once). The result
// is a float32 value returned as double. Throws on an empty span, a non-finite value or q outside [0, 1].
double quantize_quantile(std::span<const float> values, double q);

// Per row of a 2-D f32 tensor: quantize_quantile(|w_row|, q), as f32 (rows,).
Tensor quantize_row_abs_quantile(const Tensor& w, double q);

// Row scales f16 (rows,) of the S2/S4 rule: s = fp16(max(quantile(|w_row|, q) / divisor, 1 / divisor)), divided in f32
// as torch divides a float32 tensor by a Python number.
Tensor quantize_quantile_row_scales(const Tensor& w, double q, double divisor = 31.0);

// Row scales f16 (rows,) of S3's SDClip: s = fp16(max(max(k·std_row, 1e-8) / divisor, 1 / divisor)), std unbiased,
// computed in double and rounded to f32 (torch's CPU std), k·std in f32 as torch multiplies by a Python scalar.
Tensor quantize_sdclip_row_scales(const Tensor& w, double k = quantize_sdclip_k, double divisor = 31.0);

// Per-row quantization of a 2-D f32 tensor with given f16 row scales: q = clamp(round_half_even(w / s), qmin, qmax),
// w / s in f32 with s widened from f16. The int8 (rows, cols) values every fp16-scaled quantizer stores.
Tensor quantize_round_to_nearest(const Tensor& w, const Tensor& scales, std::int32_t qmin = -31,
                                 std::int32_t qmax = 31);

// ---- The seeds' quantizers (all take f32; 2-D where per_row) -------------------------------------------------------
// Each takes the integer range [qmin, qmax] and the divisor that turns a clip value into a scale,
// s = max(clip / divisor, 1 / divisor). The seeds use [−127, 127]/127 (baseline; S2/S4 embeddings), [−128, 127]/127
// (S1 embeddings, n_bits 8), [−32, 31]/31 (S1 block weights, n_bits 6) and [−31, 31]/31 (S2, S3, S4 int6).

// Baseline (§1.4) per row: c = quantile(|w_row|, clip_quantile); the f32 scale s = max(c / divisor, 1 / divisor)
// divides the clipped row, q = clamp(round(clamp(w, −c, c) / s), qmin, qmax); the stored scale is fp16(s).
// method "int8_clip".
QuantizedTensor quantize_int8_clip_rows(const std::string& name, const Tensor& w,
                                        double clip_quantile = quantize_int8_clip_quantile, std::int32_t qmin = -127,
                                        std::int32_t qmax = 127, double divisor = 127.0);

// Baseline per tensor (any shape): c = quantile(|w|, clip_quantile); s = f32(c / divisor) computed in double (1.0
// when c = 0); q = clamp(round(clamp(w, −c, c) / s), qmin, qmax); scale stored f32. method "int8_clip".
QuantizedTensor quantize_int8_clip_tensor(const std::string& name, const Tensor& w,
                                          double clip_quantile = quantize_int8_clip_quantile, std::int32_t qmin = -127,
                                          std::int32_t qmax = 127, double divisor = 127.0);

// The baseline's choice: per row for 2-D tensors, per tensor otherwise, with INT8_CLIP_Q and range ±127.
QuantizedTensor quantize_int8_clip(const std::string& name, const Tensor& w);

// S1 (§2.4) per-row search: for each quantile p in order, the f32 scale s = max(quantile(|w_row|, p) / divisor,
// 1 / divisor) divides the unclipped row, q = clamp(round(w / s), qmin, qmax), and a row keeps the first p whose
// squared error Σ(w − q·s)² (f32 scale, summed in double) is strictly smaller than every earlier one. Scales stored
// fp16. method "row_search".
QuantizedTensor quantize_row_search(const std::string& name, const Tensor& w,
                                    std::span<const double> quantiles = quantize_row_search_quantiles,
                                    std::int32_t qmin = -32, std::int32_t qmax = 31, double divisor = 31.0);

// S2/S4 (§4.4) per-tensor search: for each quantile p in order, row scales quantize_quantile_row_scales(w, p) (fp16),
// q = quantize_round_to_nearest; keeps the first p whose whole-matrix mean squared error (fp16 scales, double sum) is
// strictly smaller than every earlier one, recorded in chosen_quantile. method "tensor_search".
QuantizedTensor quantize_tensor_search(const std::string& name, const Tensor& w,
                                       std::span<const double> quantiles = quantize_tensor_search_quantiles,
                                       std::int32_t qmin = -31, std::int32_t qmax = 31, double divisor = 31.0);

// S3 (§3.4 step 5) per-row SDClip without GPTQ: scales quantize_sdclip_row_scales, q = quantize_round_to_nearest.
// method "sdclip".
QuantizedTensor quantize_sdclip_rows(const std::string& name, const Tensor& w, double k = quantize_sdclip_k,
                                     std::int32_t qmin = -31, std::int32_t qmax = 31, double divisor = 31.0);

// The tensor kept as it is, converted to stored (f32 or f16, round to nearest even). method "passthrough".
QuantizedTensor quantize_passthrough(const std::string& name, const Tensor& w, DType stored);

// Whether a parameter name is a control tensor, which the baseline and S1 keep in fp32 when small: the name contains
// one of attn_scale, mlp_scale, resid_mix, q_gain, skip_weight (each also covering its plural) or smear — the union of
// the baseline's CONTROL_TENSOR_NAME_PATTERNS and S1's. S2–S4 store every small tensor as fp16 before they look at
// names, so their longer lists (ve_layer_scales, ve_shared.scale, dtg_gate …) never change an output and are not here.
bool quantize_is_control_name(const std::string& name);

// ---- Selective ±1 pruning (§3.4 step 7, §5.4) ----------------------------------------------------------------------

// One entry with |q| = 1 that pruning may set to 0.
struct PruneCandidate {
    std::size_t tensor = 0;   // index into the tensor list
    std::int64_t index = 0;   // flat (row-major) index into its values
    float scale_squared = 0;  // s_row² in f32: the sort key
};

// The candidates in pruning order: every |q| = 1 entry of the per_row tensors with qmax = 31 (the int6 ones), listed by
// tensor order then flat index, then stably sorted by s_row² ascending, as the references do.
std::vector<PruneCandidate> quantize_prune_candidates(const std::vector<QuantizedTensor>& tensors);

struct PruneResult {
    std::int64_t candidates = 0;    // how many ±1 entries were eligible
    std::int64_t pruned = 0;        // how many were set to 0 (a prefix of the candidate order)
    std::int64_t bytes_before = 0;  // total_bytes with nothing pruned
    std::int64_t bytes_after = 0;   // total_bytes of the tensors as left
    bool reached = false;           // bytes_after ≤ target_bytes
};

using QuantizedSizeFunction = std::function<std::int64_t(const std::vector<QuantizedTensor>&)>;

// Prunes the smallest prefix of quantize_prune_candidates that brings total_bytes(tensors) to at most target_bytes,
// searched as the references do: nothing when the unpruned size fits; every candidate (reached false) when even that
// does not fit; otherwise the binary search lo = 0, hi = N, mid = (lo + hi) / 2 over prefix lengths.
// total_bytes is called on tensors holding the prefix under test; values of the tensors with candidates are cloned
// first, so storage shared with other copies is never written. On return tensors hold exactly the chosen prefix.
PruneResult quantize_prune_to_target(std::vector<QuantizedTensor>& tensors, const QuantizedSizeFunction& total_bytes,
                                     std::int64_t target_bytes);

}  // namespace pgolf
