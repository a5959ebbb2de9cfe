// cuda/adamw.cu
// defines: CudaBackend::adamw, one fused AdamW step over contiguous F32 slabs (p, g, m, v read,
// p, m, v written: 28 bytes a parameter). Promoted from cuda/dev/adamw.cu (kernel1, one thread
// per parameter in a grid-stride loop; its float4 variant is faster but not yet promoted).
#include "cuda/cuda_backend.h"
#include "cuda/kernel_common.cuh"

namespace rankclip {

namespace {


__global__ void adamw_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                             float* __restrict__ v, int64_t n, AdamWScalars s) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        // the CPU's operations in the CPU's order (engine/cpu/cpu_optim.cpp), each rounded (__f*_rn: no
        // multiply-add contraction), so both backends give the same bits
        float gi = g[i];
        float pi = __fmul_rn(p[i], s.decay);  // decoupled weight decay
        float mi = __fadd_rn(__fmul_rn(m[i], s.beta1), __fmul_rn(s.one_minus_beta1, gi));
        float vi = __fadd_rn(__fmul_rn(v[i], s.beta2), __fmul_rn(__fmul_rn(s.one_minus_beta2, gi), gi));
        float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), s.bc2_sqrt), s.eps);
        p[i] = __fadd_rn(pi, __fdiv_rn(__fmul_rn(s.neg_step_size, mi), denom));
        m[i] = mi;
        v[i] = vi;
    }
}

}  // namespace

void CudaBackend::adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWScalars& s) {
    int64_t n = param.numel();
    if (n == 0) return;
    CudaContext& ctx = cuda_context(param.device().index);
    adamw_kernel<<<kernels::grid_for(n, ctx), kernels::kThreads, 0, ctx.stream>>>(
        param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(), n, s);
    RC_CUDA_CHECK_LAUNCH("adamw_kernel");
}

}  // namespace rankclip
