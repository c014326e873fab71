// Autograd wrappers over the kernels of core/device_ops.h (the CPU reference, or CUDA for cuda tensors). Each backward
// closure captures what it needs by value (Vars share their nodes), reads the output's gradient and accumulates into
// the inputs that require one.
#include "core/autograd_ops.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/device_ops.h"
#include "core/error.h"
#include "core/ops/elementwise.h"
#include "core/ops/embedding.h"
#include "core/ops/fake_quant.h"
#include "core/ops/linear.h"
#include "core/ops/loss.h"
#include "core/ops/norm.h"
#include "core/ops/smear.h"
#include "core/ops/xsa.h"
#include "core/profile.h"

namespace pgolf::ag {

namespace {

Var make_output(Tensor value, bool needs_grad) { return Var(std::move(value), needs_grad); }

}  // namespace

Var linear(Tape* tape, const Var& x, const Var& w) {
    const bool needs = autograd_needs_grad(tape, {&x, &w});
    const double flops = 2.0 * static_cast<double>(x.value().numel()) * static_cast<double>(w.value().size(0));
    ProfileScope scope("linear", flops);
    Var y = make_output(device_linear_forward(x.value(), w.value()), needs);
    if (needs) {
        tape->record([x, w, y, flops]() {
            if (!y.has_grad()) return;
            const int products = (x.requires_grad() ? 1 : 0) + (w.requires_grad() ? 1 : 0);
            ProfileScope backward_scope("linear backward", flops * products);
            LinearGrads grads =
                device_linear_backward(x.value(), w.value(), y.grad(), x.requires_grad(), w.requires_grad());
            if (x.requires_grad()) x.accumulate_grad(std::move(grads.dx));
            if (w.requires_grad()) w.accumulate_grad(std::move(grads.dw));
        });
    }
    return y;
}

Var embedding(Tape* tape, const Var& table, const Tensor& ids) {
    ProfileScope scope("embedding");
    const bool needs = autograd_needs_grad(tape, {&table});
    Var y = make_output(device_embedding_forward(table.value(), ids), needs);
    if (needs) {
        tape->record([table, ids, y]() {
            ProfileScope backward_scope("embedding backward");
            if (!y.has_grad()) return;
            table.accumulate_grad(device_embedding_backward(y.grad(), ids, table.value().size(0)));
        });
    }
    return y;
}

Var add(Tape* tape, const Var& a, const Var& b) {
    ProfileScope scope("add");
    const bool needs = autograd_needs_grad(tape, {&a, &b});
    Var y = make_output(device_add(a.value(), b.value()), needs);
    if (needs) {
        tape->record([a, b, y]() {
            ProfileScope backward_scope("add backward");
            if (!y.has_grad()) return;
            if (a.requires_grad()) a.accumulate_grad(y.grad());
            if (b.requires_grad()) b.accumulate_grad(y.grad());
        });
    }
    return y;
}

Var scale(Tape* tape, const Var& x, double factor) {
    ProfileScope scope("scale");
    const bool needs = autograd_needs_grad(tape, {&x});
    Var y = make_output(device_scale(x.value(), factor), needs);
    if (needs) {
        tape->record([x, y, factor]() {
            ProfileScope backward_scope("scale backward");
            if (y.has_grad()) x.accumulate_grad(device_scale(y.grad(), factor));
        });
    }
    return y;
}

Var mul_broadcast(Tape* tape, const Var& x, const Var& g, std::int64_t axis) {
    ProfileScope scope("mul_broadcast");
    const bool needs = autograd_needs_grad(tape, {&x, &g});
    Var y = make_output(device_mul_broadcast(x.value(), g.value(), axis), needs);
    if (needs) {
        tape->record([x, g, y, axis]() {
            ProfileScope backward_scope("mul_broadcast backward");
            if (!y.has_grad()) return;
            MulBroadcastGrads grads = device_mul_broadcast_backward(x.value(), g.value(), axis, y.grad());
            if (x.requires_grad()) x.accumulate_grad(std::move(grads.dx));
            if (g.requires_grad()) g.accumulate_grad(std::move(grads.dg));
        });
    }
    return y;
}

Var residual_mix(Tape* tape, const Var& x, const Var& x0, const Var& mix) {
    if (x.value().device() == Device::cpu) {
        return add(tape, mul_broadcast(tape, x, row(tape, mix, 0), -1), mul_broadcast(tape, x0, row(tape, mix, 1), -1));
    }
    ProfileScope scope("residual_mix");
    const bool needs = autograd_needs_grad(tape, {&x, &x0, &mix});
    Var y = make_output(device_residual_mix(x.value(), x0.value(), mix.value()), needs);
    if (needs) {
        tape->record([x, x0, mix, y]() {
            ProfileScope backward_scope("residual_mix backward");
            if (!y.has_grad()) return;
            ResidualMixGrads grads = device_residual_mix_backward(x.value(), x0.value(), mix.value(), y.grad());
            if (x.requires_grad()) x.accumulate_grad(std::move(grads.dx));
            if (x0.requires_grad()) x0.accumulate_grad(std::move(grads.dx0));
            if (mix.requires_grad()) mix.accumulate_grad(std::move(grads.dmix));
        });
    }
    return y;
}

Var residual_add_scaled(Tape* tape, const Var& x, const Var& y, const Var& g) {
    if (x.value().device() == Device::cpu) return add(tape, x, mul_broadcast(tape, y, g, -1));
    ProfileScope scope("residual_add_scaled");
    const bool needs = autograd_needs_grad(tape, {&x, &y, &g});
    Var out = make_output(device_residual_add_scaled(x.value(), y.value(), g.value()), needs);
    if (needs) {
        tape->record([x, y, g, out]() {
            ProfileScope backward_scope("residual_add_scaled backward");
            if (!out.has_grad()) return;
            ResidualAddScaledGrads grads = device_residual_add_scaled_backward(y.value(), g.value(), out.grad());
            if (x.requires_grad()) x.accumulate_grad(std::move(grads.dx));
            if (y.requires_grad()) y.accumulate_grad(std::move(grads.dy));
            if (g.requires_grad()) g.accumulate_grad(std::move(grads.dg));
        });
    }
    return out;
}

Var relu_squared(Tape* tape, const Var& x) {
    ProfileScope scope("relu_squared");
    const bool needs = autograd_needs_grad(tape, {&x});
    Var y = make_output(device_relu_squared(x.value()), needs);
    if (needs) {
        tape->record([x, y]() {
            ProfileScope backward_scope("relu_squared backward");
            if (y.has_grad()) x.accumulate_grad(device_relu_squared_backward(x.value(), y.grad()));
        });
    }
    return y;
}

Var leaky_relu_squared(Tape* tape, const Var& x, double slope) {
    ProfileScope scope("leaky_relu_squared");
    const bool needs = autograd_needs_grad(tape, {&x});
    Var y = make_output(device_leaky_relu_squared(x.value(), slope), needs);
    if (needs) {
        tape->record([x, y, slope]() {
            ProfileScope backward_scope("leaky_relu_squared backward");
            if (y.has_grad()) x.accumulate_grad(device_leaky_relu_squared_backward(x.value(), slope, y.grad()));
        });
    }
    return y;
}

Var rmsnorm(Tape* tape, const Var& x, double eps, double factor) {
    ProfileScope scope("rmsnorm");
    const bool needs = autograd_needs_grad(tape, {&x});
    RmsNormResult result = device_rmsnorm_forward(x.value(), eps, factor);
    Var y = make_output(result.y, needs);
    if (needs) {
        tape->record([x, y, rstd = result.rstd, factor]() {
            ProfileScope backward_scope("rmsnorm backward");
            if (y.has_grad()) x.accumulate_grad(device_rmsnorm_backward(x.value(), rstd, y.grad(), factor));
        });
    }
    return y;
}

Var rope(Tape* tape, const Var& x, const RopeSpec& spec) {
    ProfileScope scope("rope");
    const bool needs = autograd_needs_grad(tape, {&x});
    Var y = make_output(device_rope_forward(x.value(), spec), needs);
    if (needs) {
        tape->record([x, y, spec]() {
            ProfileScope backward_scope("rope backward");
            if (y.has_grad()) x.accumulate_grad(device_rope_backward(y.grad(), spec));
        });
    }
    return y;
}

Var attention(Tape* tape, const Var& q, const Var& k, const Var& v, double scale) {
    ProfileScope scope("attention");
    const bool needs = autograd_needs_grad(tape, {&q, &k, &v});
    AttentionResult result = device_attention_forward(q.value(), k.value(), v.value(), scale);
    Var y = make_output(result.y, needs);
    if (needs) {
        tape->record([q, k, v, y, result, scale]() {
            ProfileScope backward_scope("attention backward");
            if (!y.has_grad()) return;
            AttentionGrads grads = device_attention_backward(q.value(), k.value(), v.value(), result, y.grad(), scale);
            if (q.requires_grad()) q.accumulate_grad(std::move(grads.dq));
            if (k.requires_grad()) k.accumulate_grad(std::move(grads.dk));
            if (v.requires_grad()) v.accumulate_grad(std::move(grads.dv));
        });
    }
    return y;
}

Var permute_0213(Tape* tape, const Var& x) {
    ProfileScope scope("permute");
    const bool needs = autograd_needs_grad(tape, {&x});
    Var y = make_output(device_permute_0213(x.value()), needs);
    if (needs) {
        tape->record([x, y]() {
            ProfileScope backward_scope("permute backward");
            if (y.has_grad()) x.accumulate_grad(device_permute_0213(y.grad()));
        });
    }
    return y;
}

Var reshape(Tape* tape, const Var& x, const Shape& shape) {
    ProfileScope scope("reshape");
    const bool needs = autograd_needs_grad(tape, {&x});
    Var y = make_output(x.value().reshape(shape), needs);
    if (needs) {
        tape->record([x, y]() {
            ProfileScope backward_scope("reshape backward");
            if (y.has_grad()) x.accumulate_grad(y.grad().reshape(x.shape()));
        });
    }
    return y;
}

Var row(Tape* tape, const Var& x, std::int64_t index) {
    ProfileScope scope("row");
    if (x.value().dim() < 2) throw Error("row: expected at least 2 axes, got " + shape_string(x.shape()));
    if (index < 0 || index >= x.value().size(0)) {
        throw Error("row: index " + std::to_string(index) + " outside " + shape_string(x.shape()));
    }
    const Shape slice_shape(x.shape().begin() + 1, x.shape().end());
    const bool needs = autograd_needs_grad(tape, {&x});
    Var y = make_output(x.value().rows(index, index + 1).reshape(slice_shape), needs);
    if (needs) {
        tape->record([x, y, index]() {
            ProfileScope backward_scope("row backward");
            if (y.has_grad()) x.accumulate_grad_slice(index, y.grad());
        });
    }
    return y;
}

Var softcap_cross_entropy(Tape* tape, const Var& logits, const Tensor& targets, double cap) {
    ProfileScope scope("cross_entropy");
    const bool needs = autograd_needs_grad(tape, {&logits});
    Var nll = make_output(device_softcap_cross_entropy_forward(logits.value(), targets, cap), needs);
    if (needs) {
        tape->record([logits, targets, nll, cap]() {
            ProfileScope backward_scope("cross_entropy backward");
            if (nll.has_grad()) {
                logits.accumulate_grad(device_softcap_cross_entropy_backward(logits.value(), targets, nll.grad(), cap));
            }
        });
    }
    return nll;
}

Var mean(Tape* tape, const Var& x) {
    ProfileScope scope("mean");
    const bool needs = autograd_needs_grad(tape, {&x});
    const std::int64_t count = x.value().numel();
    if (count == 0) throw Error("mean: empty tensor");
    Tensor total = device_sum_all(x.value());
    Var y = make_output(device_scale(total, 1.0 / static_cast<double>(count)), needs);
    if (needs) {
        tape->record([x, y]() {
            ProfileScope backward_scope("mean backward");
            if (!y.has_grad()) return;
            x.accumulate_grad(device_mean_backward(x.value(), y.grad()));
        });
    }
    return y;
}

Var xsa(Tape* tape, const Var& y, const Var& v) {
    ProfileScope scope("xsa");
    const bool needs = autograd_needs_grad(tape, {&y, &v});
    Var out = make_output(device_xsa_forward(y.value(), v.value()), needs);
    if (needs) {
        tape->record([y, v, out]() {
            if (!out.has_grad()) return;
            ProfileScope backward_scope("xsa backward");
            XsaGrads grads = device_xsa_backward(y.value(), v.value(), out.grad());
            if (y.requires_grad()) y.accumulate_grad(std::move(grads.dy));
            if (v.requires_grad()) v.accumulate_grad(std::move(grads.dv));
        });
    }
    return out;
}

Var smear(Tape* tape, const Var& h, const Var& g) {
    ProfileScope scope("smear");
    const bool needs = autograd_needs_grad(tape, {&h, &g});
    Var out = make_output(device_smear_forward(h.value(), g.value()), needs);
    if (needs) {
        tape->record([h, g, out]() {
            if (!out.has_grad()) return;
            ProfileScope backward_scope("smear backward");
            SmearGrads grads = device_smear_backward(h.value(), g.value(), out.grad());
            if (h.requires_grad()) h.accumulate_grad(std::move(grads.dh));
            if (g.requires_grad()) g.accumulate_grad(std::move(grads.dg));
        });
    }
    return out;
}

Var fake_quantize(Tape* tape, const Var& w, const FakeQuantSpec& spec) {
    ProfileScope scope("fake_quantize");
    const bool needs = autograd_needs_grad(tape, {&w});
    Var out = make_output(device_fake_quantize_rows(w.value(), spec), needs);
    if (needs) {
        tape->record([w, out]() {
            if (out.has_grad()) w.accumulate_grad(out.grad());  // straight through
        });
    }
    return out;
}

Var jacobian_proxy(Tape* tape, const Var& h_in, const Var& h_out, double lambda) {
    if (h_in.shape() != h_out.shape()) throw Error("jacobian_proxy: h_in and h_out differ in shape");
    if (h_in.value().device() != Device::cpu) {
        throw Error(
            "jacobian_proxy: S2's Jacobian proxy loss runs on the CPU only (JACOBIAN_LAMBDA=0 to train on cuda)");
    }
    const bool needs = autograd_needs_grad(tape, {&h_in, &h_out});
    const std::vector<double> in = h_in.value().to_doubles();
    const std::vector<double> out = h_out.value().to_doubles();
    double delta_squares = 0.0;
    double in_squares = 0.0;
    for (std::size_t i = 0; i < in.size(); ++i) {
        delta_squares += (out[i] - in[i]) * (out[i] - in[i]);
        in_squares += in[i] * in[i];
    }
    const double delta_norm = std::sqrt(delta_squares);
    const double in_norm = std::sqrt(in_squares);
    const double denominator = in_norm + 1e-6;
    const double ratio = delta_norm / denominator;
    const double excess = std::max(0.0, ratio - 1.0);
    Var loss = make_output(Tensor::scalar(lambda * excess * excess, h_in.value().dtype()), needs);
    if (needs && excess > 0) {
        tape->record([h_in, h_out, loss, lambda, excess, delta_norm, in_norm, denominator, in, out]() {
            if (!loss.has_grad()) return;
            // dL/dr = 2λ(r − 1); r = ‖Δ‖/(‖h_in‖ + ε) with Δ = h_out − h_in.
            const double upstream = loss.grad().item(0) * 2.0 * lambda * excess;
            const double d_delta = delta_norm > 0 ? upstream / (delta_norm * denominator) : 0.0;
            const double d_in_norm = in_norm > 0 ? -upstream * delta_norm / (denominator * denominator * in_norm) : 0.0;
            Tensor grad_out = Tensor::empty(h_out.shape(), h_out.value().dtype());
            Tensor grad_in = Tensor::empty(h_in.shape(), h_in.value().dtype());
            for (std::size_t i = 0; i < in.size(); ++i) {
                const double along_delta = d_delta * (out[i] - in[i]);
                grad_out.set_item(static_cast<std::int64_t>(i), along_delta);
                grad_in.set_item(static_cast<std::int64_t>(i), -along_delta + d_in_norm * in[i]);
            }
            if (h_out.requires_grad()) h_out.accumulate_grad(grad_out);
            if (h_in.requires_grad()) h_in.accumulate_grad(grad_in);
        });
    }
    return loss;
}

}  // namespace pgolf::ag
