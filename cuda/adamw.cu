// cuda/adamw.cu
// defines: CudaBackend::adamw, one fused AdamW step over contiguous F32 slabs (p, g, m, v read,
// p, m, v written: 28 bytes a parameter). From cuda/dev/adamw.cu (kernel1, one thread per
// parameter in a grid-stride loop), with the vector loads of its float4 variant: when all four
// slabs are aligned to kernels::Pack, each thread updates 8 parameters at once.
#include "cuda/cuda_backend.h"
#include "cuda/kernel_common.cuh"

namespace rankclip {

namespace {


// the CPU's operations in the CPU's order (engine/cpu/cpu_optim.cpp), each rounded (__f*_rn: no
// multiply-add contraction), so both backends give the same bits
__device__ __forceinline__ void adamw_update(float& p, float g, float& m, float& v, const AdamWScalars& s) {
    float pi = __fmul_rn(p, s.decay);  // decoupled weight decay
    float mi = __fadd_rn(__fmul_rn(m, s.beta1), __fmul_rn(s.one_minus_beta1, g));
    float vi = __fadd_rn(__fmul_rn(v, s.beta2), __fmul_rn(__fmul_rn(s.one_minus_beta2, g), g));
    float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), s.bc2_sqrt), s.eps);
    p = __fadd_rn(pi, __fdiv_rn(__fmul_rn(s.neg_step_size, mi), denom));
    m = mi;
    v = vi;
}

using kernels::kPack;
using kernels::Pack;

__global__ void adamw_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                             float* __restrict__ v, int64_t n, bool packed, AdamWScalars s) {
    int64_t start = 0;  // where the one-by-one loop begins
    if (packed) {
        const int64_t packs = n / kPack;
        RC_GRID_STRIDE_LOOP(i, packs) {
            Pack<float> pp = reinterpret_cast<Pack<float>*>(p)[i], mp = reinterpret_cast<Pack<float>*>(m)[i],
                        vp = reinterpret_cast<Pack<float>*>(v)[i];
            const Pack<float> gp = reinterpret_cast<const Pack<float>*>(g)[i];
#pragma unroll
            for (int j = 0; j < kPack; j++) adamw_update(pp.v[j], gp.v[j], mp.v[j], vp.v[j], s);
            reinterpret_cast<Pack<float>*>(p)[i] = pp;
            reinterpret_cast<Pack<float>*>(m)[i] = mp;
            reinterpret_cast<Pack<float>*>(v)[i] = vp;
        }
        start = packs * kPack;
    }
    RC_GRID_STRIDE_LOOP(t, n - start) {
        const int64_t i = start + t;
        adamw_update(p[i], g[i], m[i], v[i], s);
    }
}

}  // namespace

void CudaBackend::adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWScalars& s) {
    int64_t n = param.numel();
    if (n == 0) return;
    CudaContext& ctx = cuda_context(param.device().index);
    auto aligned = [](const Tensor& t) { return kernels::pack_aligned(t.raw_data(), sizeof(float)); };
    const bool packed = aligned(param) && aligned(grad) && aligned(m) && aligned(v);
    adamw_kernel<<<kernels::grid_for(packed ? n / kPack + 1 : n, ctx), kernels::kThreads, 0, ctx.stream>>>(
        param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(), n, packed, s);
    RC_CUDA_CHECK_LAUNCH("adamw_kernel");
}

}  // namespace rankclip
