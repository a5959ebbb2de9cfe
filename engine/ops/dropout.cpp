// engine/ops/dropout.cpp
// defines: dropout (inverted: kept values are scaled by 1/(1-p)). The mask comes from the
// counter-based Philox generator keyed by a seed drawn from the run's Generator, so the CPU and
// CUDA kernels produce the same mask and a resumed run draws the same masks.
#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/random.h"

namespace rankclip {

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
    RC_CHECK(p >= 0 && p <= 1, "dropout: p must be in [0, 1], got ", p);
    if (!training || p == 0) return x;
    if (p == 1) return x * 0.0;
    Tensor mask = empty(x.shape(), x.dtype(), x.device());
    uint64_t seed = gen.random64();
    backend_for(x.device()).dropout_mask(mask, p, seed, 0);
    return x * mask;
}

}  // namespace rankclip
