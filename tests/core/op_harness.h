// The op-consistency harness: every op is declared once as an OpCase (inputs, forward, backward, error bounds) and
// the harness runs each case as CPU determinism, f32-vs-f64 agreement and a finite-difference gradient check in
// double. The CUDA backend will plug in as one more check over the same cases.
#pragma once

#include <functional>
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
};

using OpCaseFactory = std::function<std::vector<OpCase>()>;

// Registers a family of cases at static-initialisation time: `static const bool registered = op_harness_register(…)`.
bool op_harness_register(const std::string& family, OpCaseFactory factory);
std::vector<OpCase> op_harness_all_cases();

// Deterministic pseudo-random f64 tensor in [-scale, scale] (seeded; same seed, same values).
Tensor op_harness_random(const Shape& shape, std::uint64_t seed, double scale = 1.0);
// Deterministic ids in [0, vocab).
Tensor op_harness_random_ids(const Shape& shape, std::int64_t vocab, std::uint64_t seed);

}  // namespace pgolf::test
