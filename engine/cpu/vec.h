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

#include "engine/cpu/gelu_tables.h"
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

// GELU's two functions, the standard normal CDF Phi(x) and the GELU derivative
// D(x) = Phi(x) + x phi(x), as piecewise polynomials in t = |x| (engine/cpu/gelu_tables.h,
// generated by tools/gen_gelu_tables.py): 16 pieces of width 1/2 over [0, 8), degree 7 around
// each piece's centre; a lane takes its piece's coefficients with one permute each, then Horner.
// Both satisfy f(-t) = 1 - f(t). Absolute error <= 7e-8 (Phi) and 1.3e-7 (D): GELU within 4 ULP
// for x >= 0 and 1.2e-7 |x| below (what tests/test_cpu_kernels.cpp holds it to). No exp and no
// division: measured in engine/cpu/dev/gelu.cpp, 4-5x faster than through SLEEF's erf or exp,
// which mattered: GELU was a seventh of a training step.
inline __m512 piecewise_gelu_poly(const float (&table)[kGeluDegree + 1][kGeluPieces], __m512 t) {
    __m512i piece = _mm512_min_epi32(_mm512_cvttps_epi32(_mm512_mul_ps(t, _mm512_set1_ps(1 / kGeluPieceWidth))),
                                     _mm512_set1_epi32(kGeluPieces - 1));
    __m512 centre = _mm512_mul_ps(_mm512_add_ps(_mm512_cvtepi32_ps(piece), _mm512_set1_ps(0.5f)),
                                  _mm512_set1_ps(kGeluPieceWidth));
    __m512 u = _mm512_sub_ps(t, centre);
    __m512 acc = _mm512_permutexvar_ps(piece, _mm512_load_ps(table[kGeluDegree]));
    for (int k = kGeluDegree - 1; k >= 0; k--) acc = _mm512_fmadd_ps(acc, u, _mm512_permutexvar_ps(piece, _mm512_load_ps(table[k])));
    // 1 beyond the last piece (Phi and D round to 1 in float there); NaN stays NaN
    __mmask16 beyond = _mm512_cmp_ps_mask(t, _mm512_set1_ps(kGeluPieces * kGeluPieceWidth), _CMP_GE_OQ);
    return _mm512_mask_mov_ps(acc, beyond, _mm512_set1_ps(1.0f));
}

// f(x) from f(|x|), for f(-t) = 1 - f(t); NaN in, NaN out.
inline __m512 reflect_negative(__m512 x, __m512 f_of_abs) {
    __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 f = _mm512_mask_sub_ps(f_of_abs, negative, _mm512_set1_ps(1.0f), f_of_abs);
    return _mm512_mask_mov_ps(f, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

inline __m512 normal_cdf(__m512 x) {
    return reflect_negative(x, piecewise_gelu_poly(kNormalCdfTable, _mm512_abs_ps(x)));
}

inline __m512 gelu_derivative(__m512 x) {
    return reflect_negative(x, piecewise_gelu_poly(kGeluDerivativeTable, _mm512_abs_ps(x)));
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
