// The operation graphs cuDNN's fused flash-attention engines recognise for causal GQA attention (training forward with
// softmax statistics, and backward), described as plain data, so their topology, dims and strides are tested on the
// CPU; attention_cudnn.cu only turns a description into backend descriptors. Plain C++: no CUDA or cuDNN types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace pgolf {

// Causal attention of q: (batch, heads, seq_len, head_dim) over k, v: (batch, kv_heads, seq_len, head_dim).
struct CudnnSdpaShape {
    std::int64_t batch = 0;
    std::int64_t heads = 0;
    std::int64_t kv_heads = 0;
    std::int64_t seq_len = 0;
    std::int64_t head_dim = 0;
};

// "(B 1, H 32, Hkv 8, T 2048, Dh 32)": how error messages name a shape.
inline std::string cudnn_sdpa_shape_string(const CudnnSdpaShape& shape) {
    return "(B " + std::to_string(shape.batch) + ", H " + std::to_string(shape.heads) + ", Hkv " +
           std::to_string(shape.kv_heads) + ", T " + std::to_string(shape.seq_len) + ", Dh " +
           std::to_string(shape.head_dim) + ")";
}

// Why cuDNN's fused attention cannot take this shape with the cuDNN of this version (cudnnGetVersion(), e.g. 91900
// for 9.19.0); empty when it can. The limits are the ones cuDNN's own frontend enforces for bf16 SDPA on sm80+.
inline std::string cudnn_sdpa_unsupported_reason(const CudnnSdpaShape& shape, std::int64_t cudnn_version) {
    if (shape.batch <= 0 || shape.heads <= 0 || shape.kv_heads <= 0 || shape.seq_len <= 0 || shape.head_dim <= 0) {
        return "every dimension must be positive";
    }
    if (shape.heads % shape.kv_heads != 0) return "the query heads are not a multiple of the KV heads";
    if (shape.head_dim % 8 != 0 || shape.head_dim > 128) return "the head dim must be a multiple of 8 and at most 128";
    // cuDNN's frontend refuses the backward when both sequence lengths are 1 (no engine takes it).
    if (shape.seq_len == 1) return "a sequence length of 1 has no fused backward";
    if (cudnn_version < 90000) return "fused attention needs cuDNN 9.0 or newer";
    // cuDNN's frontend refuses bf16 SDPA on these two releases (known wrong results).
    if (cudnn_version == 91000 || cudnn_version == 91001) return "cuDNN 9.10.0 and 9.10.1 have known SDPA bugs";
    // Up to 9.15 the backward engine needs an explicit padding mask when T is not a multiple of 128 (the frontend
    // adds one as a workaround); these graphs carry no padding mask.
    if (cudnn_version <= 91500 && shape.seq_len % 128 != 0) {
        return "with cuDNN 9.15 or older the sequence length must be a multiple of 128";
    }
    return "";
}

enum class CudnnTensorType : std::uint8_t { f32, bf16, i32, boolean };

enum class CudnnNodeKind : std::uint8_t { matmul, pointwise, reduction, reshape };

enum class CudnnPointwiseMode : std::uint8_t {
    none,
    add,
    sub,
    mul,
    div,
    exp,
    log,
    identity,
    gen_index,      // y = the element's index along `axis`
    cmp_ge,         // y = x >= b
    binary_select,  // y = t ? x : b
};

enum class CudnnReductionMode : std::uint8_t { none, add, max };

struct CudnnGraphTensor {
    std::int64_t uid = 0;
    std::string name;
    std::vector<std::int64_t> dims;
    std::vector<std::int64_t> strides;
    CudnnTensorType type = CudnnTensorType::f32;
    bool is_virtual = true;  // produced and consumed inside the fused kernel, never in memory
    bool by_value = false;   // a host scalar handed to cuDNN at execute time, dims and strides all 1
    float value = 0.0f;      // a by-value constant's value (the scale is supplied by each call instead)
};

struct CudnnGraphNode {
    CudnnNodeKind kind = CudnnNodeKind::pointwise;
    std::string name;
    // matmul: A, B (C = A·B over the last two dims, batch dims broadcast); pointwise: X[, B[, T]]; reduction and
    // reshape: X.
    std::vector<std::int64_t> inputs;
    std::int64_t output = 0;
    CudnnPointwiseMode pointwise = CudnnPointwiseMode::none;
    CudnnReductionMode reduction = CudnnReductionMode::none;
    CudnnTensorType compute = CudnnTensorType::f32;  // math precision
    std::int64_t axis = 0;                           // gen_index only
};

struct CudnnGraph {
    std::vector<CudnnGraphTensor> tensors;
    std::vector<CudnnGraphNode> nodes;  // in dependency order: a node reads only graph inputs and earlier outputs

    const CudnnGraphTensor* find(std::int64_t uid) const {
        for (const CudnnGraphTensor& tensor : tensors) {
            if (tensor.uid == uid) return &tensor;
        }
        return nullptr;
    }
    const CudnnGraphTensor& tensor(std::int64_t uid) const {
        const CudnnGraphTensor* found = find(uid);
        if (found == nullptr) throw Error("cuDNN graph: no tensor with uid " + std::to_string(uid));
        return *found;
    }
};

// The uids of the tensors in memory (and of the by-value scalars) the caller binds at execute time; virtual tensors
// are numbered from first_virtual.
struct CudnnSdpaUid {
    static constexpr std::int64_t q = 1;
    static constexpr std::int64_t k =
        2;  // bound to k (B, Hkv, T, Dh); described as its transpose where a graph needs it
    static constexpr std::int64_t v = 3;  // likewise
    static constexpr std::int64_t o = 4;
    static constexpr std::int64_t stats = 5;  // lse, (B, H, T, 1) f32
    static constexpr std::int64_t d_o = 6;
    static constexpr std::int64_t dq = 7;
    static constexpr std::int64_t dk = 8;
    static constexpr std::int64_t dv = 9;
    static constexpr std::int64_t scale = 10;              // by value, the call's softmax scale
    static constexpr std::int64_t negative_infinity = 11;  // by value, what masked scores become
    static constexpr std::int64_t one = 12;                // by value, 1
    static constexpr std::int64_t softmax_sum = 13;        // backward scratch: Σ_d dO·O per row, (B, H, T, 1) f32
    static constexpr std::int64_t dq_accumulator = 14;     // non-deterministic backward scratch: dQ in f32, zeroed
    static constexpr std::int64_t first_virtual = 100;
};

// The value masked scores take: cuDNN before 9.10 wants the lowest finite float there (what its frontend passes).
inline float cudnn_sdpa_mask_fill_value(std::int64_t cudnn_version) {
    return cudnn_version < 91000 ? std::numeric_limits<float>::lowest() : -std::numeric_limits<float>::infinity();
}

namespace cudnn_graph_detail {

using Dims = std::vector<std::int64_t>;

inline Dims contiguous_strides(const Dims& dims) {
    Dims strides(dims.size(), 1);
    for (std::size_t i = dims.size(); i-- > 1;) strides[i - 1] = strides[i] * dims[i];
    return strides;
}

// Appends tensors and nodes; each helper returns the uid of the tensor it made.
class Builder {
public:
    std::int64_t memory(std::int64_t uid, const std::string& name, const Dims& dims, const Dims& strides,
                        CudnnTensorType type) {
        CudnnGraphTensor tensor;
        tensor.uid = uid;
        tensor.name = name;
        tensor.dims = dims;
        tensor.strides = strides;
        tensor.type = type;
        tensor.is_virtual = false;
        graph_.tensors.push_back(tensor);
        return uid;
    }
    std::int64_t scalar(std::int64_t uid, const std::string& name, float value) {
        CudnnGraphTensor tensor;
        tensor.uid = uid;
        tensor.name = name;
        tensor.dims = {1, 1, 1, 1};
        tensor.strides = {1, 1, 1, 1};
        tensor.type = CudnnTensorType::f32;
        tensor.is_virtual = false;
        tensor.by_value = true;
        tensor.value = value;
        graph_.tensors.push_back(tensor);
        return uid;
    }
    std::int64_t virtual_tensor(const std::string& name, const Dims& dims, CudnnTensorType type,
                                const Dims& strides = {}) {
        CudnnGraphTensor tensor;
        tensor.uid = next_virtual_++;
        tensor.name = name;
        tensor.dims = dims;
        tensor.strides = strides.empty() ? contiguous_strides(dims) : strides;
        tensor.type = type;
        graph_.tensors.push_back(tensor);
        return tensor.uid;
    }

    void matmul(const std::string& name, std::int64_t a, std::int64_t b, std::int64_t c) {
        CudnnGraphNode node;
        node.kind = CudnnNodeKind::matmul;
        node.name = name;
        node.inputs = {a, b};
        node.output = c;
        graph_.nodes.push_back(node);
    }
    void pointwise(const std::string& name, CudnnPointwiseMode mode, const std::vector<std::int64_t>& inputs,
                   std::int64_t output, CudnnTensorType compute = CudnnTensorType::f32, std::int64_t axis = 0) {
        CudnnGraphNode node;
        node.kind = CudnnNodeKind::pointwise;
        node.name = name;
        node.inputs = inputs;
        node.output = output;
        node.pointwise = mode;
        node.compute = compute;
        node.axis = axis;
        graph_.nodes.push_back(node);
    }
    void reduction(const std::string& name, CudnnReductionMode mode, std::int64_t input, std::int64_t output) {
        CudnnGraphNode node;
        node.kind = CudnnNodeKind::reduction;
        node.name = name;
        node.inputs = {input};
        node.output = output;
        node.reduction = mode;
        graph_.nodes.push_back(node);
    }
    void reshape(const std::string& name, std::int64_t input, std::int64_t output) {
        CudnnGraphNode node;
        node.kind = CudnnNodeKind::reshape;
        node.name = name;
        node.inputs = {input};
        node.output = output;
        graph_.nodes.push_back(node);
    }

    const CudnnGraphTensor& tensor(std::int64_t uid) const { return graph_.tensor(uid); }
    CudnnGraph take() { return std::move(graph_); }

private:
    CudnnGraph graph_;
    std::int64_t next_virtual_ = CudnnSdpaUid::first_virtual;
};

// Top-left causal mask, written the way cuDNN's frontend does for cuDNN before 9.21 (which has no single mask
// operation): row and column indices, row >= col, and a select that sends the rest to negative_infinity.
inline std::int64_t causal_mask(Builder& graph, std::int64_t scores) {
    const Dims dims = graph.tensor(scores).dims;
    const std::int64_t row = graph.virtual_tensor("row_index", dims, CudnnTensorType::i32);
    graph.pointwise("gen_row_index", CudnnPointwiseMode::gen_index, {scores}, row, CudnnTensorType::f32, 2);
    const std::int64_t column = graph.virtual_tensor("column_index", dims, CudnnTensorType::i32);
    graph.pointwise("gen_column_index", CudnnPointwiseMode::gen_index, {scores}, column, CudnnTensorType::f32, 3);
    const std::int64_t keep = graph.virtual_tensor("row_ge_column", dims, CudnnTensorType::boolean);
    graph.pointwise("row_ge_column", CudnnPointwiseMode::cmp_ge, {row, column}, keep, CudnnTensorType::boolean);
    const std::int64_t masked = graph.virtual_tensor("masked", dims, CudnnTensorType::f32);
    graph.pointwise("causal_select", CudnnPointwiseMode::binary_select, {scores, CudnnSdpaUid::negative_infinity, keep},
                    masked);
    return masked;
}

// k (B, Hkv, T, Dh) contiguous seen as kᵀ (B, Hkv, Dh, T): the layout cuDNN's matmul wants for q·kᵀ and dO·vᵀ.
inline Dims transposed_head_strides(std::int64_t rows, std::int64_t columns, std::int64_t heads) {
    return {heads * rows * columns, rows * columns, 1, columns};
}

}  // namespace cudnn_graph_detail

// Training forward: S = scale·q·kᵀ, causal mask, softmax with Stats = max + log Σ exp (natural log), O = P·v. Memory
// tensors: q, k (as kᵀ), v, o (bf16) and stats (f32); by value: scale, negative_infinity.
inline CudnnGraph cudnn_sdpa_forward_graph(const CudnnSdpaShape& shape) {
    using namespace cudnn_graph_detail;
    const std::int64_t b = shape.batch, h = shape.heads, h_kv = shape.kv_heads, t = shape.seq_len, d = shape.head_dim;
    const Dims scores = {b, h, t, t};
    const Dims per_row = {b, h, t, 1};
    Builder graph;
    const std::int64_t q =
        graph.memory(CudnnSdpaUid::q, "q", {b, h, t, d}, contiguous_strides({b, h, t, d}), CudnnTensorType::bf16);
    const std::int64_t k_transposed = graph.memory(CudnnSdpaUid::k, "k_transposed", {b, h_kv, d, t},
                                                   transposed_head_strides(t, d, h_kv), CudnnTensorType::bf16);
    const std::int64_t v =
        graph.memory(CudnnSdpaUid::v, "v", {b, h_kv, t, d}, contiguous_strides({b, h_kv, t, d}), CudnnTensorType::bf16);
    const std::int64_t o =
        graph.memory(CudnnSdpaUid::o, "o", {b, h, t, d}, contiguous_strides({b, h, t, d}), CudnnTensorType::bf16);
    const std::int64_t stats =
        graph.memory(CudnnSdpaUid::stats, "stats", per_row, contiguous_strides(per_row), CudnnTensorType::f32);
    const std::int64_t scale = graph.scalar(CudnnSdpaUid::scale, "scale", 1.0f);
    graph.scalar(CudnnSdpaUid::negative_infinity, "negative_infinity", -std::numeric_limits<float>::infinity());

    const std::int64_t raw_scores = graph.virtual_tensor("q_kt", scores, CudnnTensorType::f32);
    graph.matmul("matmul_q_kt", q, k_transposed, raw_scores);
    const std::int64_t scaled = graph.virtual_tensor("scaled_scores", scores, CudnnTensorType::f32);
    graph.pointwise("mul_scale", CudnnPointwiseMode::mul, {raw_scores, scale}, scaled);
    const std::int64_t masked = causal_mask(graph, scaled);

    const std::int64_t row_max = graph.virtual_tensor("row_max", per_row, CudnnTensorType::f32);
    graph.reduction("reduce_max", CudnnReductionMode::max, masked, row_max);
    const std::int64_t shifted = graph.virtual_tensor("shifted_scores", scores, CudnnTensorType::f32);
    graph.pointwise("sub_row_max", CudnnPointwiseMode::sub, {masked, row_max}, shifted);
    const std::int64_t exponentials = graph.virtual_tensor("exp_scores", scores, CudnnTensorType::f32);
    graph.pointwise("exp", CudnnPointwiseMode::exp, {shifted}, exponentials);
    const std::int64_t row_sum = graph.virtual_tensor("row_sum", per_row, CudnnTensorType::f32);
    graph.reduction("reduce_sum", CudnnReductionMode::add, exponentials, row_sum);
    const std::int64_t log_sum = graph.virtual_tensor("log_row_sum", per_row, CudnnTensorType::f32);
    graph.pointwise("log", CudnnPointwiseMode::log, {row_sum}, log_sum);
    graph.pointwise("add_stats", CudnnPointwiseMode::add, {row_max, log_sum}, stats);
    // The probabilities enter the second matmul in the I/O type, as cuDNN's backend requires.
    const std::int64_t probabilities = graph.virtual_tensor("probabilities", scores, CudnnTensorType::bf16);
    graph.pointwise("div_row_sum", CudnnPointwiseMode::div, {exponentials, row_sum}, probabilities);
    graph.matmul("matmul_p_v", probabilities, v, o);
    return graph.take();
}

// Backward from q, k, v, o, dO and the forward's stats: P = exp(S − stats) recomputed, dV = Pᵀ·dO,
// dS = P·(dO·vᵀ − Σ dO·O)·scale, dK = dSᵀ·q, dQ = dS·k; with GQA dK and dV are formed per query head and summed over
// each group by a reduction. Memory tensors: q, k (as kᵀ), v (as vᵀ), o, d_o, dq, dk, dv (bf16), stats and the
// softmax_sum scratch (f32); by value: scale, negative_infinity, one. deterministic = true is the form cuDNN's
// frontend builds for a deterministic backward (dQ straight from the dP workspace); false adds the f32
// dq_accumulator scratch, which the engine accumulates into with atomics (the caller zeroes it).
inline CudnnGraph cudnn_sdpa_backward_graph(const CudnnSdpaShape& shape, bool deterministic = true) {
    using namespace cudnn_graph_detail;
    const std::int64_t b = shape.batch, h = shape.heads, h_kv = shape.kv_heads, t = shape.seq_len, d = shape.head_dim;
    const bool grouped = h != h_kv;
    const Dims q_dims = {b, h, t, d};
    const Dims kv_dims = {b, h_kv, t, d};
    const Dims scores = {b, h, t, t};
    const Dims per_row = {b, h, t, 1};
    // Pᵀ and dSᵀ: the (T, T) score matrices read column-major.
    const Dims transposed_scores_strides = {h * t * t, t * t, 1, t};
    Builder graph;
    const std::int64_t q =
        graph.memory(CudnnSdpaUid::q, "q", q_dims, contiguous_strides(q_dims), CudnnTensorType::bf16);
    const std::int64_t k_transposed = graph.memory(CudnnSdpaUid::k, "k_transposed", {b, h_kv, d, t},
                                                   transposed_head_strides(t, d, h_kv), CudnnTensorType::bf16);
    const std::int64_t v_transposed = graph.memory(CudnnSdpaUid::v, "v_transposed", {b, h_kv, d, t},
                                                   transposed_head_strides(t, d, h_kv), CudnnTensorType::bf16);
    const std::int64_t o =
        graph.memory(CudnnSdpaUid::o, "o", q_dims, contiguous_strides(q_dims), CudnnTensorType::bf16);
    const std::int64_t d_o =
        graph.memory(CudnnSdpaUid::d_o, "d_o", q_dims, contiguous_strides(q_dims), CudnnTensorType::bf16);
    const std::int64_t stats =
        graph.memory(CudnnSdpaUid::stats, "stats", per_row, contiguous_strides(per_row), CudnnTensorType::f32);
    const std::int64_t dq =
        graph.memory(CudnnSdpaUid::dq, "dq", q_dims, contiguous_strides(q_dims), CudnnTensorType::bf16);
    const std::int64_t dk =
        graph.memory(CudnnSdpaUid::dk, "dk", kv_dims, contiguous_strides(kv_dims), CudnnTensorType::bf16);
    const std::int64_t dv =
        graph.memory(CudnnSdpaUid::dv, "dv", kv_dims, contiguous_strides(kv_dims), CudnnTensorType::bf16);
    const std::int64_t softmax_sum = graph.memory(CudnnSdpaUid::softmax_sum, "softmax_sum", per_row,
                                                  contiguous_strides(per_row), CudnnTensorType::f32);
    const std::int64_t scale = graph.scalar(CudnnSdpaUid::scale, "scale", 1.0f);
    graph.scalar(CudnnSdpaUid::negative_infinity, "negative_infinity", -std::numeric_limits<float>::infinity());
    const std::int64_t one = graph.scalar(CudnnSdpaUid::one, "one", 1.0f);

    // Σ_d dO·O per row (= Σ_j P·dP), kept in memory as the frontend does.
    const std::int64_t d_o_times_o = graph.virtual_tensor("d_o_times_o", q_dims, CudnnTensorType::f32);
    graph.pointwise("mul_d_o_o", CudnnPointwiseMode::mul, {d_o, o}, d_o_times_o);
    const std::int64_t row_dot = graph.virtual_tensor("row_dot", per_row, CudnnTensorType::f32);
    graph.reduction("reduce_d_o_o", CudnnReductionMode::add, d_o_times_o, row_dot);
    graph.pointwise("mul_one", CudnnPointwiseMode::mul, {row_dot, one}, softmax_sum);

    // P = exp(scale·q·kᵀ − stats), masked.
    const std::int64_t raw_scores = graph.virtual_tensor("q_kt", scores, CudnnTensorType::f32);
    graph.matmul("matmul_q_kt", q, k_transposed, raw_scores);
    const std::int64_t scaled = graph.virtual_tensor("scaled_scores", scores, CudnnTensorType::f32);
    graph.pointwise("mul_scale", CudnnPointwiseMode::mul, {raw_scores, scale}, scaled);
    const std::int64_t centred = graph.virtual_tensor("scores_minus_stats", scores, CudnnTensorType::f32);
    graph.pointwise("sub_stats", CudnnPointwiseMode::sub, {scaled, stats}, centred);
    const std::int64_t masked = causal_mask(graph, centred);
    const std::int64_t probabilities = graph.virtual_tensor("probabilities", scores, CudnnTensorType::f32);
    graph.pointwise("exp", CudnnPointwiseMode::exp, {masked}, probabilities);

    // dV = Pᵀ·dO (per query head, then summed over each group).
    const std::int64_t probabilities_transposed = graph.virtual_tensor(
        "probabilities_transposed", {b, h, t, t}, CudnnTensorType::bf16, transposed_scores_strides);
    graph.reshape("transpose_probabilities", probabilities, probabilities_transposed);
    if (grouped) {
        const std::int64_t dv_per_head = graph.virtual_tensor("dv_per_query_head", q_dims, CudnnTensorType::bf16);
        graph.matmul("matmul_pt_d_o", probabilities_transposed, d_o, dv_per_head);
        graph.reduction("reduce_dv_heads", CudnnReductionMode::add, dv_per_head, dv);
    } else {
        graph.matmul("matmul_pt_d_o", probabilities_transposed, d_o, dv);
    }

    // dS = P·(dO·vᵀ − softmax_sum)·scale.
    const std::int64_t d_p = graph.virtual_tensor("d_p", scores, CudnnTensorType::f32);
    graph.matmul("matmul_d_o_vt", d_o, v_transposed, d_p);
    const std::int64_t d_p_centred = graph.virtual_tensor("d_p_minus_softmax_sum", scores, CudnnTensorType::f32);
    graph.pointwise("sub_softmax_sum", CudnnPointwiseMode::sub, {d_p, softmax_sum}, d_p_centred);
    const std::int64_t d_s_unscaled = graph.virtual_tensor("d_s_unscaled", scores, CudnnTensorType::f32);
    graph.pointwise("mul_probabilities", CudnnPointwiseMode::mul, {d_p_centred, probabilities}, d_s_unscaled);
    const std::int64_t d_s = graph.virtual_tensor("d_s", scores, CudnnTensorType::f32);
    graph.pointwise("mul_d_s_scale", CudnnPointwiseMode::mul, {d_s_unscaled, scale}, d_s);

    // dK = dSᵀ·q (per query head, then summed over each group).
    const std::int64_t d_s_transposed =
        graph.virtual_tensor("d_s_transposed", {b, h, t, t}, CudnnTensorType::bf16, transposed_scores_strides);
    graph.reshape("transpose_d_s", d_s, d_s_transposed);
    if (grouped) {
        const std::int64_t dk_per_head = graph.virtual_tensor("dk_per_query_head", q_dims, CudnnTensorType::bf16);
        graph.matmul("matmul_dst_q", d_s_transposed, q, dk_per_head);
        graph.reduction("reduce_dk_heads", CudnnReductionMode::add, dk_per_head, dk);
    } else {
        graph.matmul("matmul_dst_q", d_s_transposed, q, dk);
    }

    // dQ = dS·k, with k read back from kᵀ by a reshape (k's own layout). Its type is left at the intermediate f32,
    // as cuDNN's frontend leaves it.
    const std::int64_t k_restored = graph.virtual_tensor("k", kv_dims, CudnnTensorType::f32);
    graph.reshape("transpose_k", k_transposed, k_restored);
    if (deterministic) {
        graph.matmul("matmul_d_s_k", d_s, k_restored, dq);
    } else {
        const std::int64_t accumulator = graph.memory(CudnnSdpaUid::dq_accumulator, "dq_accumulator", q_dims,
                                                      contiguous_strides(q_dims), CudnnTensorType::f32);
        graph.matmul("matmul_d_s_k", d_s, k_restored, accumulator);
        graph.pointwise("identity_dq", CudnnPointwiseMode::identity, {accumulator}, dq);
    }
    return graph.take();
}

}  // namespace pgolf
