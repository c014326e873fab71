// Optimizer updates in the operation order of the PyTorch code they reproduce (each line notes the torch op it mirrors
// where the rounding order matters), so the fp32 results agree with torch to the last bits and bf16 Muon to rounding.
#include "model/optim.h"

#include <cblas.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <map>
#include <set>

#include "core/device.h"
#include "core/error.h"
#ifdef PGOLF_WITH_CUDA
#include "core/cuda/muon.h"
#include "core/cuda/optim_update.h"
#include "core/cuda/reduce.h"
#endif

namespace pgolf {

namespace {

// Same rounding as bf16_round (nearest-even, NaN stays a quiet NaN), inlined because Newton–Schulz rounds every element
// of every op and a call per element would dominate the step.
inline float optim_round_bf16(float value) {
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return std::bit_cast<float>((bits | 0x00400000u) & 0xFFFF0000u);
    return std::bit_cast<float>((bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u);
}

std::string optim_param_label(const char* optimizer, const std::string& name) {
    return std::string(optimizer) + ": parameter '" + name + "'";
}

void optim_check_grad(const OptimParam& param, const char* optimizer) {
    if (!param.grad.defined()) return;
    if (param.grad.dtype() != DType::f32) {
        throw Error(optim_param_label(optimizer, param.name) + " has a gradient of dtype " +
                    dtype_name(param.grad.dtype()) + "; optimizers take f32 gradients");
    }
    if (param.grad.shape() != param.value.shape()) {
        throw Error(optim_param_label(optimizer, param.name) + " has a gradient of shape " +
                    shape_string(param.grad.shape()) + " for a value of shape " + shape_string(param.value.shape()));
    }
    if (param.grad.device() != param.value.device()) {
        throw Error(optim_param_label(optimizer, param.name) + " has a gradient on " +
                    device_name(param.grad.device()) + " for a value on " + device_name(param.value.device()));
    }
    if (param.grad.same_storage(param.value)) {
        throw Error(optim_param_label(optimizer, param.name) + " has a gradient that shares the value's storage");
    }
}

void optim_check_param(const OptimParam& param, const char* optimizer, bool matrix_only) {
    if (!param.value.defined()) throw Error(optim_param_label(optimizer, param.name) + " has no value tensor");
    if (param.value.dtype() != DType::f32) {
        throw Error(optim_param_label(optimizer, param.name) + " has dtype " + dtype_name(param.value.dtype()) +
                    "; optimizers update f32 parameters");
    }
    if (matrix_only && param.value.dim() != 2 && param.value.dim() != 3) {
        throw Error(optim_param_label(optimizer, param.name) + " has shape " + shape_string(param.value.shape()) +
                    "; Muon takes 2-D matrices or 3-D banks of them only");
    }
    optim_check_grad(param, optimizer);
}

// Names key the state, so they must be unique across all groups of one optimizer.
template <typename Group>
void optim_check_new_group(const std::vector<Group>& groups, const std::vector<OptimParam>& params,
                           const char* optimizer, bool matrix_only) {
    std::set<std::string> names;
    // Every parameter of one optimizer lives on one device: the first one's, whichever group it is in.
    const OptimParam* first = nullptr;
    for (const Group& group : groups) {
        for (const OptimParam& param : group.params) {
            names.insert(param.name);
            if (first == nullptr) first = &param;
        }
    }
    for (const OptimParam& param : params) {
        if (param.name.empty()) throw Error(std::string(optimizer) + ": a parameter has an empty name");
        if (!names.insert(param.name).second) {
            throw Error(optim_param_label(optimizer, param.name) + " is given twice");
        }
        optim_check_param(param, optimizer, matrix_only);
        if (first == nullptr) first = &param;
        if (param.value.device() != first->value.device()) {
            throw Error(optim_param_label(optimizer, param.name) + " is on " + device_name(param.value.device()) +
                        " but parameter '" + first->name + "' is on " + device_name(first->value.device()) +
                        "; one optimizer's parameters must share a device");
        }
    }
}

std::string optim_group_key(std::size_t group, const char* field) {
    return "group" + std::to_string(group) + "." + field;
}

// Reads a snapshot: every entry must be consumed by exactly one expected name, so a snapshot from a differently built
// optimizer is caught instead of half-loaded.
class OptimStateReader {
public:
    OptimStateReader(const NamedTensors& state, const char* optimizer) : optimizer_(optimizer) {
        for (const auto& [name, tensor] : state) {
            if (!entries_.emplace(name, &tensor).second) {
                throw Error(std::string(optimizer_) + ": state entry '" + name + "' appears twice");
            }
        }
    }

    double scalar(const std::string& name) {
        const Tensor* tensor = find(name);
        if (tensor == nullptr) throw Error(std::string(optimizer_) + ": state entry '" + name + "' is missing");
        if (tensor->numel() != 1) {
            throw Error(std::string(optimizer_) + ": state entry '" + name + "' has shape " +
                        shape_string(tensor->shape()) + "; expected one element");
        }
        return tensor->item();
    }

    // Deep copy of an optional per-parameter tensor, on the parameter's device (a snapshot may come from either);
    // undefined when absent.
    Tensor tensor(const std::string& name, const Tensor& value) {
        const Tensor* tensor = find(name);
        if (tensor == nullptr) return Tensor();
        if (tensor->dtype() != DType::f32 || tensor->shape() != value.shape()) {
            throw Error(std::string(optimizer_) + ": state entry '" + name + "' is " + dtype_name(tensor->dtype()) +
                        " " + shape_string(tensor->shape()) + "; expected f32 " + shape_string(value.shape()));
        }
        return tensor->to_device(value.device());
    }

    bool has(const std::string& name) const { return entries_.count(name) != 0; }

    void finish() const {
        for (const auto& [name, tensor] : entries_) {
            if (consumed_.count(name) == 0) {
                throw Error(std::string(optimizer_) + ": state entry '" + name + "' matches no group or parameter");
            }
        }
    }

private:
    const Tensor* find(const std::string& name) {
        const auto it = entries_.find(name);
        if (it == entries_.end()) return nullptr;
        consumed_.insert(name);
        return it->second;
    }

    const char* optimizer_;
    std::map<std::string, const Tensor*> entries_;
    std::set<std::string> consumed_;
};

// In-place w ← w·factor; skipped at exactly 1 so a zero decay never touches the bits.
void optim_scale_in_place(float* w, std::int64_t n, float factor) {
    if (factor == 1.0f) return;
    for (std::int64_t i = 0; i < n; ++i) w[i] *= factor;
}

// c (m, n) = a (m, k) · op(b), b being (k, n) or, transposed, (n, k).
void optim_sgemm(const float* a, const float* b, float* c, int m, int n, int k, bool transpose_b) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, transpose_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, k, b,
                transpose_b ? k : n, 0.0f, c, n);
}

void optim_transpose(const float* in, float* out, std::int64_t rows, std::int64_t cols) {
    for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t c = 0; c < cols; ++c) out[c * rows + r] = in[r * cols + c];
    }
}

// Newton–Schulz in place on x (rows, cols), row-major. Each step mirrors the reference's bf16 tensor ops
// A = X Xᵀ; B = b·A + (c·A) A; X = a·X + B X, where every op's result is rounded in bf16 mode. The Python scalars are
// applied as fp32 (the opmath CUDA uses), not rounded to bf16 first as torch's CPU kernels do.
void optim_newton_schulz_in_place(std::vector<float>& x, std::int64_t rows, std::int64_t cols, int steps,
                                  MuonPrecision precision) {
    const bool bf16 = precision == MuonPrecision::bf16;
    const auto round = [bf16](float value) { return bf16 ? optim_round_bf16(value) : value; };
    constexpr float a = 3.4445f;
    constexpr float b = -4.7750f;
    constexpr float c = 2.0315f;
    const std::int64_t count = rows * cols;

    double sum_squares = 0.0;
    for (std::int64_t i = 0; i < count; ++i) {
        x[i] = round(x[i]);
        sum_squares += static_cast<double>(x[i]) * static_cast<double>(x[i]);
    }
    // X.norm() is a bf16 tensor, and so is norm + eps.
    const float denominator = round(round(static_cast<float>(std::sqrt(sum_squares))) + 1e-7f);
    for (std::int64_t i = 0; i < count; ++i) x[i] = round(x[i] / denominator);

    // Work on the wide orientation (m ≤ n) so X Xᵀ is the smaller Gram matrix.
    const bool transposed = rows > cols;
    const std::int64_t m = transposed ? cols : rows;
    const std::int64_t n = transposed ? rows : cols;
    std::vector<float> work(static_cast<std::size_t>(count));
    if (transposed) {
        optim_transpose(x.data(), work.data(), rows, cols);
    } else {
        work = x;
    }
    const auto mi = static_cast<int>(m);
    const auto ni = static_cast<int>(n);
    const auto square = static_cast<std::size_t>(m * m);
    std::vector<float> gram(square), scaled_c(square), gram_sq(square), poly(square);
    std::vector<float> product(static_cast<std::size_t>(count));
    for (int iteration = 0; iteration < steps; ++iteration) {
        optim_sgemm(work.data(), work.data(), gram.data(), mi, mi, ni, true);
        for (std::size_t i = 0; i < square; ++i) {
            gram[i] = round(gram[i]);
            scaled_c[i] = round(c * gram[i]);
        }
        optim_sgemm(scaled_c.data(), gram.data(), gram_sq.data(), mi, mi, mi, false);
        for (std::size_t i = 0; i < square; ++i) poly[i] = round(round(b * gram[i]) + round(gram_sq[i]));
        optim_sgemm(poly.data(), work.data(), product.data(), mi, ni, mi, false);
        for (std::size_t i = 0; i < work.size(); ++i) work[i] = round(round(a * work[i]) + round(product[i]));
    }
    if (transposed) {
        optim_transpose(work.data(), x.data(), m, n);
    } else {
        x = std::move(work);
    }
}

// ---------------------------------------------------------------------------------------------- cuda parameters

// The device versions of the steps below, for parameters and gradients on cuda: the same arithmetic, run by the
// kernels of core/cuda (whose element math the tests replay against these CPU loops).
#ifdef PGOLF_WITH_CUDA

// One Muon group: every parameter's momentum, then one batched Newton–Schulz per matrix shape over all matrices of
// that shape (a 3-D bank adds its slices), then every update. Parameters do not interact, so this equals the CPU's
// parameter-by-parameter loop while each GEMM covers the whole batch.
void optim_muon_step_cuda(std::vector<OptimParam>& params, std::vector<Tensor>& buffers, const MuonOptions& options) {
    struct Slot {
        std::size_t index;   // into params
        std::int64_t first;  // first matrix in the shape's batch
        std::int64_t count;  // matrices (1, or a bank's slices)
    };
    std::map<std::pair<std::int64_t, std::int64_t>, std::vector<Slot>> batches;  // ordered: launch order is fixed
    for (std::size_t index = 0; index < params.size(); ++index) {
        const OptimParam& param = params[index];
        if (!param.grad.defined()) continue;
        optim_check_grad(param, "muon");
        if (param.value.numel() == 0) continue;
        const bool bank = param.value.dim() == 3;
        std::vector<Slot>& slots = batches[{param.value.size(-2), param.value.size(-1)}];
        const std::int64_t first = slots.empty() ? 0 : slots.back().first + slots.back().count;
        slots.push_back(Slot{index, first, bank ? param.value.size(0) : 1});
    }
    const MuonUpdateOptions update_options = optim_muon_update_options(options);
    for (const auto& [shape, slots] : batches) {
        const std::int64_t matrices = slots.back().first + slots.back().count;
        Tensor directions = Tensor::empty({matrices, shape.first, shape.second}, DType::f32, Device::cuda);
        std::vector<Tensor> updates;  // each parameter's view of directions
        for (const Slot& slot : slots) {
            OptimParam& param = params[slot.index];
            Tensor& buffer = buffers[slot.index];
            if (!buffer.defined()) buffer = Tensor::zeros(param.value.shape(), DType::f32, Device::cuda);
            updates.push_back(directions.rows(slot.first, slot.first + slot.count).reshape(param.value.shape()));
            cuda_muon_momentum(param.grad, buffer, updates.back(), update_options);
        }
        cuda_newton_schulz_batched(directions, options.backend_steps, update_options.precision);
        for (std::size_t i = 0; i < slots.size(); ++i) {
            cuda_muon_apply(params[slots[i].index].value, updates[i], update_options);
        }
    }
}

void optim_adam_step_cuda(OptimParam& param, AdamMoments& moments, const AdamOptions& options) {
    if (!moments.exp_avg.defined()) {
        moments.exp_avg = Tensor::zeros(param.value.shape(), DType::f32, Device::cuda);
        moments.exp_avg_sq = Tensor::zeros(param.value.shape(), DType::f32, Device::cuda);
        moments.step = 0;
    }
    moments.step += 1;
    cuda_adam_update(param.value, param.grad, moments.exp_avg, moments.exp_avg_sq, moments.step,
                     optim_adam_update_options(options));
}

void optim_sgd_step_cuda(OptimParam& param, Tensor& buffer, const SgdOptions& options) {
    const SgdUpdateOptions update = optim_sgd_update_options(options);
    // The first momentum step sets the buffer without reading it (torch clones d_p).
    const bool first_step = options.momentum != 0.0 && !buffer.defined();
    if (first_step) buffer = Tensor::empty(param.value.shape(), DType::f32, Device::cuda);
    cuda_sgd_update(param.value, param.grad, buffer, update, first_step);
}

double optim_clip_grad_norm_cuda(const std::vector<Tensor>& grads, double max_norm) {
    return cuda_clip_grad_norm(grads, max_norm);
}

#else

// Only reachable with a cuda tensor made elsewhere: a CPU-only build has no kernels to run on it.
[[noreturn]] void optim_throw_no_cuda(const std::string& what) {
    throw Error(what + " is on cuda, but pgolf was built without CUDA");
}

void optim_muon_step_cuda(std::vector<OptimParam>& params, std::vector<Tensor>&, const MuonOptions&) {
    optim_throw_no_cuda(optim_param_label("muon", params.front().name));
}

void optim_adam_step_cuda(OptimParam& param, AdamMoments&, const AdamOptions&) {
    optim_throw_no_cuda(optim_param_label("adam", param.name));
}

void optim_sgd_step_cuda(OptimParam& param, Tensor&, const SgdOptions&) {
    optim_throw_no_cuda(optim_param_label("sgd", param.name));
}

double optim_clip_grad_norm_cuda(const std::vector<Tensor>&, double) {
    optim_throw_no_cuda("clip_grad_norm: a gradient");
}

#endif  // PGOLF_WITH_CUDA

}  // namespace

// --------------------------------------------------------------------------------------------------------- Optimizer

void optim_check_group_index(std::size_t group, std::size_t count, const char* optimizer) {
    if (group >= count) {
        throw Error(std::string(optimizer) + ": group " + std::to_string(group) + " out of range (" +
                    std::to_string(count) + " groups)");
    }
}

void Optimizer::zero_grad() {
    for (std::size_t group = 0; group < group_count(); ++group) {
        for (OptimParam& param : group_params(group)) param.grad = Tensor();
    }
}

std::vector<Tensor> Optimizer::grads() const {
    std::vector<Tensor> result;
    for (std::size_t group = 0; group < group_count(); ++group) {
        for (const OptimParam& param : group_params(group)) {
            if (param.grad.defined()) result.push_back(param.grad);
        }
    }
    return result;
}

// ---------------------------------------------------------------------------------------------- Muon and SGD state

template <typename Options>
NamedTensors MomentumOptimizer<Options>::state_tensors() const {
    NamedTensors state;
    for (std::size_t g = 0; g < this->groups_.size(); ++g) {
        const auto& group = this->groups_[g];
        state.emplace_back(optim_group_key(g, "lr"), Tensor::scalar(group.options.lr, DType::f64));
        state.emplace_back(optim_group_key(g, "momentum"), Tensor::scalar(group.options.momentum, DType::f64));
        for (std::size_t i = 0; i < group.params.size(); ++i) {
            if (group.state[i].defined()) {
                state.emplace_back(group.params[i].name + ".momentum_buffer", group.state[i].clone());
            }
        }
    }
    return state;
}

template <typename Options>
void MomentumOptimizer<Options>::load_state(const NamedTensors& state) {
    // Everything is read and checked before anything is replaced; the params vectors themselves are never touched,
    // so the trainer's pointers into group_params() stay valid across a restore.
    OptimStateReader reader(state, this->name_);
    std::vector<Options> options;
    std::vector<std::vector<Tensor>> buffers;
    for (std::size_t g = 0; g < this->groups_.size(); ++g) {
        const auto& group = this->groups_[g];
        options.push_back(group.options);
        options.back().lr = reader.scalar(optim_group_key(g, "lr"));
        options.back().momentum = reader.scalar(optim_group_key(g, "momentum"));
        buffers.emplace_back();
        for (const OptimParam& param : group.params) {
            buffers.back().push_back(reader.tensor(param.name + ".momentum_buffer", param.value));
        }
    }
    reader.finish();
    for (std::size_t g = 0; g < this->groups_.size(); ++g) {
        this->groups_[g].options = options[g];
        this->groups_[g].state = std::move(buffers[g]);
    }
}

template class MomentumOptimizer<MuonOptions>;
template class MomentumOptimizer<SgdOptions>;

// ------------------------------------------------------------------------------------------------------------ Muon

Tensor optim_newton_schulz(const Tensor& g, int steps, MuonPrecision precision) {
    if (g.dim() != 2) throw Error("newton-schulz: needs a 2-D matrix, got shape " + shape_string(g.shape()));
    tensor_check_dtype(g, DType::f32, "newton-schulz", "g");
    if (steps < 0) throw Error("newton-schulz: negative step count " + std::to_string(steps));
    if (g.numel() == 0) return g.clone();
    const float* data = g.data<float>();
    std::vector<float> x(data, data + g.numel());
    optim_newton_schulz_in_place(x, g.size(0), g.size(1), steps, precision);
    return Tensor::from_floats(x, g.shape());
}

std::size_t Muon::add_group(std::vector<OptimParam> params, const MuonOptions& options) {
    optim_check_new_group(groups_, params, "muon", true);
    if (options.backend_steps < 0) throw Error("muon: negative backend_steps " + std::to_string(options.backend_steps));
    return push_group(std::move(params), options);
}

void Muon::step() {
    for (Group& group : groups_) {
        // add_group keeps every parameter on one device.
        if (!group.params.empty() && group.params.front().value.device() == Device::cuda) {
            optim_muon_step_cuda(group.params, group.state, group.options);
            continue;
        }
        const MuonOptions& options = group.options;
        const auto momentum = static_cast<float>(options.momentum);
        const auto neg_lr = static_cast<float>(-options.lr);
        const auto decay = static_cast<float>(1.0 - options.lr * options.weight_decay);
        for (std::size_t index = 0; index < group.params.size(); ++index) {
            OptimParam& param = group.params[index];
            if (!param.grad.defined()) continue;
            optim_check_grad(param, "muon");
            // A 3-D parameter is a bank of same-shape matrices (S2/S4): Newton–Schulz runs per slice, as the batched
            // reference does.
            const bool bank = param.value.dim() == 3;
            const std::int64_t rows = param.value.size(bank ? 1 : 0);
            const std::int64_t cols = param.value.size(bank ? 2 : 1);
            const std::int64_t count = param.value.numel();
            if (count == 0) continue;
            const float* grad = param.grad.data<float>();
            Tensor& buffer_tensor = group.state[index];
            if (!buffer_tensor.defined()) buffer_tensor = Tensor::zeros(param.value.shape());
            float* buffer = buffer_tensor.data<float>();

            // buf.mul_(μ).add_(g); nesterov: u = g.add(buf, alpha=μ). With bf16 state each op's result is rounded.
            std::vector<float> update(static_cast<std::size_t>(count));
            if (options.bf16_state) {
                for (std::int64_t i = 0; i < count; ++i) {
                    const float g = optim_round_bf16(grad[i]);
                    buffer[i] = optim_round_bf16(optim_round_bf16(buffer[i] * momentum) + g);
                    update[i] = options.nesterov ? optim_round_bf16(g + momentum * buffer[i]) : buffer[i];
                }
            } else {
                for (std::int64_t i = 0; i < count; ++i) {
                    const float scaled = buffer[i] * momentum;
                    buffer[i] = scaled + grad[i];
                    update[i] = options.nesterov ? grad[i] + momentum * buffer[i] : buffer[i];
                }
            }
            if (bank) {
                const std::int64_t slice = rows * cols;
                std::vector<float> matrix(static_cast<std::size_t>(slice));
                for (std::int64_t offset = 0; offset < count; offset += slice) {
                    std::copy(update.begin() + offset, update.begin() + offset + slice, matrix.begin());
                    optim_newton_schulz_in_place(matrix, rows, cols, options.backend_steps, options.precision);
                    std::copy(matrix.begin(), matrix.end(), update.begin() + offset);
                }
            } else {
                optim_newton_schulz_in_place(update, rows, cols, options.backend_steps, options.precision);
            }
            // The reference scales the bf16 result in place and stages it in a bf16 buffer, so the applied update is
            // bf16-valued in bf16 mode.
            const auto scale =
                static_cast<float>(std::sqrt(std::max(1.0, static_cast<double>(rows) / static_cast<double>(cols))));
            const bool bf16 = options.precision == MuonPrecision::bf16;
            float* w = param.value.data<float>();
            if (options.decay_order == WeightDecayOrder::before_update) optim_scale_in_place(w, count, decay);
            for (std::int64_t i = 0; i < count; ++i) {
                const float scaled = update[i] * scale;
                w[i] = w[i] + neg_lr * (bf16 ? optim_round_bf16(scaled) : scaled);  // p.add_(u, alpha=-lr)
            }
            if (options.decay_order == WeightDecayOrder::after_update) optim_scale_in_place(w, count, decay);
        }
    }
}

// ------------------------------------------------------------------------------------------------------------ Adam

std::size_t Adam::add_group(std::vector<OptimParam> params, const AdamOptions& options) {
    optim_check_new_group(groups_, params, "adam", false);
    return push_group(std::move(params), options);
}

std::string Adam::kind() const {
    const bool all_decoupled = !groups_.empty() && std::all_of(groups_.begin(), groups_.end(), [](const Group& g) {
        return g.options.decoupled_weight_decay;
    });
    return all_decoupled ? "adamw" : "adam";
}

void Adam::step() {
    for (Group& group : groups_) {
        const AdamOptions& options = group.options;
        const auto beta1 = static_cast<float>(options.beta1);
        const auto beta2 = static_cast<float>(options.beta2);
        const auto one_minus_beta1 = static_cast<float>(1.0 - options.beta1);
        const auto one_minus_beta2 = static_cast<float>(1.0 - options.beta2);
        const auto eps = static_cast<float>(options.eps);
        const bool coupled_decay = !options.decoupled_weight_decay && options.weight_decay != 0.0;
        const auto weight_decay = static_cast<float>(options.weight_decay);
        for (std::size_t index = 0; index < group.params.size(); ++index) {
            OptimParam& param = group.params[index];
            if (!param.grad.defined()) continue;
            optim_check_grad(param, "adam");
            AdamMoments& moments = group.state[index];
            if (param.value.device() == Device::cuda) {
                optim_adam_step_cuda(param, moments, options);
                continue;
            }
            const std::int64_t count = param.value.numel();
            if (!moments.exp_avg.defined()) {
                moments.exp_avg = Tensor::zeros(param.value.shape());
                moments.exp_avg_sq = Tensor::zeros(param.value.shape());
                moments.step = 0;
            }
            moments.step += 1;
            float* w = param.value.data<float>();
            const float* grad = param.grad.data<float>();
            float* exp_avg = moments.exp_avg.data<float>();
            float* exp_avg_sq = moments.exp_avg_sq.data<float>();

            // AdamW: param.mul_(1 - lr·wd) before anything reads the parameter.
            if (options.decoupled_weight_decay) {
                optim_scale_in_place(w, count, static_cast<float>(1.0 - options.lr * options.weight_decay));
            }
            // Python float arithmetic on the step count, as torch's single-tensor path does.
            const auto step = static_cast<double>(moments.step);
            const double bias_correction1 = 1.0 - std::pow(options.beta1, step);
            const double bias_correction2 = 1.0 - std::pow(options.beta2, step);
            const auto neg_step_size = static_cast<float>(-(options.lr / bias_correction1));
            const auto bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
            for (std::int64_t i = 0; i < count; ++i) {
                const float g = coupled_decay ? grad[i] + weight_decay * w[i] : grad[i];  // grad.add(p, alpha=wd)
                const float decayed_avg = exp_avg[i] * beta1;
                exp_avg[i] = decayed_avg + one_minus_beta1 * g;  // mul_(β1).add_(g, alpha=1-β1)
                const float decayed_sq = exp_avg_sq[i] * beta2;
                exp_avg_sq[i] = decayed_sq + one_minus_beta2 * g * g;  // mul_(β2).addcmul_(g, g, value=1-β2)
                const float denom = std::sqrt(exp_avg_sq[i]) / bias_correction2_sqrt + eps;
                w[i] = w[i] + neg_step_size * exp_avg[i] / denom;  // addcdiv_(m, denom, value=-step_size)
            }
        }
    }
}

NamedTensors Adam::state_tensors() const {
    NamedTensors state;
    for (std::size_t g = 0; g < groups_.size(); ++g) {
        const Group& group = groups_[g];
        state.emplace_back(optim_group_key(g, "lr"), Tensor::scalar(group.options.lr, DType::f64));
        for (std::size_t i = 0; i < group.params.size(); ++i) {
            const AdamMoments& moments = group.state[i];
            if (!moments.exp_avg.defined()) continue;
            const std::string& name = group.params[i].name;
            state.emplace_back(name + ".step", Tensor::scalar(static_cast<double>(moments.step), DType::f64));
            state.emplace_back(name + ".exp_avg", moments.exp_avg.clone());
            state.emplace_back(name + ".exp_avg_sq", moments.exp_avg_sq.clone());
        }
    }
    return state;
}

void Adam::load_state(const NamedTensors& state) {
    // Read and checked in full before anything is replaced; the params vectors are never touched (see
    // MomentumOptimizer::load_state).
    OptimStateReader reader(state, "adam");
    std::vector<double> lrs;
    std::vector<std::vector<AdamMoments>> loaded;
    for (std::size_t g = 0; g < groups_.size(); ++g) {
        lrs.push_back(reader.scalar(optim_group_key(g, "lr")));
        loaded.emplace_back();
        for (const OptimParam& param : groups_[g].params) {
            const std::string& name = param.name;
            AdamMoments moments;
            const bool has_step = reader.has(name + ".step");
            moments.exp_avg = reader.tensor(name + ".exp_avg", param.value);
            moments.exp_avg_sq = reader.tensor(name + ".exp_avg_sq", param.value);
            if (has_step != moments.exp_avg.defined() || has_step != moments.exp_avg_sq.defined()) {
                throw Error("adam: state of parameter '" + name +
                            "' is incomplete (needs step, exp_avg and exp_avg_sq)");
            }
            if (has_step) {
                const double step = reader.scalar(name + ".step");
                if (!(step >= 1.0) || step != std::floor(step)) {
                    throw Error("adam: state entry '" + name + ".step' is not a positive integer");
                }
                moments.step = static_cast<std::int64_t>(step);
            }
            loaded.back().push_back(std::move(moments));
        }
    }
    reader.finish();
    for (std::size_t g = 0; g < groups_.size(); ++g) {
        groups_[g].options.lr = lrs[g];
        groups_[g].state = std::move(loaded[g]);
    }
}

// ------------------------------------------------------------------------------------------------------------- SGD

std::size_t Sgd::add_group(std::vector<OptimParam> params, const SgdOptions& options) {
    optim_check_new_group(groups_, params, "sgd", false);
    if (options.nesterov && (options.momentum <= 0.0 || options.dampening != 0.0)) {
        throw Error("sgd: nesterov needs momentum > 0 and dampening 0");
    }
    return push_group(std::move(params), options);
}

void Sgd::step() {
    for (Group& group : groups_) {
        const SgdOptions& options = group.options;
        const auto momentum = static_cast<float>(options.momentum);
        const auto one_minus_dampening = static_cast<float>(1.0 - options.dampening);
        const auto weight_decay = static_cast<float>(options.weight_decay);
        const auto neg_lr = static_cast<float>(-options.lr);
        for (std::size_t index = 0; index < group.params.size(); ++index) {
            OptimParam& param = group.params[index];
            if (!param.grad.defined()) continue;
            optim_check_grad(param, "sgd");
            if (param.value.device() == Device::cuda) {
                optim_sgd_step_cuda(param, group.state[index], options);
                continue;
            }
            const std::int64_t count = param.value.numel();
            float* w = param.value.data<float>();
            const float* grad = param.grad.data<float>();
            std::vector<float> direction(grad, grad + count);
            if (options.weight_decay != 0.0) {
                for (std::int64_t i = 0; i < count; ++i) direction[i] = grad[i] + weight_decay * w[i];
            }
            if (options.momentum != 0.0) {
                Tensor& buffer_tensor = group.state[index];
                if (!buffer_tensor.defined()) {
                    // torch: buf = clone(d_p) on the first step, with no dampening applied.
                    buffer_tensor = Tensor::from_floats(direction, param.value.shape());
                } else {
                    float* buffer = buffer_tensor.data<float>();
                    for (std::int64_t i = 0; i < count; ++i) {
                        const float scaled = buffer[i] * momentum;
                        buffer[i] = scaled + one_minus_dampening * direction[i];
                    }
                }
                const float* buffer = buffer_tensor.data<float>();
                for (std::int64_t i = 0; i < count; ++i) {
                    direction[i] = options.nesterov ? direction[i] + momentum * buffer[i] : buffer[i];
                }
            }
            for (std::int64_t i = 0; i < count; ++i) w[i] = w[i] + neg_lr * direction[i];  // p.add_(d, alpha=-lr)
        }
    }
}

// ------------------------------------------------------------------------------------------------------------ clip

MuonUpdateOptions optim_muon_update_options(const MuonOptions& options) {
    MuonUpdateOptions update;
    update.lr = options.lr;
    update.momentum = options.momentum;
    update.backend_steps = options.backend_steps;
    update.nesterov = options.nesterov;
    update.weight_decay = options.weight_decay;
    update.decay_order = options.decay_order == WeightDecayOrder::before_update ? CudaMuonDecayOrder::before_update
                                                                                : CudaMuonDecayOrder::after_update;
    update.precision = options.precision == MuonPrecision::bf16 ? CudaMuonPrecision::bf16 : CudaMuonPrecision::f32;
    update.bf16_state = options.bf16_state;
    return update;
}

AdamUpdateOptions optim_adam_update_options(const AdamOptions& options) {
    return AdamUpdateOptions{options.lr,  options.beta1,        options.beta2,
                             options.eps, options.weight_decay, options.decoupled_weight_decay};
}

SgdUpdateOptions optim_sgd_update_options(const SgdOptions& options) {
    return SgdUpdateOptions{options.lr, options.momentum, options.dampening, options.weight_decay, options.nesterov};
}

double optim_clip_grad_norm(const std::vector<Tensor>& grads, double max_norm) {
    const Tensor* cuda_grad = nullptr;
    const Tensor* cpu_grad = nullptr;
    for (const Tensor& grad : grads) {
        if (!grad.defined()) continue;
        (grad.device() == Device::cuda ? cuda_grad : cpu_grad) = &grad;
    }
    if (cuda_grad != nullptr && cpu_grad != nullptr) {
        throw Error("clip_grad_norm: gradients on both cpu and cuda; all must be on one device");
    }
    if (cuda_grad != nullptr) return optim_clip_grad_norm_cuda(grads, max_norm);
    double sum_squares = 0.0;
    for (const Tensor& grad : grads) {
        if (!grad.defined()) continue;
        tensor_check_floating(grad, "clip_grad_norm", "grad");
        if (grad.dtype() == DType::f32) {
            const float* data = grad.data<float>();
            for (std::int64_t i = 0; i < grad.numel(); ++i) sum_squares += static_cast<double>(data[i]) * data[i];
        } else {
            const double* data = grad.data<double>();
            for (std::int64_t i = 0; i < grad.numel(); ++i) sum_squares += data[i] * data[i];
        }
    }
    const double total = std::sqrt(sum_squares);
    const double coefficient = max_norm / (total + 1e-6);
    if (coefficient < 1.0) {
        for (const Tensor& grad : grads) {
            if (!grad.defined()) continue;
            Tensor handle = grad;  // shares storage: scaling writes the caller's gradient
            if (handle.dtype() == DType::f32) {
                const auto factor = static_cast<float>(coefficient);
                float* data = handle.data<float>();
                for (std::int64_t i = 0; i < handle.numel(); ++i) data[i] *= factor;
            } else {
                double* data = handle.data<double>();
                for (std::int64_t i = 0; i < handle.numel(); ++i) data[i] *= coefficient;
            }
        }
    }
    return total;
}

}  // namespace pgolf
