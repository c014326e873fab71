// Per-element arithmetic of the fused optimizer updates (core/cuda/optim_update.cu), in the operation order of
// Adam::step and Sgd::step in model/optim.cpp (torch's single-tensor paths), so host and device reproduce them bit
// for bit. The options mirror AdamOptions and SgdOptions; core cannot include model/ headers.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/cuda/host_device.h"

namespace pgolf {

struct AdamUpdateOptions {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.0;
    bool decoupled_weight_decay = false;  // true: AdamW (W·(1 − lr·wd) first); false: wd·W added to the gradient
};

struct SgdUpdateOptions {
    double lr = 1e-3;
    double momentum = 0.0;
    double dampening = 0.0;
    double weight_decay = 0.0;  // added to the gradient, as torch.optim.SGD does
    bool nesterov = false;
};

// The per-step scalars of one Adam update, rounded to f32 where Adam::step rounds them.
struct AdamStepConstants {
    float beta1;
    float beta2;
    float one_minus_beta1;
    float one_minus_beta2;
    float eps;
    float weight_decay;   // coupled decay (added to the gradient)
    float decay_factor;   // decoupled decay: 1 − lr·wd
    float neg_step_size;  // −lr/(1 − β1^step)
    float bias_correction2_sqrt;
    bool coupled_decay;
    bool decoupled_decay;  // false when the factor is exactly 1, as Adam::step then skips the multiply
};

// step counts from 1 (the first update). The bias corrections are Python-float (double) arithmetic, as in torch.
inline AdamStepConstants adam_step_constants(const AdamUpdateOptions& options, std::int64_t step) {
    AdamStepConstants constants{};
    constants.beta1 = static_cast<float>(options.beta1);
    constants.beta2 = static_cast<float>(options.beta2);
    constants.one_minus_beta1 = static_cast<float>(1.0 - options.beta1);
    constants.one_minus_beta2 = static_cast<float>(1.0 - options.beta2);
    constants.eps = static_cast<float>(options.eps);
    constants.weight_decay = static_cast<float>(options.weight_decay);
    constants.coupled_decay = !options.decoupled_weight_decay && options.weight_decay != 0.0;
    constants.decay_factor = static_cast<float>(1.0 - options.lr * options.weight_decay);
    constants.decoupled_decay = options.decoupled_weight_decay && constants.decay_factor != 1.0f;
    const auto step_value = static_cast<double>(step);
    const double bias_correction1 = 1.0 - std::pow(options.beta1, step_value);
    const double bias_correction2 = 1.0 - std::pow(options.beta2, step_value);
    constants.neg_step_size = static_cast<float>(-(options.lr / bias_correction1));
    constants.bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
    return constants;
}

// One element of Adam/AdamW: updates w, exp_avg and exp_avg_sq in place.
PGOLF_HOST_DEVICE void adam_update_element(float& w, float grad, float& exp_avg, float& exp_avg_sq,
                                           const AdamStepConstants& c) {
    if (c.decoupled_decay) w = hd_mul(w, c.decay_factor);                              // p.mul_(1 − lr·wd)
    const float g = c.coupled_decay ? hd_add(grad, hd_mul(c.weight_decay, w)) : grad;  // grad.add(p, alpha=wd)
    exp_avg = hd_add(hd_mul(exp_avg, c.beta1), hd_mul(c.one_minus_beta1, g));
    exp_avg_sq = hd_add(hd_mul(exp_avg_sq, c.beta2), hd_mul(hd_mul(c.one_minus_beta2, g), g));
    const float denom = hd_add(hd_div(hd_sqrt(exp_avg_sq), c.bias_correction2_sqrt), c.eps);
    w = hd_add(w, hd_div(hd_mul(c.neg_step_size, exp_avg), denom));  // addcdiv_(m, denom, -step_size)
}

// The scalars of one SGD update, rounded to f32 as Sgd::step does.
struct SgdStepConstants {
    float momentum;
    float one_minus_dampening;
    float weight_decay;
    float neg_lr;
    bool has_weight_decay;
    bool has_momentum;
    bool nesterov;
};

inline SgdStepConstants sgd_step_constants(const SgdUpdateOptions& options) {
    SgdStepConstants constants{};
    constants.momentum = static_cast<float>(options.momentum);
    constants.one_minus_dampening = static_cast<float>(1.0 - options.dampening);
    constants.weight_decay = static_cast<float>(options.weight_decay);
    constants.neg_lr = static_cast<float>(-options.lr);
    constants.has_weight_decay = options.weight_decay != 0.0;
    constants.has_momentum = options.momentum != 0.0;
    constants.nesterov = options.nesterov;
    return constants;
}

// One element of SGD: updates w and (with momentum) buffer in place. On the first step the buffer becomes the
// direction itself, with no dampening (torch clones d_p).
PGOLF_HOST_DEVICE void sgd_update_element(float& w, float grad, float& buffer, bool first_step,
                                          const SgdStepConstants& c) {
    float direction = c.has_weight_decay ? hd_add(grad, hd_mul(c.weight_decay, w)) : grad;
    if (c.has_momentum) {
        buffer = first_step ? direction : hd_add(hd_mul(buffer, c.momentum), hd_mul(c.one_minus_dampening, direction));
        direction = c.nesterov ? hd_add(direction, hd_mul(c.momentum, buffer)) : buffer;
    }
    w = hd_add(w, hd_mul(c.neg_lr, direction));  // p.add_(d, alpha=-lr)
}

}  // namespace pgolf
