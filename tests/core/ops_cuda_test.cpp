// The CUDA check of the op-consistency harness: every case of a family with a CudaOpBinding runs on the GPU (f32 and
// bf16 inputs) against the CPU reference in f64, plus the family's full-scale cases. Without the CUDA backend or
// without a GPU each case skips with the reason; which families are bound is checked on every CUDA build.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "core/device.h"
#include "core/error.h"
#include "tests/core/op_harness.h"

namespace pgolf::test {

namespace {

std::map<std::string, CudaOpBinding>& cuda_binding_registry() {
    static std::map<std::string, CudaOpBinding> registry;
    return registry;
}

std::string case_family(const std::string& case_name) { return case_name.substr(0, case_name.find('/')); }

#ifdef PGOLF_WITH_CUDA
// Families whose CUDA implementation is still to come, with the reason (none now: every CPU family is bound). A new
// CPU op family lands here, or with its binding, in the same change.
const std::map<std::string, std::string>& cuda_pending_families() {
    static const std::map<std::string, std::string> pending = {};
    return pending;
}
#endif

// The case's inputs as the GPU gets them (floating inputs rounded to dtype) and as the reference gets them (the same
// rounded values in f64, on the cpu).
struct CudaCaseInputs {
    std::vector<Tensor> device;
    std::vector<Tensor> reference;
};

CudaCaseInputs cuda_case_inputs(const OpCase& op, DType dtype) {
    CudaCaseInputs inputs;
    for (const Tensor& input : op.inputs) {
        if (!dtype_is_floating(input.dtype())) {
            inputs.device.push_back(input.to_device(Device::cuda));
            inputs.reference.push_back(input);
            continue;
        }
        const Tensor rounded = input.to(dtype);
        inputs.device.push_back(rounded.to_device(Device::cuda));
        inputs.reference.push_back(rounded.to(DType::f64));
    }
    return inputs;
}

// max |got − expected| / max(1, |expected|) with the index where it is largest; shapes must agree.
struct Deviation {
    double worst = 0.0;
    std::int64_t index = -1;
};

Deviation cuda_deviation(const Tensor& got_on_device, const Tensor& expected) {
    const Tensor got = got_on_device.to_device(Device::cpu);
    Deviation deviation;
    for (std::int64_t i = 0; i < expected.numel(); ++i) {
        const double reference = expected.item(i);
        const double error = std::abs(got.item(i) - reference) / std::max(1.0, std::abs(reference));
        if (!(error <= deviation.worst)) {  // NaN counts as the worst
            deviation.worst = std::isnan(error) ? INFINITY : error;
            deviation.index = i;
        }
    }
    return deviation;
}

void cuda_expect_close(const std::vector<Tensor>& got, const std::vector<Tensor>& expected, double tolerance,
                       const std::string& what) {
    ASSERT_EQ(got.size(), expected.size()) << what;
    for (std::size_t k = 0; k < expected.size(); ++k) {
        if (!expected[k].defined()) continue;
        ASSERT_TRUE(got[k].defined()) << what << " " << k << " is undefined on cuda";
        ASSERT_EQ(got[k].device(), Device::cuda) << what << " " << k;
        ASSERT_EQ(got[k].shape(), expected[k].shape()) << what << " " << k;
        const Deviation deviation = cuda_deviation(got[k], expected[k]);
        EXPECT_LE(deviation.worst, tolerance) << what << " " << k << ", worst element " << deviation.index;
    }
}

void cuda_check_case(const OpCase& op, DType dtype) {
    const CudaOpBinding* binding = op_harness_cuda_binding(op.name);
    ASSERT_NE(binding, nullptr) << "no CUDA binding for " << op.name;
    const double tolerance = dtype == DType::f32 ? binding->f32_tolerance : binding->bf16_tolerance;
    const CudaCaseInputs inputs = cuda_case_inputs(op, dtype);
    const std::vector<Tensor> expected = op.forward(inputs.reference);
    const std::vector<Tensor> got = binding->forward(op, inputs.device);
    cuda_expect_close(got, expected, tolerance, "output");
    if (!binding->backward || !op.backward) return;

    std::vector<Tensor> weights_reference;
    std::vector<Tensor> weights_device;
    for (std::size_t k = 0; k < expected.size(); ++k) {
        const bool counts = op.differentiable_outputs.empty() || op.differentiable_outputs[k];
        const Tensor weight = counts ? op_harness_random(expected[k].shape(), 1000 + k, 1.0)
                                     : Tensor::zeros(expected[k].shape(), DType::f64);
        const Tensor rounded = weight.to(dtype);
        weights_reference.push_back(rounded.to(DType::f64));
        weights_device.push_back(rounded.to_device(Device::cuda));
    }
    const std::vector<Tensor> grads_expected = op.backward(inputs.reference, expected, weights_reference);
    const std::vector<Tensor> grads_got = binding->backward(op, inputs.device, got, weights_device);
    cuda_expect_close(grads_got, grads_expected, tolerance, "gradient of input");
}

class CudaOps : public ::testing::TestWithParam<OpCase> {
protected:
    void SetUp() override {
        const std::string reason = device_unavailable_reason(Device::cuda);
        if (!reason.empty()) GTEST_SKIP() << reason;
    }
};

TEST_P(CudaOps, Float32MatchesCpu) { cuda_check_case(GetParam(), DType::f32); }

TEST_P(CudaOps, Bfloat16MatchesCpu) {
    const CudaOpBinding* binding = op_harness_cuda_binding(GetParam().name);
    if (binding != nullptr && !binding->run_bf16) GTEST_SKIP() << "family runs in f32 only";
    cuda_check_case(GetParam(), DType::bf16);
}

std::vector<OpCase> cuda_cases_or_placeholder() {
    std::vector<OpCase> cases = op_harness_cuda_cases();
    if (cases.empty()) {
        // A CPU-only build has no bindings: one case that skips with the reason keeps the suite visible.
        OpCase placeholder;
        placeholder.name = "none/no_cuda_bindings";
        cases.push_back(placeholder);
    }
    return cases;
}

INSTANTIATE_TEST_SUITE_P(Ops, CudaOps, ::testing::ValuesIn(cuda_cases_or_placeholder()),
                         [](const ::testing::TestParamInfo<OpCase>& info) {
                             std::string name = info.param.name;
                             for (char& c : name) {
                                 if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             }
                             return name;
                         });

// Runs on every CUDA build, GPU or not: a family of CPU cases is either bound or listed as pending with its reason,
// and nothing pending is also bound.
TEST(CudaCoverage, EveryFamilyIsBoundOrPending) {
#ifndef PGOLF_WITH_CUDA
    GTEST_SKIP() << "pgolf was built without CUDA";
#else
    const std::vector<std::string> bound = op_harness_cuda_families();
    const std::set<std::string> bound_set(bound.begin(), bound.end());
    for (const std::string& family : op_harness_case_families()) {
        const bool pending = cuda_pending_families().count(family) > 0;
        EXPECT_TRUE(bound_set.count(family) > 0 || pending) << "op family '" << family << "' has no CUDA binding";
        EXPECT_FALSE(bound_set.count(family) > 0 && pending) << "op family '" << family << "' is bound and pending";
    }
#endif
}

}  // namespace

bool op_harness_register_cuda(const std::string& family, CudaOpBinding binding) {
    cuda_binding_registry()[family] = std::move(binding);
    return true;
}

const CudaOpBinding* op_harness_cuda_binding(const std::string& case_name) {
    const auto found = cuda_binding_registry().find(case_family(case_name));
    return found == cuda_binding_registry().end() ? nullptr : &found->second;
}

std::vector<OpCase> op_harness_cuda_cases() {
    std::vector<OpCase> cases;
    for (OpCase& op : op_harness_all_cases()) {
        if (op_harness_cuda_binding(op.name) != nullptr) cases.push_back(std::move(op));
    }
    // Full-scale inputs take seconds to generate, and every CTest process enumerates the cases: they are listed only
    // where they can run (a machine without a GPU would only skip them).
    if (!device_unavailable_reason(Device::cuda).empty()) return cases;
    for (const auto& [family, binding] : cuda_binding_registry()) {
        if (!binding.full_scale_cases) continue;
        for (OpCase& op : binding.full_scale_cases()) {
            if (case_family(op.name) != family) throw Error("full-scale case " + op.name + " is not in " + family);
            cases.push_back(std::move(op));
        }
    }
    return cases;
}

std::vector<std::string> op_harness_case_families() {
    std::set<std::string> families;
    for (const OpCase& op : op_harness_all_cases()) families.insert(case_family(op.name));
    return {families.begin(), families.end()};
}

std::vector<std::string> op_harness_cuda_families() {
    std::vector<std::string> families;
    for (const auto& [family, binding] : cuda_binding_registry()) families.push_back(family);
    return families;
}

}  // namespace pgolf::test
