// Weight initialisations: torch.nn.init.orthogonal_ semantics (Householder QR in double of a standard-normal draw,
// signs fixed by diag R), normal draws and nn.Linear's default uniform, all from pgolf's own RandomStream.
#include "model/init.h"

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"

namespace pgolf {

namespace {

// Columns of a reflector update are split across threads from this much work on; each column is still computed by
// one thread in a fixed order, so the result is the same for every thread count.
constexpr std::int64_t kParallelWork = 1 << 14;

void init_check_floating(const Tensor& w, const char* op) { tensor_check_floating(w, op, "w"); }

// (rows, cols) as torch flattens an init target: dim 0 against everything after it.
void init_matrix_shape(const Tensor& w, const char* op, std::int64_t& rows, std::int64_t& cols) {
    if (w.dim() < 2) {
        throw Error(std::string(op) + ": w must have at least 2 dimensions, got shape " + shape_string(w.shape()));
    }
    rows = w.size(0);
    cols = rows == 0 ? 0 : w.numel() / rows;
}

void write_values(Tensor& w, const std::vector<double>& values) {
    if (w.dtype() == DType::f32) {
        float* out = w.data<float>();
        for (std::size_t i = 0; i < values.size(); ++i) out[i] = static_cast<float>(values[i]);
    } else {
        double* out = w.data<double>();
        for (std::size_t i = 0; i < values.size(); ++i) out[i] = values[i];
    }
}

// H = I − β u uᵀ applied to column `column` (length m, column-major) over rows k … m − 1.
void reflect_column(const std::vector<double>& u, double beta, std::int64_t k, double* column, std::int64_t m) {
    double dot = 0.0;
    for (std::int64_t i = k; i < m; ++i) dot += u[i - k] * column[i];
    const double factor = beta * dot;
    for (std::int64_t i = k; i < m; ++i) column[i] -= factor * u[i - k];
}

// Q (m × n, m ≥ n, column-major) of the QR of a (column-major, overwritten), with column j multiplied by
// sign(R_jj) (0 when R_jj = 0, as torch's sign), so the R of the result has a non-negative diagonal.
std::vector<double> householder_q_signed(std::vector<double>& a, std::int64_t m, std::int64_t n) {
    std::vector<std::vector<double>> reflectors(static_cast<std::size_t>(n));
    std::vector<double> betas(static_cast<std::size_t>(n), 0.0);
    std::vector<double> diagonal(static_cast<std::size_t>(n), 0.0);
    for (std::int64_t k = 0; k < n; ++k) {
        double* column = a.data() + k * m;
        double tail = 0.0;
        for (std::int64_t i = k + 1; i < m; ++i) tail += column[i] * column[i];
        const double head = column[k];
        if (tail == 0.0) {
            diagonal[k] = head;  // already upper-triangular here: H = I (LAPACK's τ = 0)
            continue;
        }
        // LAPACK's choice R_kk = −sign(head)·‖x‖ keeps u_0 = head − R_kk free of cancellation.
        const double norm = std::sqrt(head * head + tail);
        const double r = head >= 0.0 ? -norm : norm;
        std::vector<double>& u = reflectors[k];
        u.assign(column + k, column + m);
        u[0] = head - r;
        const double u_squares = u[0] * u[0] + tail;
        betas[k] = 2.0 / u_squares;
        diagonal[k] = r;
        const std::int64_t rest = n - k - 1;
#pragma omp parallel for schedule(static) if (rest * (m - k) >= kParallelWork)
        for (std::int64_t j = k + 1; j < n; ++j) reflect_column(u, betas[k], k, a.data() + j * m, m);
    }
    // Q = H_0 … H_{n−1} [I; 0], accumulated backwards: H_k only touches rows and columns ≥ k of the partial product.
    std::vector<double> q(static_cast<std::size_t>(m * n), 0.0);
    for (std::int64_t j = 0; j < n; ++j) q[j * m + j] = 1.0;
    for (std::int64_t k = n - 1; k >= 0; --k) {
        if (betas[k] == 0.0) continue;
        const std::int64_t rest = n - k;
#pragma omp parallel for schedule(static) if (rest * (m - k) >= kParallelWork)
        for (std::int64_t j = k; j < n; ++j) reflect_column(reflectors[k], betas[k], k, q.data() + j * m, m);
    }
    for (std::int64_t j = 0; j < n; ++j) {
        const double sign = diagonal[j] > 0.0 ? 1.0 : (diagonal[j] < 0.0 ? -1.0 : 0.0);
        for (std::int64_t i = 0; i < m; ++i) q[j * m + i] *= sign;
    }
    return q;
}

}  // namespace

void init_orthogonal(Tensor& w, RandomStream& random, double gain) {
    init_check_floating(w, "init_orthogonal");
    std::int64_t rows = 0, cols = 0;
    init_matrix_shape(w, "init_orthogonal", rows, cols);
    if (w.numel() == 0) return;
    // N (rows, cols) drawn row-major. torch factors N when rows ≥ cols and Nᵀ otherwise, so A = m × n with m ≥ n.
    const bool transposed = rows < cols;
    const std::int64_t m = transposed ? cols : rows;
    const std::int64_t n = transposed ? rows : cols;
    std::vector<double> a(static_cast<std::size_t>(m * n));  // column-major A
    for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t c = 0; c < cols; ++c) {
            // A = N: A[r][c] at c·m + r. A = Nᵀ: A[c][r] at r·m + c = r·cols + c, N's own row-major order.
            a[transposed ? r * cols + c : c * m + r] = random.normal();
        }
    }
    const std::vector<double> q = householder_q_signed(a, m, n);
    std::vector<double> values(static_cast<std::size_t>(rows * cols));
    for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t c = 0; c < cols; ++c) {
            // W = Q, or W = Qᵀ when N was transposed.
            values[r * cols + c] = gain * (transposed ? q[r * m + c] : q[c * m + r]);
        }
    }
    write_values(w, values);
}

void init_normal(Tensor& w, RandomStream& random, double std) {
    init_check_floating(w, "init_normal");
    if (!(std >= 0.0) || !std::isfinite(std)) {
        std::ostringstream message;
        message << "init_normal: std must be non-negative and finite, got " << std;
        throw Error(message.str());
    }
    std::vector<double> values(static_cast<std::size_t>(w.numel()));
    for (double& value : values) value = std * random.normal();
    write_values(w, values);
}

void init_uniform_fan_in(Tensor& w, RandomStream& random) {
    init_check_floating(w, "init_uniform_fan_in");
    std::int64_t rows = 0, cols = 0;
    init_matrix_shape(w, "init_uniform_fan_in", rows, cols);
    if (w.numel() == 0) return;
    // kaiming_uniform_(a = √5): gain √(2 / (1 + 5)) times √(3 / fan_in) is 1/√fan_in.
    const double bound = 1.0 / std::sqrt(static_cast<double>(cols));
    std::vector<double> values(static_cast<std::size_t>(w.numel()));
    for (double& value : values) value = random.uniform(-bound, bound);
    write_values(w, values);
}

}  // namespace pgolf
