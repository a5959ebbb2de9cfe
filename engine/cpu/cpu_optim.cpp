// engine/cpu/cpu_optim.cpp
// defines: the CPU AdamW step over contiguous F32 slabs (see Backend::adamw for the formula).
// Compiled without multiply-add contraction so each operation rounds as torch's kernels do.
#pragma GCC optimize("fp-contract=off")
#include "engine/cpu/cpu_backend.h"

namespace rankclip {

void CpuBackend::adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWScalars& s) {
    float* p = param.data<float>();
    const float* g = grad.data<float>();
    float* ms = m.data<float>();
    float* vs = v.data<float>();
    int64_t n = param.numel();
#pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) {
        float pi = p[i] * s.decay;  // decoupled weight decay
        float mi = ms[i] * s.beta1 + s.one_minus_beta1 * g[i];
        float vi = vs[i] * s.beta2 + (s.one_minus_beta2 * g[i]) * g[i];
        p[i] = pi + (s.neg_step_size * mi) / (std::sqrt(vi) / s.bc2_sqrt + s.eps);
        ms[i] = mi;
        vs[i] = vi;
    }
}

}  // namespace rankclip
