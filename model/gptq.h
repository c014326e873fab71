// Full GPTQ as S3 (§3.4) and S4 (§5.4) run it: Hessians H = mean over calibration batches of XᵀX, then per weight
// matrix act-order, the upper Cholesky factor of H⁻¹, 128-column blocks with error feedback, and SDClip or
// percentile-search row scales. The CPU path here is the specification; it computes in double.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/quantize.h"

namespace pgolf {

// Damping each seed adds when it finishes collecting (and again inside GPTQ): fraction of mean(diag H).
inline constexpr double gptq_damp_s3 = 0.01;
inline constexpr double gptq_damp_s4 = 0.005;

// Σ XᵀX over calibration batches for one linear layer whose input has `cols` features. Sums in double: the reference
// sums fp32 GEMM results on the GPU, whose rounding depends on the kernel; double makes this path the exact-arithmetic
// specification that any faster path is compared against.
class HessianAccumulator {
public:
    // emulate_bf16_autocast: the references' hooks run inside torch.autocast(bfloat16), so each batch's x.T @ x takes
    // bf16-rounded inputs and returns a bf16-rounded product before it is added to the fp32 sum. When set, add() rounds
    // x to bf16 and each batch product to f32 then bf16 the same way; the sum itself stays double.
    explicit HessianAccumulator(std::int64_t cols, bool emulate_bf16_autocast = false);

    // x: (..., cols) f32 or f64, every leading index a position; one call is one batch (S3 adds one calibration
    // sequence per call and divides by 64, S4 one training batch per call and divides by 256).
    void add(const Tensor& x);

    std::int64_t cols() const { return cols_; }
    std::int64_t batches() const { return batches_; }

    // f64 or f32 (cols, cols): Σ / batches() + damp·I with damp = damp_fraction · max(mean(diag), 1e-6), as the seeds
    // finish collection (S3 0.01, S4 0.005; 0 for none). Throws when nothing was added.
    Tensor hessian(double damp_fraction, DType dtype = DType::f64) const;

private:
    std::int64_t cols_;
    bool emulate_bf16_autocast_;
    std::int64_t batches_ = 0;
    std::vector<double> sum_;  // (cols, cols) row-major, both triangles
};

enum class GptqScaleRule : std::uint8_t {
    sdclip,             // S3: s = fp16(max(max(k·std_row, 1e-8) / divisor, 1 / divisor)), one GPTQ run
    percentile_search,  // S4: one GPTQ run per quantile p, s = fp16(max(quantile(|w_row|, p) / divisor, 1 / divisor));
                        // keeps the first p with strictly the lowest mean((W − Q·s)²) over the whole matrix
};

struct GptqOptions {
    double damp = gptq_damp_s3;  // added inside GPTQ after the dead-column fix: damp·mean(diag H)·I
    std::int64_t block_size = 128;
    bool act_order = true;              // process columns by descending diag(H) (stable for ties)
    bool retry_failed_cholesky = true;  // S3: add 0.1·mean(diag H) once and retry; S4: fail
    std::int32_t qmin = -31;            // integer range
    std::int32_t qmax = 31;
    double divisor = 31.0;  // s = max(clip / divisor, 1 / divisor)
    GptqScaleRule rule = GptqScaleRule::sdclip;
    double sdclip_k = quantize_sdclip_k;
    std::vector<double> quantiles{quantize_tensor_search_quantiles.begin(), quantize_tensor_search_quantiles.end()};
};

GptqOptions gptq_options_s3();  // damp 0.01, SDClip k 12.85, act-order, retry, blocks of 128, ±31
GptqOptions gptq_options_s4();  // damp 0.005, quantile search, act-order, no retry, blocks of 128, ±31

// GPTQ of w (rows, cols) f32 with hessian (cols, cols) f32 or f64. Steps, as the seeds run them:
//   dead columns (H_jj = 0): H_jj = 1 and the weight column is zeroed; H += damp·mean(diag H)·I;
//   act-order permutation; U = upper Cholesky factor of H⁻¹ (H = LLᵀ, H⁻¹ from L, then its factor), retried once
//   with H += 0.1·mean(diag H)·I if any factorisation fails and retry_failed_cholesky is set;
//   row scales from the original w (fp16; the fp16 value widened is what divides);
//   per block of block_size columns, per column i: q = clamp(round_half_even(w_i / s), qmin, qmax),
//   e = (w_i − q·s) / U_ii, W[:, i:block_end] −= e·U[i, i:block_end]; then W[:, block_end:] −= E·U[block, block_end:];
//   columns un-permuted at the end.
// Returns per_row i8 values and f16 scales, method "gptq_sdclip" or "gptq_search" (with chosen_quantile).
QuantizedTensor gptq_quantize(const std::string& name, const Tensor& w, const Tensor& hessian,
                              const GptqOptions& options);

}  // namespace pgolf
