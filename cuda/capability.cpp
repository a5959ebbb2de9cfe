// cuda/capability.cpp
// defines: cuda_compute_capability_major, asked by autocast before it runs anything in bf16.
#include <cuda_runtime_api.h>

#include "engine/error.h"

namespace rankclip {

int cuda_compute_capability_major(int device) {
    int major = 0;
    cudaError_t err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    RC_CHECK(err == cudaSuccess, "cuda:", device, ": cannot read the compute capability: ", cudaGetErrorString(err));
    return major;
}

}  // namespace rankclip
