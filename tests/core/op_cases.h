// Case builders of the CPU harness that the CUDA bindings reuse for their full-scale cases (same op, same reference,
// the seeds' shapes), so each op's case is defined once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/ops/fake_quant.h"
#include "tests/core/op_harness.h"

namespace pgolf::test {

OpCase rmsnorm_case(const Shape& shape, double factor, std::uint64_t seed);  // "rmsnorm/<shape>[_factor]"
OpCase cross_entropy_case(const std::string& name, std::int64_t n, std::int64_t vocab, double logit_scale, double cap,
                          std::uint64_t seed);  // "cross_entropy/<name>"
OpCase global_norm_case(const std::string& name, const std::vector<Shape>& shapes,
                        std::uint64_t seed);  // "global_norm/<name>"
OpCase fake_quant_case(const std::string& name, const Shape& shape, const FakeQuantSpec& spec, double scale,
                       std::uint64_t seed);  // "fake_quant/<name>"
OpCase residual_mix_case(const Shape& shape, std::uint64_t seed);
OpCase residual_add_scaled_case(const Shape& shape, std::uint64_t seed);

}  // namespace pgolf::test
