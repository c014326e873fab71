// Reverse-mode autograd: a Var holds a value and (once backward reaches it) a gradient; a Tape records one backward
// closure per op during the forward pass and replays them in reverse. Gradients accumulate (+=), so a weight used
// twice (recurrent blocks) or across micro-batches sums its contributions until zero_grad().
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pgolf {

class Var {
public:
    Var() = default;
    explicit Var(Tensor value, bool requires_grad = false);

    bool defined() const { return node_ != nullptr; }
    const Tensor& value() const;
    Tensor& value();
    const Shape& shape() const { return value().shape(); }
    bool requires_grad() const;

    // Undefined until a backward pass has reached this Var (or after zero_grad).
    const Tensor& grad() const;
    bool has_grad() const;
    // grad += g (allocating zeros of the value's shape and dtype on first use).
    void accumulate_grad(const Tensor& g) const;  // const: a Var is a handle; the node is shared
    // The same for a gradient the caller gives up: when it is the first one and nothing else holds its storage (a
    // fresh op result, not a view of another gradient), it becomes the gradient without a copy.
    void accumulate_grad(Tensor&& g) const;
    // grad[index] += g along axis 0 (g has the value's shape without its first axis); the rest of grad is untouched.
    void accumulate_grad_slice(std::int64_t index, const Tensor& g) const;
    void zero_grad() const;

    bool same(const Var& other) const { return node_ == other.node_; }

private:
    struct Node {
        Tensor value;
        Tensor grad;
        bool requires_grad = false;
    };
    std::shared_ptr<Node> node_;
};

// Records backward closures in forward order. A null Tape* given to an op means "no gradient": nothing is recorded
// (evaluation). The tape keeps every activation its closures captured alive until clear() or the next backward().
class Tape {
public:
    void record(std::function<void()> backward);
    // Seeds d(loss)/d(loss) = seed (loss must have one element), runs every closure in reverse, then clears.
    void backward(const Var& loss, double seed = 1.0);
    void clear() { closures_.clear(); }
    std::size_t size() const { return closures_.size(); }

private:
    std::vector<std::function<void()>> closures_;
};

// Whether an op with these inputs needs to record a backward step.
bool autograd_needs_grad(const Tape* tape, std::initializer_list<const Var*> inputs);

}  // namespace pgolf
