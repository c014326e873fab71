// The cuDNN fused-attention graphs (core/cuda/attention_cudnn_graph.h) checked on the CPU: well-formedness (unique
// uids, every node input made earlier or bound by the caller, dims that agree across each node), the memory tensors'
// dims and strides at the seeds' GQA shapes, and the graphs' arithmetic, run by a small interpreter in f64 against
// the CPU attention reference. With cuDNN (PGOLF_WITH_CUDNN) on a GPU, the fused attention itself against the CPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/cuda/attention_cudnn_graph.h"
#include "core/error.h"
#include "core/ops/attention.h"
#include "core/tensor.h"

#if PGOLF_WITH_CUDNN
#include "core/cuda/attention_cudnn.h"
#endif

namespace pgolf {
namespace {

using Index = std::array<std::int64_t, 4>;

const CudnnSdpaShape kSmall{2, 4, 2, 128, 64};
const CudnnSdpaShape kBaseline{64, 8, 4, 1024, 64};  // 65,536 tokens per micro-batch, T 1024
const CudnnSdpaShape kS1{32, 32, 8, 2048, 32};       // 65,536 tokens per micro-batch, T 2048
const CudnnSdpaShape kMha{2, 4, 4, 256, 32};
const CudnnSdpaShape kMqa{1, 4, 1, 128, 16};

std::vector<CudnnSdpaShape> graph_shapes() { return {kSmall, kBaseline, kS1, kMha, kMqa}; }

std::vector<std::int64_t> contiguous(const std::vector<std::int64_t>& dims) {
    std::vector<std::int64_t> strides(dims.size(), 1);
    for (std::size_t i = dims.size(); i-- > 1;) strides[i - 1] = strides[i] * dims[i];
    return strides;
}

std::size_t pointwise_arity(CudnnPointwiseMode mode) {
    switch (mode) {
        case CudnnPointwiseMode::exp:
        case CudnnPointwiseMode::log:
        case CudnnPointwiseMode::identity:
        case CudnnPointwiseMode::gen_index:
            return 1;
        case CudnnPointwiseMode::binary_select:
            return 3;
        default:
            return 2;
    }
}

// Every structural rule a backend graph must satisfy, as gtest failures naming the node or tensor.
void expect_well_formed(const CudnnGraph& graph) {
    std::set<std::int64_t> uids;
    for (const CudnnGraphTensor& tensor : graph.tensors) {
        EXPECT_TRUE(uids.insert(tensor.uid).second) << "uid " << tensor.uid << " (" << tensor.name << ") repeats";
        ASSERT_EQ(tensor.dims.size(), 4u) << tensor.name;
        ASSERT_EQ(tensor.strides.size(), 4u) << tensor.name;
        for (std::size_t i = 0; i < 4; ++i) {
            EXPECT_GT(tensor.dims[i], 0) << tensor.name;
            EXPECT_GT(tensor.strides[i], 0) << tensor.name;
        }
        if (tensor.by_value) {
            EXPECT_FALSE(tensor.is_virtual) << tensor.name;
            EXPECT_EQ(tensor.dims, (std::vector<std::int64_t>{1, 1, 1, 1})) << tensor.name;
            EXPECT_EQ(tensor.type, CudnnTensorType::f32) << tensor.name;
        }
        EXPECT_EQ(tensor.is_virtual, tensor.uid >= CudnnSdpaUid::first_virtual) << tensor.name;
    }
    std::map<std::int64_t, std::size_t> producer;  // uid -> index of the node writing it
    for (std::size_t n = 0; n < graph.nodes.size(); ++n) {
        const CudnnGraphNode& node = graph.nodes[n];
        const CudnnGraphTensor* output = graph.find(node.output);
        ASSERT_NE(output, nullptr) << node.name << " writes an unknown uid";
        EXPECT_FALSE(output->by_value) << node.name << " writes a by-value scalar";
        EXPECT_TRUE(producer.emplace(node.output, n).second) << node.output << " written twice, again by " << node.name;
    }
    std::set<std::int64_t> consumed;
    for (std::size_t n = 0; n < graph.nodes.size(); ++n) {
        const CudnnGraphNode& node = graph.nodes[n];
        for (const std::int64_t input : node.inputs) {
            const CudnnGraphTensor* tensor = graph.find(input);
            ASSERT_NE(tensor, nullptr) << node.name << " reads an unknown uid " << input;
            consumed.insert(input);
            const auto made = producer.find(input);
            if (made == producer.end()) {
                EXPECT_FALSE(tensor->is_virtual) << node.name << " reads " << tensor->name << ", which nothing makes";
            } else {
                EXPECT_LT(made->second, n) << node.name << " reads " << tensor->name << " before it is made";
            }
        }
        const CudnnGraphTensor& out = graph.tensor(node.output);
        switch (node.kind) {
            case CudnnNodeKind::matmul: {
                ASSERT_EQ(node.inputs.size(), 2u) << node.name;
                const CudnnGraphTensor& a = graph.tensor(node.inputs[0]);
                const CudnnGraphTensor& b = graph.tensor(node.inputs[1]);
                EXPECT_EQ(a.dims[2], out.dims[2]) << node.name << ": M";
                EXPECT_EQ(a.dims[3], b.dims[2]) << node.name << ": K";
                EXPECT_EQ(b.dims[3], out.dims[3]) << node.name << ": N";
                for (std::size_t i = 0; i < 2; ++i) {
                    // Batch and head dims broadcast: each operand's divides the output's (GQA: KV heads).
                    EXPECT_EQ(out.dims[i] % a.dims[i], 0) << node.name;
                    EXPECT_EQ(out.dims[i] % b.dims[i], 0) << node.name;
                }
                break;
            }
            case CudnnNodeKind::pointwise: {
                ASSERT_EQ(node.inputs.size(), pointwise_arity(node.pointwise)) << node.name;
                for (const std::int64_t input : node.inputs) {
                    const CudnnGraphTensor& in = graph.tensor(input);
                    for (std::size_t i = 0; i < 4; ++i) {
                        EXPECT_TRUE(in.dims[i] == out.dims[i] || in.dims[i] == 1)
                            << node.name << " cannot broadcast " << in.name << " to " << out.name;
                    }
                }
                if (node.pointwise == CudnnPointwiseMode::gen_index) {
                    EXPECT_TRUE(node.axis == 2 || node.axis == 3) << node.name;
                    EXPECT_EQ(out.type, CudnnTensorType::i32) << node.name;
                }
                if (node.pointwise == CudnnPointwiseMode::cmp_ge) {
                    EXPECT_EQ(out.type, CudnnTensorType::boolean) << node.name;
                }
                if (node.pointwise == CudnnPointwiseMode::binary_select) {
                    EXPECT_EQ(graph.tensor(node.inputs[2]).type, CudnnTensorType::boolean) << node.name;
                }
                break;
            }
            case CudnnNodeKind::reduction: {
                ASSERT_EQ(node.inputs.size(), 1u) << node.name;
                const CudnnGraphTensor& in = graph.tensor(node.inputs[0]);
                for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(in.dims[i] % out.dims[i], 0) << node.name;
                break;
            }
            case CudnnNodeKind::reshape: {
                // Every reshape here is a transpose of the last two axes over the same memory.
                ASSERT_EQ(node.inputs.size(), 1u) << node.name;
                const CudnnGraphTensor& in = graph.tensor(node.inputs[0]);
                EXPECT_EQ(out.dims[0], in.dims[0]) << node.name;
                EXPECT_EQ(out.dims[1], in.dims[1]) << node.name;
                EXPECT_EQ(out.dims[2], in.dims[3]) << node.name;
                EXPECT_EQ(out.dims[3], in.dims[2]) << node.name;
                EXPECT_EQ(out.strides[0], in.strides[0]) << node.name;
                EXPECT_EQ(out.strides[1], in.strides[1]) << node.name;
                EXPECT_EQ(out.strides[2], in.strides[3]) << node.name;
                EXPECT_EQ(out.strides[3], in.strides[2]) << node.name;
                break;
            }
        }
    }
    for (const CudnnGraphTensor& tensor : graph.tensors) {
        if (tensor.is_virtual) {
            EXPECT_EQ(producer.count(tensor.uid), 1u) << tensor.name << " is virtual but nothing makes it";
            EXPECT_EQ(consumed.count(tensor.uid), 1u) << tensor.name << " is made but nothing reads it";
        }
    }
}

std::set<std::int64_t> memory_uids(const CudnnGraph& graph, bool by_value) {
    std::set<std::int64_t> uids;
    for (const CudnnGraphTensor& tensor : graph.tensors) {
        if (!tensor.is_virtual && tensor.by_value == by_value) uids.insert(tensor.uid);
    }
    return uids;
}

const CudnnGraphNode* node_writing(const CudnnGraph& graph, std::int64_t uid) {
    for (const CudnnGraphNode& node : graph.nodes) {
        if (node.output == uid) return &node;
    }
    return nullptr;
}

// A memory tensor bound to a contiguous (B, heads, T, Dh) buffer, read either as is or as its (B, heads, Dh, T)
// transpose.
void expect_bound_to_contiguous_heads(const CudnnGraphTensor& tensor, const CudnnSdpaShape& shape, std::int64_t heads,
                                      bool transposed, CudnnTensorType type) {
    const std::int64_t b = shape.batch, t = shape.seq_len, d = shape.head_dim;
    const std::vector<std::int64_t> natural = {b, heads, t, d};
    const std::vector<std::int64_t> strides = contiguous(natural);
    EXPECT_FALSE(tensor.is_virtual) << tensor.name;
    EXPECT_EQ(tensor.type, type) << tensor.name;
    if (transposed) {
        EXPECT_EQ(tensor.dims, (std::vector<std::int64_t>{b, heads, d, t})) << tensor.name;
        EXPECT_EQ(tensor.strides, (std::vector<std::int64_t>{strides[0], strides[1], strides[3], strides[2]}))
            << tensor.name;
    } else {
        EXPECT_EQ(tensor.dims, natural) << tensor.name;
        EXPECT_EQ(tensor.strides, strides) << tensor.name;
    }
}

void expect_per_row_stat(const CudnnGraphTensor& tensor, const CudnnSdpaShape& shape) {
    const std::vector<std::int64_t> dims = {shape.batch, shape.heads, shape.seq_len, 1};
    EXPECT_FALSE(tensor.is_virtual) << tensor.name;
    EXPECT_EQ(tensor.type, CudnnTensorType::f32) << tensor.name;
    EXPECT_EQ(tensor.dims, dims) << tensor.name;
    // (B, H, T, 1) over the same memory as a contiguous (B, H, T).
    EXPECT_EQ(tensor.strides, (std::vector<std::int64_t>{shape.heads * shape.seq_len, shape.seq_len, 1, 1}))
        << tensor.name;
}

// The causal mask feeding `masked`: a select of (scores, negative_infinity, row_index >= column_index).
void expect_causal_mask(const CudnnGraph& graph, std::int64_t masked) {
    const CudnnGraphNode* select = node_writing(graph, masked);
    ASSERT_NE(select, nullptr);
    ASSERT_EQ(select->pointwise, CudnnPointwiseMode::binary_select);
    EXPECT_EQ(select->inputs[1], CudnnSdpaUid::negative_infinity);
    const CudnnGraphNode* compare = node_writing(graph, select->inputs[2]);
    ASSERT_NE(compare, nullptr);
    ASSERT_EQ(compare->pointwise, CudnnPointwiseMode::cmp_ge);
    const CudnnGraphNode* row = node_writing(graph, compare->inputs[0]);
    const CudnnGraphNode* column = node_writing(graph, compare->inputs[1]);
    ASSERT_NE(row, nullptr);
    ASSERT_NE(column, nullptr);
    EXPECT_EQ(row->pointwise, CudnnPointwiseMode::gen_index);
    EXPECT_EQ(row->axis, 2);  // query position i
    EXPECT_EQ(column->pointwise, CudnnPointwiseMode::gen_index);
    EXPECT_EQ(column->axis, 3);  // key position j: kept when i >= j
    EXPECT_EQ(row->inputs[0], select->inputs[0]);
    EXPECT_EQ(column->inputs[0], select->inputs[0]);
}

std::size_t count_nodes(const CudnnGraph& graph, CudnnNodeKind kind) {
    return static_cast<std::size_t>(std::count_if(graph.nodes.begin(), graph.nodes.end(),
                                                  [kind](const CudnnGraphNode& node) { return node.kind == kind; }));
}

// ---- an f64 interpreter of the graph descriptions ----

// Runs a graph on the CPU with the meaning cuDNN gives each node: matmul over the last two axes with batch and head
// axes broadcast (output head h reads operand head h / (H / operand heads)), pointwise with size-1 broadcasting,
// reductions summing (or maxing) input index i into output index i / (input dim / output dim), and reshape as a new
// view of the same memory. Each tensor lives in a buffer laid out by its own strides.
class GraphInterpreter {
public:
    explicit GraphInterpreter(const CudnnGraph& graph) : graph_(graph) {}

    void bind(std::int64_t uid, std::vector<double> memory) { buffers_[uid] = std::move(memory); }
    void bind_scalar(std::int64_t uid, double value) { buffers_[uid] = {value}; }
    const std::vector<double>& memory(std::int64_t uid) const { return buffers_.at(uid); }

    void run() {
        for (const CudnnGraphTensor& tensor : graph_.tensors) {
            if (tensor.by_value && buffers_.count(tensor.uid) == 0) bind_scalar(tensor.uid, tensor.value);
        }
        for (const CudnnGraphNode& node : graph_.nodes) run_node(node);
    }

private:
    static std::int64_t extent(const CudnnGraphTensor& tensor) {
        std::int64_t last = 0;
        for (std::size_t i = 0; i < 4; ++i) last += (tensor.dims[i] - 1) * tensor.strides[i];
        return last + 1;
    }
    static std::int64_t offset(const CudnnGraphTensor& tensor, const Index& index) {
        std::int64_t at = 0;
        for (std::size_t i = 0; i < 4; ++i) at += index[i] * tensor.strides[i];
        return at;
    }
    template <typename Visit>
    static void for_each_index(const std::vector<std::int64_t>& dims, Visit visit) {
        Index index{};
        for (index[0] = 0; index[0] < dims[0]; ++index[0])
            for (index[1] = 0; index[1] < dims[1]; ++index[1])
                for (index[2] = 0; index[2] < dims[2]; ++index[2])
                    for (index[3] = 0; index[3] < dims[3]; ++index[3]) visit(index);
    }
    double read(std::int64_t uid, const Index& index) const {
        const CudnnGraphTensor& tensor = graph_.tensor(uid);
        Index clamped = index;
        for (std::size_t i = 0; i < 4; ++i) {
            if (tensor.dims[i] == 1) clamped[i] = 0;
        }
        return buffers_.at(uid).at(static_cast<std::size_t>(offset(tensor, clamped)));
    }

    void run_node(const CudnnGraphNode& node) {
        const CudnnGraphTensor& out = graph_.tensor(node.output);
        if (node.kind == CudnnNodeKind::reshape) {
            buffers_[node.output] = buffers_.at(node.inputs[0]);  // same memory, read through the output's strides
            return;
        }
        std::vector<double> result(static_cast<std::size_t>(extent(out)), 0.0);
        if (node.kind == CudnnNodeKind::reduction) {
            const CudnnGraphTensor& in = graph_.tensor(node.inputs[0]);
            const bool is_max = node.reduction == CudnnReductionMode::max;
            std::fill(result.begin(), result.end(), is_max ? -std::numeric_limits<double>::infinity() : 0.0);
            for_each_index(in.dims, [&](const Index& index) {
                Index target{};
                for (std::size_t i = 0; i < 4; ++i) target[i] = index[i] / (in.dims[i] / out.dims[i]);
                double& slot = result[static_cast<std::size_t>(offset(out, target))];
                const double value = read(in.uid, index);
                slot = is_max ? std::max(slot, value) : slot + value;
            });
        } else {
            for_each_index(out.dims, [&](const Index& index) {
                result[static_cast<std::size_t>(offset(out, index))] = evaluate(node, out, index);
            });
        }
        buffers_[node.output] = std::move(result);
    }

    double evaluate(const CudnnGraphNode& node, const CudnnGraphTensor& out, const Index& index) const {
        if (node.kind == CudnnNodeKind::matmul) {
            const CudnnGraphTensor& a = graph_.tensor(node.inputs[0]);
            const CudnnGraphTensor& b = graph_.tensor(node.inputs[1]);
            Index a_index = {index[0] / (out.dims[0] / a.dims[0]), index[1] / (out.dims[1] / a.dims[1]), index[2], 0};
            Index b_index = {index[0] / (out.dims[0] / b.dims[0]), index[1] / (out.dims[1] / b.dims[1]), 0, index[3]};
            double sum = 0.0;
            for (std::int64_t k = 0; k < a.dims[3]; ++k) {
                a_index[3] = k;
                b_index[2] = k;
                sum += read(a.uid, a_index) * read(b.uid, b_index);
            }
            return sum;
        }
        const auto input = [&](std::size_t i) { return read(node.inputs[i], index); };
        switch (node.pointwise) {
            case CudnnPointwiseMode::add:
                return input(0) + input(1);
            case CudnnPointwiseMode::sub:
                return input(0) - input(1);
            case CudnnPointwiseMode::mul:
                return input(0) * input(1);
            case CudnnPointwiseMode::div:
                return input(0) / input(1);
            case CudnnPointwiseMode::exp:
                return std::exp(input(0));
            case CudnnPointwiseMode::log:
                return std::log(input(0));
            case CudnnPointwiseMode::identity:
                return input(0);
            case CudnnPointwiseMode::gen_index:
                return static_cast<double>(index[static_cast<std::size_t>(node.axis)]);
            case CudnnPointwiseMode::cmp_ge:
                return input(0) >= input(1) ? 1.0 : 0.0;
            case CudnnPointwiseMode::binary_select:
                return input(2) != 0.0 ? input(0) : input(1);
            case CudnnPointwiseMode::none:
                break;
        }
        ADD_FAILURE() << node.name << " has no pointwise mode";
        return 0.0;
    }

    const CudnnGraph& graph_;
    std::map<std::int64_t, std::vector<double>> buffers_;
};

Tensor random_tensor(const Shape& shape, std::uint64_t seed) {
    std::mt19937_64 generator(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<double> values(static_cast<std::size_t>(shape_numel(shape)));
    for (double& value : values) value = normal(generator);
    return Tensor::from_values(values, shape, DType::f64);
}

double max_relative_difference(const std::vector<double>& actual, const Tensor& expected) {
    const std::vector<double> reference = expected.to_doubles();
    EXPECT_EQ(actual.size(), reference.size());
    double worst = 0.0;
    for (std::size_t i = 0; i < std::min(actual.size(), reference.size()); ++i) {
        worst = std::max(worst, std::abs(actual[i] - reference[i]) / std::max(1.0, std::abs(reference[i])));
    }
    return worst;
}

// Small shapes for the interpreter (T need not be a multiple of 64 there: it only runs the arithmetic).
struct InterpretedCase {
    const char* name;
    CudnnSdpaShape shape;
    double scale;  // 0 → 1/√Dh
};

std::vector<InterpretedCase> interpreted_cases() {
    return {{"gqa", {2, 4, 2, 5, 8}, 0.0},
            {"mha", {1, 3, 3, 4, 8}, 0.3},
            {"mqa", {1, 4, 1, 6, 8}, 0.0},
            {"t1", {2, 2, 1, 1, 8}, 0.0}};
}

struct InterpretedInputs {
    Tensor q, k, v, dy;
    AttentionResult forward;
    double scale = 0.0;
};

InterpretedInputs interpreted_inputs(const InterpretedCase& spec, std::uint64_t seed) {
    const CudnnSdpaShape& s = spec.shape;
    InterpretedInputs in;
    in.q = random_tensor({s.batch, s.heads, s.seq_len, s.head_dim}, seed);
    in.k = random_tensor({s.batch, s.kv_heads, s.seq_len, s.head_dim}, seed + 1);
    in.v = random_tensor({s.batch, s.kv_heads, s.seq_len, s.head_dim}, seed + 2);
    in.dy = random_tensor({s.batch, s.heads, s.seq_len, s.head_dim}, seed + 3);
    in.scale = spec.scale == 0.0 ? 1.0 / std::sqrt(static_cast<double>(s.head_dim)) : spec.scale;
    in.forward = attention_forward(in.q, in.k, in.v, spec.scale, true);
    return in;
}

// ---- graph tests ----

TEST(CudnnSdpaGraph, ForwardIsWellFormed) {
    for (const CudnnSdpaShape& shape : graph_shapes()) {
        SCOPED_TRACE(cudnn_sdpa_shape_string(shape));
        expect_well_formed(cudnn_sdpa_forward_graph(shape));
    }
}

TEST(CudnnSdpaGraph, BackwardIsWellFormed) {
    for (const CudnnSdpaShape& shape : graph_shapes()) {
        for (const bool deterministic : {true, false}) {
            SCOPED_TRACE(cudnn_sdpa_shape_string(shape) + (deterministic ? " deterministic" : " atomic"));
            expect_well_formed(cudnn_sdpa_backward_graph(shape, deterministic));
        }
    }
}

TEST(CudnnSdpaGraph, ForwardMemoryTensorsAndOutputs) {
    for (const CudnnSdpaShape& shape : graph_shapes()) {
        SCOPED_TRACE(cudnn_sdpa_shape_string(shape));
        const CudnnGraph graph = cudnn_sdpa_forward_graph(shape);
        EXPECT_EQ(memory_uids(graph, false), (std::set<std::int64_t>{CudnnSdpaUid::q, CudnnSdpaUid::k, CudnnSdpaUid::v,
                                                                     CudnnSdpaUid::o, CudnnSdpaUid::stats}));
        EXPECT_EQ(memory_uids(graph, true),
                  (std::set<std::int64_t>{CudnnSdpaUid::scale, CudnnSdpaUid::negative_infinity}));
        const auto bf16 = CudnnTensorType::bf16;
        expect_bound_to_contiguous_heads(graph.tensor(CudnnSdpaUid::q), shape, shape.heads, false, bf16);
        expect_bound_to_contiguous_heads(graph.tensor(CudnnSdpaUid::k), shape, shape.kv_heads, true, bf16);
        expect_bound_to_contiguous_heads(graph.tensor(CudnnSdpaUid::v), shape, shape.kv_heads, false, bf16);
        expect_bound_to_contiguous_heads(graph.tensor(CudnnSdpaUid::o), shape, shape.heads, false, bf16);
        expect_per_row_stat(graph.tensor(CudnnSdpaUid::stats), shape);
        EXPECT_TRUE(std::isinf(graph.tensor(CudnnSdpaUid::negative_infinity).value));
        EXPECT_LT(graph.tensor(CudnnSdpaUid::negative_infinity).value, 0.0f);

        // y and lse come out; q, k, v are only read.
        for (const std::int64_t output : {CudnnSdpaUid::o, CudnnSdpaUid::stats}) {
            EXPECT_NE(node_writing(graph, output), nullptr) << output;
        }
        for (const std::int64_t input : {CudnnSdpaUid::q, CudnnSdpaUid::k, CudnnSdpaUid::v}) {
            EXPECT_EQ(node_writing(graph, input), nullptr) << input;
        }
        const CudnnGraphNode* bmm2 = node_writing(graph, CudnnSdpaUid::o);
        ASSERT_EQ(bmm2->kind, CudnnNodeKind::matmul);
        EXPECT_EQ(bmm2->inputs[1], CudnnSdpaUid::v);
        // The probabilities enter the second matmul in bf16, the I/O type.
        EXPECT_EQ(graph.tensor(bmm2->inputs[0]).type, CudnnTensorType::bf16);
        const CudnnGraphNode* stats = node_writing(graph, CudnnSdpaUid::stats);
        ASSERT_EQ(stats->pointwise, CudnnPointwiseMode::add);
        EXPECT_EQ(node_writing(graph, stats->inputs[0])->reduction, CudnnReductionMode::max);
        EXPECT_EQ(node_writing(graph, stats->inputs[1])->pointwise, CudnnPointwiseMode::log);

        EXPECT_EQ(count_nodes(graph, CudnnNodeKind::matmul), 2u);
        EXPECT_EQ(count_nodes(graph, CudnnNodeKind::reduction), 2u);
        EXPECT_EQ(count_nodes(graph, CudnnNodeKind::reshape), 0u);
        const CudnnGraphNode* max = node_writing(graph, stats->inputs[0]);
        expect_causal_mask(graph, max->inputs[0]);
    }
}

TEST(CudnnSdpaGraph, BackwardMemoryTensorsAndOutputs) {
    for (const CudnnSdpaShape& shape : graph_shapes()) {
        for (const bool deterministic : {true, false}) {
            SCOPED_TRACE(cudnn_sdpa_shape_string(shape) + (deterministic ? " deterministic" : " atomic"));
            const CudnnGraph graph = cudnn_sdpa_backward_graph(shape, deterministic);
            std::set<std::int64_t> memory = {
                CudnnSdpaUid::q,     CudnnSdpaUid::k,  CudnnSdpaUid::v,  CudnnSdpaUid::o,  CudnnSdpaUid::d_o,
                CudnnSdpaUid::stats, CudnnSdpaUid::dq, CudnnSdpaUid::dk, CudnnSdpaUid::dv, CudnnSdpaUid::softmax_sum};
            if (!deterministic) memory.insert(CudnnSdpaUid::dq_accumulator);
            EXPECT_EQ(memory_uids(graph, false), memory);
            EXPECT_EQ(
                memory_uids(graph, true),
                (std::set<std::int64_t>{CudnnSdpaUid::scale, CudnnSdpaUid::negative_infinity, CudnnSdpaUid::one}));
            const auto bf16 = CudnnTensorType::bf16;
            expect_bound_to_contiguous_heads(graph.tensor(CudnnSdpaUid::q), shape, shape.heads, false, bf16);
            expect_bound_to_contiguous_heads(graph.tensor(CudnnSdpaUid::k), shape, shape.kv_heads, true, bf16);
            expect_bound_to_contiguous_heads(graph.tensor(CudnnSdpaUid::v), shape, shape.kv_heads, true, bf16);
            expect_bound_to_contiguous_heads(graph.tensor(CudnnSdpaUid::o), shape, shape.heads, false, bf16);
            expect_bound_to_contiguous_heads(graph.tensor(CudnnSdpaUid::d_o), shape, shape.heads, false, bf16);
            expect_bound_to_contiguous_heads(graph.tensor(CudnnSdpaUid::dq), shape, shape.heads, false, bf16);
            expect_bound_to_contiguous_heads(graph.tensor(CudnnSdpaUid::dk), shape, shape.kv_heads, false, bf16);
            expect_bound_to_contiguous_heads(graph.tensor(CudnnSdpaUid::dv), shape, shape.kv_heads, false, bf16);
            expect_per_row_stat(graph.tensor(CudnnSdpaUid::stats), shape);
            expect_per_row_stat(graph.tensor(CudnnSdpaUid::softmax_sum), shape);
            if (!deterministic) {
                expect_bound_to_contiguous_heads(graph.tensor(CudnnSdpaUid::dq_accumulator), shape, shape.heads, false,
                                                 CudnnTensorType::f32);
            }

            for (const std::int64_t input : {CudnnSdpaUid::q, CudnnSdpaUid::k, CudnnSdpaUid::v, CudnnSdpaUid::o,
                                             CudnnSdpaUid::d_o, CudnnSdpaUid::stats}) {
                EXPECT_EQ(node_writing(graph, input), nullptr) << input;
            }
            const bool grouped = shape.heads != shape.kv_heads;
            for (const std::int64_t gradient : {CudnnSdpaUid::dk, CudnnSdpaUid::dv}) {
                const CudnnGraphNode* writer = node_writing(graph, gradient);
                ASSERT_NE(writer, nullptr) << gradient;
                // With GQA the per-query-head gradients are summed over each group by a reduction.
                EXPECT_EQ(writer->kind, grouped ? CudnnNodeKind::reduction : CudnnNodeKind::matmul) << gradient;
                if (grouped) {
                    EXPECT_EQ(writer->reduction, CudnnReductionMode::add);
                    EXPECT_EQ(graph.tensor(writer->inputs[0]).dims,
                              (std::vector<std::int64_t>{shape.batch, shape.heads, shape.seq_len, shape.head_dim}));
                }
            }
            const CudnnGraphNode* dq = node_writing(graph, CudnnSdpaUid::dq);
            ASSERT_NE(dq, nullptr);
            if (deterministic) {
                EXPECT_EQ(dq->kind, CudnnNodeKind::matmul);
            } else {
                EXPECT_EQ(dq->pointwise, CudnnPointwiseMode::identity);
                EXPECT_EQ(dq->inputs[0], CudnnSdpaUid::dq_accumulator);
                EXPECT_EQ(node_writing(graph, CudnnSdpaUid::dq_accumulator)->kind, CudnnNodeKind::matmul);
            }
            EXPECT_EQ(count_nodes(graph, CudnnNodeKind::matmul), 5u);
            EXPECT_EQ(count_nodes(graph, CudnnNodeKind::reshape), 3u);
            EXPECT_EQ(count_nodes(graph, CudnnNodeKind::reduction), grouped ? 3u : 1u);

            // P = exp(masked(scale·q·kᵀ − stats)).
            const CudnnGraphNode* softmax_sum = node_writing(graph, CudnnSdpaUid::softmax_sum);
            ASSERT_NE(softmax_sum, nullptr);
            EXPECT_EQ(softmax_sum->inputs[1], CudnnSdpaUid::one);
            const CudnnGraphNode* dv_matmul =
                grouped ? node_writing(graph, node_writing(graph, CudnnSdpaUid::dv)->inputs[0])
                        : node_writing(graph, CudnnSdpaUid::dv);
            ASSERT_EQ(dv_matmul->kind, CudnnNodeKind::matmul);
            EXPECT_EQ(dv_matmul->inputs[1], CudnnSdpaUid::d_o);
            const CudnnGraphNode* transpose = node_writing(graph, dv_matmul->inputs[0]);
            ASSERT_EQ(transpose->kind, CudnnNodeKind::reshape);
            const CudnnGraphNode* exp = node_writing(graph, transpose->inputs[0]);
            ASSERT_EQ(exp->pointwise, CudnnPointwiseMode::exp);
            expect_causal_mask(graph, exp->inputs[0]);
        }
    }
}

TEST(CudnnSdpaGraph, SeedShapesHaveTheirHeadGroups) {
    // baseline: 8 query heads over 4 KV heads, Dh 64; S1: 32 over 8, Dh 32 (T 1024 and 2048, 65,536 tokens).
    const CudnnGraph baseline = cudnn_sdpa_backward_graph(kBaseline);
    EXPECT_EQ(baseline.tensor(CudnnSdpaUid::dk).dims, (std::vector<std::int64_t>{64, 4, 1024, 64}));
    EXPECT_EQ(baseline.tensor(CudnnSdpaUid::q).dims, (std::vector<std::int64_t>{64, 8, 1024, 64}));
    EXPECT_EQ(baseline.tensor(CudnnSdpaUid::k).strides, (std::vector<std::int64_t>{4 * 1024 * 64, 1024 * 64, 1, 64}));
    const CudnnGraph s1 = cudnn_sdpa_forward_graph(kS1);
    EXPECT_EQ(s1.tensor(CudnnSdpaUid::k).dims, (std::vector<std::int64_t>{32, 8, 32, 2048}));
    EXPECT_EQ(s1.tensor(CudnnSdpaUid::k).strides, (std::vector<std::int64_t>{8 * 2048 * 32, 2048 * 32, 1, 32}));
    EXPECT_EQ(s1.tensor(CudnnSdpaUid::stats).dims, (std::vector<std::int64_t>{32, 32, 2048, 1}));
    EXPECT_EQ(s1.tensor(CudnnSdpaUid::o).dims, (std::vector<std::int64_t>{32, 32, 2048, 32}));
}

TEST(CudnnSdpaGraph, InterpretedForwardMatchesTheCpuReference) {
    std::uint64_t seed = 10;
    for (const InterpretedCase& spec : interpreted_cases()) {
        SCOPED_TRACE(spec.name);
        const InterpretedInputs in = interpreted_inputs(spec, seed += 10);
        const CudnnGraph graph = cudnn_sdpa_forward_graph(spec.shape);
        GraphInterpreter run(graph);
        run.bind(CudnnSdpaUid::q, in.q.to_doubles());
        run.bind(CudnnSdpaUid::k, in.k.to_doubles());
        run.bind(CudnnSdpaUid::v, in.v.to_doubles());
        run.bind_scalar(CudnnSdpaUid::scale, in.scale);
        run.run();
        EXPECT_LT(max_relative_difference(run.memory(CudnnSdpaUid::o), in.forward.y), 1e-12);
        EXPECT_LT(max_relative_difference(run.memory(CudnnSdpaUid::stats), in.forward.lse), 1e-12);
    }
}

TEST(CudnnSdpaGraph, InterpretedBackwardMatchesTheCpuReference) {
    std::uint64_t seed = 200;
    for (const InterpretedCase& spec : interpreted_cases()) {
        for (const bool deterministic : {true, false}) {
            SCOPED_TRACE(std::string(spec.name) + (deterministic ? " deterministic" : " atomic"));
            const InterpretedInputs in = interpreted_inputs(spec, seed += 10);
            const AttentionGrads expected = attention_backward(in.q, in.k, in.v, in.forward, in.dy, spec.scale, true);
            const CudnnGraph graph = cudnn_sdpa_backward_graph(spec.shape, deterministic);
            GraphInterpreter run(graph);
            run.bind(CudnnSdpaUid::q, in.q.to_doubles());
            run.bind(CudnnSdpaUid::k, in.k.to_doubles());
            run.bind(CudnnSdpaUid::v, in.v.to_doubles());
            run.bind(CudnnSdpaUid::o, in.forward.y.to_doubles());
            run.bind(CudnnSdpaUid::stats, in.forward.lse.to_doubles());
            run.bind(CudnnSdpaUid::d_o, in.dy.to_doubles());
            run.bind_scalar(CudnnSdpaUid::scale, in.scale);
            run.run();
            EXPECT_LT(max_relative_difference(run.memory(CudnnSdpaUid::dq), expected.dq), 1e-10);
            EXPECT_LT(max_relative_difference(run.memory(CudnnSdpaUid::dk), expected.dk), 1e-10);
            EXPECT_LT(max_relative_difference(run.memory(CudnnSdpaUid::dv), expected.dv), 1e-10);
        }
    }
}

TEST(CudnnSdpaGraph, InterpreterNoticesAWrongMask) {
    // The interpreter must be able to fail: flip the comparison to col >= row and the forward no longer matches.
    const InterpretedCase spec = interpreted_cases()[0];
    const InterpretedInputs in = interpreted_inputs(spec, 7);
    CudnnGraph graph = cudnn_sdpa_forward_graph(spec.shape);
    for (CudnnGraphNode& node : graph.nodes) {
        if (node.pointwise == CudnnPointwiseMode::cmp_ge) std::swap(node.inputs[0], node.inputs[1]);
    }
    GraphInterpreter run(graph);
    run.bind(CudnnSdpaUid::q, in.q.to_doubles());
    run.bind(CudnnSdpaUid::k, in.k.to_doubles());
    run.bind(CudnnSdpaUid::v, in.v.to_doubles());
    run.bind_scalar(CudnnSdpaUid::scale, in.scale);
    run.run();
    EXPECT_GT(max_relative_difference(run.memory(CudnnSdpaUid::o), in.forward.y), 1e-3);
}

TEST(CudnnSdpaGraph, UnsupportedReasons) {
    constexpr std::int64_t v919 = 91900;
    for (const CudnnSdpaShape& shape : graph_shapes()) {
        EXPECT_EQ(cudnn_sdpa_unsupported_reason(shape, v919), "") << cudnn_sdpa_shape_string(shape);
    }
    EXPECT_NE(cudnn_sdpa_unsupported_reason({1, 8, 4, 1024, 60}, v919), "");   // Dh not a multiple of 8
    EXPECT_NE(cudnn_sdpa_unsupported_reason({1, 8, 4, 1024, 136}, v919), "");  // Dh above 128
    EXPECT_EQ(cudnn_sdpa_unsupported_reason({1, 8, 4, 1024, 128}, v919), "");
    EXPECT_NE(cudnn_sdpa_unsupported_reason({1, 6, 4, 1024, 64}, v919), "");  // 6 heads over 4 KV heads
    EXPECT_NE(cudnn_sdpa_unsupported_reason({0, 8, 4, 1024, 64}, v919), "");
    EXPECT_NE(cudnn_sdpa_unsupported_reason({1, 8, 0, 1024, 64}, v919), "");
    EXPECT_NE(cudnn_sdpa_unsupported_reason(kBaseline, 8907), "");   // cuDNN 8
    EXPECT_NE(cudnn_sdpa_unsupported_reason(kBaseline, 91000), "");  // known-bad releases
    EXPECT_NE(cudnn_sdpa_unsupported_reason(kBaseline, 91001), "");
    EXPECT_EQ(cudnn_sdpa_unsupported_reason(kBaseline, 90000), "");
    EXPECT_NE(cudnn_sdpa_unsupported_reason({1, 8, 4, 1000, 64}, 91500), "");  // T % 128 before 9.16
    EXPECT_EQ(cudnn_sdpa_unsupported_reason({1, 8, 4, 1000, 64}, 91600), "");
    EXPECT_NE(cudnn_sdpa_unsupported_reason({2, 4, 2, 1, 64}, v919), "");  // T 1: no fused backward
    EXPECT_EQ(cudnn_sdpa_unsupported_reason({2, 4, 2, 2, 64}, v919), "");
    EXPECT_EQ(cudnn_sdpa_shape_string(kS1), "(B 32, H 32, Hkv 8, T 2048, Dh 32)");
    EXPECT_EQ(cudnn_sdpa_mask_fill_value(90500), std::numeric_limits<float>::lowest());
    EXPECT_EQ(cudnn_sdpa_mask_fill_value(91900), -std::numeric_limits<float>::infinity());
}

#if PGOLF_WITH_CUDNN

// ---- cuDNN on a GPU against the CPU reference ----

struct GpuCase {
    const char* name;
    CudnnSdpaShape shape;
    double scale;
};

// How gtest (and CTest's test list) shows a case: its shape, not the struct's bytes.
void PrintTo(const GpuCase& gpu_case, std::ostream* out) {
    *out << gpu_case.name << " " << cudnn_sdpa_shape_string(gpu_case.shape) << " scale " << gpu_case.scale;
}

// bf16-representable random values, so the CPU reference sees exactly the GPU's inputs.
Tensor random_bf16_values(const Shape& shape, std::uint64_t seed) {
    const Tensor values = random_tensor(shape, seed);
    return values.to(DType::bf16).to(DType::f64);
}

Tensor to_gpu_bf16(const Tensor& values) { return values.to(DType::bf16).to_device(Device::cuda); }

double max_relative_difference_gpu(const Tensor& gpu, const Tensor& expected) {
    EXPECT_EQ(gpu.shape(), expected.shape());
    return max_relative_difference(gpu.to_device(Device::cpu).to_doubles(), expected);
}

class CudnnAttentionGpu : public ::testing::TestWithParam<GpuCase> {
protected:
    void SetUp() override {
        std::string reason;
        if (!cuda_cudnn_attention_available(&reason)) GTEST_SKIP() << reason;
    }
};

TEST_P(CudnnAttentionGpu, ForwardAndBackwardMatchTheCpu) {
    const GpuCase& spec = GetParam();
    const CudnnSdpaShape& s = spec.shape;
    ASSERT_EQ(cuda_cudnn_attention_unsupported_reason(s.batch, s.heads, s.kv_heads, s.seq_len, s.head_dim), "");
    const Tensor q = random_bf16_values({s.batch, s.heads, s.seq_len, s.head_dim}, 1);
    const Tensor k = random_bf16_values({s.batch, s.kv_heads, s.seq_len, s.head_dim}, 2);
    const Tensor v = random_bf16_values({s.batch, s.kv_heads, s.seq_len, s.head_dim}, 3);
    const Tensor dy = random_bf16_values({s.batch, s.heads, s.seq_len, s.head_dim}, 4);
    const AttentionResult expected = attention_forward(q, k, v, spec.scale, true);
    const AttentionGrads expected_grads = attention_backward(q, k, v, expected, dy, spec.scale, true);

    const Tensor q_gpu = to_gpu_bf16(q), k_gpu = to_gpu_bf16(k), v_gpu = to_gpu_bf16(v), dy_gpu = to_gpu_bf16(dy);
    const AttentionResult actual = cuda_cudnn_attention_forward(q_gpu, k_gpu, v_gpu, spec.scale);
    EXPECT_EQ(actual.y.dtype(), DType::bf16);
    EXPECT_EQ(actual.lse.dtype(), DType::f32);
    EXPECT_LE(max_relative_difference_gpu(actual.y, expected.y), 2e-2);
    EXPECT_LE(max_relative_difference_gpu(actual.lse, expected.lse), 2e-2);

    const AttentionGrads grads = cuda_cudnn_attention_backward(q_gpu, k_gpu, v_gpu, actual, dy_gpu, spec.scale);
    EXPECT_LE(max_relative_difference_gpu(grads.dq, expected_grads.dq), 2e-2);
    EXPECT_LE(max_relative_difference_gpu(grads.dk, expected_grads.dk), 2e-2);
    EXPECT_LE(max_relative_difference_gpu(grads.dv, expected_grads.dv), 2e-2);

    // The plan cache serves the second call; the deterministic backward repeats bit for bit.
    const AttentionGrads again = cuda_cudnn_attention_backward(q_gpu, k_gpu, v_gpu, actual, dy_gpu, spec.scale);
    const Tensor first = grads.dq.to_device(Device::cpu), second = again.dq.to_device(Device::cpu);
    EXPECT_EQ(first.to_doubles(), second.to_doubles()) << "dq differs between two identical backward calls";
    EXPECT_EQ(grads.dk.to_device(Device::cpu).to_doubles(), again.dk.to_device(Device::cpu).to_doubles());
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudnnAttentionGpu,
                         ::testing::Values(GpuCase{"small_gqa", {2, 4, 2, 128, 64}, 0.0},
                                           GpuCase{"small_mha_scale", {1, 2, 2, 256, 32}, 0.3},
                                           GpuCase{"baseline_b1", {1, 8, 4, 1024, 64}, 0.0},
                                           GpuCase{"s1_b1", {1, 32, 8, 2048, 32}, 0.0}),
                         [](const ::testing::TestParamInfo<GpuCase>& info) { return std::string(info.param.name); });

TEST(CudnnAttentionGpuChecks, RefusesWhatItCannotTake) {
    std::string reason;
    if (!cuda_cudnn_attention_available(&reason)) GTEST_SKIP() << reason;
    const Tensor q = Tensor::zeros({1, 2, 128, 12}, DType::bf16, Device::cuda);  // Dh 12
    const Tensor k = Tensor::zeros({1, 1, 128, 12}, DType::bf16, Device::cuda);
    EXPECT_THROW(cuda_cudnn_attention_forward(q, k, k, 0.0), Error);
    const Tensor q32 = Tensor::zeros({1, 2, 128, 16}, DType::f32, Device::cuda);  // f32: bf16 only
    EXPECT_THROW(cuda_cudnn_attention_forward(q32, q32, q32, 0.0), Error);
}

// Cheap pseudo-random bf16 values in [-2, 2), filled on the CPU and uploaded: for the full-scale shapes, where no CPU
// reference is computed, so only speed matters (a normal draw of 168 million values would take far longer).
Tensor pseudo_random_bf16_gpu(const Shape& shape, std::uint64_t seed) {
    Tensor host = Tensor::empty(shape, DType::bf16);
    std::uint16_t* bits = host.data<std::uint16_t>();
    std::uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
    for (std::int64_t i = 0; i < host.numel(); ++i) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        const float unit = static_cast<float>(state >> 40) / static_cast<float>(1ull << 24);
        bits[i] = bf16_from_float(4.0f * unit - 2.0f);
    }
    return host.to_device(Device::cuda);
}

bool same_bits(const Tensor& a, const Tensor& b) {
    const Tensor x = a.to_device(Device::cpu), y = b.to_device(Device::cpu);
    return x.shape() == y.shape() && x.dtype() == y.dtype() && std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()) == 0;
}

// The seeds' full micro-batches (65,536 tokens), too large for the CPU reference (the S1 backward's dP workspace alone
// is B·H·T²·2 bytes, 8 GiB). The last batch element must agree with the same element run alone, which a batch-offset
// or 32-bit-index fault in the engine would break where the small cases above cannot show it; and the backward must
// repeat bit for bit at the full batch (cuDNN's backward has been seen to lose determinism only at large batch sizes).
class CudnnAttentionGpuFullScale : public ::testing::TestWithParam<GpuCase> {
protected:
    void SetUp() override {
        std::string reason;
        if (!cuda_cudnn_attention_available(&reason)) GTEST_SKIP() << reason;
    }
};

TEST_P(CudnnAttentionGpuFullScale, LastBatchElementAgreesAloneAndBackwardRepeats) {
    const GpuCase& spec = GetParam();
    const CudnnSdpaShape& s = spec.shape;
    ASSERT_EQ(cuda_cudnn_attention_unsupported_reason(s.batch, s.heads, s.kv_heads, s.seq_len, s.head_dim), "");
    const Tensor q = pseudo_random_bf16_gpu({s.batch, s.heads, s.seq_len, s.head_dim}, 11);
    const Tensor k = pseudo_random_bf16_gpu({s.batch, s.kv_heads, s.seq_len, s.head_dim}, 12);
    const Tensor v = pseudo_random_bf16_gpu({s.batch, s.kv_heads, s.seq_len, s.head_dim}, 13);
    const Tensor dy = pseudo_random_bf16_gpu({s.batch, s.heads, s.seq_len, s.head_dim}, 14);
    const AttentionResult full = cuda_cudnn_attention_forward(q, k, v, spec.scale);
    const AttentionGrads grads = cuda_cudnn_attention_backward(q, k, v, full, dy, spec.scale);
    const AttentionGrads again = cuda_cudnn_attention_backward(q, k, v, full, dy, spec.scale);
    EXPECT_TRUE(same_bits(grads.dq, again.dq)) << "dq differs between two identical backward calls";
    EXPECT_TRUE(same_bits(grads.dk, again.dk)) << "dk differs between two identical backward calls";
    EXPECT_TRUE(same_bits(grads.dv, again.dv)) << "dv differs between two identical backward calls";

    const std::int64_t last = s.batch - 1;
    const auto last_of = [&](const Tensor& tensor) { return tensor.rows(last, s.batch); };
    const AttentionResult alone = cuda_cudnn_attention_forward(last_of(q), last_of(k), last_of(v), spec.scale);
    const AttentionGrads alone_grads =
        cuda_cudnn_attention_backward(last_of(q), last_of(k), last_of(v), alone, last_of(dy), spec.scale);
    const auto on_cpu = [](const Tensor& tensor) { return tensor.to_device(Device::cpu); };
    EXPECT_LE(max_relative_difference_gpu(alone.y, on_cpu(last_of(full.y))), 2e-2);
    EXPECT_LE(max_relative_difference_gpu(alone.lse, on_cpu(last_of(full.lse))), 2e-2);
    EXPECT_LE(max_relative_difference_gpu(alone_grads.dq, on_cpu(last_of(grads.dq))), 2e-2);
    EXPECT_LE(max_relative_difference_gpu(alone_grads.dk, on_cpu(last_of(grads.dk))), 2e-2);
    EXPECT_LE(max_relative_difference_gpu(alone_grads.dv, on_cpu(last_of(grads.dv))), 2e-2);
}

INSTANTIATE_TEST_SUITE_P(SeedShapes, CudnnAttentionGpuFullScale,
                         ::testing::Values(GpuCase{"baseline", {64, 8, 4, 1024, 64}, 0.0},
                                           GpuCase{"s1", {32, 32, 8, 2048, 32}, 0.0}),
                         [](const ::testing::TestParamInfo<GpuCase>& info) { return std::string(info.param.name); });

#endif  // PGOLF_WITH_CUDNN

}  // namespace
}  // namespace pgolf
