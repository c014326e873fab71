// Muon's kernels: momentum and applied update (one grid-stride pass each), and Newton–Schulz on a batch of same-shape
// matrices as strided-batched cuBLASLt GEMMs with small element kernels between them (arithmetic in muon_math.h).
// bf16 mode keeps the GEMM operands in bf16 and takes every GEMM's result in f32, so the kernel after it does the one
// rounding the CPU loop does; f32 mode runs everything in plain fp32.
#include <cstdint>
#include <string>
#include <type_traits>

#include "core/cuda/convert.h"
#include "core/cuda/device_math.cuh"
#include "core/cuda/gemm.h"
#include "core/cuda/muon.h"
#include "core/cuda/op_checks.h"

namespace pgolf {

namespace {

constexpr int kMuonThreads = 256;
// Elements per vector access: 16 bytes of f32, 8 bytes of bf16 (the kernels mix both storage types).
constexpr int kMuonVectorWidth = 4;

template <typename T>
constexpr bool kMuonBf16 = std::is_same_v<T, Bf16Bits>;

// W (1 or kMuonVectorWidth) consecutive elements starting at element i, as floats; a vector must be aligned to
// W·sizeof(element) bytes.
template <int W>
__device__ __forceinline__ void muon_load(const float* base, std::int64_t i, float* out) {
    if constexpr (W == 1) {
        out[0] = base[i];
    } else {
        const float4 v = *reinterpret_cast<const float4*>(base + i);
        out[0] = v.x;
        out[1] = v.y;
        out[2] = v.z;
        out[3] = v.w;
    }
}

template <int W>
__device__ __forceinline__ void muon_load(const Bf16Bits* base, std::int64_t i, float* out) {
    if constexpr (W == 1) {
        out[0] = cuda_load(base, i);
    } else {
        // Little-endian: the element with the lower index is the lower half of each word.
        const uint2 raw = *reinterpret_cast<const uint2*>(base + i);
        out[0] = hd_float_from_bf16(static_cast<std::uint16_t>(raw.x & 0xFFFFu));
        out[1] = hd_float_from_bf16(static_cast<std::uint16_t>(raw.x >> 16));
        out[2] = hd_float_from_bf16(static_cast<std::uint16_t>(raw.y & 0xFFFFu));
        out[3] = hd_float_from_bf16(static_cast<std::uint16_t>(raw.y >> 16));
    }
}

template <int W>
__device__ __forceinline__ void muon_store(float* base, std::int64_t i, const float* values) {
    if constexpr (W == 1) {
        base[i] = values[0];
    } else {
        *reinterpret_cast<float4*>(base + i) = make_float4(values[0], values[1], values[2], values[3]);
    }
}

template <int W>
__device__ __forceinline__ void muon_store(Bf16Bits* base, std::int64_t i, const float* values) {
    if constexpr (W == 1) {
        cuda_store(base, i, values[0]);
    } else {
        uint2 raw;
        raw.x = static_cast<std::uint32_t>(hd_bf16_from_float(values[0])) |
                (static_cast<std::uint32_t>(hd_bf16_from_float(values[1])) << 16);
        raw.y = static_cast<std::uint32_t>(hd_bf16_from_float(values[2])) |
                (static_cast<std::uint32_t>(hd_bf16_from_float(values[3])) << 16);
        *reinterpret_cast<uint2*>(base + i) = raw;
    }
}

__device__ __forceinline__ std::int64_t muon_first_index() {
    return static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ std::int64_t muon_grid_stride() { return static_cast<std::int64_t>(gridDim.x) * blockDim.x; }

// grad, buffer, update: (count,) f32.
template <int W>
__global__ void muon_momentum_kernel(const float* grad, float* buffer, float* update, std::int64_t count,
                                     MuonMomentumConstants constants) {
    for (std::int64_t v = muon_first_index(); v < count / W; v += muon_grid_stride()) {
        float g[W], b[W], u[W];
        muon_load<W>(grad, v * W, g);
        muon_load<W>(buffer, v * W, b);
#pragma unroll
        for (int k = 0; k < W; ++k) u[k] = muon_momentum_element(g[k], b[k], constants);
        muon_store<W>(buffer, v * W, b);
        muon_store<W>(update, v * W, u);
    }
}

// x: (n, matrix_size) f32 -> work = x rounded to T, and partials[matrix · blocks + block] = the sum of squares of the
// block's share of work in double. Grid (n, blocks) of kMuonNormThreads threads (the matrix along x, which has room
// for any n): thread t of block b adds its vectors b·T + t, then every blocks·T-th one after it, and a halving tree
// adds the block's threads. x and work may be the same buffer (f32 mode).
template <typename T, int W>
__global__ void muon_norm_partials_kernel(const float* x, T* work, std::int64_t matrix_size, double* partials) {
    __shared__ double thread_sums[kMuonNormThreads];
    const std::int64_t offset = static_cast<std::int64_t>(blockIdx.x) * matrix_size;
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.y) * kMuonNormThreads;
    double sum = 0.0;
    for (std::int64_t v = static_cast<std::int64_t>(blockIdx.y) * kMuonNormThreads + threadIdx.x; v < matrix_size / W;
         v += stride) {
        float values[W];
        muon_load<W>(x, offset + v * W, values);
#pragma unroll
        for (int k = 0; k < W; ++k) {
            values[k] = muon_round(values[k], kMuonBf16<T>);
            sum = muon_add_square(sum, values[k]);
        }
        muon_store<W>(work, offset + v * W, values);
    }
    thread_sums[threadIdx.x] = sum;
    __syncthreads();
    for (int half = kMuonNormThreads / 2; half > 0; half >>= 1) {
        if (static_cast<int>(threadIdx.x) < half) {
            thread_sums[threadIdx.x] = muon_add_partials(thread_sums[threadIdx.x], thread_sums[threadIdx.x + half]);
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) partials[static_cast<std::int64_t>(blockIdx.x) * gridDim.y + blockIdx.y] = thread_sums[0];
}

// partials: (n, blocks) -> denominators[matrix] = ‖work[matrix]‖ + eps, rounded as the CPU loop rounds it; one thread
// per matrix adds its partials in block order.
__global__ void muon_norm_denominator_kernel(const double* partials, std::int64_t matrices, std::int64_t blocks,
                                             bool bf16, float* denominators) {
    const std::int64_t matrix = muon_first_index();
    if (matrix >= matrices) return;
    double sum = partials[matrix * blocks];
    for (std::int64_t block = 1; block < blocks; ++block) {
        sum = muon_add_partials(sum, partials[matrix * blocks + block]);
    }
    denominators[matrix] = muon_norm_denominator(sum, bf16);
}

// work: (n, matrix_size), divided by its matrix's denominator. W divides matrix_size, so a vector never straddles two
// matrices.
template <typename T, int W>
__global__ void muon_normalize_kernel(T* work, std::int64_t count, std::int64_t matrix_size,
                                      const float* denominators) {
    for (std::int64_t v = muon_first_index(); v < count / W; v += muon_grid_stride()) {
        const float denominator = denominators[v * W / matrix_size];
        float values[W];
        muon_load<W>(work, v * W, values);
#pragma unroll
        for (int k = 0; k < W; ++k) values[k] = muon_normalize_element(values[k], denominator, kMuonBf16<T>);
        muon_store<W>(work, v * W, values);
    }
}

// accumulated: (count,) f32 GEMM output A -> gram = A, scaled_gram = c·A, both rounded to T.
template <typename T, int W>
__global__ void muon_gram_kernel(const float* accumulated, T* gram, T* scaled_gram, std::int64_t count) {
    for (std::int64_t v = muon_first_index(); v < count / W; v += muon_grid_stride()) {
        float a[W], g[W], s[W];
        muon_load<W>(accumulated, v * W, a);
#pragma unroll
        for (int k = 0; k < W; ++k) muon_gram_element(a[k], kMuonBf16<T>, g[k], s[k]);
        muon_store<W>(gram, v * W, g);
        muon_store<W>(scaled_gram, v * W, s);
    }
}

// gram: (count,) T, gram_squared: (count,) f32 GEMM output (c·A)·A -> poly = b·A + (c·A)·A.
template <typename T, int W>
__global__ void muon_poly_kernel(const T* gram, const float* gram_squared, T* poly, std::int64_t count) {
    for (std::int64_t v = muon_first_index(); v < count / W; v += muon_grid_stride()) {
        float g[W], s[W], p[W];
        muon_load<W>(gram, v * W, g);
        muon_load<W>(gram_squared, v * W, s);
#pragma unroll
        for (int k = 0; k < W; ++k) p[k] = muon_poly_element(g[k], s[k], kMuonBf16<T>);
        muon_store<W>(poly, v * W, p);
    }
}

// work: (count,) T in place, product: (count,) f32 GEMM output B·X -> work = a·X + B·X.
template <typename T, int W>
__global__ void muon_iterate_kernel(T* work, const float* product, std::int64_t count) {
    for (std::int64_t v = muon_first_index(); v < count / W; v += muon_grid_stride()) {
        float x[W], p[W];
        muon_load<W>(work, v * W, x);
        muon_load<W>(product, v * W, p);
#pragma unroll
        for (int k = 0; k < W; ++k) x[k] = muon_iterate_element(x[k], p[k], kMuonBf16<T>);
        muon_store<W>(work, v * W, x);
    }
}

// param, update: (count,) f32.
template <int W>
__global__ void muon_apply_kernel(float* param, const float* update, std::int64_t count, MuonApplyConstants constants) {
    for (std::int64_t v = muon_first_index(); v < count / W; v += muon_grid_stride()) {
        float w[W], u[W];
        muon_load<W>(param, v * W, w);
        muon_load<W>(update, v * W, u);
#pragma unroll
        for (int k = 0; k < W; ++k) muon_apply_element(w[k], u[k], constants);
        muon_store<W>(param, v * W, w);
    }
}

// A pointer usable for vectors of kMuonVectorWidth elements of T.
template <typename T>
bool muon_vector_aligned(const T* pointer) {
    return reinterpret_cast<std::uintptr_t>(pointer) % (kMuonVectorWidth * sizeof(T)) == 0;
}

// Launches kernel<W> over count elements on the current stream: vectors where every pointer allows it (checked by the
// caller into vectorized), single elements otherwise.
template <typename Kernel, typename... Arguments>
void muon_launch(Kernel vector_kernel, Kernel scalar_kernel, bool vectorized, std::int64_t count,
                 Arguments... arguments) {
    const std::int64_t items = vectorized ? count / kMuonVectorWidth : count;
    const Kernel kernel = vectorized ? vector_kernel : scalar_kernel;
    kernel<<<cuda_grid_size(items, kMuonThreads), kMuonThreads, 0, cuda_stream()>>>(arguments...);
    PGOLF_CUDA_CHECK_LAUNCH();
}

// Newton–Schulz on x: (n, rows, cols) f32 with working storage T (Bf16Bits: bf16 mode, float: f32 mode).
template <typename T>
void newton_schulz_batched(Tensor& x, int steps) {
    constexpr bool bf16 = kMuonBf16<T>;
    const DType work_dtype = bf16 ? DType::bf16 : DType::f32;
    const std::int64_t batch = x.size(0);
    const std::int64_t rows = x.size(1);
    const std::int64_t cols = x.size(2);
    const std::int64_t matrix_size = rows * cols;
    const std::int64_t count = x.numel();

    // bf16 mode works on a bf16 copy (the GEMM operands); f32 mode on x itself.
    Tensor work = bf16 ? Tensor::empty(x.shape(), DType::bf16, Device::cuda) : x;
    Tensor denominators = Tensor::empty({batch}, DType::f32, Device::cuda);
    const float* x_data = cuda_pointer<float>(x);
    T* work_data = cuda_pointer<T>(work);
    float* denominator_data = cuda_pointer<float>(denominators);
    const bool matrix_vectorized =
        matrix_size % kMuonVectorWidth == 0 && muon_vector_aligned(x_data) && muon_vector_aligned(work_data);
    // The norms stay on the device: partial sums, then one denominator per matrix, read by the normalize kernel.
    const std::int64_t norm_blocks = muon_norm_blocks(matrix_size);
    Tensor partials = Tensor::empty({batch, norm_blocks}, DType::f64, Device::cuda);
    double* partial_data = static_cast<double*>(partials.raw_data());
    const auto partials_kernel =
        matrix_vectorized ? muon_norm_partials_kernel<T, kMuonVectorWidth> : muon_norm_partials_kernel<T, 1>;
    const dim3 norm_grid(static_cast<unsigned int>(batch), static_cast<unsigned int>(norm_blocks));
    partials_kernel<<<norm_grid, kMuonNormThreads, 0, cuda_stream()>>>(x_data, work_data, matrix_size, partial_data);
    PGOLF_CUDA_CHECK_LAUNCH();
    muon_norm_denominator_kernel<<<cuda_grid_size(batch, kMuonThreads), kMuonThreads, 0, cuda_stream()>>>(
        partial_data, batch, norm_blocks, bf16, denominator_data);
    PGOLF_CUDA_CHECK_LAUNCH();
    muon_launch(muon_normalize_kernel<T, kMuonVectorWidth>, muon_normalize_kernel<T, 1>, matrix_vectorized, count,
                work_data, count, matrix_size, static_cast<const float*>(denominator_data));

    if (steps > 0) {
        // A tall matrix is kept as stored and each product transposed in the GEMM instead: with X stored (rows, cols)
        // and the wide orientation Xᵀ, A = XᵀX and the stored (B·Xᵀ)ᵀ = X·Bᵀ, the same element products.
        const bool tall = muon_is_tall(rows, cols);
        const std::int64_t m = tall ? cols : rows;
        const Shape square{batch, m, m};
        const std::int64_t square_count = batch * m * m;
        Tensor gram_accumulated = Tensor::empty(square, DType::f32, Device::cuda);
        Tensor gram = Tensor::empty(square, work_dtype, Device::cuda);
        Tensor scaled_gram = Tensor::empty(square, work_dtype, Device::cuda);
        Tensor gram_squared = Tensor::empty(square, DType::f32, Device::cuda);
        Tensor poly = Tensor::empty(square, work_dtype, Device::cuda);
        Tensor product = Tensor::empty(x.shape(), DType::f32, Device::cuda);
        const float* gram_accumulated_data = cuda_pointer<float>(gram_accumulated);
        T* gram_data = cuda_pointer<T>(gram);
        T* scaled_gram_data = cuda_pointer<T>(scaled_gram);
        const float* gram_squared_data = cuda_pointer<float>(gram_squared);
        T* poly_data = cuda_pointer<T>(poly);
        const float* product_data = cuda_pointer<float>(product);
        const bool square_vectorized = square_count % kMuonVectorWidth == 0 &&
                                       muon_vector_aligned(gram_accumulated_data) && muon_vector_aligned(gram_data) &&
                                       muon_vector_aligned(scaled_gram_data) &&
                                       muon_vector_aligned(gram_squared_data) && muon_vector_aligned(poly_data);
        const bool iterate_vectorized =
            count % kMuonVectorWidth == 0 && muon_vector_aligned(work_data) && muon_vector_aligned(product_data);
        for (int iteration = 0; iteration < steps; ++iteration) {
            cuda_matmul_strided_batched_into(work, work, tall, !tall, gram_accumulated);  // A = X Xᵀ
            muon_launch(muon_gram_kernel<T, kMuonVectorWidth>, muon_gram_kernel<T, 1>, square_vectorized, square_count,
                        gram_accumulated_data, gram_data, scaled_gram_data, square_count);
            cuda_matmul_strided_batched_into(scaled_gram, gram, false, false, gram_squared);  // (c·A)·A
            muon_launch(muon_poly_kernel<T, kMuonVectorWidth>, muon_poly_kernel<T, 1>, square_vectorized, square_count,
                        static_cast<const T*>(gram_data), gram_squared_data, poly_data, square_count);
            if (tall) {
                cuda_matmul_strided_batched_into(work, poly, false, true, product);  // (B·Xᵀ)ᵀ = X·Bᵀ
            } else {
                cuda_matmul_strided_batched_into(poly, work, false, false, product);  // B·X
            }
            muon_launch(muon_iterate_kernel<T, kMuonVectorWidth>, muon_iterate_kernel<T, 1>, iterate_vectorized, count,
                        work_data, product_data, count);
        }
    }
    if constexpr (bf16) cuda_convert_into(x, work);  // exact: bf16 to f32
}

}  // namespace

void cuda_muon_momentum(const Tensor& grad, Tensor& momentum_buffer, Tensor& update, const MuonUpdateOptions& options) {
    const char* op = "cuda_muon_momentum";
    cuda_check_input(grad, DType::f32, op, "grad");
    cuda_check_input(momentum_buffer, DType::f32, op, "momentum_buffer");
    tensor_check_shape(momentum_buffer, grad.shape(), op, "momentum_buffer");
    cuda_check_input(update, DType::f32, op, "update");
    tensor_check_shape(update, grad.shape(), op, "update");
    const std::int64_t count = grad.numel();
    if (count == 0) return;
    const float* g = cuda_pointer<float>(grad);
    float* b = cuda_pointer<float>(momentum_buffer);
    float* u = cuda_pointer<float>(update);
    const bool vectorized =
        count % kMuonVectorWidth == 0 && muon_vector_aligned(g) && muon_vector_aligned(b) && muon_vector_aligned(u);
    muon_launch(muon_momentum_kernel<kMuonVectorWidth>, muon_momentum_kernel<1>, vectorized, count, g, b, u, count,
                muon_momentum_constants(options));
}

void cuda_newton_schulz_batched(Tensor& x, int steps, CudaMuonPrecision precision) {
    const char* op = "cuda_newton_schulz_batched";
    cuda_check_input(x, DType::f32, op, "x");
    if (x.dim() != 3) {
        throw Error(std::string(op) + ": x has shape " + shape_string(x.shape()) + ", expected (n, rows, cols)");
    }
    if (steps < 0) throw Error(std::string(op) + ": negative step count " + std::to_string(steps));
    if (x.numel() == 0) return;
    // The trainer runs under bf16 matmul precision (autocast); f32 mode's GEMMs must stay exact fp32 all the same
    // (bf16 operands are unaffected).
    const CudaMatmulPrecisionGuard exact(CudaMatmulPrecision::exact);
    if (precision == CudaMuonPrecision::bf16) {
        newton_schulz_batched<Bf16Bits>(x, steps);
    } else {
        newton_schulz_batched<float>(x, steps);
    }
}

void cuda_muon_apply(Tensor& param, const Tensor& update, const MuonUpdateOptions& options) {
    const char* op = "cuda_muon_apply";
    cuda_check_input(param, DType::f32, op, "param");
    if (param.dim() != 2 && param.dim() != 3) {
        throw Error(std::string(op) + ": param has shape " + shape_string(param.shape()) +
                    ", expected (rows, cols) or (banks, rows, cols)");
    }
    cuda_check_input(update, DType::f32, op, "update");
    tensor_check_shape(update, param.shape(), op, "update");
    const std::int64_t count = param.numel();
    if (count == 0) return;
    float* w = cuda_pointer<float>(param);
    const float* u = cuda_pointer<float>(update);
    const bool vectorized = count % kMuonVectorWidth == 0 && muon_vector_aligned(w) && muon_vector_aligned(u);
    muon_launch(muon_apply_kernel<kMuonVectorWidth>, muon_apply_kernel<1>, vectorized, count, w, u, count,
                muon_apply_constants(options, param.size(-2), param.size(-1)));
}

}  // namespace pgolf
