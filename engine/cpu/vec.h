// engine/cpu/vec.h
// defines: the AVX-512 building blocks the vectorised CPU kernels share: 16 floats loaded from
// F32 or BF16 storage (with a lane mask for the tail of a run, so a run of any length needs no
// scalar epilogue and every element gets the same arithmetic wherever it sits), stored back
// (bf16 rounded to nearest even bit for bit as float_to_bf16 in engine/dtype.h), horizontal sums
// in a fixed order, and SLEEF's exp/log/tanh/erf (u10 variants: within 1 ULP).
//
// RANKCLIP_AVX512 is 1 when the compiler targets AVX-512 F/BW/DQ/VL (-march=native on this
// project's Sapphire Rapids machines); the kernels keep their scalar path for other CPUs.
#pragma once
#include <cstdint>
#include <type_traits>

#include "engine/dtype.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
#define RANKCLIP_AVX512 1
// GCC 12 takes the _mm512_undefined_*() inside its own intrinsics for uninitialised reads once
// they are inlined (GCC bug 105593, fixed in 13); the pragma covers the header's lines.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#include <sleef.h>
#else
#define RANKCLIP_AVX512 0
#endif

namespace rankclip::vec {

// Storage types with a 16-lane float path: F32 and BF16 (F64 kernels stay scalar, in double).
template <typename T> constexpr bool kVectorised = RANKCLIP_AVX512 && (std::is_same_v<T, float> || std::is_same_v<T, bf16>);

#if RANKCLIP_AVX512
constexpr int64_t kLanes = 16;

// The first min(n, 16) lanes.
inline __mmask16 tail_mask(int64_t n) { return n >= kLanes ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

// bf16 bits -> float: the bits are the top half of the float.
inline __m512 widen_bf16(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }

// float -> bf16 bits, as float_to_bf16: add 0x7fff plus the lowest kept bit (ties to even) and
// keep the top half; a NaN keeps its top bits with the quiet bit set. Integer arithmetic on
// purpose: VCVTNEPS2BF16 flushes denormal inputs to zero, float_to_bf16 does not.
inline __m256i narrow_bf16(__m512 v) {
    __m512i u = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    __m512i quiet_nan = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, rounded, quiet_nan));
}

inline __m512 load(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load(const bf16* p) { return widen_bf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
// Masked: lanes outside m read as 0 and touch no memory.
inline __m512 load(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 load(const bf16* p, __mmask16 m) { return widen_bf16(_mm256_maskz_loadu_epi16(m, p)); }

inline void store(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
inline void store(bf16* p, __m512 v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), narrow_bf16(v)); }
inline void store(float* p, __m512 v, __mmask16 m) { _mm512_mask_storeu_ps(p, m, v); }
inline void store(bf16* p, __m512 v, __mmask16 m) { _mm256_mask_storeu_epi16(p, m, narrow_bf16(v)); }

// Sum of the 16 lanes, always in the same tree order (so results do not depend on the caller).
inline float hsum(__m512 v) {
    __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    __m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
    return _mm_cvtss_f32(s1);
}
inline double hsum(__m512d v) {
    __m256d s4 = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    __m128d s2 = _mm_add_pd(_mm256_castpd256_pd128(s4), _mm256_extractf128_pd(s4, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s2, _mm_unpackhi_pd(s2, s2)));
}
inline float hmax(__m512 v) { return _mm512_reduce_max_ps(v); }

// The two halves of 16 floats as 8 doubles each (for sums accumulated in double).
inline __m512d low_pd(__m512 v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
inline __m512d high_pd(__m512 v) { return _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)); }

// SLEEF, the AVX-512 builds called directly (no dispatch): max error 1.0 ULP (erf, tanh, exp,
// log; SLEEF 3.5 documentation).
inline __m512 exp(__m512 v) { return Sleef_expf16_u10avx512f(v); }
inline __m512 log(__m512 v) { return Sleef_logf16_u10avx512f(v); }
inline __m512 tanh(__m512 v) { return Sleef_tanhf16_u10avx512f(v); }
inline __m512 erf(__m512 v) { return Sleef_erff16_u10avx512f(v); }

// The standard normal CDF Phi(x) = erfc(-x / sqrt 2) / 2, for exact GELU. SLEEF's erf is ~4x
// slower per element (it works in double-float), and 1 + erf(x / sqrt 2) cancels for x < 0, so
// Phi is built from two pieces instead, both computed and the right one kept per lane:
//   |x| < 0.7: 1/2 + erf(x / sqrt 2) / 2 with erf's Taylor series to z^15 (< 1 ULP there);
//   beyond: erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2), z = |x| / sqrt 2, P of degree 9 (the
//   Chebyshev fit known as Numerical Recipes' erfcc, relative error < 1.2e-7 everywhere); x < 0
//   takes Phi = erfc / 2 directly (relative accuracy where Phi is tiny), x > 0 takes 1 - erfc / 2.
// Measured in engine/cpu/dev/gelu.cpp (variant 3 there): ~1 ns per element, 4x faster than
// SLEEF's erf, and far more accurate for x < 0, where 1 + erf loses every digit near x = -5.5.
inline __m512 normal_cdf(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
    __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(float(M_SQRT1_2)));
    // near 0: erf(z) = 2/sqrt(pi) (z - z^3/3 + z^5/10 - z^7/42 + z^9/216 - z^11/1320 + z^13/9360 - z^15/75600)
    __m512 z2 = _mm512_mul_ps(z, z), q = _mm512_set1_ps(float(-1.1283791670955126 / 75600));
    for (double c : {1.0 / 9360, -1.0 / 1320, 1.0 / 216, -1.0 / 42, 1.0 / 10, -1.0 / 3, 1.0})
        q = _mm512_fmadd_ps(q, z2, _mm512_set1_ps(float(1.1283791670955126 * c)));
    __m512 half_erf = _mm512_mul_ps(_mm512_mul_ps(q, z), half);  // erf(|x| / sqrt 2) / 2
    // elsewhere: erfc(z) / 2 = t exp(-z^2 + P(t) - ln 2)
    __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(half, z, one));
    __m512 p = _mm512_set1_ps(0.17087277f);
    for (float c : {-0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f, -0.18628806f, 0.09678418f, 0.37409196f,
                    1.00002368f, -1.26551223f - 0.69314718f})
        p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(c));
    __m512 half_erfc = _mm512_mul_ps(t, exp(_mm512_fnmadd_ps(z, z, p)));
    // Phi(-|x|) = 1/2 - erf/2 = erfc/2;  Phi(|x|) = 1/2 + erf/2 = 1 - erfc/2
    __mmask16 near = _mm512_cmp_ps_mask(z, _mm512_set1_ps(0.495f), _CMP_LT_OQ);
    __m512 lower = _mm512_mask_blend_ps(near, half_erfc, _mm512_sub_ps(half, half_erf));  // Phi(-|x|)
    __m512 upper = _mm512_mask_blend_ps(near, _mm512_sub_ps(one, half_erfc), _mm512_add_ps(half, half_erf));
    __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(negative, upper, lower);
}

// The standard normal density phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
inline __m512 normal_pdf(__m512 x) {
    __m512 e = exp(_mm512_mul_ps(_mm512_mul_ps(x, x), _mm512_set1_ps(-0.5f)));
    return _mm512_mul_ps(e, _mm512_set1_ps(float(0.3989422804014327)));
}

inline __m512 set1(float v) { return _mm512_set1_ps(v); }

// f(i, m) for i = 0, 16, 32, ... < n: full steps, then the last partial one with m masking its
// lanes (every element goes through the same vector arithmetic).
template <typename F>
inline void for_lanes(int64_t n, F&& f) {
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) f(i, __mmask16(0xFFFF));
    if (i < n) f(i, tail_mask(n - i));
}
#endif

}  // namespace rankclip::vec
