// engine/autocast.h
// defines: AutocastGuard, the engine's mixed-precision mode (PyTorch's autocast, bf16 only).
// Inside the guard, matmul and scaled_dot_product_attention cast their inputs to bf16 (the
// kernels accumulate in fp32) and return bf16, while layer_norm, softmax / log_softmax and
// cross_entropy cast their inputs up to fp32, so statistics and losses stay fp32. The casts are
// recorded ops: gradients flow back in fp32 to fp32 master weights. Optimizer state is never
// touched by autocast. On a device whose backend does not run bf16 (Backend::supports_bf16; a
// CUDA device of compute capability < 8.0) the guard refuses to start, with a clear error.
#pragma once
#include "engine/tensor.h"

namespace rankclip {

class AutocastGuard {
public:
    explicit AutocastGuard(Device device, bool enabled = true);
    ~AutocastGuard();
    AutocastGuard(const AutocastGuard&) = delete;
    AutocastGuard& operator=(const AutocastGuard&) = delete;

private:
    bool previous_;
};

bool autocast_enabled();
// For ops that run in bf16 under autocast: x cast to bf16 when autocast is on and x is F32.
Tensor autocast_low(const Tensor& x);
// For ops that run in fp32 under autocast: x cast to F32 when autocast is on and x is BF16.
Tensor autocast_full(const Tensor& x);

}  // namespace rankclip
