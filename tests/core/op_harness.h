// The op-consistency harness: every op is declared once as an OpCase (inputs, forward, backward, error bounds) and
// the harness runs each case as CPU determinism, f32-vs-f64 agreement and a finite-difference gradient check in
// double. The CUDA backend plugs in as one more check over the same cases (tests/core/ops_cuda_test.cpp): a family's
// CudaOpBinding runs each case on the GPU and is compared with the CPU reference in f64.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pgolf::test {

struct OpCase {
    std::string name;  // "family/shape", unique; becomes the test name
    // Inputs in f64. Integer inputs (ids, targets) keep their dtype and are never perturbed.
    std::vector<Tensor> inputs;
    // forward: inputs (all floating inputs in one dtype, f32 or f64) -> outputs.
    std::function<std::vector<Tensor>(const std::vector<Tensor>&)> forward;
    // backward: inputs, the forward outputs, and one gradient per output -> one gradient per input (undefined for
    // inputs that are not differentiable).
    std::function<std::vector<Tensor>(const std::vector<Tensor>&, const std::vector<Tensor>&,
                                      const std::vector<Tensor>&)>
        backward;
    // Outputs that are not differentiable (e.g. saved statistics) are excluded from the loss of the gradient check.
    std::vector<bool> differentiable_outputs;  // empty: all outputs
    double gradient_tolerance = 1e-6;          // max |analytic − numeric| / max(1, |numeric|), in f64
    double float_tolerance = 1e-5;             // max |f32 − f64| / max(1, |f64|) over outputs
    double finite_difference_step = 1e-6;
    // False for ops whose backward is deliberately not the forward's derivative (straight-through estimators such as
    // fake quantization): the gradient check is skipped with this reason.
    std::string no_finite_difference_reason;
    // The case's scalar parameters by name ("factor", "slope", "cap", "axis", …), for the CUDA binding, which
    // calls its own entry point with them.
    std::map<std::string, double> attributes;
    double attribute(const std::string& key) const;  // throws pgolf::Error naming the case when absent
};

using OpCaseFactory = std::function<std::vector<OpCase>()>;

// The CUDA implementation of one family's cases; the family is the case-name prefix before '/' ("rmsnorm",
// "matmul", "relu_squared", …). The harness uploads the case's inputs (floating ones in the dtype under test, f32
// or bf16; the f64 CPU reference sees the same rounded values), calls forward, downloads every output and compares
// it with the CPU reference in f64: max |cuda − cpu| / max(1, |cpu|) ≤ the dtype's tolerance. Backward is checked
// the same way with the gradient-check weights as output gradients.
struct CudaOpBinding {
    using Forward = std::function<std::vector<Tensor>(const OpCase&, const std::vector<Tensor>&)>;
    using Backward = std::function<std::vector<Tensor>(const OpCase&, const std::vector<Tensor>& inputs,
                                                       const std::vector<Tensor>& outputs,
                                                       const std::vector<Tensor>& grad_outputs)>;
    Forward forward;    // cuda inputs -> cuda outputs, one per CPU output (any dtype)
    Backward backward;  // empty: the family is forward-only; otherwise one gradient per input (undefined allowed)
    double f32_tolerance = 1e-5;
    double bf16_tolerance = 2e-2;
    bool run_bf16 = true;  // also run with bf16 inputs
    // Extra cases at the seeds' full-scale shapes, checked on the GPU only (too large for finite differences).
    OpCaseFactory full_scale_cases;
};

bool op_harness_register_cuda(const std::string& family, CudaOpBinding binding);
// The binding of the case's family, or nullptr.
const CudaOpBinding* op_harness_cuda_binding(const std::string& case_name);
// Every case the CUDA check runs: the CPU cases of bound families, then their full-scale cases (only where a GPU can
// run them: generating their inputs is slow, and every CTest process enumerates the cases).
std::vector<OpCase> op_harness_cuda_cases();
// Families registered for the CPU (by case-name prefix) and those with a CUDA binding.
std::vector<std::string> op_harness_case_families();
std::vector<std::string> op_harness_cuda_families();

// Registers a family of cases at static-initialisation time: `static const bool registered = op_harness_register(…)`.
bool op_harness_register(const std::string& family, OpCaseFactory factory);
std::vector<OpCase> op_harness_all_cases();

// Deterministic pseudo-random f64 tensor in [-scale, scale] (seeded; same seed, same values).
Tensor op_harness_random(const Shape& shape, std::uint64_t seed, double scale = 1.0);
// Deterministic ids in [0, vocab).
Tensor op_harness_random_ids(const Shape& shape, std::int64_t vocab, std::uint64_t seed);

}  // namespace pgolf::test
