// Weight initialisations: orthogonality, torch's QR sign convention (R = QᵀA has a positive diagonal), per-seed
// determinism, thread-count independence, the normal and fan-in uniform ranges, and one-line errors.
#include "model/init.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/error.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using test::bitwise_equal;
using test::error_message;

// max |G − expected_diagonal·I| for the Gram matrix of w's rows (by_rows) or columns, w viewed as (rows, cols).
double gram_error(const Tensor& w, bool by_rows, double expected_diagonal) {
    const std::int64_t rows = w.size(0);
    const std::int64_t cols = w.numel() / rows;
    const std::int64_t count = by_rows ? rows : cols;
    const std::int64_t length = by_rows ? cols : rows;
    auto at = [&](std::int64_t vector, std::int64_t k) {
        return by_rows ? w.item(vector * cols + k) : w.item(k * cols + vector);
    };
    double worst = 0.0;
    for (std::int64_t i = 0; i < count; ++i) {
        for (std::int64_t j = 0; j < count; ++j) {
            double dot = 0.0;
            for (std::int64_t k = 0; k < length; ++k) dot += at(i, k) * at(j, k);
            worst = std::max(worst, std::abs(dot - (i == j ? expected_diagonal : 0.0)));
        }
    }
    return worst;
}

Tensor orthogonal(const Shape& shape, std::uint64_t seed, double gain = 1.0, DType dtype = DType::f32) {
    Tensor w = Tensor::empty(shape, dtype);
    RandomStream random(seed);
    init_orthogonal(w, random, gain);
    return w;
}

TEST(InitTest, OrthogonalTallMatrixHasOrthonormalColumns) {
    const Tensor w = orthogonal({64, 16}, 1);
    EXPECT_LE(gram_error(w, false, 1.0), 1e-5);
    const Tensor scaled = orthogonal({64, 16}, 1, 0.5);
    EXPECT_LE(gram_error(scaled, false, 0.25), 1e-5);
}

TEST(InitTest, OrthogonalWideMatrixHasOrthonormalRows) {
    const Tensor w = orthogonal({16, 64}, 2);
    EXPECT_LE(gram_error(w, true, 1.0), 1e-5);
    const Tensor scaled = orthogonal({16, 64}, 2, 1.0 / std::sqrt(14.0));
    EXPECT_LE(gram_error(scaled, true, 1.0 / 14.0), 1e-5);
}

TEST(InitTest, OrthogonalSquareAndFlattenedShapes) {
    const Tensor square = orthogonal({32, 32}, 3);
    EXPECT_LE(gram_error(square, true, 1.0), 1e-5);
    EXPECT_LE(gram_error(square, false, 1.0), 1e-5);
    // torch flattens (4, 2, 8) to (4, 16): four orthonormal rows.
    const Tensor flattened = orthogonal({4, 2, 8}, 4);
    EXPECT_LE(gram_error(flattened, true, 1.0), 1e-5);
    EXPECT_LE(gram_error(orthogonal({1, 1}, 5), true, 1.0), 1e-7);
}

// The normal draws of init_orthogonal, (rows, cols) row-major, for checking the factorisation against them.
std::vector<double> normal_draws(std::uint64_t seed, std::int64_t count) {
    RandomStream random(seed);
    std::vector<double> values(static_cast<std::size_t>(count));
    for (double& value : values) value = random.normal();
    return values;
}

TEST(InitTest, OrthogonalFollowsTorchSignConvention) {
    // torch: A = N (rows ≥ cols) or Nᵀ; A = QR; W = Q·sign(diag R) (transposed back). So R' = WᵀN (tall) or WNᵀ
    // (wide) must be upper-triangular with a positive diagonal.
    for (const Shape& shape : {Shape{12, 5}, Shape{5, 12}, Shape{7, 7}}) {
        const std::int64_t rows = shape[0], cols = shape[1];
        const Tensor w = orthogonal(shape, 6, 1.0, DType::f64);
        const std::vector<double> n = normal_draws(6, rows * cols);
        const bool wide = rows < cols;
        const std::int64_t k = std::min(rows, cols);
        const std::int64_t length = std::max(rows, cols);
        for (std::int64_t i = 0; i < k; ++i) {
            for (std::int64_t j = 0; j < k; ++j) {
                double r = 0.0;
                for (std::int64_t t = 0; t < length; ++t) {
                    // Tall: Σ_t W[t][i]·N[t][j]. Wide: Σ_t W[i][t]·N[j][t].
                    r += wide ? w.item(i * cols + t) * n[j * cols + t] : w.item(t * cols + i) * n[t * cols + j];
                }
                if (i > j) {
                    EXPECT_NEAR(r, 0.0, 1e-12) << shape_string(shape) << " R[" << i << "][" << j << "]";
                } else if (i == j) {
                    EXPECT_GT(r, 0.0) << shape_string(shape) << " R[" << i << "][" << i << "]";
                }
            }
        }
    }
}

TEST(InitTest, OrthogonalIsDeterministicPerSeed) {
    EXPECT_TRUE(bitwise_equal(orthogonal({48, 20}, 7), orthogonal({48, 20}, 7)));
    EXPECT_FALSE(bitwise_equal(orthogonal({48, 20}, 7), orthogonal({48, 20}, 8)));
    // The stream advances: two matrices drawn in turn differ.
    RandomStream random(9);
    Tensor first = Tensor::empty({8, 8});
    Tensor second = Tensor::empty({8, 8});
    init_orthogonal(first, random);
    init_orthogonal(second, random);
    EXPECT_FALSE(bitwise_equal(first, second));
}

TEST(InitTest, OrthogonalIsBitwiseDeterministicAcrossThreadCounts) {
#ifndef _OPENMP
    GTEST_SKIP() << "built without OpenMP";
#else
    const int saved_threads = omp_get_max_threads();
    std::vector<Tensor> runs;
    for (int threads : {1, 2, 3}) {
        omp_set_num_threads(threads);
        runs.push_back(orthogonal({300, 200}, 10));
        runs.push_back(orthogonal({150, 400}, 11));
    }
    omp_set_num_threads(saved_threads);
    for (std::size_t run = 2; run < runs.size(); ++run) EXPECT_TRUE(bitwise_equal(runs[run % 2], runs[run])) << run;
    EXPECT_LE(gram_error(runs[0], false, 1.0), 1e-5);
    EXPECT_LE(gram_error(runs[1], true, 1.0), 1e-5);
#endif
}

TEST(InitTest, NormalHasTheRequestedSpread) {
    Tensor w = Tensor::empty({256, 256});
    RandomStream random(12);
    init_normal(w, random, 0.02);
    double sum = 0.0, squares = 0.0;
    for (std::int64_t i = 0; i < w.numel(); ++i) {
        sum += w.item(i);
        squares += w.item(i) * w.item(i);
    }
    const double n = static_cast<double>(w.numel());
    const double mean = sum / n;
    const double std = std::sqrt(squares / n - mean * mean);
    // 65,536 draws: the standard error of the mean is 0.02/256 and of the std about 0.02/362.
    EXPECT_NEAR(mean, 0.0, 4 * 0.02 / 256);
    EXPECT_NEAR(std, 0.02, 4 * 0.02 / 362);
    Tensor zero = Tensor::full({3, 3}, 1.0);
    init_normal(zero, random, 0.0);
    for (std::int64_t i = 0; i < zero.numel(); ++i) EXPECT_EQ(zero.item(i), 0.0);
}

TEST(InitTest, UniformFanInRespectsTheBound) {
    Tensor w = Tensor::empty({64, 100}, DType::f64);
    RandomStream random(13);
    init_uniform_fan_in(w, random);
    const double bound = 0.1;  // 1/√100
    double low = 0.0, high = 0.0, sum = 0.0;
    for (std::int64_t i = 0; i < w.numel(); ++i) {
        low = std::min(low, w.item(i));
        high = std::max(high, w.item(i));
        sum += w.item(i);
    }
    EXPECT_GE(low, -bound);
    EXPECT_LT(high, bound);
    // 6,400 draws reach within 1% of both ends and average near 0 (std of the mean 0.1/√3/80 ≈ 7e-4).
    EXPECT_LT(low, -0.99 * bound);
    EXPECT_GT(high, 0.99 * bound);
    EXPECT_NEAR(sum / static_cast<double>(w.numel()), 0.0, 3e-3);
}

TEST(InitTest, RejectsBadInputs) {
    RandomStream random(14);
    Tensor vector = Tensor::empty({5});
    EXPECT_EQ(error_message([&] { init_orthogonal(vector, random); }),
              "init_orthogonal: w must have at least 2 dimensions, got shape (5)");
    EXPECT_EQ(error_message([&] { init_uniform_fan_in(vector, random); }),
              "init_uniform_fan_in: w must have at least 2 dimensions, got shape (5)");
    Tensor ids = Tensor::zeros({2, 2}, DType::i64);
    EXPECT_EQ(error_message([&] { init_orthogonal(ids, random); }), "init_orthogonal: w must be f32 or f64, not i64");
    EXPECT_EQ(error_message([&] { init_normal(ids, random, 1.0); }), "init_normal: w must be f32 or f64, not i64");
    Tensor w = Tensor::empty({2, 2});
    EXPECT_EQ(error_message([&] { init_normal(w, random, -1.0); }),
              "init_normal: std must be non-negative and finite, got -1");
}

}  // namespace
}  // namespace pgolf
