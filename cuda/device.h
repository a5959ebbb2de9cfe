// cuda/device.h
// defines: CudaContext, the per-device state every CUDA kernel of the backend uses (the one
// stream all work of the device is queued on, its caching allocator, the cuBLAS and cuBLASLt
// handles and their workspace), cuda_context()/cuda_stream() to reach it, and the TF32 switch of
// the GEMMs.
//
// One stream per device: kernels, cuBLAS calls and copies of a device are all ordered on it,
// which is what makes the caching allocator's immediate reuse of freed blocks safe. The stream is
// a blocking (non-default) stream, so it also stays ordered with anything a library queues on the
// legacy default stream. Kernel files launch with `<<<grid, block, smem, cuda_stream(device)>>>`,
// where device is the tensor's `device().index`.
#pragma once
#include <cstddef>

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "cuda/allocator.h"

namespace rankclip {

struct CudaContext {
    int device = 0;
    cudaStream_t stream = nullptr;
    CachingAllocator* allocator = nullptr;
    int num_sms = 0;  // multiprocessor count, for sizing grid-stride launches
    // Mapped page-locked word that kernels set bits in (atomicOr) when they meet bad input they
    // cannot throw on, e.g. an out-of-range index; checked after every synchronization, where it
    // becomes an Error (cuda_check_kernel_errors). Costs nothing while no bit is set.
    unsigned* error_flags = nullptr;
    // Created on first use by cuda_cublas(): bound to `stream`, with its own workspace.
    cublasHandle_t cublas = nullptr;
    void* cublas_workspace = nullptr;
    size_t cublas_workspace_bytes = 0;
    // Created on first use by cuda_cublaslt(). cuBLASLt takes stream and workspace per call; it is
    // given the same workspace as cuBLAS (both queue on `stream`, so they never use it at once).
    cublasLtHandle_t cublaslt = nullptr;
};

// The context of `device`, created on first use (stream, allocator). Also makes `device` the
// calling thread's current CUDA device. Throws if the device does not exist.
CudaContext& cuda_context(int device);
inline cudaStream_t cuda_stream(int device) { return cuda_context(device).stream; }
// The cuBLAS handle of `device` (created on first use, bound to its stream and workspace).
cublasHandle_t cuda_cublas(int device);
// The cuBLASLt handle of `device` (created on first use; the workspace is cuda_cublas's).
cublasLtHandle_t cuda_cublaslt(int device);
// The calling thread's current CUDA device (where CudaBackend::allocate allocates).
int cuda_current_device();
// Waits for the streams of every device context created so far, then reports kernel errors.
void cuda_synchronize_all();

// Bits of CudaContext::error_flags, one per kind of bad input.
enum KernelErrorBit : unsigned {
    kBadIndexSelect = 1u << 0,
    kBadIndexAdd = 1u << 1,
    kBadGather = 1u << 2,
    kBadScatterAdd = 1u << 3,
};
// After the context's stream was synchronized: throws an Error naming the ops whose kernels met
// out-of-range indices since the last check (and clears the flags).
void cuda_check_kernel_errors(CudaContext& ctx);

// TF32 tensor cores for F32 GEMMs: off by default so F32 results match the CPU backend; on when
// RANKCLIP_TF32=1 is set at start-up or after set_tf32(true). Defined in cuda/matmul.cu.
void set_tf32(bool on);
bool tf32_enabled();

}  // namespace rankclip
