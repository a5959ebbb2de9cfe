// engine/autocast.cpp
// defines: the autocast switch (thread-local, like grad mode) and its two casts.
#include "engine/autocast.h"

#include <string>

#include "engine/backend.h"
#include "engine/ops.h"

namespace rankclip {

static thread_local bool autocast_on = false;

AutocastGuard::AutocastGuard(Device device, bool enabled) : previous_(autocast_on) {
    if (enabled && !device.is_cpu()) {
        // the device's backend knows whether it runs bf16 (CUDA: compute capability 8.0 or newer)
        std::string why;
        RC_CHECK(backend_for(device).supports_bf16(device.index, &why), "autocast: ", why,
                 " — run with fp32 precision instead");
    }
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
