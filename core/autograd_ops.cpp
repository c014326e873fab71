// Autograd wrappers over the CPU kernels. Each backward closure captures what it needs by value (Vars share their
// nodes), reads the output's gradient and accumulates into the inputs that require one.
#include "core/autograd_ops.h"

#include "core/error.h"
#include "core/profile.h"
#include "core/ops/elementwise.h"
#include "core/ops/embedding.h"
#include "core/ops/linear.h"
#include "core/ops/loss.h"
#include "core/ops/norm.h"

namespace pgolf::ag {

namespace {

Var make_output(Tensor value, bool needs_grad) { return Var(std::move(value), needs_grad); }

}  // namespace

Var linear(Tape* tape, const Var& x, const Var& w) {
    const bool needs = autograd_needs_grad(tape, {&x, &w});
    const double flops = 2.0 * static_cast<double>(x.value().numel()) * static_cast<double>(w.value().size(0));
    ProfileScope scope("linear", flops);
    Var y = make_output(linear_forward(x.value(), w.value()), needs);
    if (needs) {
        tape->record([x, w, y, flops]() {
            if (!y.has_grad()) return;
            const int products = (x.requires_grad() ? 1 : 0) + (w.requires_grad() ? 1 : 0);
            ProfileScope backward_scope("linear backward", flops * products);
            LinearGrads grads = linear_backward(x.value(), w.value(), y.grad(), x.requires_grad(), w.requires_grad());
            if (x.requires_grad()) x.accumulate_grad(grads.dx);
            if (w.requires_grad()) w.accumulate_grad(grads.dw);
        });
    }
    return y;
}

Var embedding(Tape* tape, const Var& table, const Tensor& ids) {
    ProfileScope scope("embedding");
    const bool needs = autograd_needs_grad(tape, {&table});
    Var y = make_output(embedding_forward(table.value(), ids), needs);
    if (needs) {
        tape->record([table, ids, y]() {
            ProfileScope backward_scope("embedding backward");
            if (!y.has_grad()) return;
            table.accumulate_grad(embedding_backward(y.grad(), ids, table.value().size(0)));
        });
    }
    return y;
}

Var add(Tape* tape, const Var& a, const Var& b) {
    ProfileScope scope("add");
    const bool needs = autograd_needs_grad(tape, {&a, &b});
    Var y = make_output(pgolf::add(a.value(), b.value()), needs);
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
    Var y = make_output(pgolf::scale(x.value(), factor), needs);
    if (needs) {
        tape->record([x, y, factor]() {
            ProfileScope backward_scope("scale backward");
            if (y.has_grad()) x.accumulate_grad(pgolf::scale(y.grad(), factor));
        });
    }
    return y;
}

Var mul_broadcast(Tape* tape, const Var& x, const Var& g, std::int64_t axis) {
    ProfileScope scope("mul_broadcast");
    const bool needs = autograd_needs_grad(tape, {&x, &g});
    Var y = make_output(pgolf::mul_broadcast(x.value(), g.value(), axis), needs);
    if (needs) {
        tape->record([x, g, y, axis]() {
            ProfileScope backward_scope("mul_broadcast backward");
            if (!y.has_grad()) return;
            MulBroadcastGrads grads = mul_broadcast_backward(x.value(), g.value(), axis, y.grad());
            if (x.requires_grad()) x.accumulate_grad(grads.dx);
            if (g.requires_grad()) g.accumulate_grad(grads.dg);
        });
    }
    return y;
}

Var relu_squared(Tape* tape, const Var& x) {
    ProfileScope scope("relu_squared");
    const bool needs = autograd_needs_grad(tape, {&x});
    Var y = make_output(pgolf::relu_squared(x.value()), needs);
    if (needs) {
        tape->record([x, y]() {
            ProfileScope backward_scope("relu_squared backward");
            if (y.has_grad()) x.accumulate_grad(relu_squared_backward(x.value(), y.grad()));
        });
    }
    return y;
}

Var leaky_relu_squared(Tape* tape, const Var& x, double slope) {
    ProfileScope scope("leaky_relu_squared");
    const bool needs = autograd_needs_grad(tape, {&x});
    Var y = make_output(pgolf::leaky_relu_squared(x.value(), slope), needs);
    if (needs) {
        tape->record([x, y, slope]() {
            ProfileScope backward_scope("leaky_relu_squared backward");
            if (y.has_grad()) x.accumulate_grad(leaky_relu_squared_backward(x.value(), slope, y.grad()));
        });
    }
    return y;
}

Var rmsnorm(Tape* tape, const Var& x, double eps, double factor) {
    ProfileScope scope("rmsnorm");
    const bool needs = autograd_needs_grad(tape, {&x});
    RmsNormResult result = rmsnorm_forward(x.value(), eps, factor);
    Var y = make_output(result.y, needs);
    if (needs) {
        tape->record([x, y, rstd = result.rstd, factor]() {
            ProfileScope backward_scope("rmsnorm backward");
            if (y.has_grad()) x.accumulate_grad(rmsnorm_backward(x.value(), rstd, y.grad(), factor));
        });
    }
    return y;
}

Var rope(Tape* tape, const Var& x, const RopeSpec& spec) {
    ProfileScope scope("rope");
    const bool needs = autograd_needs_grad(tape, {&x});
    Var y = make_output(rope_forward(x.value(), spec), needs);
    if (needs) {
        tape->record([x, y, spec]() {
            ProfileScope backward_scope("rope backward");
            if (y.has_grad()) x.accumulate_grad(rope_backward(y.grad(), spec));
        });
    }
    return y;
}

Var attention(Tape* tape, const Var& q, const Var& k, const Var& v, double scale) {
    ProfileScope scope("attention");
    const bool needs = autograd_needs_grad(tape, {&q, &k, &v});
    AttentionResult result = attention_forward(q.value(), k.value(), v.value(), scale, true);
    Var y = make_output(result.y, needs);
    if (needs) {
        tape->record([q, k, v, y, result, scale]() {
            ProfileScope backward_scope("attention backward");
            if (!y.has_grad()) return;
            AttentionGrads grads = attention_backward(q.value(), k.value(), v.value(), result, y.grad(), scale, true);
            if (q.requires_grad()) q.accumulate_grad(grads.dq);
            if (k.requires_grad()) k.accumulate_grad(grads.dk);
            if (v.requires_grad()) v.accumulate_grad(grads.dv);
        });
    }
    return y;
}

Var permute_0213(Tape* tape, const Var& x) {
    ProfileScope scope("permute");
    const bool needs = autograd_needs_grad(tape, {&x});
    Var y = make_output(pgolf::permute_0213(x.value()), needs);
    if (needs) {
        tape->record([x, y]() {
            ProfileScope backward_scope("permute backward");
            if (y.has_grad()) x.accumulate_grad(pgolf::permute_0213(y.grad()));
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
    if (x.value().dim() != 2) throw Error("row: expected a 2-D tensor, got " + shape_string(x.shape()));
    const std::int64_t width = x.value().size(1);
    const bool needs = autograd_needs_grad(tape, {&x});
    Var y = make_output(x.value().rows(index, index + 1).reshape({width}), needs);
    if (needs) {
        tape->record([x, y, index, width]() {
            ProfileScope backward_scope("row backward");
            if (!y.has_grad()) return;
            Tensor full = Tensor::zeros(x.shape(), x.value().dtype());
            full.rows(index, index + 1).copy_from(y.grad().reshape({1, width}));
            x.accumulate_grad(full);
        });
    }
    return y;
}

Var softcap_cross_entropy(Tape* tape, const Var& logits, const Tensor& targets, double cap) {
    ProfileScope scope("cross_entropy");
    const bool needs = autograd_needs_grad(tape, {&logits});
    Var nll = make_output(softcap_cross_entropy_forward(logits.value(), targets, cap), needs);
    if (needs) {
        tape->record([logits, targets, nll, cap]() {
            ProfileScope backward_scope("cross_entropy backward");
            if (nll.has_grad()) {
                logits.accumulate_grad(softcap_cross_entropy_backward(logits.value(), targets, nll.grad(), cap));
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
    Tensor total = sum_all(x.value());
    Var y = make_output(pgolf::scale(total, 1.0 / static_cast<double>(count)), needs);
    if (needs) {
        tape->record([x, y, count]() {
            ProfileScope backward_scope("mean backward");
            if (!y.has_grad()) return;
            x.accumulate_grad(Tensor::full(x.shape(), y.grad().item(0) / static_cast<double>(count),
                                           x.value().dtype()));
        });
    }
    return y;
}

}  // namespace pgolf::ag
