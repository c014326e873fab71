// cuDNN fused SDPA attention (see attention_cudnn.h): the graph descriptions of attention_cudnn_graph.h become backend
// descriptors, and an execution plan per (direction, shape), built on first use from the heuristic's engine configs,
// is cached with one cuDNN handle per device and thread.
#if PGOLF_WITH_CUDNN
#include <cudnn_graph.h>
#endif

#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/cuda/attention_cudnn.h"
#include "core/cuda/attention_cudnn_graph.h"
#include "core/cuda/device_math.cuh"
#include "core/cuda/op_checks.h"

namespace pgolf {

#if PGOLF_WITH_CUDNN

namespace {

constexpr const char* kOp = "attention (cuDNN)";

// cuDNN 9.19's headers mark the handle attributes of the operation graph and the execution plan deprecated, but the
// 9.x releases before it need them; named by value so the deprecation warning (an error in this build) stays quiet.
constexpr auto kOperationGraphHandle = static_cast<cudnnBackendAttributeName_t>(800);
constexpr auto kExecutionPlanHandle = static_cast<cudnnBackendAttributeName_t>(400);

// One backend descriptor, destroyed with the object.
class BackendDescriptor {
public:
    explicit BackendDescriptor(cudnnBackendDescriptorType_t type) {
        PGOLF_CUDNN_CHECK(cudnnBackendCreateDescriptor(type, &descriptor_));
    }
    ~BackendDescriptor() {
        if (descriptor_ != nullptr) cudnnBackendDestroyDescriptor(descriptor_);
    }
    BackendDescriptor(BackendDescriptor&& other) noexcept : descriptor_(std::exchange(other.descriptor_, nullptr)) {}
    BackendDescriptor& operator=(BackendDescriptor&&) = delete;
    BackendDescriptor(const BackendDescriptor&) = delete;
    BackendDescriptor& operator=(const BackendDescriptor&) = delete;
    cudnnBackendDescriptor_t get() const { return descriptor_; }

private:
    cudnnBackendDescriptor_t descriptor_ = nullptr;
};

void set_attribute(cudnnBackendDescriptor_t descriptor, cudnnBackendAttributeName_t name,
                   cudnnBackendAttributeType_t type, std::int64_t count, const void* values) {
    PGOLF_CUDNN_CHECK(cudnnBackendSetAttribute(descriptor, name, type, count, values));
}

void set_descriptor(cudnnBackendDescriptor_t descriptor, cudnnBackendAttributeName_t name,
                    cudnnBackendDescriptor_t value) {
    set_attribute(descriptor, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &value);
}

std::string cudnn_last_error() {
    std::array<char, 512> message{};
    cudnnGetLastErrorString(message.data(), message.size());
    return message.data();
}

// cuDNN's status, plus its last error message when it left one.
std::string cudnn_status_text(cudnnStatus_t status) {
    std::string text = cudnnGetErrorString(status);
    const std::string detail = cudnn_last_error();
    if (!detail.empty()) text += " (" + detail + ")";
    return text;
}

cudnnDataType_t cudnn_data_type(CudnnTensorType type) {
    switch (type) {
        case CudnnTensorType::f32:
            return CUDNN_DATA_FLOAT;
        case CudnnTensorType::bf16:
            return CUDNN_DATA_BFLOAT16;
        case CudnnTensorType::i32:
            return CUDNN_DATA_INT32;
        case CudnnTensorType::boolean:
            return CUDNN_DATA_BOOLEAN;
    }
    throw Error("attention (cuDNN): unknown tensor type");
}

cudnnPointwiseMode_t cudnn_pointwise_mode(CudnnPointwiseMode mode) {
    switch (mode) {
        case CudnnPointwiseMode::add:
            return CUDNN_POINTWISE_ADD;
        case CudnnPointwiseMode::sub:
            return CUDNN_POINTWISE_SUB;
        case CudnnPointwiseMode::mul:
            return CUDNN_POINTWISE_MUL;
        case CudnnPointwiseMode::div:
            return CUDNN_POINTWISE_DIV;
        case CudnnPointwiseMode::exp:
            return CUDNN_POINTWISE_EXP;
        case CudnnPointwiseMode::log:
            return CUDNN_POINTWISE_LOG;
        case CudnnPointwiseMode::identity:
            return CUDNN_POINTWISE_IDENTITY;
        case CudnnPointwiseMode::gen_index:
            return CUDNN_POINTWISE_GEN_INDEX;
        case CudnnPointwiseMode::cmp_ge:
            return CUDNN_POINTWISE_CMP_GE;
        case CudnnPointwiseMode::binary_select:
            return CUDNN_POINTWISE_BINARY_SELECT;
        case CudnnPointwiseMode::none:
            break;
    }
    throw Error("attention (cuDNN): a pointwise node has no mode");
}

// Everything that selects a plan. The scale is not in it: it is a by-value scalar handed over at execute time, so one
// plan serves every scale.
struct PlanKey {
    bool backward = false;
    bool deterministic = false;
    std::array<std::int64_t, 5> dims{};
    bool operator<(const PlanKey& other) const {
        return std::tie(backward, deterministic, dims) < std::tie(other.backward, other.deterministic, other.dims);
    }
};

struct SdpaPlan {
    CudnnGraph graph;
    // Every descriptor the plan was built from, kept alive with it.
    std::vector<BackendDescriptor> descriptors;
    cudnnBackendDescriptor_t plan = nullptr;
    std::int64_t workspace_bytes = 0;
};

// Per device and thread (a handle must not be used by two threads at once). Deliberately never destroyed (held through
// a leaked pointer): static destructors may run after the CUDA runtime and cuDNN are gone.
struct CudnnContext {
    cudnnHandle_t handle = nullptr;
    std::map<PlanKey, std::unique_ptr<SdpaPlan>> plans;
    std::map<PlanKey, std::string> failures;  // graphs no engine took, with why: not tried again
};

CudnnContext& cudnn_context() {
    int device = 0;
    PGOLF_CUDA_CHECK(cudaGetDevice(&device));
    thread_local std::map<int, CudnnContext*> contexts;
    CudnnContext*& context = contexts[device];
    if (context == nullptr) {
        auto created = std::make_unique<CudnnContext>();
        PGOLF_CUDNN_CHECK(cudnnCreate(&created->handle));
        context = created.release();
    }
    return *context;
}

BackendDescriptor make_tensor(const CudnnGraphTensor& tensor) {
    BackendDescriptor descriptor(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    const cudnnDataType_t type = cudnn_data_type(tensor.type);
    const std::int64_t alignment = 16;
    const bool is_virtual = tensor.is_virtual;
    const bool by_value = tensor.by_value;
    const auto rank = static_cast<std::int64_t>(tensor.dims.size());
    set_attribute(descriptor.get(), CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type);
    set_attribute(descriptor.get(), CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, rank, tensor.dims.data());
    set_attribute(descriptor.get(), CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, rank, tensor.strides.data());
    set_attribute(descriptor.get(), CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &tensor.uid);
    set_attribute(descriptor.get(), CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment);
    set_attribute(descriptor.get(), CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual);
    if (by_value) set_attribute(descriptor.get(), CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value);
    PGOLF_CUDNN_CHECK(cudnnBackendFinalize(descriptor.get()));
    return descriptor;
}

// The node's operation descriptor; its inner descriptor (matmul, pointwise or reduction settings) goes to `keep`.
BackendDescriptor make_operation(const CudnnGraphNode& node,
                                 const std::map<std::int64_t, cudnnBackendDescriptor_t>& tensors,
                                 std::vector<BackendDescriptor>& keep) {
    const auto tensor = [&](std::int64_t uid) { return tensors.at(uid); };
    const cudnnDataType_t compute = cudnn_data_type(node.compute);
    switch (node.kind) {
        case CudnnNodeKind::matmul: {
            BackendDescriptor settings(CUDNN_BACKEND_MATMUL_DESCRIPTOR);
            set_attribute(settings.get(), CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
            PGOLF_CUDNN_CHECK(cudnnBackendFinalize(settings.get()));
            BackendDescriptor operation(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
            set_descriptor(operation.get(), CUDNN_ATTR_OPERATION_MATMUL_ADESC, tensor(node.inputs.at(0)));
            set_descriptor(operation.get(), CUDNN_ATTR_OPERATION_MATMUL_BDESC, tensor(node.inputs.at(1)));
            set_descriptor(operation.get(), CUDNN_ATTR_OPERATION_MATMUL_CDESC, tensor(node.output));
            set_descriptor(operation.get(), CUDNN_ATTR_OPERATION_MATMUL_DESC, settings.get());
            PGOLF_CUDNN_CHECK(cudnnBackendFinalize(operation.get()));
            keep.push_back(std::move(settings));
            return operation;
        }
        case CudnnNodeKind::pointwise: {
            BackendDescriptor settings(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
            const cudnnPointwiseMode_t mode = cudnn_pointwise_mode(node.pointwise);
            set_attribute(settings.get(), CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
            set_attribute(settings.get(), CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &compute);
            if (node.pointwise == CudnnPointwiseMode::gen_index) {
                set_attribute(settings.get(), CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &node.axis);
            }
            PGOLF_CUDNN_CHECK(cudnnBackendFinalize(settings.get()));
            BackendDescriptor operation(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
            set_descriptor(operation.get(), CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, settings.get());
            set_descriptor(operation.get(), CUDNN_ATTR_OPERATION_POINTWISE_XDESC, tensor(node.inputs.at(0)));
            if (node.inputs.size() > 1) {
                set_descriptor(operation.get(), CUDNN_ATTR_OPERATION_POINTWISE_BDESC, tensor(node.inputs.at(1)));
            }
            if (node.inputs.size() > 2) {
                set_descriptor(operation.get(), CUDNN_ATTR_OPERATION_POINTWISE_TDESC, tensor(node.inputs.at(2)));
            }
            set_descriptor(operation.get(), CUDNN_ATTR_OPERATION_POINTWISE_YDESC, tensor(node.output));
            PGOLF_CUDNN_CHECK(cudnnBackendFinalize(operation.get()));
            keep.push_back(std::move(settings));
            return operation;
        }
        case CudnnNodeKind::reduction: {
            BackendDescriptor settings(CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
            const cudnnReduceTensorOp_t reduction =
                node.reduction == CudnnReductionMode::max ? CUDNN_REDUCE_TENSOR_MAX : CUDNN_REDUCE_TENSOR_ADD;
            set_attribute(settings.get(), CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1,
                          &reduction);
            set_attribute(settings.get(), CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
            PGOLF_CUDNN_CHECK(cudnnBackendFinalize(settings.get()));
            BackendDescriptor operation(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
            set_descriptor(operation.get(), CUDNN_ATTR_OPERATION_REDUCTION_XDESC, tensor(node.inputs.at(0)));
            set_descriptor(operation.get(), CUDNN_ATTR_OPERATION_REDUCTION_YDESC, tensor(node.output));
            set_descriptor(operation.get(), CUDNN_ATTR_OPERATION_REDUCTION_DESC, settings.get());
            PGOLF_CUDNN_CHECK(cudnnBackendFinalize(operation.get()));
            keep.push_back(std::move(settings));
            return operation;
        }
        case CudnnNodeKind::reshape: {
            BackendDescriptor operation(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR);
            set_descriptor(operation.get(), CUDNN_ATTR_OPERATION_RESHAPE_XDESC, tensor(node.inputs.at(0)));
            set_descriptor(operation.get(), CUDNN_ATTR_OPERATION_RESHAPE_YDESC, tensor(node.output));
            PGOLF_CUDNN_CHECK(cudnnBackendFinalize(operation.get()));
            return operation;
        }
    }
    throw Error("attention (cuDNN): unknown node kind in " + node.name);
}

// Whether an engine config's engine carries cuDNN's non-determinism note; false when cuDNN does not say.
bool engine_config_is_nondeterministic(cudnnBackendDescriptor_t config) {
    BackendDescriptor engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
    cudnnBackendDescriptor_t engine_handle = engine.get();
    std::int64_t count = 0;
    if (cudnnBackendGetAttribute(config, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &count,
                                 &engine_handle) != CUDNN_STATUS_SUCCESS) {
        return false;
    }
    std::array<cudnnBackendNumericalNote_t, CUDNN_NUMERICAL_NOTE_TYPE_COUNT> notes{};
    std::int64_t note_count = 0;
    if (cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                 static_cast<std::int64_t>(notes.size()), &note_count,
                                 notes.data()) != CUDNN_STATUS_SUCCESS) {
        return false;
    }
    for (std::int64_t i = 0; i < note_count && i < static_cast<std::int64_t>(notes.size()); ++i) {
        if (notes[static_cast<std::size_t>(i)] == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC) return true;
    }
    return false;
}

// Builds the graph's descriptors and the first execution plan that finalizes: heuristic mode A's engine configs in
// order (then mode FALLBACK's), deterministic ones first when asked. Null, with *failure saying why, when no engine
// takes the graph.
std::unique_ptr<SdpaPlan> build_plan(cudnnHandle_t handle, CudnnGraph graph, bool prefer_deterministic,
                                     std::string* failure) {
    auto plan = std::make_unique<SdpaPlan>();
    plan->graph = std::move(graph);
    std::vector<BackendDescriptor>& keep = plan->descriptors;
    std::map<std::int64_t, cudnnBackendDescriptor_t> tensors;
    for (const CudnnGraphTensor& tensor : plan->graph.tensors) {
        keep.push_back(make_tensor(tensor));
        tensors[tensor.uid] = keep.back().get();
    }
    std::vector<cudnnBackendDescriptor_t> operations;
    for (const CudnnGraphNode& node : plan->graph.nodes) {
        keep.push_back(make_operation(node, tensors, keep));
        operations.push_back(keep.back().get());
    }

    BackendDescriptor operation_graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    set_attribute(operation_graph.get(), kOperationGraphHandle, CUDNN_TYPE_HANDLE, 1, &handle);
    set_attribute(operation_graph.get(), CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                  static_cast<std::int64_t>(operations.size()), operations.data());
    const cudnnStatus_t graph_status = cudnnBackendFinalize(operation_graph.get());
    if (graph_status != CUDNN_STATUS_SUCCESS) {
        *failure = "the operation graph did not finalize: " + cudnn_status_text(graph_status);
        return nullptr;
    }
    const cudnnBackendDescriptor_t operation_graph_handle = operation_graph.get();
    keep.push_back(std::move(operation_graph));

    *failure = "the heuristics offered no engine config";
    for (const cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
        BackendDescriptor heuristics(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
        set_descriptor(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, operation_graph_handle);
        set_attribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
        const cudnnStatus_t heuristics_status = cudnnBackendFinalize(heuristics.get());
        if (heuristics_status != CUDNN_STATUS_SUCCESS) {
            *failure = "the heuristics did not finalize: " + cudnn_status_text(heuristics_status);
            continue;
        }
        std::int64_t count = 0;
        PGOLF_CUDNN_CHECK(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                                   CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr));
        if (count <= 0) continue;
        std::vector<BackendDescriptor> configs;
        std::vector<cudnnBackendDescriptor_t> config_handles;
        for (std::int64_t i = 0; i < count; ++i) {
            configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
            config_handles.push_back(configs.back().get());
        }
        PGOLF_CUDNN_CHECK(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                                   CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &count,
                                                   config_handles.data()));
        // First pass: engines cuDNN does not call non-deterministic (all of them unless asked); second: the rest.
        for (int pass = 0; pass < 2; ++pass) {
            for (std::size_t i = 0; i < static_cast<std::size_t>(count); ++i) {
                const bool nondeterministic =
                    prefer_deterministic && engine_config_is_nondeterministic(configs[i].get());
                if (nondeterministic != (pass == 1)) continue;
                BackendDescriptor execution_plan(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
                set_attribute(execution_plan.get(), kExecutionPlanHandle, CUDNN_TYPE_HANDLE, 1, &handle);
                set_descriptor(execution_plan.get(), CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, configs[i].get());
                const cudnnStatus_t plan_status = cudnnBackendFinalize(execution_plan.get());
                if (plan_status != CUDNN_STATUS_SUCCESS) {
                    *failure = "no engine config finalized, the last: " + cudnn_status_text(plan_status);
                    continue;
                }
                std::int64_t returned = 0;
                PGOLF_CUDNN_CHECK(cudnnBackendGetAttribute(execution_plan.get(),
                                                           CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64,
                                                           1, &returned, &plan->workspace_bytes));
                plan->plan = execution_plan.get();
                keep.push_back(std::move(configs[i]));
                keep.push_back(std::move(heuristics));
                keep.push_back(std::move(execution_plan));
                return plan;
            }
        }
    }
    return nullptr;
}

// The cached plan for this key, built on first use from the graph make_graph() returns; null (with *failure) when no
// engine takes it, which is remembered too, so a fallback costs the failed attempt only once.
SdpaPlan* find_plan(CudnnContext& context, const PlanKey& key, const std::function<CudnnGraph()>& make_graph,
                    std::string* failure) {
    const auto found = context.plans.find(key);
    if (found != context.plans.end()) return found->second.get();
    const auto failed = context.failures.find(key);
    if (failed != context.failures.end()) {
        *failure = failed->second;
        return nullptr;
    }
    std::unique_ptr<SdpaPlan> plan;
    try {
        plan = build_plan(context.handle, make_graph(), key.deterministic, failure);
    } catch (const Error& error) {
        // A descriptor cuDNN refused while the graph was being described: this graph is not for this cuDNN.
        *failure = error.what();
    }
    if (plan == nullptr) {
        context.failures[key] = *failure;
        return nullptr;
    }
    return context.plans.emplace(key, std::move(plan)).first->second.get();
}

// Runs the plan on the current stream: every memory tensor of the graph from `memory`, by-value scalars from the graph
// (the scale and the mask value from the call), and a fresh workspace.
void execute_plan(CudnnContext& context, const SdpaPlan& plan, const std::map<std::int64_t, void*>& memory,
                  float scale) {
    const auto version = static_cast<std::int64_t>(cudnnGetVersion());
    std::vector<std::int64_t> uids;
    std::vector<void*> pointers;
    std::vector<float> scalars(plan.graph.tensors.size());  // sized once: pointers into it stay valid
    for (std::size_t i = 0; i < plan.graph.tensors.size(); ++i) {
        const CudnnGraphTensor& tensor = plan.graph.tensors[i];
        if (tensor.is_virtual) continue;
        uids.push_back(tensor.uid);
        if (tensor.by_value) {
            scalars[i] = tensor.value;
            if (tensor.uid == CudnnSdpaUid::scale) scalars[i] = scale;
            if (tensor.uid == CudnnSdpaUid::negative_infinity) scalars[i] = cudnn_sdpa_mask_fill_value(version);
            pointers.push_back(&scalars[i]);
        } else {
            const auto found = memory.find(tensor.uid);
            if (found == memory.end()) throw Error("attention (cuDNN): no memory bound to " + tensor.name);
            pointers.push_back(found->second);
        }
    }
    Tensor workspace;
    void* workspace_pointer = nullptr;
    if (plan.workspace_bytes > 0) {
        workspace = Tensor::empty({plan.workspace_bytes}, DType::u8, Device::cuda);
        workspace_pointer = workspace.raw_data();
    }
    BackendDescriptor variant_pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    set_attribute(variant_pack.get(), CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64,
                  static_cast<std::int64_t>(uids.size()), uids.data());
    set_attribute(variant_pack.get(), CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR,
                  static_cast<std::int64_t>(pointers.size()), pointers.data());
    set_attribute(variant_pack.get(), CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace_pointer);
    PGOLF_CUDNN_CHECK(cudnnBackendFinalize(variant_pack.get()));
    PGOLF_CUDNN_CHECK(cudnnSetStream(context.handle, cuda_stream()));
    PGOLF_CUDNN_CHECK(cudnnBackendExecute(context.handle, plan.plan, variant_pack.get()));
    // The workspace goes back to the caching allocator now; it is reused only in this stream's order, after the
    // kernels above.
}

void check_aligned(const Tensor& tensor, const char* name) {
    if (reinterpret_cast<std::uintptr_t>(tensor.raw_data()) % 16 != 0) {
        throw Error(std::string(kOp) + ": " + name + " is not 16-byte aligned (a view at an odd offset)");
    }
}

// Checks q, k, v and returns their shape; throws unless cuDNN takes it.
CudnnSdpaShape check_inputs(const Tensor& q, const Tensor& k, const Tensor& v) {
    cuda_check_input(q, DType::bf16, kOp, "q");
    cuda_check_input(k, DType::bf16, kOp, "k");
    cuda_check_input(v, DType::bf16, kOp, "v");
    if (q.dim() != 4) throw Error(std::string(kOp) + ": q must be (B, H, T, Dh), got " + shape_string(q.shape()));
    if (k.dim() != 4) throw Error(std::string(kOp) + ": k must be (B, Hkv, T, Dh), got " + shape_string(k.shape()));
    CudnnSdpaShape shape;
    shape.batch = q.size(0);
    shape.heads = q.size(1);
    shape.seq_len = q.size(2);
    shape.head_dim = q.size(3);
    shape.kv_heads = k.size(1);
    const Shape kv_shape = {shape.batch, shape.kv_heads, shape.seq_len, shape.head_dim};
    tensor_check_shape(k, kv_shape, kOp, "k");
    tensor_check_shape(v, kv_shape, kOp, "v");
    const std::string reason = cudnn_sdpa_unsupported_reason(shape, static_cast<std::int64_t>(cudnnGetVersion()));
    if (!reason.empty()) {
        throw Error(std::string(kOp) + ": cannot take " + cudnn_sdpa_shape_string(shape) + ": " + reason);
    }
    check_aligned(q, "q");
    check_aligned(k, "k");
    check_aligned(v, "v");
    return shape;
}

float resolved_scale(double scale, std::int64_t head_dim) {
    return static_cast<float>(scale == 0.0 ? 1.0 / std::sqrt(static_cast<double>(head_dim)) : scale);
}

PlanKey plan_key(bool backward, bool deterministic, const CudnnSdpaShape& shape) {
    PlanKey key;
    key.backward = backward;
    key.deterministic = deterministic;
    key.dims = {shape.batch, shape.heads, shape.kv_heads, shape.seq_len, shape.head_dim};
    return key;
}

}  // namespace

std::string cuda_cudnn_version_text() {
    // cudnnGetVersion() is major·10000 + minor·100 + patch from cuDNN 9 on (CUDNN_VERSION likewise).
    const auto text = [](std::size_t version) {
        return std::to_string(version / 10000) + "." + std::to_string(version / 100 % 100) + "." +
               std::to_string(version % 100);
    };
    return text(cudnnGetVersion()) + " (built against " + text(CUDNN_VERSION) + ")";
}

bool cuda_cudnn_attention_available(std::string* reason) {
    const auto refuse = [&](const std::string& why) {
        if (reason != nullptr) *reason = why;
        return false;
    };
    int devices = 0;
    const cudaError_t device_status = cudaGetDeviceCount(&devices);
    if (device_status != cudaSuccess || devices == 0) {
        cudaGetLastError();  // clear the error so the next CUDA call does not report it
        return refuse(std::string("no CUDA device: ") +
                      (device_status != cudaSuccess ? cudaGetErrorString(device_status) : "none found"));
    }
    const auto version = static_cast<std::int64_t>(cudnnGetVersion());
    if (version < 90000) {
        return refuse("the loaded cuDNN is " + std::to_string(version) + ", fused attention needs 9.0 or newer");
    }
    int device = 0;
    int major = 0;
    PGOLF_CUDA_CHECK(cudaGetDevice(&device));
    PGOLF_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    if (major < 8) return refuse("cuDNN fused attention needs compute capability 8.0 or newer");
    try {
        cudnn_context();
    } catch (const Error& error) {
        return refuse(std::string("cuDNN did not start: ") + error.what());
    }
    if (reason != nullptr) reason->clear();
    return true;
}

std::string cuda_cudnn_attention_unsupported_reason(std::int64_t batch, std::int64_t heads, std::int64_t kv_heads,
                                                    std::int64_t seq_len, std::int64_t head_dim) {
    const CudnnSdpaShape shape{batch, heads, kv_heads, seq_len, head_dim};
    return cudnn_sdpa_unsupported_reason(shape, static_cast<std::int64_t>(cudnnGetVersion()));
}

AttentionResult cuda_cudnn_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
    const CudnnSdpaShape shape = check_inputs(q, k, v);
    CudnnContext& context = cudnn_context();
    std::string failure;
    const SdpaPlan* plan = find_plan(
        context, plan_key(false, false, shape), [&] { return cudnn_sdpa_forward_graph(shape); }, &failure);
    if (plan == nullptr) {
        throw Error(std::string(kOp) + ": no engine supports the forward of " + cudnn_sdpa_shape_string(shape) + ": " +
                    failure);
    }
    AttentionResult result;
    result.y = Tensor::empty(q.shape(), DType::bf16, Device::cuda);
    result.lse = Tensor::empty({shape.batch, shape.heads, shape.seq_len}, DType::f32, Device::cuda);
    // lse is (B, H, T) here and (B, H, T, 1) to cuDNN: the same memory.
    const std::map<std::int64_t, void*> memory = {
        {CudnnSdpaUid::q, const_cast<void*>(q.raw_data())}, {CudnnSdpaUid::k, const_cast<void*>(k.raw_data())},
        {CudnnSdpaUid::v, const_cast<void*>(v.raw_data())}, {CudnnSdpaUid::o, result.y.raw_data()},
        {CudnnSdpaUid::stats, result.lse.raw_data()},
    };
    execute_plan(context, *plan, memory, resolved_scale(scale, shape.head_dim));
    return result;
}

AttentionGrads cuda_cudnn_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const AttentionResult& forward, const Tensor& dy, double scale) {
    const CudnnSdpaShape shape = check_inputs(q, k, v);
    cuda_check_input(forward.y, DType::bf16, kOp, "forward.y");
    cuda_check_input(forward.lse, DType::f32, kOp, "forward.lse");
    cuda_check_input(dy, DType::bf16, kOp, "dy");
    tensor_check_shape(forward.y, q.shape(), kOp, "forward.y");
    tensor_check_shape(forward.lse, {shape.batch, shape.heads, shape.seq_len}, kOp, "forward.lse");
    tensor_check_shape(dy, q.shape(), kOp, "dy");
    check_aligned(forward.y, "forward.y");
    check_aligned(forward.lse, "forward.lse");
    check_aligned(dy, "dy");

    CudnnContext& context = cudnn_context();
    // Prefer the deterministic graph; the atomic-accumulation one only when no engine takes it.
    std::string failure;
    bool deterministic = true;
    const SdpaPlan* plan = find_plan(
        context, plan_key(true, true, shape), [&] { return cudnn_sdpa_backward_graph(shape, true); }, &failure);
    if (plan == nullptr) {
        deterministic = false;
        std::string fallback_failure;
        plan = find_plan(
            context, plan_key(true, false, shape), [&] { return cudnn_sdpa_backward_graph(shape, false); },
            &fallback_failure);
        if (plan == nullptr) {
            throw Error(std::string(kOp) + ": no engine supports the backward of " + cudnn_sdpa_shape_string(shape) +
                        ": " + failure + "; without determinism: " + fallback_failure);
        }
    }
    AttentionGrads grads;
    grads.dq = Tensor::empty(q.shape(), DType::bf16, Device::cuda);
    grads.dk = Tensor::empty(k.shape(), DType::bf16, Device::cuda);
    grads.dv = Tensor::empty(v.shape(), DType::bf16, Device::cuda);
    Tensor softmax_sum = Tensor::empty({shape.batch, shape.heads, shape.seq_len}, DType::f32, Device::cuda);
    std::map<std::int64_t, void*> memory = {
        {CudnnSdpaUid::q, const_cast<void*>(q.raw_data())},
        {CudnnSdpaUid::k, const_cast<void*>(k.raw_data())},
        {CudnnSdpaUid::v, const_cast<void*>(v.raw_data())},
        {CudnnSdpaUid::o, const_cast<void*>(forward.y.raw_data())},
        {CudnnSdpaUid::stats, const_cast<void*>(forward.lse.raw_data())},
        {CudnnSdpaUid::d_o, const_cast<void*>(dy.raw_data())},
        {CudnnSdpaUid::dq, grads.dq.raw_data()},
        {CudnnSdpaUid::dk, grads.dk.raw_data()},
        {CudnnSdpaUid::dv, grads.dv.raw_data()},
        {CudnnSdpaUid::softmax_sum, softmax_sum.raw_data()},
    };
    Tensor dq_accumulator;
    if (!deterministic) {
        // Accumulated into with atomics: zeroed first (cuDNN before 9.6 does not zero it itself).
        dq_accumulator = Tensor::zeros(q.shape(), DType::f32, Device::cuda);
        memory[CudnnSdpaUid::dq_accumulator] = dq_accumulator.raw_data();
    }
    execute_plan(context, *plan, memory, resolved_scale(scale, shape.head_dim));
    return grads;
}

#else  // !PGOLF_WITH_CUDNN

namespace {

constexpr const char* kWithoutCudnn = "pgolf was built without cuDNN";

}  // namespace

std::string cuda_cudnn_version_text() { return kWithoutCudnn; }

bool cuda_cudnn_attention_available(std::string* reason) {
    if (reason != nullptr) *reason = kWithoutCudnn;
    return false;
}

std::string cuda_cudnn_attention_unsupported_reason(std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                                                    std::int64_t) {
    return kWithoutCudnn;
}

AttentionResult cuda_cudnn_attention_forward(const Tensor&, const Tensor&, const Tensor&, double) {
    throw Error(std::string("attention (cuDNN): ") + kWithoutCudnn);
}

AttentionGrads cuda_cudnn_attention_backward(const Tensor&, const Tensor&, const Tensor&, const AttentionResult&,
                                             const Tensor&, double) {
    throw Error(std::string("attention (cuDNN): ") + kWithoutCudnn);
}

#endif  // PGOLF_WITH_CUDNN

}  // namespace pgolf
