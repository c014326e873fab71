// Error-check macros for every CUDA runtime, cuBLAS(Lt), cuDNN and NCCL call: a failure throws pgolf::Error naming the
// library, the status, the call and file:line. Include only from CUDA-backend sources; cuDNN and NCCL sources include
// their own library header first (the macros name its status-to-text function).
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "core/cuda/error_text.h"

#define PGOLF_CUDA_CHECK(expression)                                                                     \
    do {                                                                                                 \
        const cudaError_t pgolf_status_ = (expression);                                                  \
        if (pgolf_status_ != cudaSuccess) {                                                              \
            ::pgolf::cuda_throw_error("CUDA", cudaGetErrorString(pgolf_status_), #expression, __FILE__, \
                                      __LINE__);                                                         \
        }                                                                                                \
    } while (0)

// After a kernel launch: launch-configuration errors surface here, at the launching line.
#define PGOLF_CUDA_CHECK_LAUNCH() PGOLF_CUDA_CHECK(cudaGetLastError())

#define PGOLF_CUBLAS_CHECK(expression)                                                                          \
    do {                                                                                                        \
        const cublasStatus_t pgolf_status_ = (expression);                                                      \
        if (pgolf_status_ != CUBLAS_STATUS_SUCCESS) {                                                           \
            ::pgolf::cuda_throw_error("cuBLAS", cublasGetStatusString(pgolf_status_), #expression, __FILE__, \
                                      __LINE__);                                                                \
        }                                                                                                       \
    } while (0)

#define PGOLF_CUDNN_CHECK(expression)                                                                       \
    do {                                                                                                    \
        const cudnnStatus_t pgolf_status_ = (expression);                                                   \
        if (pgolf_status_ != CUDNN_STATUS_SUCCESS) {                                                        \
            ::pgolf::cuda_throw_error("cuDNN", cudnnGetErrorString(pgolf_status_), #expression, __FILE__, \
                                      __LINE__);                                                            \
        }                                                                                                   \
    } while (0)

#define PGOLF_NCCL_CHECK(expression)                                                                      \
    do {                                                                                                  \
        const ncclResult_t pgolf_status_ = (expression);                                                  \
        if (pgolf_status_ != ncclSuccess) {                                                               \
            ::pgolf::cuda_throw_error("NCCL", ncclGetErrorString(pgolf_status_), #expression, __FILE__, \
                                      __LINE__);                                                          \
        }                                                                                                 \
    } while (0)
