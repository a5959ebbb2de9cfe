// cuda/capability.cpp
// defines: CudaBackend::supports_bf16 (compute capability 8.0 or newer), which autocast asks
// through the Backend interface before it runs anything in bf16.
#include <cuda_runtime_api.h>

#include "cuda/cuda_backend.h"
#include "engine/error.h"

namespace rankclip {

static int cuda_compute_capability_major(int device) {
    int major = 0;
    cudaError_t err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    RC_CHECK(err == cudaSuccess, "cuda:", device, ": cannot read the compute capability: ", cudaGetErrorString(err));
    return major;
}

bool CudaBackend::supports_bf16(int index, std::string* why) const {
    int major = cuda_compute_capability_major(index);
    if (major >= 8) return true;
    if (why) *why = str_cat("bf16 needs a GPU of compute capability 8.0 or newer; cuda:", index, " has ", major, ".x");
    return false;
}

}  // namespace rankclip
