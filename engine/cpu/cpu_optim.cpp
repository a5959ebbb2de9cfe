// engine/cpu/cpu_optim.cpp
// defines: the CPU AdamW step over contiguous F32 slabs (see Backend::adamw for the formula),
// the scalar reference and its 16-lane AVX-512 twin, which performs the same IEEE operations in
// the same order (multiply, add, divide and square root are exactly rounded, so both give the
// same bits; tests/test_cpu_kernels.cpp checks it).
// Compiled without multiply-add contraction so each operation rounds as torch's kernels do.
#pragma GCC optimize("fp-contract=off")
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/vec.h"

namespace rankclip {

// Elements [begin, end) of one step.
static void adamw_range(float* p, const float* g, float* ms, float* vs, const AdamWScalars& s, int64_t begin,
                        int64_t end) {
    int64_t i = begin;
#if RANKCLIP_AVX512
    const __m512 decay = vec::set1(s.decay), b1 = vec::set1(s.beta1), omb1 = vec::set1(s.one_minus_beta1),
                 b2 = vec::set1(s.beta2), omb2 = vec::set1(s.one_minus_beta2), nss = vec::set1(s.neg_step_size),
                 bc2 = vec::set1(s.bc2_sqrt), eps = vec::set1(s.eps);
    for (; i + vec::kLanes <= end; i += vec::kLanes) {
        __m512 gi = _mm512_loadu_ps(g + i);
        __m512 pi = _mm512_mul_ps(_mm512_loadu_ps(p + i), decay);
        __m512 mi = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(ms + i), b1), _mm512_mul_ps(omb1, gi));
        __m512 vi = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(vs + i), b2), _mm512_mul_ps(_mm512_mul_ps(omb2, gi), gi));
        __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), bc2), eps);
        _mm512_storeu_ps(p + i, _mm512_add_ps(pi, _mm512_div_ps(_mm512_mul_ps(nss, mi), denom)));
        _mm512_storeu_ps(ms + i, mi);
        _mm512_storeu_ps(vs + i, vi);
    }
#endif
    for (; i < end; i++) {  // the reference (and the tail)
        float pi = p[i] * s.decay;  // decoupled weight decay
        float mi = ms[i] * s.beta1 + s.one_minus_beta1 * g[i];
        float vi = vs[i] * s.beta2 + (s.one_minus_beta2 * g[i]) * g[i];
        p[i] = pi + (s.neg_step_size * mi) / (std::sqrt(vi) / s.bc2_sqrt + s.eps);
        ms[i] = mi;
        vs[i] = vi;
    }
}

void CpuBackend::adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWScalars& s) {
    float* p = param.data<float>();
    const float* g = grad.data<float>();
    float* ms = m.data<float>();
    float* vs = v.data<float>();
    int64_t n = param.numel();
    if (n <= 65536) return adamw_range(p, g, ms, vs, s, 0, n);
#pragma omp parallel
    {
        // equal pieces cut at multiples of 16 elements
        int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t piece = (n / threads + 15) / 16 * 16;
        int64_t begin = std::min(n, t * piece), end = t == threads - 1 ? n : std::min(n, begin + piece);
        adamw_range(p, g, ms, vs, s, begin, end);
    }
}

}  // namespace rankclip
