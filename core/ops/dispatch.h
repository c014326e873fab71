// Runs a kernel templated on the scalar type for an f32 or f64 tensor: f(float{}) or f(double{}). Callers check the
// dtype first (tensor_check_floating), so anything that is not f32 is f64 here.
#pragma once

#include "core/tensor.h"

namespace pgolf {

template <typename F> void dispatch_floating(DType dtype, F&& f) {
    if (dtype == DType::f32) {
        f(float{});
    } else {
        f(double{});
    }
}

}  // namespace pgolf
