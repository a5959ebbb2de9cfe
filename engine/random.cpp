// engine/random.cpp
// defines: Generator (engine/random.h): MT19937 and PyTorch's CPU sampling recipes, reproduced
// operation for operation so that every draw is bit-identical to torch 1.13 on x86-64/AVX2.
//
// Where the bits come from (PyTorch 1.13, aten/src/ATen/...):
//   core/MT19937RNGEngine.h     the engine; seeded from the low 32 bits of the seed.
//   core/TransformationHelper.h uniform_real: (word & (2^digits - 1)) * 2^-digits * (to - from) + from.
//   core/DistributionsHelper.h  normal_distribution<double>: scalar Box-Muller with a cached sample.
//   native/cpu/DistributionTemplates.h  normal_fill (blocks of 16) and, for float on AVX2
//                               machines, normal_fill_AVX2, which evaluates log/sin/cos with the
//                               Cephes polynomials of avx_mathfun.h instead of libm.
//   native/TensorFactories.cpp  randperm_cpu.
// PyTorch's kernels are compiled per CPU capability; the AVX2 build enables FMA and GCC contracts
// `a * b + c` into one fused multiply-add. The AVX2 kernel is what torch runs on any x86-64 CPU
// with AVX2, so the arithmetic below spells those fused operations out with std::fma, and the
// file is compiled with contraction off so the compiler adds no others.
#include "engine/random.h"

#include <cmath>
#include <cstring>

#include "engine/error.h"

#if defined(__FAST_MATH__)
#warning "engine/random.cpp: -ffast-math breaks bit-exact parity with PyTorch's generator"
#endif
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace rankclip {

namespace {

constexpr int kMtM = 397;
constexpr uint32_t kMtMatrixA = 0x9908b0dfu;
constexpr uint32_t kMtUpperMask = 0x80000000u;
constexpr uint32_t kMtLowerMask = 0x7fffffffu;
constexpr double kPi = 3.14159265358979323846;

// ---- PyTorch's scalar conversions of raw words ----

// U[0, 1) with 24 random bits: exact in float.
inline float unit_float(uint32_t word) {
    return static_cast<float>(word & 0xFFFFFFu) * (1.0f / 16777216.0f);
}
// U[0, 1) with 53 random bits: exact in double.
inline double unit_double(uint64_t word) {
    return static_cast<double>(word & 0x1FFFFFFFFFFFFFull) * (1.0 / 9007199254740992.0);
}

// ---- one lane of PyTorch's AVX2 Box-Muller for float (normal_fill_16_AVX2) ----
// log256_ps and sincos256_ps of avx_mathfun.h are Julien Pommier's SIMD ports of the Cephes
// logf/sinf/cosf polynomials. Below is the same sequence of float operations for one lane,
// with the multiply-adds fused where torch's AVX2 build fuses them.

inline float bits_to_float(uint32_t b) { float f; std::memcpy(&f, &b, 4); return f; }
inline uint32_t float_to_bits(float f) { uint32_t b; std::memcpy(&b, &f, 4); return b; }

// log(x) for x in (0, 1] (the Box-Muller input 1 - u is never 0 or negative).
float cephes_log(float x) {
    // x = m * 2^e with m in [0.5, 1)
    uint32_t bits = float_to_bits(x);
    float e = static_cast<float>(static_cast<int32_t>(bits >> 23) - 127);
    float m = bits_to_float((bits & ~0x7f800000u) | 0x3f000000u);
    e = e + 1.0f;
    // fold m into [sqrt(1/2), sqrt(2)) - 1
    if (m < 0.707106781186547524f) {
        e = e - 1.0f;
        m = (m - 1.0f) + m;
    } else {
        m = m - 1.0f;
    }
    float z = m * m;
    float y = 7.0376836292E-2f;
    y = std::fma(y, m, -1.1514610310E-1f);
    y = std::fma(y, m, 1.1676998740E-1f);
    y = std::fma(y, m, -1.2420140846E-1f);
    y = std::fma(y, m, 1.4249322787E-1f);
    y = std::fma(y, m, -1.6668057665E-1f);
    y = std::fma(y, m, 2.0000714765E-1f);
    y = std::fma(y, m, -2.4999993993E-1f);
    y = std::fma(y, m, 3.3333331174E-1f);
    y = y * m;
    y = std::fma(y, z, e * -2.12194440e-4f);         // torch's build fuses y * z here, not e * q1
    y = std::fma(z, -0.5f, y);                       // exact product: fused or not is the same
    return std::fma(e, 0.693359375f, m + y);         // exact product likewise
}

// sin(x) and cos(x) for x in [0, 2*pi).
void cephes_sincos(float x, float* s, float* c) {
    // x = x - j * pi/4 for the even j nearest x / (pi/4) (in three parts, Cody-Waite)
    int32_t j = static_cast<int32_t>(x * 1.27323954473516f);
    j = (j + 1) & ~1;
    float y = static_cast<float>(j);
    x = std::fma(y, -0.78515625f, x);
    x = std::fma(y, -2.4187564849853515625e-4f, x);
    x = std::fma(y, -3.77489497744594108e-8f, x);
    bool sin_negative = (j & 4) != 0;
    bool cos_negative = ((j - 2) & 4) == 0;
    bool use_sin_poly_for_sin = (j & 2) == 0;       // otherwise the cos polynomial

    float z = x * x;
    // cos polynomial
    float yc = 2.443315711809948E-005f;
    yc = std::fma(yc, z, -1.388731625493765E-003f);
    yc = std::fma(yc, z, 4.166664568298827E-002f);
    yc = yc * z;
    yc = std::fma(yc, z, -(z * 0.5f));
    yc = yc + 1.0f;
    // sin polynomial
    float ys = -1.9515295891E-4f;
    ys = std::fma(ys, z, 8.3321608736E-3f);
    ys = std::fma(ys, z, -1.6666654611E-1f);
    ys = ys * z;
    ys = std::fma(ys, x, x);

    // torch selects by masking and adding +0, which turns a -0 into +0: so do we
    float sv = (use_sin_poly_for_sin ? ys : yc) + 0.0f;
    float cv = (use_sin_poly_for_sin ? yc : ys) + 0.0f;
    *s = sin_negative ? -sv : sv;
    *c = cos_negative ? -cv : cv;
}

// data[0..16) holds uniforms in [0, 1); replace them with 16 normals.
void normal_fill_16_avx2(float* data, float mean, float std) {
    const float two_pi = static_cast<float>(2.0f * kPi);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - data[j];
        float u2 = data[j + 8];
        float radius = std::sqrt(-2.0f * cephes_log(u1));
        float theta = two_pi * u2;
        float s, c;
        cephes_sincos(theta, &s, &c);
        data[j] = std::fma(radius * c, std, mean);
        data[j + 8] = std::fma(radius * s, std, mean);
    }
}

// The same for double, with libm (normal_fill_16<double>).
void normal_fill_16_double(double* data, double mean, double std) {
    for (int j = 0; j < 8; j++) {
        double u1 = 1.0 - data[j];
        double u2 = data[j + 8];
        double radius = std::sqrt(-2.0 * std::log(u1));
        double theta = 2.0 * kPi * u2;
        data[j] = std::fma(radius * std::cos(theta), std, mean);
        data[j + 8] = std::fma(radius * std::sin(theta), std, mean);
    }
}

}  // namespace

// ---- engine ----

Generator::Generator(uint64_t seed) { manual_seed(seed); }

void Generator::manual_seed(uint64_t seed) {
    seed_ = seed;
    mt_[0] = static_cast<uint32_t>(seed);
    for (int j = 1; j < kStateWords; j++)
        mt_[j] = 1812433253u * (mt_[j - 1] ^ (mt_[j - 1] >> 30)) + static_cast<uint32_t>(j);
    pos_ = kStateWords;
    has_next_normal_ = false;
    next_normal_ = 0.0;
}

void Generator::twist() {
    for (int j = 0; j < kStateWords; j++) {
        uint32_t y = (mt_[j] & kMtUpperMask) | (mt_[(j + 1) % kStateWords] & kMtLowerMask);
        mt_[j] = mt_[(j + kMtM) % kStateWords] ^ (y >> 1) ^ ((y & 1u) ? kMtMatrixA : 0u);
    }
    pos_ = 0;
}

uint32_t Generator::random() {
    if (pos_ >= kStateWords) twist();
    uint32_t y = mt_[pos_++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint64_t Generator::random64() {
    uint64_t hi = random();
    uint64_t lo = random();
    return (hi << 32) | lo;
}

// ---- distributions ----

double Generator::next_normal(double mean, double std) {
    double value;
    if (has_next_normal_) {
        has_next_normal_ = false;
        value = next_normal_;
    } else {
        double u1 = unit_double(random64());
        double u2 = unit_double(random64());
        double r = std::sqrt(-2.0 * std::log(1.0 - u2));   // torch 1.13: log(1 - u), not log1p
        double theta = 2.0 * kPi * u1;
        next_normal_ = r * std::sin(theta);
        has_next_normal_ = true;
        value = r * std::cos(theta);
    }
    return std::fma(value, std, mean);
}

void Generator::fill_normal(float* out, int64_t n, double mean, double std) {
    RC_CHECK(n >= 0, "Generator::fill_normal: n must be >= 0, got ", n);
    RC_CHECK(std >= 0.0, "Generator::fill_normal: std must be >= 0, got ", std);
    if (n < 16) {
        for (int64_t i = 0; i < n; i++) out[i] = static_cast<float>(next_normal(mean, std));
        return;
    }
    const float mean_f = static_cast<float>(mean), std_f = static_cast<float>(std);
    for (int64_t i = 0; i < n; i++) out[i] = unit_float(random());
    for (int64_t i = 0; i + 16 <= n; i += 16) normal_fill_16_avx2(out + i, mean_f, std_f);
    if (n % 16 != 0) {
        // torch redraws uniforms for the last 16 elements (overlapping the last full block)
        float* tail = out + n - 16;
        for (int i = 0; i < 16; i++) tail[i] = unit_float(random());
        normal_fill_16_avx2(tail, mean_f, std_f);
    }
}

void Generator::fill_normal(double* out, int64_t n, double mean, double std) {
    RC_CHECK(n >= 0, "Generator::fill_normal: n must be >= 0, got ", n);
    RC_CHECK(std >= 0.0, "Generator::fill_normal: std must be >= 0, got ", std);
    if (n < 16) {
        for (int64_t i = 0; i < n; i++) out[i] = next_normal(mean, std);
        return;
    }
    for (int64_t i = 0; i < n; i++) out[i] = unit_double(random64());
    for (int64_t i = 0; i + 16 <= n; i += 16) normal_fill_16_double(out + i, mean, std);
    if (n % 16 != 0) {
        double* tail = out + n - 16;
        for (int i = 0; i < 16; i++) tail[i] = unit_double(random64());
        normal_fill_16_double(tail, mean, std);
    }
}

void Generator::fill_uniform(float* out, int64_t n, double from, double to) {
    RC_CHECK(n >= 0, "Generator::fill_uniform: n must be >= 0, got ", n);
    RC_CHECK(from <= to, "Generator::fill_uniform: expects from <= to, got from=", from, " to=", to);
    const float from_f = static_cast<float>(from), to_f = static_cast<float>(to);
    const float range = to_f - from_f;
    for (int64_t i = 0; i < n; i++) out[i] = std::fma(unit_float(random()), range, from_f);
}

void Generator::fill_uniform(double* out, int64_t n, double from, double to) {
    RC_CHECK(n >= 0, "Generator::fill_uniform: n must be >= 0, got ", n);
    RC_CHECK(from <= to, "Generator::fill_uniform: expects from <= to, got from=", from, " to=", to);
    const double range = to - from;
    for (int64_t i = 0; i < n; i++) out[i] = std::fma(unit_double(random64()), range, from);
}

void Generator::fill_randint(int64_t* out, int64_t n, int64_t low, int64_t high) {
    RC_CHECK(n >= 0, "Generator::fill_randint: n must be >= 0, got ", n);
    RC_CHECK(low < high, "Generator::fill_randint: expects low < high, got low=", low, " high=", high);
    const uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
    const uint64_t base = static_cast<uint64_t>(low);
    if (range >= (uint64_t(1) << 32)) {
        for (int64_t i = 0; i < n; i++) out[i] = static_cast<int64_t>(random64() % range + base);
    } else {
        for (int64_t i = 0; i < n; i++) out[i] = static_cast<int64_t>(random() % range + base);
    }
}

void Generator::randperm(int64_t* out, int64_t n) {
    RC_CHECK(n >= 0, "Generator::randperm: n must be >= 0, got ", n);
    for (int64_t i = 0; i < n; i++) out[i] = i;
    // forward Fisher-Yates: position i takes a uniformly chosen element of [i, n)
    for (int64_t i = 0; i + 1 < n; i++) {
        int64_t z = static_cast<int64_t>(random() % static_cast<uint64_t>(n - i));
        int64_t tmp = out[i];
        out[i] = out[i + z];
        out[i + z] = tmp;
    }
}

// ---- state ----
// Layout (little-endian, 2525 bytes):
//   [0, 8)       magic "RCMT1937"
//   [8, 16)      seed (u64)
//   [16, 20)     position in the MT block (u32, 0..624; 624 = twist before the next word)
//   [20, 2516)   the 624 MT words (u32 each)
//   [2516]       1 if a cached normal sample is held, else 0
//   [2517, 2525) the cached sample (f64 bits)

namespace {

constexpr char kStateMagic[8] = {'R', 'C', 'M', 'T', '1', '9', '3', '7'};
constexpr size_t kStateBytes = 8 + 8 + 4 + 4 * Generator::kStateWords + 1 + 8;

void put_le(std::vector<uint8_t>& out, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
uint64_t get_le(const uint8_t* p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= static_cast<uint64_t>(p[i]) << (8 * i);
    return v;
}

}  // namespace

std::vector<uint8_t> Generator::get_state() const {
    std::vector<uint8_t> out;
    out.reserve(kStateBytes);
    out.insert(out.end(), kStateMagic, kStateMagic + 8);
    put_le(out, seed_, 8);
    put_le(out, static_cast<uint32_t>(pos_), 4);
    for (int j = 0; j < kStateWords; j++) put_le(out, mt_[j], 4);
    out.push_back(has_next_normal_ ? 1 : 0);
    uint64_t bits;
    std::memcpy(&bits, &next_normal_, 8);
    put_le(out, bits, 8);
    return out;
}

void Generator::set_state(const std::vector<uint8_t>& state) {
    // validate everything before touching the generator
    RC_CHECK(state.size() == kStateBytes, "Generator::set_state: a state is ", kStateBytes,
             " bytes (from get_state), got ", state.size());
    RC_CHECK(std::memcmp(state.data(), kStateMagic, 8) == 0,
             "Generator::set_state: not a rankclip generator state (bad magic bytes)");
    const uint8_t* p = state.data() + 8;
    const uint64_t seed = get_le(p, 8);
    const uint64_t pos = get_le(p + 8, 4);
    RC_CHECK(pos <= static_cast<uint64_t>(kStateWords), "Generator::set_state: MT position ", pos,
             " is out of range [0, ", kStateWords, "]");
    uint32_t words[kStateWords];
    bool any_set = false;
    for (int j = 0; j < kStateWords; j++) {
        words[j] = static_cast<uint32_t>(get_le(p + 12 + 4 * j, 4));
        any_set = any_set || (j == 0 ? (words[j] & kMtUpperMask) != 0 : words[j] != 0);
    }
    RC_CHECK(any_set, "Generator::set_state: the MT state is all zero (it would only produce zeros)");
    const uint8_t* tail = p + 12 + 4 * kStateWords;
    RC_CHECK(tail[0] <= 1, "Generator::set_state: cached-normal flag must be 0 or 1, got ", int(tail[0]));
    const uint64_t cached_bits = get_le(tail + 1, 8);

    seed_ = seed;
    pos_ = static_cast<int>(pos);
    std::memcpy(mt_, words, sizeof(words));
    has_next_normal_ = tail[0] == 1;
    std::memcpy(&next_normal_, &cached_bits, 8);
}

}  // namespace rankclip
