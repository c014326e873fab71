// Hessian collection and full GPTQ (gptq.h) in double: blocked Cholesky through BLAS-3, the per-row column loop in
// parallel over rows (rows are independent in GPTQ), and the between-block error propagation as one GEMM.
#include "model/gptq.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"

namespace pgolf {

namespace {

// BLAS single-threaded, OpenMP over fixed row blocks: the same policy as core/ops/linear.cpp, so results never depend
// on the thread count and OpenBLAS's pool does not spin next to OpenMP's.
void blas_use_one_thread() {
    static const bool once = [] {
        openblas_set_num_threads(1);
        return true;
    }();
    (void)once;
}

constexpr std::int64_t kRowBlock = 128;      // rows per BLAS call when a product is split across threads
constexpr std::int64_t kCholeskyBlock = 64;  // panel width of the blocked Cholesky

std::vector<double> to_doubles_checked(const Tensor& t, const std::string& what) {
    std::vector<double> result(static_cast<std::size_t>(t.numel()));
    if (t.dtype() == DType::f32) {
        const float* data = t.data<float>();
        for (std::int64_t i = 0; i < t.numel(); ++i) result[static_cast<std::size_t>(i)] = data[i];
    } else if (t.dtype() == DType::f64) {
        const double* data = t.data<double>();
        std::copy(data, data + t.numel(), result.begin());
    } else {
        throw Error(what + " must be f32 or f64, got " + dtype_name(t.dtype()));
    }
    for (const double value : result) {
        if (!std::isfinite(value)) throw Error(what + " has a non-finite value");
    }
    return result;
}

// Lower Cholesky factor of the leading n×n block at a (row stride lda), in place, reading only the lower triangle.
// False when a pivot is not positive (or NaN), as LAPACK's potrf reports failure.
bool cholesky_lower_unblocked(double* a, std::int64_t n, std::int64_t lda) {
    for (std::int64_t j = 0; j < n; ++j) {
        double* row_j = a + j * lda;
        double pivot = row_j[j];
        for (std::int64_t k = 0; k < j; ++k) pivot -= row_j[k] * row_j[k];
        if (!(pivot > 0.0)) return false;
        pivot = std::sqrt(pivot);
        row_j[j] = pivot;
        for (std::int64_t i = j + 1; i < n; ++i) {
            double* row_i = a + i * lda;
            double sum = row_i[j];
            for (std::int64_t k = 0; k < j; ++k) sum -= row_i[k] * row_j[k];
            row_i[j] = sum / pivot;
        }
    }
    return true;
}

// A = LLᵀ for a symmetric n×n row-major matrix (lower triangle read), L written over A with the upper triangle zeroed.
// Right-looking blocked form: factor a diagonal block, solve the panel below it, update the trailing matrix.
bool cholesky_lower(std::vector<double>& a, std::int64_t n) {
    blas_use_one_thread();
    for (std::int64_t k0 = 0; k0 < n; k0 += kCholeskyBlock) {
        const std::int64_t k1 = std::min(k0 + kCholeskyBlock, n);
        const std::int64_t kb = k1 - k0;
        if (!cholesky_lower_unblocked(a.data() + k0 * n + k0, kb, n)) return false;
        if (k1 < n) {
            const auto m = static_cast<blasint>(n - k1);
            const auto bn = static_cast<blasint>(n);
            // A21 ← A21 · L11⁻ᵀ, then A22 ← A22 − A21 · A21ᵀ (lower triangle).
            cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, m, static_cast<blasint>(kb),
                        1.0, a.data() + k0 * n + k0, bn, a.data() + k1 * n + k0, bn);
            cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, m, static_cast<blasint>(kb), -1.0,
                        a.data() + k1 * n + k0, bn, 1.0, a.data() + k1 * n + k1, bn);
        }
    }
    for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t j = i + 1; j < n; ++j) a[static_cast<std::size_t>(i * n + j)] = 0.0;
    }
    return true;
}

// U with H⁻¹ = UᵀU, upper triangular, the way the references form it: L = chol(H), H⁻¹ = (LLᵀ)⁻¹ = L⁻ᵀL⁻¹, then the
// upper factor of H⁻¹ (the transpose of its lower factor). Empty when any factorisation fails.
std::vector<double> inverse_upper_factor(const std::vector<double>& h, std::int64_t n) {
    std::vector<double> l = h;
    if (!cholesky_lower(l, n)) return {};
    const auto bn = static_cast<blasint>(n);
    std::vector<double> l_inverse(static_cast<std::size_t>(n * n), 0.0);
    for (std::int64_t i = 0; i < n; ++i) l_inverse[static_cast<std::size_t>(i * n + i)] = 1.0;
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, bn, bn, 1.0, l.data(), bn,
                l_inverse.data(), bn);
    std::vector<double> h_inverse(static_cast<std::size_t>(n * n), 0.0);
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, bn, bn, 1.0, l_inverse.data(), bn, 0.0, h_inverse.data(), bn);
    if (!cholesky_lower(h_inverse, n)) return {};
    std::vector<double> upper(static_cast<std::size_t>(n * n), 0.0);
    for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t j = i; j < n; ++j) {
            upper[static_cast<std::size_t>(i * n + j)] = h_inverse[static_cast<std::size_t>(j * n + i)];
        }
    }
    return upper;
}

double mean_diagonal(const std::vector<double>& h, std::int64_t n) {
    double sum = 0.0;
    for (std::int64_t i = 0; i < n; ++i) sum += h[static_cast<std::size_t>(i * n + i)];
    return sum / static_cast<double>(n);
}

void add_to_diagonal(std::vector<double>& h, std::int64_t n, double value) {
    for (std::int64_t i = 0; i < n; ++i) h[static_cast<std::size_t>(i * n + i)] += value;
}

// Everything GPTQ needs that does not depend on the scales: permuted weights (dead columns zeroed) and U.
struct GptqProblem {
    std::int64_t rows = 0, cols = 0;
    std::vector<std::int64_t> permutation;  // processing position → original column
    std::vector<double> weights;            // (rows, cols), permuted
    std::vector<double> upper;              // (cols, cols): upper Cholesky factor of the permuted H⁻¹
};

GptqProblem gptq_prepare(const std::string& name, const Tensor& w, const Tensor& hessian, const GptqOptions& options) {
    GptqProblem problem;
    problem.rows = w.size(0);
    problem.cols = w.size(1);
    const std::int64_t n = problem.cols;
    std::vector<double> h = to_doubles_checked(hessian, "gptq_quantize: Hessian of '" + name + "'");

    std::vector<bool> dead(static_cast<std::size_t>(n), false);
    for (std::int64_t j = 0; j < n; ++j) {
        double& diagonal = h[static_cast<std::size_t>(j * n + j)];
        if (diagonal == 0.0) {
            // A column no calibration input ever touched: give it unit curvature and nothing to quantize.
            dead[static_cast<std::size_t>(j)] = true;
            diagonal = 1.0;
        }
    }
    add_to_diagonal(h, n, options.damp * mean_diagonal(h, n));

    problem.permutation.resize(static_cast<std::size_t>(n));
    std::iota(problem.permutation.begin(), problem.permutation.end(), std::int64_t{0});
    if (options.act_order) {
        std::stable_sort(problem.permutation.begin(), problem.permutation.end(), [&](std::int64_t a, std::int64_t b) {
            return h[static_cast<std::size_t>(a * n + a)] > h[static_cast<std::size_t>(b * n + b)];
        });
    }
    const std::vector<std::int64_t>& perm = problem.permutation;

    std::vector<double> permuted(static_cast<std::size_t>(n * n));
    for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t j = 0; j < n; ++j) {
            permuted[static_cast<std::size_t>(i * n + j)] =
                h[static_cast<std::size_t>(perm[static_cast<std::size_t>(i)] * n + perm[static_cast<std::size_t>(j)])];
        }
    }
    problem.upper = inverse_upper_factor(permuted, n);
    if (problem.upper.empty() && options.retry_failed_cholesky) {
        // S3's fallback: one more, larger damping of the already damped, permuted H.
        add_to_diagonal(permuted, n, 0.1 * mean_diagonal(permuted, n));
        problem.upper = inverse_upper_factor(permuted, n);
    }
    if (problem.upper.empty()) {
        throw Error("gptq_quantize: the damped Hessian of '" + name + "' is not positive definite" +
                    (options.retry_failed_cholesky ? " even after the extra 0.1·mean(diag) damping" : ""));
    }

    const float* data = w.data<float>();
    problem.weights.resize(static_cast<std::size_t>(problem.rows * n));
    for (std::int64_t r = 0; r < problem.rows; ++r) {
        for (std::int64_t j = 0; j < n; ++j) {
            const std::int64_t source = perm[static_cast<std::size_t>(j)];
            problem.weights[static_cast<std::size_t>(r * n + j)] =
                dead[static_cast<std::size_t>(source)] ? 0.0 : static_cast<double>(data[r * n + source]);
        }
    }
    return problem;
}

// The GPTQ column loop with fixed row scales; returns q (rows, cols) in processing (permuted) order.
std::vector<std::int8_t> gptq_run(const GptqProblem& problem, const Tensor& scales, const GptqOptions& options) {
    const std::int64_t rows = problem.rows, cols = problem.cols;
    std::vector<double> scale(static_cast<std::size_t>(rows));
    const std::uint16_t* scale_bits = scales.data<std::uint16_t>();
    for (std::int64_t r = 0; r < rows; ++r) scale[static_cast<std::size_t>(r)] = float_from_f16(scale_bits[r]);

    std::vector<double> w = problem.weights;
    std::vector<std::int8_t> q(static_cast<std::size_t>(rows * cols));
    const double* u = problem.upper.data();
    const double qmin = options.qmin, qmax = options.qmax;
    blas_use_one_thread();
    for (std::int64_t b0 = 0; b0 < cols; b0 += options.block_size) {
        const std::int64_t b1 = std::min(b0 + options.block_size, cols);
        const std::int64_t count = b1 - b0;
        std::vector<double> errors(static_cast<std::size_t>(rows * count));
#pragma omp parallel for schedule(static)
        for (std::int64_t r = 0; r < rows; ++r) {
            double* row = w.data() + r * cols;
            const double s = scale[static_cast<std::size_t>(r)];
            for (std::int64_t i = b0; i < b1; ++i) {
                const double value = row[i];
                const double rounded = std::min(std::max(std::nearbyint(value / s), qmin), qmax);
                q[static_cast<std::size_t>(r * cols + i)] = static_cast<std::int8_t>(rounded);
                const double error = (value - rounded * s) / u[i * cols + i];
                const double* u_row = u + i * cols;
                for (std::int64_t j = i; j < b1; ++j) row[j] -= error * u_row[j];
                errors[static_cast<std::size_t>(r * count + (i - b0))] = error;
            }
        }
        if (b1 < cols) {
            const std::int64_t blocks = (rows + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for schedule(static)
            for (std::int64_t block = 0; block < blocks; ++block) {
                const std::int64_t r0 = block * kRowBlock;
                const std::int64_t r1 = std::min(r0 + kRowBlock, rows);
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(r1 - r0),
                            static_cast<blasint>(cols - b1), static_cast<blasint>(count), -1.0,
                            errors.data() + r0 * count, static_cast<blasint>(count), u + b0 * cols + b1,
                            static_cast<blasint>(cols), 1.0, w.data() + r0 * cols + b1, static_cast<blasint>(cols));
            }
        }
    }
    return q;
}

// mean((W − Q·s)²) over the whole (permuted, dead-zeroed) matrix; Q·s formed in f32 like the reference's recon.
double gptq_mean_squared_error(const GptqProblem& problem, const std::vector<std::int8_t>& q, const Tensor& scales) {
    const std::uint16_t* scale_bits = scales.data<std::uint16_t>();
    double sum = 0.0;
    for (std::int64_t r = 0; r < problem.rows; ++r) {
        const float s = float_from_f16(scale_bits[r]);
        for (std::int64_t j = 0; j < problem.cols; ++j) {
            const std::size_t at = static_cast<std::size_t>(r * problem.cols + j);
            const double difference = problem.weights[at] - static_cast<double>(static_cast<float>(q[at]) * s);
            sum += difference * difference;
        }
    }
    return sum / static_cast<double>(problem.rows * problem.cols);
}

void check_options(const GptqOptions& options, const std::string& name) {
    const std::string where = "gptq_quantize: options for '" + name + "'";
    if (options.block_size < 1) throw Error(where + ": block_size must be at least 1");
    if (!(options.damp >= 0.0) || !std::isfinite(options.damp)) throw Error(where + ": damp must be finite and ≥ 0");
    if (options.qmin > options.qmax || options.qmin < -128 || options.qmax > 127 || !(options.divisor > 0.0) ||
        !std::isfinite(options.divisor)) {
        throw Error(where + ": bad integer grid [" + std::to_string(options.qmin) + ", " +
                    std::to_string(options.qmax) + "] / " + std::to_string(options.divisor));
    }
    if (options.rule == GptqScaleRule::percentile_search) {
        if (options.quantiles.empty()) throw Error(where + ": no quantiles to search");
        for (const double q : options.quantiles) {
            if (!(q >= 0.0 && q <= 1.0)) throw Error(where + ": quantile " + std::to_string(q) + " is not in [0, 1]");
        }
    }
}

}  // namespace

HessianAccumulator::HessianAccumulator(std::int64_t cols, bool emulate_bf16_autocast)
    : cols_(cols), emulate_bf16_autocast_(emulate_bf16_autocast) {
    if (cols < 1) throw Error("HessianAccumulator: cols must be at least 1, got " + std::to_string(cols));
    sum_.assign(static_cast<std::size_t>(cols * cols), 0.0);
}

void HessianAccumulator::add(const Tensor& x) {
    if (!x.defined() || x.dim() < 1 || x.size(-1) != cols_) {
        throw Error("HessianAccumulator::add: input must be (..., " + std::to_string(cols_) + "), got " +
                    (x.defined() ? shape_string(x.shape()) : std::string("an undefined tensor")));
    }
    const std::int64_t n = x.numel() / cols_;
    if (n == 0) throw Error("HessianAccumulator::add: input " + shape_string(x.shape()) + " has no positions");
    std::vector<double> xd = to_doubles_checked(x, "HessianAccumulator::add: input");
    if (emulate_bf16_autocast_) {
        for (double& value : xd) value = bf16_round(static_cast<float>(value));
    }
    blas_use_one_thread();
    const std::int64_t blocks = (cols_ + kRowBlock - 1) / kRowBlock;
    std::vector<double> product;
    double* target = sum_.data();
    double beta = 1.0;
    if (emulate_bf16_autocast_) {
        // The batch product is rounded on its own before it joins the sum.
        product.assign(sum_.size(), 0.0);
        target = product.data();
        beta = 0.0;
    }
#pragma omp parallel for schedule(static)
    for (std::int64_t block = 0; block < blocks; ++block) {
        const std::int64_t r0 = block * kRowBlock;
        const std::int64_t r1 = std::min(r0 + kRowBlock, cols_);
        // Rows r0..r1 of XᵀX: (X[:, r0:r1])ᵀ · X.
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<blasint>(r1 - r0), static_cast<blasint>(cols_),
                    static_cast<blasint>(n), 1.0, xd.data() + r0, static_cast<blasint>(cols_), xd.data(),
                    static_cast<blasint>(cols_), beta, target + r0 * cols_, static_cast<blasint>(cols_));
    }
    if (emulate_bf16_autocast_) {
        for (std::size_t i = 0; i < sum_.size(); ++i) sum_[i] += bf16_round(static_cast<float>(product[i]));
    }
    ++batches_;
}

Tensor HessianAccumulator::hessian(double damp_fraction, DType dtype) const {
    if (batches_ == 0) throw Error("HessianAccumulator::hessian: no batches were added");
    if (!(damp_fraction >= 0.0) || !std::isfinite(damp_fraction)) {
        throw Error("HessianAccumulator::hessian: damp_fraction must be finite and ≥ 0, got " +
                    std::to_string(damp_fraction));
    }
    if (dtype != DType::f64 && dtype != DType::f32) {
        throw Error("HessianAccumulator::hessian: dtype must be f64 or f32, got " + dtype_name(dtype));
    }
    std::vector<double> h(sum_.size());
    for (std::size_t i = 0; i < h.size(); ++i) h[i] = sum_[i] / static_cast<double>(batches_);
    const double damp = damp_fraction * std::max(mean_diagonal(h, cols_), 1e-6);
    add_to_diagonal(h, cols_, damp);
    return Tensor::from_values(h, {cols_, cols_}, dtype);
}

GptqOptions gptq_options_s3() {
    GptqOptions options;
    options.damp = gptq_damp_s3;
    options.rule = GptqScaleRule::sdclip;
    options.retry_failed_cholesky = true;
    return options;
}

GptqOptions gptq_options_s4() {
    GptqOptions options;
    options.damp = gptq_damp_s4;
    options.rule = GptqScaleRule::percentile_search;
    options.retry_failed_cholesky = false;
    return options;
}

QuantizedTensor gptq_quantize(const std::string& name, const Tensor& w, const Tensor& hessian,
                              const GptqOptions& options) {
    if (!w.defined() || w.dim() != 2) {
        throw Error("gptq_quantize: weight '" + name + "' must be 2-D, got " +
                    (w.defined() ? shape_string(w.shape()) : std::string("an undefined tensor")));
    }
    if (w.dtype() != DType::f32)
        throw Error("gptq_quantize: weight '" + name + "' must be f32, got " + dtype_name(w.dtype()));
    if (w.numel() == 0) throw Error("gptq_quantize: weight '" + name + "' is empty " + shape_string(w.shape()));
    const std::int64_t cols = w.size(1);
    if (!hessian.defined() || hessian.shape() != Shape{cols, cols}) {
        throw Error("gptq_quantize: Hessian of '" + name + "' must be " + shape_string({cols, cols}) + ", got " +
                    (hessian.defined() ? shape_string(hessian.shape()) : std::string("an undefined tensor")));
    }
    check_options(options, name);
    const float* data = w.data<float>();
    for (std::int64_t i = 0; i < w.numel(); ++i) {
        if (!std::isfinite(data[i])) throw Error("gptq_quantize: weight '" + name + "' has a non-finite value");
    }

    const GptqProblem problem = gptq_prepare(name, w, hessian, options);
    QuantizedTensor result;
    result.name = name;
    result.shape = w.shape();
    result.encoding = QuantEncoding::per_row;
    result.qmin = options.qmin;
    result.qmax = options.qmax;

    std::vector<std::int8_t> best;
    if (options.rule == GptqScaleRule::sdclip) {
        result.method = "gptq_sdclip";
        result.scales = quantize_sdclip_row_scales(w, options.sdclip_k, options.divisor);
        best = gptq_run(problem, result.scales, options);
    } else {
        result.method = "gptq_search";
        double best_error = std::numeric_limits<double>::infinity();
        for (std::size_t p = 0; p < options.quantiles.size(); ++p) {
            Tensor scales = quantize_quantile_row_scales(w, options.quantiles[p], options.divisor);
            std::vector<std::int8_t> q = gptq_run(problem, scales, options);
            const double error = gptq_mean_squared_error(problem, q, scales);
            // First quantile always taken, later ones only when strictly better (the reference's `mse < best_err`).
            if (p == 0 || error < best_error) {
                best_error = error;
                best = std::move(q);
                result.scales = std::move(scales);
                result.chosen_quantile = options.quantiles[p];
            }
        }
    }

    result.values = Tensor::empty(w.shape(), DType::i8);
    std::int8_t* values = result.values.data<std::int8_t>();
    for (std::int64_t r = 0; r < problem.rows; ++r) {
        for (std::int64_t j = 0; j < cols; ++j) {
            values[r * cols + problem.permutation[static_cast<std::size_t>(j)]] =
                best[static_cast<std::size_t>(r * cols + j)];
        }
    }
    return result;
}

}  // namespace pgolf
