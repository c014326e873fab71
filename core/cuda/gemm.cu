// GEMMs through cuBLASLt (see gemm.h): one handle per device and thread, a workspace per stream, and a plan
// (descriptors, layouts, the heuristic's algorithm) cached per shape, so a training step creates no descriptors after
// its first pass. Row-major tensors are mapped to cuBLAS's column-major by gemm_column_major_plan (gemm.h).
#include <array>
#include <map>
#include <memory>
#include <string>

#include "core/cuda/convert.h"
#include "core/cuda/device_math.cuh"
#include "core/cuda/gemm.h"
#include "core/cuda/op_checks.h"

namespace pgolf {

namespace {

// 32 MiB: what cuBLAS recommends for Hopper, enough for its split-K and stream-K kernels at the golf shapes.
constexpr std::size_t kWorkspaceBytes = std::size_t{32} << 20;
constexpr std::int64_t kMaxAlignment = 256;  // cuBLASLt's default (and largest) minimum-alignment preference

cudaDataType_t cuda_data_type(DType dtype) {
    if (dtype == DType::f32) return CUDA_R_32F;
    if (dtype == DType::bf16) return CUDA_R_16BF;
    throw Error("cuda gemm: no cuBLAS type for " + dtype_name(dtype));
}

// Everything that selects a plan: dtypes, transposes, batch and sizes, and the alignment of each operand (the
// algorithm the heuristic picks may need more alignment than a view's pointer has, so alignment is part of the key).
using GemmKey = std::array<std::int64_t, 12>;

struct GemmPlan {
    // False when cuBLASLt offers no algorithm for the problem: it then runs through cublasGemmStridedBatchedEx.
    bool use_lt = false;
    cublasLtMatmulDesc_t operation = nullptr;
    cublasLtMatrixLayout_t first = nullptr;   // the buffer of b (cuBLAS's A)
    cublasLtMatrixLayout_t second = nullptr;  // the buffer of a (cuBLAS's B)
    cublasLtMatrixLayout_t output = nullptr;  // c, as both C and D
    cublasLtMatmulAlgo_t algo{};
};

// Per device and thread. Deliberately never destroyed (held through a leaked pointer): thread and static destructors
// may run after the CUDA runtime is gone, and a handle or workspace freed then would fail.
struct GemmContext {
    cublasLtHandle_t lt_handle = nullptr;
    cublasHandle_t handle = nullptr;  // cublas_v2, created on first use: the fallback and the benchmark reference
    std::map<GemmKey, GemmPlan> plans;
    // One workspace per stream: GEMMs queued on different streams may run at once and must not share scratch; each
    // is allocated on its own stream, so the caching allocator's stream order keeps it safe.
    std::map<cudaStream_t, Tensor> workspaces;
};

GemmContext& gemm_context() {
    int device = 0;
    PGOLF_CUDA_CHECK(cudaGetDevice(&device));
    thread_local std::map<int, GemmContext*> contexts;
    GemmContext*& context = contexts[device];
    if (context == nullptr) {
        auto created = std::make_unique<GemmContext>();
        PGOLF_CUBLAS_CHECK(cublasLtCreate(&created->lt_handle));
        context = created.release();
    }
    return *context;
}

cublasHandle_t gemm_blas_handle(GemmContext& context, cudaStream_t stream) {
    if (context.handle == nullptr) PGOLF_CUBLAS_CHECK(cublasCreate(&context.handle));
    PGOLF_CUBLAS_CHECK(cublasSetStream(context.handle, stream));
    return context.handle;
}

void* gemm_workspace(GemmContext& context, cudaStream_t stream) {
    auto found = context.workspaces.find(stream);
    if (found == context.workspaces.end()) {
        Tensor workspace =
            Tensor::empty({static_cast<std::int64_t>(kWorkspaceBytes)}, DType::u8, Device::cuda);  // on `stream`
        found = context.workspaces.emplace(stream, std::move(workspace)).first;
    }
    return found->second.raw_data();
}

// The largest power of two up to 256 dividing the pointer and, when batched, the byte stride between matrices.
std::int64_t alignment_bytes(const void* pointer, std::int64_t batch, std::int64_t stride_bytes) {
    const auto bits = reinterpret_cast<std::uintptr_t>(pointer) |
                      (batch > 1 ? static_cast<std::uintptr_t>(stride_bytes) : std::uintptr_t{0});
    std::int64_t alignment = kMaxAlignment;
    while (alignment > 1 && bits % static_cast<std::uintptr_t>(alignment) != 0) alignment /= 2;
    return alignment;
}

// One product, or a strided batch of them, on contiguous row-major buffers: c[i] (=|+=) op(a[i]) · op(b[i]).
struct GemmProblem {
    const void* a = nullptr;
    const void* b = nullptr;
    void* c = nullptr;
    DType input_dtype = DType::f32;
    DType output_dtype = DType::f32;
    std::int64_t batch = 1;
    std::int64_t m = 0, n = 0, k = 0;
    bool transpose_a = false;
    bool transpose_b = false;
    bool accumulate = false;
    // f32 operands multiplied with bf16 products (CUBLAS_COMPUTE_32F_FAST_16BF, fp32 accumulation): autocast's
    // precision without converting the operands first.
    bool fast_bf16 = false;
};

// The calling thread's precision for f32 operands (cuda_set_matmul_precision).
thread_local CudaMatmulPrecision matmul_precision = CudaMatmulPrecision::exact;

// Releases a heuristic preference however plan creation ends.
struct PreferenceGuard {
    cublasLtMatmulPreference_t preference = nullptr;
    ~PreferenceGuard() {
        if (preference != nullptr) (void)cublasLtMatmulPreferenceDestroy(preference);
    }
};

cublasLtMatrixLayout_t create_layout(cudaDataType_t type, std::int64_t rows, std::int64_t columns, std::int64_t leading,
                                     std::int64_t batch) {
    cublasLtMatrixLayout_t layout = nullptr;
    PGOLF_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&layout, type, static_cast<std::uint64_t>(rows),
                                                  static_cast<std::uint64_t>(columns), leading));
    if (batch > 1) {
        const auto count = static_cast<std::int32_t>(batch);
        const std::int64_t stride = leading * columns;  // contiguous matrices, one after another
        PGOLF_CUBLAS_CHECK(
            cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
        PGOLF_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                            &stride, sizeof(stride)));
    }
    return layout;
}

GemmPlan create_plan(GemmContext& context, const GemmProblem& problem, std::int64_t alignment_a,
                     std::int64_t alignment_b, std::int64_t alignment_c) {
    const GemmColumnMajorPlan mapping =
        gemm_column_major_plan(problem.m, problem.n, problem.k, problem.transpose_a, problem.transpose_b);
    const cudaDataType_t input_type = cuda_data_type(problem.input_dtype);
    const cudaDataType_t output_type = cuda_data_type(problem.output_dtype);
    GemmPlan plan;
    // fp32 accumulation and fp32 alpha/beta for both dtypes; with f32 operands CUBLAS_COMPUTE_32F is plain fp32 FMA
    // (TF32 would need CUBLAS_COMPUTE_32F_FAST_TF32), and _FAST_16BF rounds them to bf16 inside the kernel.
    PGOLF_CUBLAS_CHECK(cublasLtMatmulDescCreate(
        &plan.operation, problem.fast_bf16 ? CUBLAS_COMPUTE_32F_FAST_16BF : CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t operation_first = mapping.transpose_first ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t operation_second = mapping.transpose_second ? CUBLAS_OP_T : CUBLAS_OP_N;
    PGOLF_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_TRANSA, &operation_first,
                                                      sizeof(operation_first)));
    PGOLF_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_TRANSB, &operation_second,
                                                      sizeof(operation_second)));
    plan.first =
        create_layout(input_type, mapping.first_rows, mapping.first_columns, mapping.first_leading, problem.batch);
    plan.second =
        create_layout(input_type, mapping.second_rows, mapping.second_columns, mapping.second_leading, problem.batch);
    plan.output = create_layout(output_type, mapping.rows, mapping.columns, mapping.output_leading, problem.batch);

    PreferenceGuard guard;
    PGOLF_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&guard.preference));
    const std::uint64_t workspace_bytes = kWorkspaceBytes;
    PGOLF_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(guard.preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                            &workspace_bytes, sizeof(workspace_bytes)));
    if (problem.output_dtype == DType::bf16) {
        // Split-K partial sums kept in fp32 and rounded to bf16 once: the in-place and output-type schemes would
        // round every partial to bf16.
        const std::uint32_t schemes = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
        PGOLF_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
            guard.preference, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &schemes, sizeof(schemes)));
    }
    // cuBLAS's A is b's buffer and its B is a's (see gemm_column_major_plan).
    const auto first_alignment = static_cast<std::uint32_t>(alignment_b);
    const auto second_alignment = static_cast<std::uint32_t>(alignment_a);
    const auto output_alignment = static_cast<std::uint32_t>(alignment_c);
    PGOLF_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        guard.preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &first_alignment, sizeof(first_alignment)));
    PGOLF_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        guard.preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &second_alignment, sizeof(second_alignment)));
    PGOLF_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        guard.preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &output_alignment, sizeof(output_alignment)));
    PGOLF_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        guard.preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &output_alignment, sizeof(output_alignment)));

    cublasLtMatmulHeuristicResult_t result{};
    int returned = 0;
    const cublasStatus_t status =
        cublasLtMatmulAlgoGetHeuristic(context.lt_handle, plan.operation, plan.first, plan.second, plan.output,
                                       plan.output, guard.preference, 1, &result, &returned);
    if (status == CUBLAS_STATUS_SUCCESS && returned > 0 && result.state == CUBLAS_STATUS_SUCCESS) {
        plan.use_lt = true;
        plan.algo = result.algo;
    } else if (status != CUBLAS_STATUS_NOT_SUPPORTED) {
        PGOLF_CUBLAS_CHECK(status);  // a real failure; NOT_SUPPORTED or no algorithm falls back to cublas_v2
    }
    return plan;
}

void gemm_run(GemmProblem problem) {
    problem.fast_bf16 = problem.input_dtype == DType::f32 && matmul_precision == CudaMatmulPrecision::bf16;
    if (problem.batch == 0 || problem.m == 0 || problem.n == 0) return;
    const cudaStream_t stream = cuda_stream();
    if (problem.k == 0) {
        // An empty sum: c = 0, or c unchanged when accumulating (cuBLAS rejects k = 0 layouts).
        if (!problem.accumulate) {
            const std::size_t bytes =
                static_cast<std::size_t>(problem.batch * problem.m * problem.n) * dtype_size(problem.output_dtype);
            PGOLF_CUDA_CHECK(cudaMemsetAsync(problem.c, 0, bytes, stream));
        }
        return;
    }
    GemmContext& context = gemm_context();
    const std::int64_t input_size = static_cast<std::int64_t>(dtype_size(problem.input_dtype));
    const std::int64_t output_size = static_cast<std::int64_t>(dtype_size(problem.output_dtype));
    const std::int64_t alignment_a = alignment_bytes(problem.a, problem.batch, problem.m * problem.k * input_size);
    const std::int64_t alignment_b = alignment_bytes(problem.b, problem.batch, problem.k * problem.n * input_size);
    const std::int64_t alignment_c = alignment_bytes(problem.c, problem.batch, problem.m * problem.n * output_size);
    const GemmKey key = {static_cast<std::int64_t>(problem.input_dtype),
                         static_cast<std::int64_t>(problem.output_dtype),
                         problem.transpose_a ? 1 : 0,
                         problem.transpose_b ? 1 : 0,
                         problem.batch,
                         problem.m,
                         problem.n,
                         problem.k,
                         alignment_a,
                         alignment_b,
                         alignment_c,
                         problem.fast_bf16 ? 1 : 0};
    auto found = context.plans.find(key);
    if (found == context.plans.end()) {
        found = context.plans.emplace(key, create_plan(context, problem, alignment_a, alignment_b, alignment_c)).first;
    }
    const GemmPlan& plan = found->second;
    const float alpha = 1.0f;
    const float beta = problem.accumulate ? 1.0f : 0.0f;
    if (plan.use_lt) {
        // cuBLAS's A = b, B = a, C = D = c: the row-major product transposed (gemm_column_major_plan).
        PGOLF_CUBLAS_CHECK(cublasLtMatmul(context.lt_handle, plan.operation, &alpha, problem.b, plan.first, problem.a,
                                          plan.second, &beta, problem.c, plan.output, problem.c, plan.output,
                                          &plan.algo, gemm_workspace(context, stream), kWorkspaceBytes, stream));
        return;
    }
    const GemmColumnMajorPlan mapping =
        gemm_column_major_plan(problem.m, problem.n, problem.k, problem.transpose_a, problem.transpose_b);
    const cudaDataType_t input_type = cuda_data_type(problem.input_dtype);
    PGOLF_CUBLAS_CHECK(cublasGemmStridedBatchedEx_64(
        gemm_blas_handle(context, stream), mapping.transpose_first ? CUBLAS_OP_T : CUBLAS_OP_N,
        mapping.transpose_second ? CUBLAS_OP_T : CUBLAS_OP_N, mapping.rows, mapping.columns, mapping.depth, &alpha,
        problem.b, input_type, mapping.first_leading, mapping.first_leading * mapping.first_columns, problem.a,
        input_type, mapping.second_leading, mapping.second_leading * mapping.second_columns, &beta, problem.c,
        cuda_data_type(problem.output_dtype), mapping.output_leading, mapping.output_leading * mapping.columns,
        problem.batch, problem.fast_bf16 ? CUBLAS_COMPUTE_32F_FAST_16BF : CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// --- argument checks ---------------------------------------------------------------------------------------------

std::string expected_shape(std::int64_t rows, const std::string& columns) {
    return "(" + (rows < 0 ? std::string("N") : std::to_string(rows)) + ", " + columns + ")";
}

// Both cuda, f32 or bf16, the same dtype.
void check_operands(const Tensor& a, const Tensor& b, const char* op, const char* a_name, const char* b_name) {
    cuda_check_float_input(a, op, a_name);
    cuda_check_float_input(b, op, b_name);
    if (b.dtype() != a.dtype()) {
        throw Error(std::string(op) + ": " + b_name + " has dtype " + dtype_name(b.dtype()) + ", " + a_name + " has " +
                    dtype_name(a.dtype()) + " (mixed input dtypes)");
    }
}

// bf16 inputs give bf16 or f32; f32 inputs give f32.
void check_output_dtype(DType input, DType output, const char* op) {
    if (output == input || (input == DType::bf16 && output == DType::f32)) return;
    throw Error(std::string(op) + ": output dtype " + dtype_name(output) + " from " + dtype_name(input) +
                " inputs (f32 -> f32, bf16 -> bf16 or f32)");
}

void check_output(const Tensor& c, DType input, const Shape& shape, const char* op, const char* name) {
    cuda_check_float_input(c, op, name);
    check_output_dtype(input, c.dtype(), op);
    tensor_check_shape(c, shape, op, name);
}

// The (batch, M, N, K) of op(a)·op(b) for matrices given as the last two axes of a and b (batch 1 when 2-D).
GemmProblem matmul_problem(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, bool batched,
                           const char* op) {
    check_operands(a, b, op, "a", "b");
    const std::int64_t axes = batched ? 3 : 2;
    if (a.dim() != axes || b.dim() != axes) {
        const Tensor& wrong = a.dim() != axes ? a : b;
        throw Error(std::string(op) + ": " + (a.dim() != axes ? "a" : "b") + " has shape " +
                    shape_string(wrong.shape()) + ", expected " + std::to_string(axes) + " axes");
    }
    GemmProblem problem;
    problem.batch = batched ? a.size(0) : 1;
    if (batched && b.size(0) != problem.batch) {
        throw Error(std::string(op) + ": b has shape " + shape_string(b.shape()) + ", expected a batch of " +
                    std::to_string(problem.batch) + " like a");
    }
    problem.m = transpose_a ? a.size(-1) : a.size(-2);
    problem.k = transpose_a ? a.size(-2) : a.size(-1);
    problem.n = transpose_b ? b.size(-2) : b.size(-1);
    const std::int64_t b_k = transpose_b ? b.size(-1) : b.size(-2);
    if (b_k != problem.k) {
        const std::string k = std::to_string(problem.k);
        throw Error(std::string(op) + ": b has shape " + shape_string(b.shape()) + ", expected " +
                    (batched ? "(batch, " : "(") + (transpose_b ? "N, " + k : k + ", N") + ")");
    }
    problem.a = a.raw_data();
    problem.b = b.raw_data();
    problem.input_dtype = a.dtype();
    problem.transpose_a = transpose_a;
    problem.transpose_b = transpose_b;
    return problem;
}

Shape matmul_output_shape(const GemmProblem& problem, bool batched) {
    return batched ? Shape{problem.batch, problem.m, problem.n} : Shape{problem.m, problem.n};
}

void matmul_into(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, Tensor& c, bool accumulate,
                 bool batched, const char* op) {
    GemmProblem problem = matmul_problem(a, b, transpose_a, transpose_b, batched, op);
    check_output(c, problem.input_dtype, matmul_output_shape(problem, batched), op, "c");
    problem.c = c.raw_data();
    problem.output_dtype = c.dtype();
    problem.accumulate = accumulate;
    gemm_run(problem);
}

Tensor matmul_new(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, DType output_dtype,
                  bool batched, const char* op) {
    GemmProblem problem = matmul_problem(a, b, transpose_a, transpose_b, batched, op);
    check_output_dtype(problem.input_dtype, output_dtype, op);
    Tensor c = Tensor::empty(matmul_output_shape(problem, batched), output_dtype, Device::cuda);
    problem.c = c.raw_data();
    problem.output_dtype = output_dtype;
    gemm_run(problem);
    return c;
}

// x: (..., K), w: (N, K), same float dtype on cuda; returns M, the product of x's leading dims.
std::int64_t check_linear(const Tensor& x, const Tensor& w, const char* op) {
    check_operands(x, w, op, "x", "w");
    if (x.dim() == 0) throw Error(std::string(op) + ": x has shape (), expected (..., K)");
    if (w.dim() != 2 || w.size(1) != x.size(-1)) {
        throw Error(std::string(op) + ": w has shape " + shape_string(w.shape()) + ", expected " +
                    expected_shape(-1, std::to_string(x.size(-1))));
    }
    std::int64_t m = 1;
    for (std::int64_t axis = 0; axis + 1 < x.dim(); ++axis) m *= x.size(axis);
    return m;
}

Shape with_last(Shape shape, std::int64_t last) {
    shape.back() = last;
    return shape;
}

// dy: (..., N) in x's dtype, with x's leading dims.
void check_linear_dy(const Tensor& x, const Tensor& dy, std::int64_t n, const char* op) {
    cuda_check_input(dy, x.dtype(), op, "dy");
    tensor_check_shape(dy, with_last(x.shape(), n), op, "dy");
}

// y: (M, N) = x: (M, K) · wᵀ.
GemmProblem linear_forward_problem(const Tensor& x, const Tensor& w, std::int64_t m) {
    GemmProblem problem;
    problem.a = x.raw_data();
    problem.b = w.raw_data();
    problem.input_dtype = x.dtype();
    problem.m = m;
    problem.n = w.size(0);
    problem.k = w.size(1);
    problem.transpose_b = true;
    return problem;
}

// dw: (N, K) = dyᵀ: (N, M) · x: (M, K), every leading position of x summed in the one GEMM.
GemmProblem weight_grad_problem(const Tensor& x, const Tensor& dy, std::int64_t m, std::int64_t n) {
    GemmProblem problem;
    problem.a = dy.raw_data();
    problem.b = x.raw_data();
    problem.input_dtype = x.dtype();
    problem.m = n;
    problem.n = x.size(-1);
    problem.k = m;
    problem.transpose_a = true;
    return problem;
}

// Milliseconds per call of call(), after one warm-up call, timed with events on the current stream.
template <typename Call>
double time_calls(int iterations, const Call& call, const char* op) {
    if (iterations < 1)
        throw Error(std::string(op) + ": iterations must be at least 1, not " + std::to_string(iterations));
    call();
    CudaEvent start;
    CudaEvent end;
    start.record(cuda_current_stream());
    for (int i = 0; i < iterations; ++i) call();
    end.record(cuda_current_stream());
    end.synchronize();
    return static_cast<double>(CudaEvent::elapsed_ms(start, end)) / iterations;
}

struct BenchOperands {
    Tensor a;
    Tensor b;
};

BenchOperands bench_operands(std::int64_t m, std::int64_t n, std::int64_t k, bool transpose_a, bool transpose_b,
                             const char* op) {
    if (m < 1 || n < 1 || k < 1) {
        throw Error(std::string(op) + ": m, n and k must be positive, not " + std::to_string(m) + ", " +
                    std::to_string(n) + ", " + std::to_string(k));
    }
    BenchOperands operands;
    operands.a = Tensor::empty(transpose_a ? Shape{k, m} : Shape{m, k}, DType::bf16, Device::cuda);
    operands.b = Tensor::empty(transpose_b ? Shape{n, k} : Shape{k, n}, DType::bf16, Device::cuda);
    // Small finite values: uninitialised memory could hold NaNs or denormals.
    cuda_fill(operands.a, 0.01);
    cuda_fill(operands.b, 0.01);
    return operands;
}

}  // namespace

void cuda_set_matmul_precision(CudaMatmulPrecision precision) { matmul_precision = precision; }
CudaMatmulPrecision cuda_matmul_precision() { return matmul_precision; }

Tensor cuda_matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
    return cuda_matmul(a, b, transpose_a, transpose_b, a.defined() ? a.dtype() : DType::f32);
}

Tensor cuda_matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, DType output_dtype) {
    return matmul_new(a, b, transpose_a, transpose_b, output_dtype, false, "cuda_matmul");
}

void cuda_matmul_into(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, Tensor& c,
                      bool accumulate) {
    matmul_into(a, b, transpose_a, transpose_b, c, accumulate, false, "cuda_matmul_into");
}

Tensor cuda_matmul_strided_batched(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
    return cuda_matmul_strided_batched(a, b, transpose_a, transpose_b, a.defined() ? a.dtype() : DType::f32);
}

Tensor cuda_matmul_strided_batched(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b,
                                   DType output_dtype) {
    return matmul_new(a, b, transpose_a, transpose_b, output_dtype, true, "cuda_matmul_strided_batched");
}

void cuda_matmul_strided_batched_into(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, Tensor& c,
                                      bool accumulate) {
    matmul_into(a, b, transpose_a, transpose_b, c, accumulate, true, "cuda_matmul_strided_batched_into");
}

Tensor cuda_linear_forward(const Tensor& x, const Tensor& w) {
    return cuda_linear_forward(x, w, x.defined() ? x.dtype() : DType::f32);
}

Tensor cuda_linear_forward(const Tensor& x, const Tensor& w, DType output_dtype) {
    const std::int64_t m = check_linear(x, w, "cuda_linear_forward");
    check_output_dtype(x.dtype(), output_dtype, "cuda_linear_forward");
    Tensor y = Tensor::empty(with_last(x.shape(), w.size(0)), output_dtype, Device::cuda);
    GemmProblem problem = linear_forward_problem(x, w, m);
    problem.c = y.raw_data();
    problem.output_dtype = output_dtype;
    gemm_run(problem);
    return y;
}

void cuda_linear_forward_into(const Tensor& x, const Tensor& w, Tensor& y) {
    const std::int64_t m = check_linear(x, w, "cuda_linear_forward_into");
    check_output(y, x.dtype(), with_last(x.shape(), w.size(0)), "cuda_linear_forward_into", "y");
    GemmProblem problem = linear_forward_problem(x, w, m);
    problem.c = y.raw_data();
    problem.output_dtype = y.dtype();
    gemm_run(problem);
}

LinearGrads cuda_linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, bool need_dx, bool need_dw) {
    const std::int64_t m = check_linear(x, w, "cuda_linear_backward");
    const std::int64_t n = w.size(0);
    const std::int64_t k = w.size(1);
    check_linear_dy(x, dy, n, "cuda_linear_backward");
    LinearGrads grads;
    if (need_dx) {
        // dx: (M, K) = dy: (M, N) · w: (N, K)
        grads.dx = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
        GemmProblem problem;
        problem.a = dy.raw_data();
        problem.b = w.raw_data();
        problem.c = grads.dx.raw_data();
        problem.input_dtype = x.dtype();
        problem.output_dtype = x.dtype();
        problem.m = m;
        problem.n = k;
        problem.k = n;
        gemm_run(problem);
    }
    if (need_dw) {
        grads.dw = Tensor::empty(w.shape(), w.dtype(), Device::cuda);
        GemmProblem problem = weight_grad_problem(x, dy, m, n);
        problem.c = grads.dw.raw_data();
        problem.output_dtype = w.dtype();
        gemm_run(problem);
    }
    return grads;
}

void cuda_linear_weight_grad_into(const Tensor& x, const Tensor& dy, Tensor& dw, bool accumulate) {
    cuda_check_float_input(x, "cuda_linear_weight_grad_into", "x");
    if (x.dim() == 0) throw Error("cuda_linear_weight_grad_into: x has shape (), expected (..., K)");
    cuda_check_input(dy, x.dtype(), "cuda_linear_weight_grad_into", "dy");
    if (dy.dim() != x.dim()) {
        throw Error("cuda_linear_weight_grad_into: dy has shape " + shape_string(dy.shape()) +
                    ", expected the leading dims of x " + shape_string(x.shape()) + " and N last");
    }
    const std::int64_t n = dy.size(-1);
    check_linear_dy(x, dy, n, "cuda_linear_weight_grad_into");
    check_output(dw, x.dtype(), Shape{n, x.size(-1)}, "cuda_linear_weight_grad_into", "dw");
    std::int64_t m = 1;
    for (std::int64_t axis = 0; axis + 1 < x.dim(); ++axis) m *= x.size(axis);
    GemmProblem problem = weight_grad_problem(x, dy, m, n);
    problem.c = dw.raw_data();
    problem.output_dtype = dw.dtype();
    problem.accumulate = accumulate;
    gemm_run(problem);
}

double cuda_gemm_cublas_reference_ms(std::int64_t m, std::int64_t n, std::int64_t k, bool transpose_a, bool transpose_b,
                                     int iterations) {
    const char* op = "cuda_gemm_cublas_reference_ms";
    const BenchOperands operands = bench_operands(m, n, k, transpose_a, transpose_b, op);
    Tensor c = Tensor::empty({m, n}, DType::bf16, Device::cuda);
    const cublasHandle_t handle = gemm_blas_handle(gemm_context(), cuda_stream());
    const GemmColumnMajorPlan mapping = gemm_column_major_plan(m, n, k, transpose_a, transpose_b);
    const float alpha = 1.0f;
    const float beta = 0.0f;
    // The same column-major mapping as cuda_matmul: cuBLAS's A is b's buffer, its B is a's.
    return time_calls(
        iterations,
        [&] {
            PGOLF_CUBLAS_CHECK(cublasGemmEx(
                handle, mapping.transpose_first ? CUBLAS_OP_T : CUBLAS_OP_N,
                mapping.transpose_second ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(mapping.rows),
                static_cast<int>(mapping.columns), static_cast<int>(mapping.depth), &alpha, operands.b.raw_data(),
                CUDA_R_16BF, static_cast<int>(mapping.first_leading), operands.a.raw_data(), CUDA_R_16BF,
                static_cast<int>(mapping.second_leading), &beta, c.raw_data(), CUDA_R_16BF,
                static_cast<int>(mapping.output_leading), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        },
        op);
}

double cuda_matmul_ms(std::int64_t m, std::int64_t n, std::int64_t k, bool transpose_a, bool transpose_b,
                      int iterations) {
    const char* op = "cuda_matmul_ms";
    const BenchOperands operands = bench_operands(m, n, k, transpose_a, transpose_b, op);
    return time_calls(
        iterations, [&] { (void)cuda_matmul(operands.a, operands.b, transpose_a, transpose_b); }, op);
}

}  // namespace pgolf
