// Per-element arithmetic of Muon on cuda weights (core/cuda/muon.cu): the momentum, the Newton–Schulz element ops
// between the GEMMs, the per-matrix norm and the applied update, in the operation order of Muon::step and
// optim_newton_schulz in model/optim.cpp, so the host can replay the kernels bit for bit. core cannot include model/
// headers: the options mirror MuonOptions by value.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/cuda/host_device.h"

namespace pgolf {

// MuonPrecision: bf16 rounds every op's result to bf16 (GEMMs accumulate in fp32 first); f32 never rounds.
enum class CudaMuonPrecision : std::uint8_t { bf16, f32 };
// WeightDecayOrder: W·(1 − lr·wd) − lr·U, or (W − lr·U)·(1 − lr·wd).
enum class CudaMuonDecayOrder : std::uint8_t { before_update, after_update };

struct MuonUpdateOptions {
    double lr = 0.04;
    double momentum = 0.95;
    int backend_steps = 5;
    bool nesterov = true;
    double weight_decay = 0.0;
    CudaMuonDecayOrder decay_order = CudaMuonDecayOrder::before_update;
    CudaMuonPrecision precision = CudaMuonPrecision::bf16;
    bool bf16_state = false;  // the gradient and every momentum op rounded to bf16
};

// Newton–Schulz's quintic coefficients and the norm's epsilon, as fp32 constants like the CPU loop's.
inline constexpr float kNewtonSchulzA = 3.4445f;
inline constexpr float kNewtonSchulzB = -4.7750f;
inline constexpr float kNewtonSchulzC = 2.0315f;
inline constexpr float kNewtonSchulzEpsilon = 1e-7f;

// The per-matrix sum of squares runs in two passes whose order depends on the matrix size only: kMuonNormThreads
// threads per block, muon_norm_blocks(matrix_size) blocks per matrix each writing one double partial, then one thread
// per matrix adding its partials in block order.
inline constexpr int kMuonNormThreads = 256;
inline constexpr std::int64_t kMuonNormMaxBlocks = 64;
inline constexpr std::int64_t kMuonNormElementsPerBlock = 8192;  // 8 vectors of 4 per thread before another block

inline std::int64_t muon_norm_blocks(std::int64_t matrix_size) {
    const std::int64_t blocks = (matrix_size + kMuonNormElementsPerBlock - 1) / kMuonNormElementsPerBlock;
    return std::clamp<std::int64_t>(blocks, 1, kMuonNormMaxBlocks);
}

// Newton–Schulz works on the wide orientation (m ≤ n): a tall matrix (rows > cols) is used through transposed GEMMs
// instead of a transposed copy.
PGOLF_HOST_DEVICE bool muon_is_tall(std::int64_t rows, std::int64_t cols) { return rows > cols; }

PGOLF_HOST_DEVICE float muon_round(float value, bool bf16) { return bf16 ? hd_bf16_round(value) : value; }

// --- momentum ----------------------------------------------------------------------------------------------------

struct MuonMomentumConstants {
    float momentum;
    bool nesterov;
    bool bf16_state;
};

inline MuonMomentumConstants muon_momentum_constants(const MuonUpdateOptions& options) {
    return MuonMomentumConstants{static_cast<float>(options.momentum), options.nesterov, options.bf16_state};
}

// buf.mul_(μ).add_(g), then the update: nesterov g.add(buf, alpha=μ), else buf. With bf16 state the gradient and each
// op's result are rounded to bf16. Updates buffer in place and returns the update.
PGOLF_HOST_DEVICE float muon_momentum_element(float grad, float& buffer, const MuonMomentumConstants& c) {
    if (c.bf16_state) {
        const float g = hd_bf16_round(grad);
        buffer = hd_bf16_round(hd_add(hd_bf16_round(hd_mul(buffer, c.momentum)), g));
        return c.nesterov ? hd_bf16_round(hd_add(g, hd_mul(c.momentum, buffer))) : buffer;
    }
    buffer = hd_add(hd_mul(buffer, c.momentum), grad);
    return c.nesterov ? hd_add(grad, hd_mul(c.momentum, buffer)) : buffer;
}

// --- Newton–Schulz ------------------------------------------------------------------------------------------------

// The norm's sum of squares is kept in double, as the CPU loop does. The device uses the _rn intrinsics so nvcc cannot
// contract the multiply and add into a double FMA.
PGOLF_HOST_DEVICE double muon_add_square(double sum, float x) {
    const auto value = static_cast<double>(x);
    return hd_add(sum, hd_mul(value, value));
}

PGOLF_HOST_DEVICE double muon_add_partials(double a, double b) { return hd_add(a, b); }

// X.norm() + eps: the norm is a tensor of X's dtype, and so is the sum, hence the two roundings in bf16 mode.
PGOLF_HOST_DEVICE float muon_norm_denominator(double sum_squares, bool bf16) {
#if defined(__CUDA_ARCH__)
    const float norm = __double2float_rn(__dsqrt_rn(sum_squares));
#else
    const auto norm = static_cast<float>(std::sqrt(sum_squares));
#endif
    return muon_round(hd_add(muon_round(norm, bf16), kNewtonSchulzEpsilon), bf16);
}

// X / (‖X‖ + eps), X already rounded to the working precision.
PGOLF_HOST_DEVICE float muon_normalize_element(float x, float denominator, bool bf16) {
    return muon_round(hd_div(x, denominator), bf16);
}

// From the fp32 accumulation of A = X Xᵀ: A itself (rounded) and c·A, the left operand of the next GEMM.
PGOLF_HOST_DEVICE void muon_gram_element(float accumulated, bool bf16, float& gram, float& scaled_gram) {
    gram = muon_round(accumulated, bf16);
    scaled_gram = muon_round(hd_mul(kNewtonSchulzC, gram), bf16);
}

// B = b·A + (c·A)·A, given A and the fp32 accumulation of (c·A)·A.
PGOLF_HOST_DEVICE float muon_poly_element(float gram, float gram_squared_accumulated, bool bf16) {
    return muon_round(
        hd_add(muon_round(hd_mul(kNewtonSchulzB, gram), bf16), muon_round(gram_squared_accumulated, bf16)), bf16);
}

// X = a·X + B·X, given X and the fp32 accumulation of B·X.
PGOLF_HOST_DEVICE float muon_iterate_element(float x, float product_accumulated, bool bf16) {
    return muon_round(hd_add(muon_round(hd_mul(kNewtonSchulzA, x), bf16), muon_round(product_accumulated, bf16)), bf16);
}

// --- applied update -----------------------------------------------------------------------------------------------

struct MuonApplyConstants {
    float neg_lr;
    float decay;  // 1 − lr·wd
    float scale;  // √max(1, rows/cols)
    bool decay_before;
    bool decay_after;  // both false when the factor is exactly 1, as Muon::step then skips the multiply
    bool bf16;         // the scaled update is staged in bf16
};

// rows, cols: one matrix's shape (a bank's slice).
inline MuonApplyConstants muon_apply_constants(const MuonUpdateOptions& options, std::int64_t rows, std::int64_t cols) {
    MuonApplyConstants constants{};
    constants.neg_lr = static_cast<float>(-options.lr);
    constants.decay = static_cast<float>(1.0 - options.lr * options.weight_decay);
    constants.scale =
        static_cast<float>(std::sqrt(std::max(1.0, static_cast<double>(rows) / static_cast<double>(cols))));
    const bool decays = constants.decay != 1.0f;
    constants.decay_before = decays && options.decay_order == CudaMuonDecayOrder::before_update;
    constants.decay_after = decays && options.decay_order == CudaMuonDecayOrder::after_update;
    constants.bf16 = options.precision == CudaMuonPrecision::bf16;
    return constants;
}

// One parameter element: decay, p.add_(scaled update, alpha=-lr), or the other decay order.
PGOLF_HOST_DEVICE void muon_apply_element(float& w, float update, const MuonApplyConstants& c) {
    if (c.decay_before) w = hd_mul(w, c.decay);
    const float scaled = hd_mul(update, c.scale);
    w = hd_add(w, hd_mul(c.neg_lr, c.bf16 ? hd_bf16_round(scaled) : scaled));
    if (c.decay_after) w = hd_mul(w, c.decay);
}

}  // namespace pgolf
