// Var storage and the tape's reverse replay.
#include "core/autograd.h"

#include "core/device_ops.h"
#include "core/error.h"

namespace pgolf {

Var::Var(Tensor value, bool requires_grad) : node_(std::make_shared<Node>()) {
    node_->value = std::move(value);
    node_->requires_grad = requires_grad;
}

const Tensor& Var::value() const {
    if (!node_) throw Error("autograd: use of an undefined Var");
    return node_->value;
}

Tensor& Var::value() {
    if (!node_) throw Error("autograd: use of an undefined Var");
    return node_->value;
}

bool Var::requires_grad() const { return node_ != nullptr && node_->requires_grad; }

const Tensor& Var::grad() const {
    if (!node_) throw Error("autograd: use of an undefined Var");
    return node_->grad;
}

bool Var::has_grad() const { return node_ != nullptr && node_->grad.defined(); }

void Var::accumulate_grad(const Tensor& g) const {
    if (!node_) throw Error("autograd: use of an undefined Var");
    if (g.shape() != node_->value.shape()) {
        throw Error("autograd: gradient of shape " + shape_string(g.shape()) + " for a value of shape " +
                    shape_string(node_->value.shape()));
    }
    if (!node_->grad.defined()) {
        node_->grad = g.dtype() == node_->value.dtype() ? g.clone() : g.to(node_->value.dtype());
        return;
    }
    device_add_into(node_->grad, g);
}

void Var::accumulate_grad(Tensor&& g) const {
    if (node_ && !node_->grad.defined() && g.defined() && !g.storage_shared() && g.dtype() == node_->value.dtype() &&
        g.device() == node_->value.device() && g.shape() == node_->value.shape()) {
        node_->grad = std::move(g);
        return;
    }
    accumulate_grad(static_cast<const Tensor&>(g));
}

void Var::accumulate_grad_slice(std::int64_t index, const Tensor& g) const {
    if (!node_) throw Error("autograd: use of an undefined Var");
    const Tensor& value = node_->value;
    if (value.dim() < 1 || index < 0 || index >= value.size(0) || g.numel() * value.size(0) != value.numel()) {
        throw Error("autograd: slice gradient of shape " + shape_string(g.shape()) + " for row " +
                    std::to_string(index) + " of " + shape_string(value.shape()));
    }
    if (!node_->grad.defined()) node_->grad = Tensor::zeros(value.shape(), value.dtype(), value.device());
    Tensor slice = node_->grad.rows(index, index + 1);  // a view: adding into it updates grad
    device_add_into(slice,
                    g.dtype() == value.dtype() ? g.reshape(slice.shape()) : g.to(value.dtype()).reshape(slice.shape()));
}

void Var::zero_grad() const {
    if (node_) node_->grad = Tensor();
}

void Tape::record(std::function<void()> backward) { closures_.push_back(std::move(backward)); }

void Tape::backward(const Var& loss, double seed) {
    if (loss.value().numel() != 1) {
        throw Error("autograd: backward needs a one-element loss, got shape " + shape_string(loss.shape()));
    }
    if (!loss.requires_grad()) throw Error("autograd: the loss does not depend on any parameter");
    loss.accumulate_grad(device_full(loss.shape(), seed, loss.value().dtype(), loss.value().device()));
    for (auto closure = closures_.rbegin(); closure != closures_.rend(); ++closure) (*closure)();
    closures_.clear();
}

bool autograd_needs_grad(const Tape* tape, std::initializer_list<const Var*> inputs) {
    if (tape == nullptr) return false;
    for (const Var* input : inputs) {
        if (input != nullptr && input->requires_grad()) return true;
    }
    return false;
}

}  // namespace pgolf
