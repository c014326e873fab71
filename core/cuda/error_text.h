// The one-line message of a failed CUDA, cuBLAS, cuDNN or NCCL call: library, status text, the call as written, and
// file:line from the source root. Plain C++ (no CUDA headers), so it is built and tested on every machine.
#pragma once

#include <string>

namespace pgolf {

// "CUDA error: out of memory in cudaMalloc(&pointer, bytes) at core/cuda/memory.cu:41"
std::string cuda_error_message(const char* library, const std::string& status, const char* expression, const char* file,
                               int line);
// Throws pgolf::Error carrying cuda_error_message(...).
[[noreturn]] void cuda_throw_error(const char* library, const std::string& status, const char* expression,
                                   const char* file, int line);

}  // namespace pgolf
