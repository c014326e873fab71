// The configurable GPT behind every preset (SEED-SYSTEMS.md §1.2 and the four seeds): physical blocks run in a
// virtual-layer schedule (plain, shared loops, flat + crawler, stem/core/tail with recurrent passes, re-runs), with
// per-virtual or per-physical scale vectors, U-Net skips wired per seed, and switchable components: XSA, value
// embeddings, SmearGate, BigramHash, partial RoPE with NTK base, LN scale, relu² or LeakyReLU(0.5)², α-scaled
// residual passes, low-rank error feedback and the Jacobian proxy loss. Parameter names follow the reference's.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/autograd.h"
#include "core/ops/bigram.h"
#include "core/ops/fake_quant.h"
#include "core/ops/rope.h"
#include "model/config.h"

namespace pgolf {

enum class SkipMode { unet, explicit_layers, stem_tail };
enum class MatrixInit { uniform, orthogonal };

struct GptConfig {
    std::int64_t vocab_size = 1024;
    std::int64_t num_layers = 9;  // physical blocks
    std::int64_t model_dim = 512;
    std::int64_t num_heads = 8;
    std::int64_t num_kv_heads = 4;
    std::int64_t mlp_mult = 2;
    bool tie_embeddings = true;
    double rope_base = 10000.0;
    double logit_softcap = 30.0;
    double qk_gain_init = 1.5;
    double tied_embed_init_std = 0.005;
    DType dtype = DType::f32;  // f64 for gradient checks

    // Schedule: physical block per virtual layer (empty: 0..num_layers-1), or a recurrent core run `passes` times.
    std::vector<std::int64_t> layer_schedule;
    std::vector<std::int64_t> recurrent_core;  // contiguous physical blocks (S2)
    std::int64_t eval_passes = 1;
    std::vector<std::pair<std::int64_t, std::int64_t>> passes_schedule;  // (from step, passes), sorted
    bool scales_per_virtual_layer = false;

    SkipMode skip_mode = SkipMode::unet;
    std::vector<std::int64_t> skip_push;                          // explicit: virtual layers that push
    std::vector<std::pair<std::int64_t, std::int64_t>> skip_pop;  // explicit: (virtual layer, skip row)
    std::int64_t num_skip_weights = -1;                           // -1: derived

    std::vector<std::int64_t> xsa_blocks;   // physical blocks with XSA on every run (as the seeds ran)
    std::vector<std::int64_t> xsa_virtual;  // virtual layers with XSA; overrides xsa_blocks when non-empty

    std::int64_t ve_dim = 0;               // value embedding width; 0: none
    std::vector<std::int64_t> ve_virtual;  // virtual layers that add the value embedding (S1/S3)
    std::vector<std::int64_t> ve_blocks;   // physical blocks that add it on their first run (S2/S4)
    double ve_shared_scale_init = 0.0;     // S2/S4's internal scalar (0.1); 0: no such parameter
    double ve_proj_gain = 1.0;             // S1/S3 scale ".proj" inits by 1/√(2·7)

    std::int64_t bigram_buckets = 0;  // 0: no BigramHash
    std::int64_t bigram_dim = 128;
    BigramHashKind bigram_hash = BigramHashKind::multiply_add;
    double bigram_scale_init = 0.0;       // learned scalar (S2/S4: 0.05); 0: no scale parameter
    double bigram_table_std = 0.01;       // 0: zero-initialised table
    bool bigram_proj_orthogonal = false;  // else zero-initialised

    bool smear_gate = false;
    std::int64_t rope_dims = 0;               // rotated dims; 0: all of the head dim
    std::int64_t rope_frequency_dims = 0;     // 0: rope_dims
    std::int64_t rope_ntk_train_seq_len = 0;  // > 0: NTK-scale the base for longer sequences (S2/S4: 1024)
    bool ln_scale = false;                    // norms multiplied by 1/√(ℓ+1), ℓ the physical block index
    bool leaky_relu = false;                  // LeakyReLU(0.5)² instead of relu²
    MatrixInit matrix_init = MatrixInit::uniform;
    // S2/S4 store same-shape block matrices together: qo_bank (2n, d, d) = Q then out, kv_bank (2n, kv, d) = K then V,
    // mlp_up_bank (n, hidden, d), mlp_down_bank (n, d, hidden); Muon orthogonalizes each slice.
    bool parameter_banks = false;

    std::int64_t residual_alpha_size = 0;  // α vector length; 0: none
    double residual_alpha_init = 0.5;
    bool residual_alpha_trained = true;
    std::vector<std::pair<std::int64_t, std::int64_t>> alpha_layers;  // (virtual layer, α index): per-block α (S3)
    std::int64_t feedback_rank = 0;  // low-rank error feedback (S2): V, U (d×r), diagonal d
    double feedback_init_std = 0.0;  // 0: all zero, as S2 ran (inert); > 0: V, U ~ N(0, std²), d = 1 (the intent)
    double jacobian_lambda = 0.0;    // Jacobian proxy loss weight (S2)

    std::int64_t head_dim() const { return model_dim / num_heads; }
    std::int64_t kv_dim() const { return num_kv_heads * head_dim(); }
    static GptConfig from_config(const Config& config);  // validates the shape and the schedule
};

// Optimizer group of a parameter, as the reference splits them. `frozen` is in no optimizer (S3's α).
enum class ParameterGroup { embedding, head, matrix, scalar, frozen };
std::string parameter_group_name(ParameterGroup group);

struct Parameter {
    std::string name;
    Var var;
    ParameterGroup group;
};

// One virtual layer of the schedule, as the forward pass runs it.
struct VirtualLayer {
    std::int64_t block = 0;        // physical block
    std::int64_t scale_index = 0;  // row of the per-virtual scale vectors, or the block
    bool push_skip = false;
    std::int64_t pop_skip_row = -1;
    bool xsa = false;
    std::int64_t ve_index = -1;     // which value-embedding scalar, -1: none
    std::int64_t alpha_index = -1;  // per-block α residual (S3)
    std::int64_t core_pass = -1;    // pass number inside the recurrent core (S2), -1 outside it
};

class Gpt {
public:
    explicit Gpt(const GptConfig& config);

    // The seeds' initialisation (see docs/seeds.md): embeddings N(0, std²), matrices U(±1/√fan_in) or orthogonal,
    // output projections zero, q_gain QK_GAIN_INIT, scales 1, resid_mix (1, 0), skips 1, component-specific inits.
    void initialize(std::uint64_t seed);

    const GptConfig& config() const { return config_; }
    const std::vector<Parameter>& parameters() const { return parameters_; }
    const Parameter& parameter(const std::string& name) const;  // throws naming the missing parameter
    bool has_parameter(const std::string& name) const;
    std::int64_t parameter_count() const;
    std::int64_t parameter_count(ParameterGroup group) const;
    // The virtual layers for a number of recurrent-core passes (ignored without a core).
    std::vector<VirtualLayer> layer_plan(std::int64_t passes) const;
    std::int64_t passes_at_step(std::int64_t step) const;
    // RoPE as run at a sequence length (the NTK-scaled base when configured).
    RopeSpec rope_spec(std::int64_t seq_len) const;  // from the progressive schedule; eval_passes without one
    // Training FLOPs per token at a number of passes: 6 × matmul parameters run per token (re-runs counted) +
    // 6·layers·T·D for causal attention.
    double training_flops_per_token(std::int64_t seq_len, std::int64_t passes) const;

    // Per-token NLL, (B·T,), of targets given inputs (both (B, T) i64). With a tape, the graph is recorded.
    Var token_losses(Tape* tape, const Tensor& inputs, const Tensor& targets, std::int64_t passes) const;
    // The training loss: mean NLL plus the Jacobian proxy term when configured (a () tensor).
    Var loss(Tape* tape, const Tensor& inputs, const Tensor& targets, std::int64_t passes) const;
    Var token_losses(Tape* tape, const Tensor& inputs, const Tensor& targets) const {
        return token_losses(tape, inputs, targets, config_.eval_passes);
    }
    Var loss(Tape* tape, const Tensor& inputs, const Tensor& targets) const {
        return loss(tape, inputs, targets, config_.eval_passes);
    }

    // Quantization-aware training: the named matrices use fake-quantized weights (each with its own grid) in the
    // forward pass with a straight-through gradient. Empty: off.
    void set_fake_quant(const std::vector<std::pair<std::string, FakeQuantSpec>>& targets);
    std::size_t fake_quant_count() const;
    // Every weight matrix the forward pass multiplies by (the reference's CastedLinear weights): (name, elements).
    std::vector<std::pair<std::string, std::int64_t>> weight_matrices() const;

    // Every tensor of the model under the reference's state-dict names with the banks split into per-layer matrices
    // (blocks.3.attn.c_q.weight, …), as the seeds export them: views on the model's storage, in parameter order
    // with each bank's slices where the bank sits.
    std::vector<std::pair<std::string, Tensor>> named_tensors() const;
    // Copies values into the model, named either as named_tensors() (an artifact) or as parameters() (a checkpoint,
    // banks whole). In any order; a missing, extra or misshapen tensor is an error naming it, and nothing is changed.
    void load_named_tensors(const std::vector<std::pair<std::string, Tensor>>& tensors);

    // Calibration hook: called in every forward pass with the input rows of each weight matrix, (n, in_features)
    // f32, and whether the matrix's physical block already ran earlier in this pass (S1/S3 loops, S4's re-runs of
    // blocks 4 and 5). Empty: off.
    using MatrixInputObserver = std::function<void(const std::string& matrix, const Tensor& input, bool repeat)>;
    void set_matrix_input_observer(MatrixInputObserver observer) { observer_ = std::move(observer); }

    void zero_grad();

    // Moves every parameter to device (values copied; gradients dropped). Build optimizers, averages and QAT after
    // the move: they hold handles on the parameters' storage. On cuda the forward pass takes the same host (B, T)
    // i64 inputs and targets, uploads them (and the BigramHash ids, computed on the host) and runs every op on the
    // GPU; token losses come back as cuda tensors.
    void to_device(Device device);
    Device device() const { return device_; }

private:
    // A weight matrix as the forward pass uses it: a whole parameter, or one slice of a bank. Named with the
    // unbanked reference name (blocks.3.attn.c_q.weight) either way; QAT targets use these names.
    struct MatrixRef {
        std::string name;
        std::size_t parameter = 0;
        std::int64_t slice = -1;
    };
    struct BlockIndices {
        std::size_t c_q, c_k, c_v, proj, fc, mlp_proj;  // into matrices_
        std::size_t q_gain = 0;
        std::size_t attn_scale = 0, mlp_scale = 0, resid_mix = 0;  // per-physical mode only
    };
    std::size_t add_parameter(const std::string& name, const Shape& shape, ParameterGroup group);
    std::size_t add_matrix(const std::string& name, std::size_t parameter, std::int64_t slice);
    const Var& param(std::size_t index) const { return parameters_[index].var; }
    Tensor matrix_value(std::size_t matrix) const;     // a view on the matrix's storage
    Var weight(Tape* tape, std::size_t matrix) const;  // fake-quantized when QAT covers it
    // x · Wᵀ for a weight matrix, reporting x to the observer when one is set.
    Var project(Tape* tape, const Var& x, std::size_t matrix, bool repeat) const;
    Var forward_hidden(Tape* tape, const Tensor& inputs, std::int64_t passes, Var* core_in, Var* core_out) const;
    // Host (B, T) i64 ids checked against the vocabulary (the CUDA gather cannot check them without a sync) and
    // placed on the model's device.
    Tensor device_ids(const Tensor& ids, std::int64_t limit, const char* what) const;

    GptConfig config_;
    std::vector<Parameter> parameters_;
    std::vector<BlockIndices> blocks_;
    std::size_t tok_emb_ = 0;
    std::size_t lm_head_ = 0;
    std::size_t skip_weights_ = 0;
    std::int64_t num_skips_ = 0;
    std::size_t attn_scales_ = 0, mlp_scales_ = 0, resid_mixes_ = 0;  // per-virtual mode
    std::int64_t num_scale_rows_ = 0;
    std::size_t ve_table_ = 0, ve_proj_ = 0, ve_shared_scale_ = 0;
    std::vector<std::size_t> ve_scales_;
    std::size_t bigram_table_ = 0, bigram_proj_ = 0, bigram_scale_ = 0;
    std::size_t smear_ = 0;
    std::size_t alpha_ = 0;
    std::size_t feedback_v_ = 0, feedback_u_ = 0, feedback_d_ = 0;
    std::vector<MatrixRef> matrices_;
    std::size_t bigram_proj_matrix_ = 0, ve_proj_matrix_ = 0;
    std::vector<bool> fake_quant_;  // per matrix
    std::vector<FakeQuantSpec> fake_quant_specs_;
    MatrixInputObserver observer_;
    Device device_ = Device::cpu;
};

}  // namespace pgolf
