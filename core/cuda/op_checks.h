// Argument checks shared by the CUDA op entry points (plain C++, so host code can call them too).
#pragma once

#include <string>

#include "core/error.h"
#include "core/tensor.h"

namespace pgolf {

// A cuda tensor of dtype f32 or bf16; otherwise pgolf::Error naming the op and argument.
inline void cuda_check_float_input(const Tensor& tensor, const char* op, const char* name) {
    tensor_check_device(tensor, Device::cuda, op, name);
    if (tensor.dtype() != DType::f32 && tensor.dtype() != DType::bf16) {
        throw Error(std::string(op) + ": " + name + " must be f32 or bf16 on cuda, not " + dtype_name(tensor.dtype()));
    }
}

// A cuda tensor of exactly this dtype.
inline void cuda_check_input(const Tensor& tensor, DType dtype, const char* op, const char* name) {
    tensor_check_device(tensor, Device::cuda, op, name);
    tensor_check_dtype(tensor, dtype, op, name);
}

}  // namespace pgolf
