// CUDA GEMMs and conversion: the op-harness bindings of matmul, linear and the GPU-only matmul_batched family (with
// cases at the seeds' full-scale shapes), a CPU check of the row-major -> column-major cuBLAS mapping against the CPU
// matmul, the entry points' argument checks, and GPU tests of the conversion, fill and GEMM variants (skipped without
// a GPU).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "core/cuda/convert.h"
#include "core/cuda/gemm.h"
#include "core/device.h"
#include "core/error.h"
#include "core/ops/linear.h"
#include "tests/core/op_harness.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

using test::CudaOpBinding;
using test::op_harness_random;
using test::op_harness_register_cuda;
using test::OpCase;
using Tensors = std::vector<Tensor>;

bool flag(const OpCase& op, const char* name) { return op.attribute(name) != 0.0; }

std::string transpose_tag(bool transpose_a, bool transpose_b) {
    return std::string(transpose_a ? "_ta" : "") + (transpose_b ? "_tb" : "");
}

// --- full-scale cases (checked on the GPU only) ------------------------------------------------------------------

OpCase full_linear_case(const std::string& what, std::int64_t m, std::int64_t k, std::int64_t n, std::uint64_t seed) {
    OpCase op;
    op.name = "linear/full_" + std::to_string(m) + "x" + std::to_string(k) + "_n" + std::to_string(n) + "_" + what;
    op.inputs = {op_harness_random({m, k}, seed), op_harness_random({n, k}, seed + 1)};
    op.forward = [](const Tensors& in) { return Tensors{linear_forward(in[0], in[1])}; };
    op.backward = [](const Tensors& in, const Tensors&, const Tensors& dout) {
        LinearGrads grads = linear_backward(in[0], in[1], dout[0], true, true);
        return Tensors{grads.dx, grads.dw};
    };
    op.attributes = {{"need_dx", 1.0}, {"need_dw", 1.0}};
    return op;
}

OpCase full_matmul_case(std::int64_t m, std::int64_t k, std::int64_t n, bool ta, bool tb, std::uint64_t seed) {
    OpCase op;
    op.name =
        "matmul/full_" + std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n) + transpose_tag(ta, tb);
    op.inputs = {op_harness_random(ta ? Shape{k, m} : Shape{m, k}, seed),
                 op_harness_random(tb ? Shape{n, k} : Shape{k, n}, seed + 1)};
    op.forward = [ta, tb](const Tensors& in) { return Tensors{matmul(in[0], in[1], ta, tb)}; };
    // As the CPU family: d op(a) = dc·op(b)ᵀ, d op(b) = op(a)ᵀ·dc, each transposed back when the operand was.
    op.backward = [ta, tb](const Tensors& in, const Tensors&, const Tensors& dout) {
        const Tensor& dc = dout[0];
        return Tensors{ta ? matmul(in[1], dc, tb, true) : matmul(dc, in[1], false, !tb),
                       tb ? matmul(dc, in[0], true, ta) : matmul(in[0], dc, !ta, false)};
    };
    op.attributes = {{"transpose_a", ta ? 1.0 : 0.0}, {"transpose_b", tb ? 1.0 : 0.0}};
    return op;
}

// The CPU reference of a strided batch: matmul on each pair of matrices, stacked.
Tensor batched_matmul_reference(const Tensor& a, const Tensor& b, bool ta, bool tb) {
    const std::int64_t batch = a.size(0);
    const std::int64_t m = ta ? a.size(2) : a.size(1);
    const std::int64_t n = tb ? b.size(1) : b.size(2);
    Tensor c = Tensor::empty({batch, m, n}, a.dtype());
    for (std::int64_t i = 0; i < batch; ++i) {
        const Tensor product = matmul(a.rows(i, i + 1).reshape({a.size(1), a.size(2)}),
                                      b.rows(i, i + 1).reshape({b.size(1), b.size(2)}), ta, tb);
        Tensor slot = c.rows(i, i + 1).reshape({m, n});
        slot.copy_from(product);
    }
    return c;
}

OpCase batched_case(std::int64_t batch, std::int64_t m, std::int64_t k, std::int64_t n, bool ta, bool tb,
                    std::uint64_t seed) {
    OpCase op;
    op.name = "matmul_batched/" + std::to_string(batch) + "x" + std::to_string(m) + "x" + std::to_string(k) + "x" +
              std::to_string(n) + transpose_tag(ta, tb);
    op.inputs = {op_harness_random(ta ? Shape{batch, k, m} : Shape{batch, m, k}, seed),
                 op_harness_random(tb ? Shape{batch, n, k} : Shape{batch, k, n}, seed + 1)};
    op.forward = [ta, tb](const Tensors& in) { return Tensors{batched_matmul_reference(in[0], in[1], ta, tb)}; };
    op.attributes = {{"transpose_a", ta ? 1.0 : 0.0}, {"transpose_b", tb ? 1.0 : 0.0}};
    return op;
}

// f32: fp32 accumulation error grows like sqrt(K) (the CPU cases use 1e-5·sqrt(K)); the family's bound is set by its
// longest reduction. bf16: inputs are the same rounded values for both, so the error is the output's one bf16
// rounding (2^-9 relative) plus fp32 accumulation: 1e-2 leaves room.
constexpr double kBf16Tolerance = 1e-2;
double f32_tolerance_for(std::int64_t longest_reduction) {
    return 1e-5 * std::sqrt(static_cast<double>(longest_reduction));
}

const bool registered_matmul = op_harness_register_cuda(
    "matmul", CudaOpBinding{
                  .forward =
                      [](const OpCase& op, const Tensors& in) {
                          return Tensors{cuda_matmul(in[0], in[1], flag(op, "transpose_a"), flag(op, "transpose_b"))};
                      },
                  .backward =
                      [](const OpCase& op, const Tensors& in, const Tensors&, const Tensors& dout) {
                          const bool ta = flag(op, "transpose_a");
                          const bool tb = flag(op, "transpose_b");
                          const Tensor& dc = dout[0];
                          return Tensors{ta ? cuda_matmul(in[1], dc, tb, true) : cuda_matmul(dc, in[1], false, !tb),
                                         tb ? cuda_matmul(dc, in[0], true, ta) : cuda_matmul(in[0], dc, !ta, false)};
                      },
                  .f32_tolerance = f32_tolerance_for(2048),
                  .bf16_tolerance = kBf16Tolerance,
                  .run_bf16 = true,
                  .full_scale_cases =
                      [] {
                          // 512×2048 · 2048×512 with every transpose pair (0.5 G multiply-adds per GEMM).
                          std::vector<OpCase> cases;
                          std::uint64_t seed = 9100;
                          for (const bool ta : {false, true}) {
                              for (const bool tb : {false, true}) {
                                  cases.push_back(full_matmul_case(512, 2048, 512, ta, tb, seed));
                                  seed += 2;
                              }
                          }
                          return cases;
                      },
              });

const bool registered_linear = op_harness_register_cuda(
    "linear",
    CudaOpBinding{
        .forward = [](const OpCase&, const Tensors& in) { return Tensors{cuda_linear_forward(in[0], in[1])}; },
        .backward =
            [](const OpCase& op, const Tensors& in, const Tensors&, const Tensors& dout) {
                LinearGrads grads =
                    cuda_linear_backward(in[0], in[1], dout[0], flag(op, "need_dx"), flag(op, "need_dw"));
                return Tensors{grads.dx, grads.dw};
            },
        // dx at vocab 8192 reduces over 8192 outputs.
        .f32_tolerance = f32_tolerance_for(8192),
        .bf16_tolerance = kBf16Tolerance,
        .run_bf16 = true,
        .full_scale_cases =
            [] {
                // The seeds' linear layers at batch·sequence 2048 (1024 for the largest vocabulary).
                return std::vector<OpCase>{
                    full_linear_case("mlp_up", 2048, 512, 1536, 9200),
                    full_linear_case("mlp_down", 2048, 1536, 512, 9202),
                    full_linear_case("vocab1024", 2048, 512, 1024, 9204),
                    full_linear_case("vocab8192", 1024, 512, 8192, 9206),
                };
            },
    });

// No CPU family: cuda_matmul_strided_batched is checked against matmul looped over the batch, on the GPU only.
const bool registered_matmul_batched = op_harness_register_cuda(
    "matmul_batched", CudaOpBinding{
                          .forward =
                              [](const OpCase& op, const Tensors& in) {
                                  return Tensors{cuda_matmul_strided_batched(in[0], in[1], flag(op, "transpose_a"),
                                                                             flag(op, "transpose_b"))};
                              },
                          .backward = {},
                          .f32_tolerance = f32_tolerance_for(1536),
                          .bf16_tolerance = kBf16Tolerance,
                          .run_bf16 = true,
                          .full_scale_cases =
                              [] {
                                  std::vector<OpCase> cases;
                                  std::uint64_t seed = 9300;
                                  // Small, every transpose pair: the batch strides of each layout.
                                  for (const bool ta : {false, true}) {
                                      for (const bool tb : {false, true}) {
                                          cases.push_back(batched_case(3, 5, 4, 6, ta, tb, seed));
                                          seed += 2;
                                      }
                                  }
                                  // Newton–Schulz on a bank of 512×512 matrices: A·A (0.5 G multiply-adds).
                                  cases.push_back(batched_case(4, 512, 512, 512, false, false, seed));
                                  seed += 2;
                                  // The Gram step X·Xᵀ over 11 layers' 512×1536 matrices (4.4 G multiply-adds: the
                                  // largest case here, but the shape the optimizer runs).
                                  cases.push_back(batched_case(11, 512, 1536, 512, false, true, seed));
                                  seed += 2;
                                  // Xᵀ·X-style transposed operand at a smaller batch.
                                  cases.push_back(batched_case(2, 512, 512, 1536, true, false, seed));
                                  return cases;
                              },
                      });

// --- the column-major mapping, on the CPU --------------------------------------------------------------------------

// A column-major BLAS gemm as cuBLAS defines it, C(i, j) = Σ_p op(A)(i, p)·op(B)(p, j), op(X)(i, p) = X[i + p·ld]
// or, transposed, X[p + i·ld]; strided batches of contiguous matrices.
void column_major_gemm(const GemmColumnMajorPlan& plan, std::int64_t batch, const double* first, const double* second,
                       double* output) {
    const std::int64_t first_stride = plan.first_leading * plan.first_columns;
    const std::int64_t second_stride = plan.second_leading * plan.second_columns;
    const std::int64_t output_stride = plan.output_leading * plan.columns;
    for (std::int64_t matrix = 0; matrix < batch; ++matrix) {
        const double* a = first + matrix * first_stride;
        const double* b = second + matrix * second_stride;
        double* c = output + matrix * output_stride;
        for (std::int64_t i = 0; i < plan.rows; ++i) {
            for (std::int64_t j = 0; j < plan.columns; ++j) {
                double sum = 0.0;
                for (std::int64_t p = 0; p < plan.depth; ++p) {
                    const double left =
                        plan.transpose_first ? a[p + i * plan.first_leading] : a[i + p * plan.first_leading];
                    const double right =
                        plan.transpose_second ? b[j + p * plan.second_leading] : b[p + j * plan.second_leading];
                    sum += left * right;
                }
                c[i + j * plan.output_leading] = sum;
            }
        }
    }
}

struct MappingShape {
    std::int64_t m, k, n;
};

TEST(CudaGemmMapping, ColumnMajorPlanReproducesRowMajorMatmul) {
    const std::vector<MappingShape> shapes = {{3, 4, 5}, {1, 7, 2}, {5, 1, 3}, {6, 5, 4}, {2, 3, 1}};
    int checked = 0;
    std::uint64_t seed = 500;
    for (const MappingShape& shape : shapes) {
        for (const bool ta : {false, true}) {
            for (const bool tb : {false, true}) {
                const Tensor a = op_harness_random(ta ? Shape{shape.k, shape.m} : Shape{shape.m, shape.k}, seed++);
                const Tensor b = op_harness_random(tb ? Shape{shape.n, shape.k} : Shape{shape.k, shape.n}, seed++);
                const GemmColumnMajorPlan plan = gemm_column_major_plan(shape.m, shape.n, shape.k, ta, tb);
                // The layouts describe exactly the buffers, and op() of them has the product's shape.
                EXPECT_EQ(plan.first_rows * plan.first_columns, b.numel());
                EXPECT_EQ(plan.second_rows * plan.second_columns, a.numel());
                EXPECT_GE(plan.first_leading, plan.first_rows);
                EXPECT_GE(plan.second_leading, plan.second_rows);
                EXPECT_EQ(plan.transpose_first ? plan.first_columns : plan.first_rows, plan.rows);
                EXPECT_EQ(plan.transpose_first ? plan.first_rows : plan.first_columns, plan.depth);
                EXPECT_EQ(plan.transpose_second ? plan.second_columns : plan.second_rows, plan.depth);
                EXPECT_EQ(plan.transpose_second ? plan.second_rows : plan.second_columns, plan.columns);
                Tensor c = Tensor::zeros({shape.m, shape.n}, DType::f64);
                // cuBLAS's first operand is b's buffer, its second a's; its output is c's buffer.
                column_major_gemm(plan, 1, b.data<double>(), a.data<double>(), c.data<double>());
                const Tensor expected = matmul(a, b, ta, tb);
                EXPECT_LE(test::max_abs_difference(c, expected), 1e-12)
                    << shape.m << "x" << shape.k << "x" << shape.n << transpose_tag(ta, tb);
                ++checked;
            }
        }
    }
    EXPECT_EQ(checked, 20);
}

TEST(CudaGemmMapping, StridedBatchOfPlansMatchesLoopedMatmul) {
    std::uint64_t seed = 700;
    for (const bool ta : {false, true}) {
        for (const bool tb : {false, true}) {
            const std::int64_t batch = 3, m = 5, k = 4, n = 6;
            const Tensor a = op_harness_random(ta ? Shape{batch, k, m} : Shape{batch, m, k}, seed++);
            const Tensor b = op_harness_random(tb ? Shape{batch, n, k} : Shape{batch, k, n}, seed++);
            Tensor c = Tensor::zeros({batch, m, n}, DType::f64);
            column_major_gemm(gemm_column_major_plan(m, n, k, ta, tb), batch, b.data<double>(), a.data<double>(),
                              c.data<double>());
            EXPECT_LE(test::max_abs_difference(c, batched_matmul_reference(a, b, ta, tb)), 1e-12)
                << transpose_tag(ta, tb);
        }
    }
}

// --- argument checks (they come before any GPU work, so they run here) --------------------------------------------

TEST(CudaGemmChecks, HostTensorsAreRefusedNamingTheOpAndArgument) {
    const Tensor a = Tensor::zeros({3, 4});
    const Tensor b = Tensor::zeros({4, 5});
    Tensor c = Tensor::zeros({3, 5});
    const std::vector<std::pair<std::string, std::function<void()>>> calls = {
        {"cuda_matmul", [&] { (void)cuda_matmul(a, b, false, false); }},
        {"cuda_matmul_into", [&] { cuda_matmul_into(a, b, false, false, c); }},
        {"cuda_matmul_strided_batched", [&] { (void)cuda_matmul_strided_batched(a, b, false, false); }},
        {"cuda_linear_forward",
         [&] {
             (void)cuda_linear_forward(a, Tensor::zeros({5, 4}));
         }},
        {"cuda_linear_backward",
         [&] {
             (void)cuda_linear_backward(a, Tensor::zeros({5, 4}), Tensor::zeros({3, 5}), true, true);
         }},
        {"cuda_linear_weight_grad_into", [&] { cuda_linear_weight_grad_into(a, c, c); }},
        {"cuda_convert", [&] { (void)cuda_convert(a, DType::bf16); }},
        {"cuda_convert_into", [&] { cuda_convert_into(c, a); }},
        {"cuda_fill", [&] { cuda_fill(c, 1.0); }},
    };
    for (const auto& [op, call] : calls) {
        const std::string message = test::error_message(call);
        EXPECT_EQ(message.rfind(op + ":", 0), 0u) << message;
        EXPECT_NE(message.find("cuda"), std::string::npos) << message;
    }
}

// --- GPU tests of the variants the harness does not reach (skipped without a GPU) --------------------------------

class CudaGemm : public ::testing::Test {
protected:
    void SetUp() override {
        const std::string reason = device_unavailable_reason(Device::cuda);
        if (!reason.empty()) GTEST_SKIP() << reason;
    }
};

Tensor upload(const Tensor& host, DType dtype) { return host.to(dtype).to_device(Device::cuda); }
Tensor download(const Tensor& device) { return device.to_device(Device::cpu); }

TEST_F(CudaGemm, ConvertRoundsExactlyLikeTheHost) {
    // Halfway cases (both parities), NaN, infinities, overflow to infinity, denormals and signed zero, then random
    // values; 37 elements so the vector path has a scalar tail.
    std::vector<float> values = {1.0f + 1.0f / 256.0f,
                                 1.0f + 3.0f / 256.0f,
                                 -1.0f - 1.0f / 256.0f,
                                 std::numeric_limits<float>::quiet_NaN(),
                                 std::numeric_limits<float>::infinity(),
                                 -std::numeric_limits<float>::infinity(),
                                 std::numeric_limits<float>::max(),
                                 std::numeric_limits<float>::denorm_min(),
                                 -0.0f,
                                 0.0f};
    const Tensor random = op_harness_random({27}, 41, 100.0).to(DType::f32);
    for (std::int64_t i = 0; i < random.numel(); ++i) values.push_back(random.data<float>()[i]);
    const Tensor host = Tensor::from_floats(values, {static_cast<std::int64_t>(values.size())});
    const Tensor expected = host.to(DType::bf16);
    const Tensor device = host.to_device(Device::cuda);
    EXPECT_TRUE(test::bitwise_equal(download(cuda_convert(device, DType::bf16)), expected));
    // Back to f32 exactly, and into a preallocated tensor; then through views offset by one element (scalar path).
    EXPECT_TRUE(test::bitwise_equal(download(cuda_convert(expected.to_device(Device::cuda), DType::f32)),
                                    expected.to(DType::f32)));
    Tensor into = Tensor::empty(host.shape(), DType::bf16, Device::cuda);
    cuda_convert_into(into, device);
    EXPECT_TRUE(test::bitwise_equal(download(into), expected));
    const std::int64_t count = host.numel();
    Tensor offset_destination = Tensor::empty({count + 1}, DType::bf16, Device::cuda).rows(1, count + 1);
    cuda_convert_into(offset_destination, device);
    EXPECT_TRUE(test::bitwise_equal(download(offset_destination), expected));
    EXPECT_TRUE(test::bitwise_equal(download(cuda_convert(device, DType::f32)), host));
    EXPECT_NE(test::error_message([&] { (void)cuda_convert(device, DType::f64); }).find("f32 <-> bf16"),
              std::string::npos);
}

TEST_F(CudaGemm, FillWritesEveryElement) {
    for (const DType dtype : {DType::f32, DType::bf16}) {
        for (const std::int64_t count : {1, 7, 8, 4099}) {
            Tensor tensor = Tensor::zeros({count}, dtype, Device::cuda);
            cuda_fill(tensor, 0.3);
            EXPECT_TRUE(test::bitwise_equal(download(tensor), Tensor::full({count}, 0.3, dtype)))
                << dtype_name(dtype) << " " << count;
        }
    }
}

TEST_F(CudaGemm, Bf16InputsWithF32OutputAndAccumulation) {
    const Tensor a = op_harness_random({64, 96}, 51);
    const Tensor b = op_harness_random({80, 96}, 52);
    const Tensor expected = matmul(a.to(DType::bf16).to(DType::f64), b.to(DType::bf16).to(DType::f64), false, true);
    const Tensor a_device = upload(a, DType::bf16);
    const Tensor b_device = upload(b, DType::bf16);
    const Tensor c = cuda_matmul(a_device, b_device, false, true, DType::f32);
    ASSERT_EQ(c.dtype(), DType::f32);
    EXPECT_LE(test::max_abs_difference(download(c).to(DType::f64), expected), 1e-4);
    // c += a·bᵀ doubles it.
    Tensor accumulated = c.clone();
    cuda_matmul_into(a_device, b_device, false, true, accumulated, true);
    const Tensor twice = download(accumulated).to(DType::f64);
    for (std::int64_t i = 0; i < twice.numel(); ++i) EXPECT_NEAR(twice.item(i), 2.0 * expected.item(i), 2e-4);
    // f32 inputs cannot give bf16, and mixed inputs throw.
    EXPECT_NE(test::error_message([&] {
                  (void)cuda_matmul(upload(a, DType::f32), upload(b, DType::f32), false, true, DType::bf16);
              }).find("output dtype"),
              std::string::npos);
    EXPECT_NE(test::error_message([&] {
                  (void)cuda_matmul(a_device, upload(b, DType::f32), false, true);
              }).find("mixed input dtypes"),
              std::string::npos);
}

TEST_F(CudaGemm, EmptyReductionGivesZerosAndEmptyOutputsAreFine) {
    const Tensor a = Tensor::zeros({3, 0}, DType::f32, Device::cuda);
    const Tensor b = Tensor::zeros({0, 4}, DType::f32, Device::cuda);
    Tensor c = Tensor::empty({3, 4}, DType::f32, Device::cuda);
    cuda_fill(c, 7.0);
    cuda_matmul_into(a, b, false, false, c);
    EXPECT_TRUE(test::bitwise_equal(download(c), Tensor::zeros({3, 4})));
    EXPECT_EQ(cuda_matmul(Tensor::zeros({0, 5}, DType::bf16, Device::cuda),
                          Tensor::zeros({5, 2}, DType::bf16, Device::cuda), false, false)
                  .shape(),
              (Shape{0, 2}));
}

TEST_F(CudaGemm, WeightGradientAccumulatesIntoF32FromBf16) {
    const Tensor x = op_harness_random({2, 5, 24}, 61);
    const Tensor dy = op_harness_random({2, 5, 16}, 62);
    const Tensor w = op_harness_random({16, 24}, 63);
    const Tensor x_rounded = x.to(DType::bf16).to(DType::f64);
    const Tensor dy_rounded = dy.to(DType::bf16).to(DType::f64);
    const Tensor expected = linear_backward(x_rounded, w, dy_rounded, false, true).dw;
    Tensor dw = Tensor::zeros({16, 24}, DType::f32, Device::cuda);
    cuda_linear_weight_grad_into(upload(x, DType::bf16), upload(dy, DType::bf16), dw, true);
    cuda_linear_weight_grad_into(upload(x, DType::bf16), upload(dy, DType::bf16), dw, true);
    const Tensor got = download(dw).to(DType::f64);
    for (std::int64_t i = 0; i < got.numel(); ++i) EXPECT_NEAR(got.item(i), 2.0 * expected.item(i), 1e-4);
}

TEST_F(CudaGemm, StridedBatchedIntoAViewAndFromMisalignedViews) {
    // Operands offset by one row of 3 bf16 (6 bytes): the plan must not assume 256-byte alignment.
    const Tensor a_host = op_harness_random({5, 3}, 71);
    const Tensor b_host = op_harness_random({4, 3}, 72);
    const Tensor a = upload(a_host, DType::bf16).rows(1, 5);
    const Tensor b = upload(b_host, DType::bf16).rows(1, 4);
    const Tensor expected = matmul(a_host.to(DType::bf16).to(DType::f64).rows(1, 5),
                                   b_host.to(DType::bf16).to(DType::f64).rows(1, 4), false, true);
    const Tensor c = download(cuda_matmul(a, b, false, true, DType::f32)).to(DType::f64);
    EXPECT_LE(test::max_abs_difference(c, expected), 1e-5);

    const Tensor batch_a = op_harness_random({3, 4, 6}, 73);
    const Tensor batch_b = op_harness_random({3, 6, 5}, 74);
    Tensor output = Tensor::empty({3, 4, 5}, DType::f32, Device::cuda);
    cuda_matmul_strided_batched_into(upload(batch_a, DType::f32), upload(batch_b, DType::f32), false, false, output);
    EXPECT_LE(test::max_abs_difference(download(output).to(DType::f64),
                                       batched_matmul_reference(batch_a.to(DType::f32).to(DType::f64),
                                                                batch_b.to(DType::f32).to(DType::f64), false, false)),
              1e-5);
}

TEST_F(CudaGemm, BenchmarksReturnPositiveTimes) {
    EXPECT_GT(cuda_gemm_cublas_reference_ms(256, 256, 256, false, true, 3), 0.0);
    EXPECT_GT(cuda_matmul_ms(256, 256, 256, false, true, 3), 0.0);
}

}  // namespace
}  // namespace pgolf
