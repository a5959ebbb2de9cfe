// cuda/cuda_check.h
// defines: RC_CUDA_CHECK, RC_CUBLAS_CHECK and RC_CUDA_CHECK_LAUNCH, which turn a failed CUDA
// runtime / cuBLAS status into a rankclip::Error naming the call, the file and the line.
// Every CUDA and cuBLAS call of the backend goes through one of them.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "engine/error.h"

namespace rankclip {

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* call, const char* file,
                                          int line) {
    throw Error(str_cat("CUDA error ", cudaGetErrorName(err), " (", cudaGetErrorString(err),
                        ") in ", call, " at ", file, ":", line));
}

[[noreturn]] inline void throw_cublas_error(cublasStatus_t status, const char* call,
                                            const char* file, int line) {
    throw Error(str_cat("cuBLAS error ", cublasGetStatusName(status), " (",
                        cublasGetStatusString(status), ") in ", call, " at ", file, ":", line));
}

}  // namespace rankclip

#define RC_CUDA_CHECK(call)                                                        \
    do {                                                                           \
        cudaError_t rc_err_ = (call);                                              \
        if (rc_err_ != cudaSuccess) {                                              \
            cudaGetLastError(); /* clear it when it is not sticky */               \
            ::rankclip::throw_cuda_error(rc_err_, #call, __FILE__, __LINE__);      \
        }                                                                          \
    } while (0)

#define RC_CUBLAS_CHECK(call)                                                      \
    do {                                                                           \
        cublasStatus_t rc_status_ = (call);                                        \
        if (rc_status_ != CUBLAS_STATUS_SUCCESS)                                   \
            ::rankclip::throw_cublas_error(rc_status_, #call, __FILE__, __LINE__); \
    } while (0)

// After a <<<...>>> launch: reports a bad launch configuration at once (not a fault inside
// the kernel, which surfaces at the next synchronizing call). `what` names the kernel.
#define RC_CUDA_CHECK_LAUNCH(what)                                                     \
    do {                                                                               \
        cudaError_t rc_err_ = cudaGetLastError();                                      \
        if (rc_err_ != cudaSuccess)                                                    \
            ::rankclip::throw_cuda_error(rc_err_, "launch of " what, __FILE__, __LINE__); \
    } while (0)
