// engine/autocast.cpp
// defines: the autocast switch (thread-local, like grad mode) and its two casts.
#include "engine/autocast.h"

#include "engine/ops.h"

namespace rankclip {

#ifdef RANKCLIP_CUDA
int cuda_compute_capability_major(int device);  // cuda/capability.cpp
#endif

static thread_local bool autocast_on = false;

AutocastGuard::AutocastGuard(Device device, bool enabled) : previous_(autocast_on) {
#ifdef RANKCLIP_CUDA
    if (enabled && device.is_cuda()) {
        int major = cuda_compute_capability_major(device.index);
        RC_CHECK(major >= 8, "autocast: bf16 needs a GPU of compute capability 8.0 or newer; ", device.str(),
                 " has ", major, ".x — run with fp32 precision instead");
    }
#endif
    autocast_on = enabled;
}

AutocastGuard::~AutocastGuard() { autocast_on = previous_; }

bool autocast_enabled() { return autocast_on; }

Tensor autocast_low(const Tensor& x) {
    return autocast_on && x.defined() && x.dtype() == DType::F32 ? cast(x, DType::BF16) : x;
}

Tensor autocast_full(const Tensor& x) {
    return autocast_on && x.defined() && x.dtype() == DType::BF16 ? cast(x, DType::F32) : x;
}

}  // namespace rankclip
