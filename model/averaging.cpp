// SWA and EMA of the live weights, on the cpu or on cuda. Elementwise loops only: each element's arithmetic is fixed
// (core/cuda/averaging_math.h, shared with the CUDA kernels), so neither threading nor the device changes a result.
//
// SWA accumulates in double, not in the reference's float32. The reference stacks the CPU snapshots and takes
// torch.stack(snapshots).mean(0), i.e. an fp32 sum followed by an fp32 division by the count. But the order of that
// fp32 sum is not one formula: torch's CPU kernel sums full blocks of 4 SIMD vectors of columns sequentially (with a
// 16-row cascade) and the remaining columns 4-way interleaved, so it depends on the column's position, the vector width
// and the thread split. No fixed fp32 order reproduces it bit for bit; the double sum rounded once gives the exact mean
// to within one f32 rounding, which every torch order approaches to within a few f32 ulps.
#include "model/averaging.h"

#include <map>
#include <set>
#include <string>
#include <utility>

#include "core/cuda/averaging_math.h"
#include "core/error.h"

#ifdef PGOLF_WITH_CUDA
#include "core/cuda/averaging.h"
#endif

namespace pgolf {

namespace {

constexpr std::int64_t kParallelElements = 1 << 15;

const char* device_label(Device device) { return device == Device::cuda ? "cuda" : "cpu"; }

void averaging_check_params(const NamedTensors& params, const char* what) {
    if (params.empty()) throw Error(std::string(what) + ": no parameters to average");
    std::set<std::string> names;
    for (const auto& [name, tensor] : params) {
        if (name.empty()) throw Error(std::string(what) + ": a parameter has an empty name");
        if (!names.insert(name).second) throw Error(std::string(what) + ": parameter '" + name + "' appears twice");
        if (!tensor.defined()) throw Error(std::string(what) + ": parameter '" + name + "' is an undefined tensor");
        if (tensor.dtype() != DType::f32) {
            throw Error(std::string(what) + ": parameter '" + name + "' has dtype " + dtype_name(tensor.dtype()) +
                        "; weight averaging takes f32 tensors");
        }
        const auto& [first_name, first] = params.front();
        if (tensor.device() != first.device()) {
            throw Error(std::string(what) + ": parameter '" + name + "' is on " + device_label(tensor.device()) +
                        " but '" + first_name + "' is on " + device_label(first.device()) +
                        "; all weights must be on one device");
        }
    }
}

bool on_cuda(const NamedTensors& params) { return params.front().second.device() == Device::cuda; }

#ifndef PGOLF_WITH_CUDA
[[noreturn]] void averaging_without_cuda(const char* what) {
    throw Error(std::string(what) + ": the weights are cuda tensors but pgolf was built without CUDA");
}
#endif

}  // namespace

bool averaging_swa_should_snapshot(std::int64_t step, double lr_mul, std::int64_t every, double threshold) {
    if (every <= 0) throw Error("swa: the snapshot interval must be positive (got " + std::to_string(every) + ")");
    if (!(threshold > 0.0)) return false;
    return step % every == 0 && lr_mul < threshold;
}

// ------------------------------------------------------------------------------------------------------------- SWA

WeightAverage::WeightAverage(NamedTensors params) : params_(std::move(params)) {
    averaging_check_params(params_, "swa");
}

void WeightAverage::snapshot() {
    const Device device = params_.front().second.device();
    if (sums_.empty()) {
        sums_.reserve(params_.size());
        for (const auto& [name, tensor] : params_) sums_.push_back(Tensor::zeros(tensor.shape(), DType::f64, device));
    }
    for (std::size_t p = 0; p < params_.size(); ++p) {
        if (device == Device::cuda) {
#ifdef PGOLF_WITH_CUDA
            cuda_accumulate_f64(sums_[p], params_[p].second);
            continue;
#else
            averaging_without_cuda("swa");
#endif
        }
        const float* w = params_[p].second.data<float>();
        double* sum = sums_[p].data<double>();
        const std::int64_t n = params_[p].second.numel();
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
        for (std::int64_t i = 0; i < n; ++i) sum[i] = averaging_accumulate(sum[i], w[i]);
    }
    ++count_;
}

namespace {

// out = f32(sum / count) elementwise, on the tensors' device (out: f32, sum: f64, same shape and device).
void averaging_write_mean(Tensor& out, const Tensor& sum, std::int64_t count) {
    if (out.device() == Device::cuda) {
#ifdef PGOLF_WITH_CUDA
        cuda_mean_from_f64(out, sum, count);
        return;
#else
        averaging_without_cuda("swa");
#endif
    }
    float* o = out.data<float>();
    const double* s = sum.data<double>();
    const auto divisor = static_cast<double>(count);
    const std::int64_t n = out.numel();
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
    for (std::int64_t i = 0; i < n; ++i) o[i] = averaging_mean(s[i], divisor);
}

}  // namespace

NamedTensors WeightAverage::mean() const {
    if (count_ == 0) throw Error("swa: no snapshot was taken, so there is no mean");
    NamedTensors result;
    result.reserve(params_.size());
    for (std::size_t p = 0; p < params_.size(); ++p) {
        Tensor out = Tensor::empty(params_[p].second.shape(), DType::f32, params_[p].second.device());
        averaging_write_mean(out, sums_[p], count_);
        result.emplace_back(params_[p].first, std::move(out));
    }
    return result;
}

void WeightAverage::apply_mean() {
    if (count_ == 0) throw Error("swa: no snapshot was taken, so there is no mean to apply");
    // Straight into the live storage: each element's mean depends on its own sum only.
    for (std::size_t p = 0; p < params_.size(); ++p) averaging_write_mean(params_[p].second, sums_[p], count_);
}

// ------------------------------------------------------------------------------------------------------------- EMA

ExponentialAverage::ExponentialAverage(NamedTensors params, double decay) : params_(std::move(params)), decay_(decay) {
    averaging_check_params(params_, "ema");
    if (!(decay >= 0.0 && decay <= 1.0)) {
        throw Error("ema: decay must lie in [0, 1] (got " + std::to_string(decay) + ")");
    }
    average_.reserve(params_.size());
    for (const auto& [name, tensor] : params_) average_.emplace_back(name, tensor.clone());
}

void ExponentialAverage::update() {
    // ema.mul_(d).add_(w, alpha=1 - d) with Python floats: d is rounded to f32, 1 - d is taken in double, then
    // rounded. Each product and the sum are rounded on their own (torch fuses the add into an FMA on CUDA and in its
    // vectorized CPU loop; the engine keeps the unfused order on both devices, as optim.cpp does for Adam).
    if (on_cuda(params_)) {
#ifdef PGOLF_WITH_CUDA
        for (std::size_t p = 0; p < params_.size(); ++p) cuda_ema_update(average_[p].second, params_[p].second, decay_);
        return;
#else
        averaging_without_cuda("ema");
#endif
    }
    const float d = averaging_ema_decay(decay_);
    const float one_minus_d = averaging_ema_weight(decay_);
    for (std::size_t p = 0; p < params_.size(); ++p) {
        const float* w = params_[p].second.data<float>();
        float* ema = average_[p].second.data<float>();
        const std::int64_t n = average_[p].second.numel();
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
        for (std::int64_t i = 0; i < n; ++i) ema[i] = averaging_ema_step(ema[i], w[i], d, one_minus_d);
    }
}

void ExponentialAverage::apply() {
    for (std::size_t p = 0; p < params_.size(); ++p) params_[p].second.copy_from(average_[p].second);
}

NamedTensors ExponentialAverage::state() const {
    NamedTensors result;
    result.reserve(average_.size());
    for (const auto& [name, tensor] : average_) result.emplace_back(name, tensor.clone());
    return result;
}

void ExponentialAverage::load_state(const NamedTensors& state) {
    std::map<std::string, std::size_t> index;
    for (std::size_t p = 0; p < average_.size(); ++p) index.emplace(average_[p].first, p);
    std::vector<const Tensor*> source(average_.size(), nullptr);
    for (const auto& [name, tensor] : state) {
        const auto it = index.find(name);
        if (it == index.end()) throw Error("ema: state entry '" + name + "' names no averaged parameter");
        const Tensor& target = average_[it->second].second;
        if (source[it->second] != nullptr) throw Error("ema: state entry '" + name + "' appears twice");
        if (!tensor.defined() || tensor.dtype() != DType::f32) {
            throw Error("ema: state entry '" + name + "' must be a defined f32 tensor");
        }
        if (tensor.shape() != target.shape()) {
            throw Error("ema: state entry '" + name + "' has shape " + shape_string(tensor.shape()) +
                        ", the parameter " + shape_string(target.shape()));
        }
        source[it->second] = &tensor;
    }
    for (std::size_t p = 0; p < average_.size(); ++p) {
        if (source[p] == nullptr) throw Error("ema: state has no entry for parameter '" + average_[p].first + "'");
    }
    // Validated in full before anything is written, so a rejected state leaves the average as it was.
    for (std::size_t p = 0; p < average_.size(); ++p) average_[p].second.copy_from(*source[p]);
}

}  // namespace pgolf
