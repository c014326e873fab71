// Optimizers of the reference trainers (Muon with Newton–Schulz orthogonalization, torch's Adam/AdamW and SGD) and
// torch's global gradient-norm clip, reproduced operation by operation so the CPU fp32 engine can serve as their spec.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/cuda/muon_math.h"
#include "core/cuda/optim_math.h"
#include "core/tensor.h"

namespace pgolf {

// Named tensors in a fixed order: the shape safetensors_write takes, so optimizer state can be checkpointed as is.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// One trainable tensor. value and grad are handles that share storage with the trainer's tensors: step() writes the
// parameter in place and reads whatever grad currently holds. An undefined grad means "no gradient this step" and the
// parameter is skipped entirely (no state change, no weight decay), as torch skips p.grad None.
struct OptimParam {
    std::string name;  // unique within one optimizer: it keys the state and names the parameter in errors
    Tensor value;      // f32, on the cpu or cuda (one device for all parameters of an optimizer)
    Tensor grad;       // f32, value's shape and device, or undefined
};

// Interface the trainer drives: per-step lr changes, zeroing, snapshot/restore for warmup-then-restore.
class Optimizer {
public:
    virtual ~Optimizer() = default;

    // One update of every parameter that has a gradient, with each group's current hyperparameters.
    virtual void step() = 0;
    virtual std::string kind() const = 0;  // "muon", "adam", "adamw", "sgd"

    virtual std::size_t group_count() const = 0;
    virtual std::vector<OptimParam>& group_params(std::size_t group) = 0;
    virtual const std::vector<OptimParam>& group_params(std::size_t group) const = 0;
    virtual double lr(std::size_t group) const = 0;
    virtual void set_lr(std::size_t group, double lr) = 0;

    // Deep copies of everything besides the parameters that later steps depend on: group hyperparameters the trainer
    // changes per step ("group<i>.lr", "group<i>.momentum"; f64 scalars) and per-parameter state
    // ("<param>.momentum_buffer", "<param>.exp_avg", "<param>.exp_avg_sq", "<param>.step"). State that does not exist
    // yet (before the first step) is absent, and load_state() of such a snapshot clears it again, so restoring gives
    // bitwise the same subsequent steps as the original run.
    virtual NamedTensors state_tensors() const = 0;
    // Throws pgolf::Error naming the entry when a name is unknown, a group entry is missing, or a shape or dtype
    // differs.
    virtual void load_state(const NamedTensors& state) = 0;

    // Sets every gradient to undefined, as torch's zero_grad(set_to_none=True).
    void zero_grad();
    // Handles to every defined gradient, in group order (the input optim_clip_grad_norm takes).
    std::vector<Tensor> grads() const;
};

// Throws pgolf::Error ("<optimizer>: group <i> out of range (<n> groups)") unless group < count.
void optim_check_group_index(std::size_t group, std::size_t count, const char* optimizer);

// The group bookkeeping every optimizer shares: each group holds its parameters, one ParamState per parameter
// (default-constructed, meaning "no state yet") and its Options, whose lr field the trainer schedules.
template <typename Options, typename ParamState>
class GroupedOptimizer : public Optimizer {
public:
    std::size_t group_count() const override { return groups_.size(); }
    std::vector<OptimParam>& group_params(std::size_t group) override { return checked_group(group).params; }
    const std::vector<OptimParam>& group_params(std::size_t group) const override {
        return checked_group(group).params;
    }
    double lr(std::size_t group) const override { return options(group).lr; }
    void set_lr(std::size_t group, double lr) override { checked_group(group).options.lr = lr; }
    const Options& options(std::size_t group) const { return checked_group(group).options; }

protected:
    struct Group {
        std::vector<OptimParam> params;
        std::vector<ParamState> state;  // parallel to params
        Options options;
    };

    // name prefixes the errors ("muon", "adam", "sgd").
    explicit GroupedOptimizer(const char* name) : name_(name) {}

    Group& checked_group(std::size_t group) {
        optim_check_group_index(group, groups_.size(), name_);
        return groups_[group];
    }
    const Group& checked_group(std::size_t group) const {
        optim_check_group_index(group, groups_.size(), name_);
        return groups_[group];
    }

    // Appends an already validated group with empty state; returns its index.
    std::size_t push_group(std::vector<OptimParam> params, const Options& options) {
        Group group;
        group.state.resize(params.size());
        group.params = std::move(params);
        group.options = options;
        groups_.push_back(std::move(group));
        return groups_.size() - 1;
    }

    const char* name_;
    std::vector<Group> groups_;
};

// Muon and SGD: a momentum the trainer can schedule per group, and per parameter one momentum buffer (undefined until
// the parameter's first step, or for SGD with momentum 0). Their snapshots are the same: "group<i>.lr",
// "group<i>.momentum" and "<param>.momentum_buffer". Defined in optim.cpp for MuonOptions and SgdOptions only.
template <typename Options>
class MomentumOptimizer : public GroupedOptimizer<Options, Tensor> {
public:
    double momentum(std::size_t group) const { return this->options(group).momentum; }
    void set_momentum(std::size_t group, double momentum) { this->checked_group(group).options.momentum = momentum; }
    NamedTensors state_tensors() const override;
    void load_state(const NamedTensors& state) override;

protected:
    using GroupedOptimizer<Options, Tensor>::GroupedOptimizer;
};

// ---------------------------------------------------------------------------------------------------------------- Muon

// bf16 emulates the reference, which runs Newton–Schulz on bf16 tensors: inputs are rounded to bf16, every tensor op's
// result is rounded to bf16 (matmuls accumulate in fp32 first), and the scaled update is stored as bf16 before it is
// applied. f32 runs the same arithmetic in plain fp32 with no rounding.
enum class MuonPrecision : std::uint8_t { bf16, f32 };

// Where decoupled weight decay sits relative to the update: before_update (W·(1 − lr·wd) − lr·U; the baseline and S2
// family) or after_update ((W − lr·U)·(1 − lr·wd); S1).
enum class WeightDecayOrder : std::uint8_t { before_update, after_update };

struct MuonOptions {
    double lr = 0.04;
    double momentum = 0.95;  // the trainer overrides this per step with schedule_muon_momentum()
    int backend_steps = 5;
    bool nesterov = true;
    double weight_decay = 0.0;
    WeightDecayOrder decay_order = WeightDecayOrder::before_update;
    MuonPrecision precision = MuonPrecision::bf16;
    // Parallel Muon (S2/S4) reduce-scatters bf16 gradients and keeps a bf16 momentum buffer: the gradient and every
    // momentum op are rounded to bf16.
    bool bf16_state = false;
};

// The orthogonalized direction for one matrix g (rows, cols): Newton–Schulz with (a, b, c) = (3.4445, −4.7750, 2.0315)
// on g/(‖g‖_F + 1e-7), worked on the wide orientation. Returns an f32 tensor of g's shape (bf16-valued in bf16 mode),
// without Muon's √max(1, rows/cols) scale.
Tensor optim_newton_schulz(const Tensor& g, int steps, MuonPrecision precision);

extern template class MomentumOptimizer<MuonOptions>;

class Muon final : public MomentumOptimizer<MuonOptions> {
public:
    Muon() : MomentumOptimizer("muon") {}

    // Every parameter must be f32 and 2-D, or 3-D (a bank of same-shape matrices); returns the group's index. On cuda,
    // step() runs one batched Newton–Schulz per matrix shape of a group (core/cuda/muon.h).
    std::size_t add_group(std::vector<OptimParam> params, const MuonOptions& options);

    void step() override;
    std::string kind() const override { return "muon"; }
};

// ---------------------------------------------------------------------------------------------------------- Adam(W)

struct AdamOptions {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.0;
    // true: AdamW (W ← W·(1 − lr·wd) before the Adam step); false: torch.optim.Adam (wd·W added to the gradient).
    bool decoupled_weight_decay = false;
};

// Adam's per-parameter state.
struct AdamMoments {
    Tensor exp_avg;  // undefined until the parameter's first step
    Tensor exp_avg_sq;
    std::int64_t step = 0;
};

class Adam final : public GroupedOptimizer<AdamOptions, AdamMoments> {
public:
    Adam() : GroupedOptimizer("adam") {}

    std::size_t add_group(std::vector<OptimParam> params, const AdamOptions& options);

    void step() override;
    // "adamw" when every group decouples its weight decay, otherwise "adam".
    std::string kind() const override;
    NamedTensors state_tensors() const override;
    void load_state(const NamedTensors& state) override;
};

// ------------------------------------------------------------------------------------------------------------- SGD

struct SgdOptions {
    double lr = 1e-3;
    double momentum = 0.0;
    double dampening = 0.0;
    double weight_decay = 0.0;  // added to the gradient (wd·W), as torch.optim.SGD does
    bool nesterov = false;
};

extern template class MomentumOptimizer<SgdOptions>;

class Sgd final : public MomentumOptimizer<SgdOptions> {
public:
    Sgd() : MomentumOptimizer("sgd") {}

    // Nesterov needs momentum > 0 and dampening 0, as in torch.
    std::size_t add_group(std::vector<OptimParam> params, const SgdOptions& options);

    void step() override;
    std::string kind() const override { return "sgd"; }
};

// ------------------------------------------------------------------------------------------------------------ clip

// torch.nn.utils.clip_grad_norm_ over all given gradients (undefined ones are skipped): total = ‖concat(grads)‖₂,
// accumulated in double; when max_norm/(total + 1e-6) < 1 every gradient is multiplied by it in place. Returns the
// pre-clip total norm. Gradients must be f32 or f64 on the cpu, or f32 or bf16 all on cuda (cuda_clip_grad_norm, which
// synchronises once to return the norm).
double optim_clip_grad_norm(const std::vector<Tensor>& grads, double max_norm);

// The options of the device updates (core/cuda/optim_math.h, muon_math.h: core cannot see these classes) for a group's
// options: what the optimizers hand the kernels, and what the tests replay them with.
AdamUpdateOptions optim_adam_update_options(const AdamOptions& options);
SgdUpdateOptions optim_sgd_update_options(const SgdOptions& options);
MuonUpdateOptions optim_muon_update_options(const MuonOptions& options);

}  // namespace pgolf
