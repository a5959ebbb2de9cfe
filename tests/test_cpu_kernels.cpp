// tests/test_cpu_kernels.cpp
// tests: the vectorised CPU elementwise kernels (engine/cpu/cpu_elementwise.cpp, the AVX-512
// paths and the scalar ones beside them) against straightforward scalar references written
// here, on awkward sizes (1, 15, 16, 17, 127, 129, 1000003 elements: vector tails), strided,
// transposed and broadcast operands, in F32, BF16 and F64:
//   - casts F32 <-> BF16 bit for bit against float_to_bf16 (NaN, inf, denormals, ties);
//   - copies (every permutation of a 4-D tensor, slices, expanded sources, casts), fill;
//   - every unary and binary op, and where: bit for bit where the kernel's arithmetic is
//     exact IEEE operations, within a stated ULP bound where it calls SLEEF;
//   - a sweep of exp / log / tanh / erf (through GELU) / sigmoid against the exact value
//     (computed in double): the bounds are in kUlpBound below.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "tests/test_util.h"

using namespace rankclip;
using rankclip::test::element_offset;

namespace {

const std::vector<int64_t> kSizes = {1, 15, 16, 17, 127, 129, 1000003};
const std::vector<DType> kFloatTypes = {DType::F32, DType::BF16, DType::F64};

// Element i (row-major over the view) of t as double, read from storage through its strides.
double value_at(const Tensor& t, int64_t i) {
    const char* base = static_cast<const char*>(t.impl()->storage->data);
    int64_t off = element_offset(t, i);
    switch (t.dtype()) {
        case DType::F32: return reinterpret_cast<const float*>(base)[off];
        case DType::F64: return reinterpret_cast<const double*>(base)[off];
        case DType::BF16: return bf16_to_float(reinterpret_cast<const bf16*>(base)[off]);
        case DType::I32: return reinterpret_cast<const int32_t*>(base)[off];
        case DType::I64: return double(reinterpret_cast<const int64_t*>(base)[off]);
    }
    return 0;
}

// The raw bits of element i (zero-extended).
uint64_t bits_at(const Tensor& t, int64_t i) {
    const char* base = static_cast<const char*>(t.impl()->storage->data);
    size_t size = dtype_size(t.dtype());
    uint64_t bits = 0;
    std::memcpy(&bits, base + element_offset(t, i) * size, size);
    return bits;
}

// The bits a value gets when stored in dtype (the kernels' rounding: float, then bf16 RNE).
uint64_t bits_of(double v, DType dtype) {
    uint64_t bits = 0;
    if (dtype == DType::F64) std::memcpy(&bits, &v, 8);
    else if (dtype == DType::F32) {
        float f = float(v);
        std::memcpy(&bits, &f, 4);
    } else if (dtype == DType::BF16) bits = float_to_bf16(float(v)).bits;
    else if (dtype == DType::I32) bits = uint32_t(int32_t(v));
    else bits = uint64_t(int64_t(v));
    return bits;
}

// Distance in units in the last place between two values of `dtype` (NaN == NaN: 0).
int64_t ulp_distance(double a, double b, DType dtype) {
    if (std::isnan(a) && std::isnan(b)) return 0;
    if (std::isnan(a) || std::isnan(b)) return INT64_MAX;
    auto ordered = [&](double v) -> int64_t {
        if (dtype == DType::F64) {
            int64_t i;
            std::memcpy(&i, &v, 8);
            return i < 0 ? INT64_MIN - i : i;
        }
        float f = float(v);
        int32_t i;
        std::memcpy(&i, &f, 4);
        int64_t o = i < 0 ? int64_t(INT32_MIN) - i : i;
        return dtype == DType::BF16 ? o >> 16 : o;  // bf16 values are floats with 16 zero low bits
    };
    int64_t d = ordered(a) - ordered(b);
    return d < 0 ? -d : d;
}

Tensor random(const Shape& shape, DType dtype, uint64_t seed, double scale = 1.0, double shift = 0.0) {
    Generator gen(seed);
    return (randn(shape, gen, DType::F64) * scale + shift).to(dtype);
}

// Runs `check(i)` for every flat index and reports the first few failures with their index.
template <typename F>
void for_each_element(int64_t n, F&& check) {
    int failures = 0;
    for (int64_t i = 0; i < n && failures < 5; i++)
        if (!check(i)) failures++;
}

// ---- casts ----

TEST(CpuKernels, Bf16CastMatchesFloatToBf16BitForBit) {
    // special values, ties to even both ways, the largest values that round to inf, denormals
    std::vector<uint32_t> patterns = {0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000,
                                      0x7f800001, 0x7fbfffff, 0xff800001, 0x7fffffff, 0x00000001, 0x80000001,
                                      0x00007fff, 0x00008000, 0x00018000, 0x00008001, 0x007fffff, 0x807fffff,
                                      0x00800000, 0x3f808000, 0x3f818000, 0x3f807fff, 0x3f808001, 0x7f7fffff,
                                      0x7f7f8000, 0x7f7f7fff, 0xff7fffff, 0x3f800000, 0xbf800000};
    uint64_t x = 0x9E3779B97F4A7C15ull;  // and a spread of others (xorshift)
    while (patterns.size() < (1u << 20) + 7) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        patterns.push_back(uint32_t(x));
    }
    std::vector<float> values(patterns.size());
    std::memcpy(values.data(), patterns.data(), patterns.size() * 4);
    for (int64_t n : {int64_t(1), int64_t(15), int64_t(17), int64_t(129), int64_t(values.size())}) {
        std::vector<float> part(values.begin(), values.begin() + n);
        Tensor f = from_vector(part, {n});
        Tensor h = f.to(DType::BF16);
        for_each_element(n, [&](int64_t i) {
            uint16_t want = float_to_bf16(part[i]).bits;
            EXPECT_EQ(bits_at(h, i), want) << "n " << n << ", float bits 0x" << std::hex << patterns[i];
            return bits_at(h, i) == want;
        });
    }
}

TEST(CpuKernels, Bf16ToF32IsExactForEveryPattern) {
    std::vector<uint16_t> all(65536);
    std::iota(all.begin(), all.end(), uint16_t(0));
    Tensor h = empty({65536}, DType::BF16);
    std::memcpy(h.raw_data(), all.data(), all.size() * 2);
    Tensor f = h.to(DType::F32);
    for_each_element(65536, [&](int64_t i) {
        uint64_t want = uint64_t(all[i]) << 16;
        EXPECT_EQ(bits_at(f, i), want) << "bf16 0x" << std::hex << all[i];
        return bits_at(f, i) == want;
    });
    Tensor back = f.to(DType::BF16);  // and back, NaNs included (all quiet or made quiet)
    for_each_element(65536, [&](int64_t i) {
        uint64_t want = float_to_bf16(bf16_to_float(bf16{all[i]})).bits;
        EXPECT_EQ(bits_at(back, i), want) << "bf16 0x" << std::hex << all[i];
        return bits_at(back, i) == want;
    });
}

// ---- copy and fill ----

// dst == src element by element, as the value converted to dst's dtype.
void expect_copy_of(const Tensor& dst, const Tensor& src, const std::string& what) {
    ASSERT_EQ(dst.shape(), src.shape()) << what;
    for_each_element(src.numel(), [&](int64_t i) {
        uint64_t want = bits_of(value_at(src, i), dst.dtype());
        if (src.dtype() == dst.dtype()) want = bits_at(src, i);
        EXPECT_EQ(bits_at(dst, i), want) << what << ", element " << i;
        return bits_at(dst, i) == want;
    });
}

TEST(CpuKernels, PermutedCopiesAllDtypes) {
    std::vector<int64_t> order = {0, 1, 2, 3};
    for (DType from : {DType::F32, DType::BF16, DType::F64, DType::I64}) {
        Tensor x = from == DType::I64 ? arange(0, 2 * 3 * 17 * 5, 1, DType::F64).to(DType::I64).view({2, 3, 17, 5})
                                      : random({2, 3, 17, 5}, from, 7);
        do {
            Tensor p = x.permute(order);
            for (DType to : {DType::F32, DType::BF16, DType::F64}) {
                Tensor out = empty(p.shape(), to);
                cpu_backend().copy(p, out);
                expect_copy_of(out, p, std::string(dtype_name(from)) + " -> " + dtype_name(to));
            }
        } while (std::next_permutation(order.begin(), order.end()));
    }
}

TEST(CpuKernels, CopiesOfSlicesExpandedAndLargeTensors) {
    for (DType dtype : {DType::F32, DType::BF16}) {
        Tensor x = random({40, 70}, dtype, 3);
        Tensor slice = x.narrow(1, 3, 33).narrow(0, 1, 37);  // rows of 33 with a stride of 70
        Tensor out = empty(slice.shape(), DType::F32);
        cpu_backend().copy(slice, out);
        expect_copy_of(out, slice, "slice");
        Tensor row = random({1, 129}, dtype, 4).expand({50, 129});  // stride 0 on dim 0
        Tensor out2 = empty(row.shape(), dtype);
        cpu_backend().copy(row, out2);
        expect_copy_of(out2, row, "expanded row");
        Tensor col = random({50, 1}, dtype, 5).expand({50, 17});  // stride 0 on the inner dim
        Tensor out3 = empty(col.shape(), DType::BF16);
        cpu_backend().copy(col, out3);
        expect_copy_of(out3, col, "expanded column");
        // into a strided destination: the transposed view of a fresh tensor
        Tensor dst = zeros({17, 50}, DType::F32);
        Tensor dst_t = dst.t();
        cpu_backend().copy(col, dst_t);
        expect_copy_of(dst_t, col, "into a transposed view");
    }
    for (int64_t n : kSizes) {
        Tensor x = random({n}, DType::F32, uint64_t(n));
        for (DType to : {DType::BF16, DType::F64, DType::F32}) {
            Tensor out = empty({n}, to);
            cpu_backend().copy(x, out);
            expect_copy_of(out, x, std::string("flat -> ") + dtype_name(to));
            Tensor back = empty({n}, DType::F32);
            cpu_backend().copy(out, back);
            expect_copy_of(back, out, std::string("flat <- ") + dtype_name(to));
        }
    }
}

TEST(CpuKernels, FillWritesOnlyTheView) {
    for (DType dtype : {DType::F32, DType::BF16, DType::F64, DType::I32, DType::I64}) {
        Tensor x = zeros({33, 40}, dtype);
        Tensor view = x.narrow(1, 5, 17).t();  // (17, 33), strided
        cpu_backend().fill(view, 3.25);
        for_each_element(x.numel(), [&](int64_t i) {
            int64_t col = i % 40;
            double want = col >= 5 && col < 22 ? (is_floating(dtype) ? 3.25 : 3.0) : 0.0;
            EXPECT_EQ(value_at(x, i), want) << dtype_name(dtype) << " element " << i;
            return value_at(x, i) == want;
        });
    }
    for (int64_t n : kSizes) {
        Tensor x = empty({n}, DType::BF16);
        cpu_backend().fill(x, -1.5);
        EXPECT_EQ(value_at(x, n - 1), -1.5);
        EXPECT_EQ(value_at(x, 0), -1.5);
    }
}

// ---- unary ----

struct UnaryCase {
    UnaryOp op;
    double p0, p1;
    bool exact;  // only exactly rounded IEEE operations: bit for bit
    int ulps;    // else: the bound against the exact (double) value, in float ULPs
};

// The reference: in double for the transcendental functions (the exact value, then rounded),
// in the kernel's precision A (float for F32 / BF16, double for F64) for the exact ones.
template <typename A>
A unary_reference(UnaryOp op, A x, double p0, double p1) {
    switch (op) {
        case UnaryOp::Neg: return -x;
        case UnaryOp::Sqrt: return std::sqrt(x);
        case UnaryOp::Rsqrt: return A(1) / std::sqrt(x);
        case UnaryOp::Abs: return std::fabs(x);
        case UnaryOp::Relu: return x > A(0) ? x : A(0);
        case UnaryOp::Reciprocal: return A(1) / x;
        case UnaryOp::Clamp: return x < A(p0) ? A(p0) : (A(p1) < x ? A(p1) : x);
        case UnaryOp::Affine: return std::fma(x, A(p0), A(p1));
        case UnaryOp::Sign: return x > 0 ? A(1) : (x < 0 ? A(-1) : A(0));
        case UnaryOp::Pow: return std::pow(x, A(p0));
        default: break;
    }
    double d = double(x);
    switch (op) {
        case UnaryOp::Exp: return A(std::exp(d));
        case UnaryOp::Log: return A(std::log(d));
        case UnaryOp::Tanh: return A(std::tanh(d));
        // exp rounded to A first, as the kernels have it: exp(-x) overflows to inf for x < -88
        // (then the result is 0, not the tiny denormal)
        case UnaryOp::Sigmoid: return A(1) / (A(1) + A(std::exp(-d)));
        case UnaryOp::Gelu: return A(0.5 * d * std::erfc(-d * M_SQRT1_2));
        case UnaryOp::GeluTanh: return A(0.5 * d * (1 + std::tanh(0.7978845608028654 * (d + 0.044715 * d * d * d))));
        case UnaryOp::QuickGelu: return A(d / (1 + std::exp(-double(A(1.702) * x))));
        default: return A(NAN);
    }
}

// The ULP bounds of the SLEEF-based functions against the exact value (SLEEF u10: 1 ULP per
// call; the rest is the float arithmetic around it): exp, log, tanh 2 (the sweep below measures
// 1), sigmoid, GELU, GELU-tanh, QuickGELU 4 (measured: sigmoid 4 for x < 0, against a reference
// that rounds exp(-x) to float as the kernel does; the others 2 for x >= 0). For x < 0 the
// GELUs lose relative accuracy where 1 + erf(x / sqrt 2) cancels (float erf is exactly -1 below
// x = -5.5, so the result is -0 where the exact one is about -1e-7): there the bound is
// absolute, kGeluAbs * |x| (erf within 1 ULP of 1, times x / 2), as for libm's erff.
constexpr int kUlpBound = 4;
constexpr double kGeluAbs = 1.2e-7;

const std::vector<UnaryCase> kUnaryCases = {
    {UnaryOp::Neg, 0, 0, true, 0},        {UnaryOp::Exp, 0, 0, false, 2},
    {UnaryOp::Log, 0, 0, false, 2},       {UnaryOp::Sqrt, 0, 0, true, 0},
    {UnaryOp::Rsqrt, 0, 0, true, 0},      {UnaryOp::Abs, 0, 0, true, 0},
    {UnaryOp::Tanh, 0, 0, false, 2},      {UnaryOp::Sigmoid, 0, 0, false, kUlpBound},
    {UnaryOp::Relu, 0, 0, true, 0},       {UnaryOp::Reciprocal, 0, 0, true, 0},
    {UnaryOp::Gelu, 0, 0, false, kUlpBound}, {UnaryOp::GeluTanh, 0, 0, false, kUlpBound},
    {UnaryOp::QuickGelu, 0, 0, false, kUlpBound}, {UnaryOp::Pow, 2.0, 0, true, 0},
    {UnaryOp::Pow, 0.5, 0, true, 0},     {UnaryOp::Clamp, -0.5, 0.75, true, 0},
    {UnaryOp::Affine, 1.7, -0.3, true, 0}, {UnaryOp::Sign, 0, 0, true, 0},
};

bool positive_domain(UnaryOp op) {
    return op == UnaryOp::Log || op == UnaryOp::Sqrt || op == UnaryOp::Rsqrt || op == UnaryOp::Pow;
}

// got (in dtype) against the reference value x -> ref: exact ops bit for bit (after rounding to
// dtype), the others within `ulps` float ULPs (1 ULP of bf16 when stored as bf16, whose
// rounding may go either way after a float that is a few ULPs off), GELU's absolute floor.
bool unary_close(const UnaryCase& c, DType dtype, double x, double got, double ref) {
    if (c.exact) return bits_of(got, dtype) == bits_of(ref, dtype);
    bool cancels = c.op == UnaryOp::Gelu || c.op == UnaryOp::GeluTanh || c.op == UnaryOp::QuickGelu;
    if (dtype == DType::F64)  // the scalar path: libm in double
        return ulp_distance(got, ref, DType::F64) <= 4 || (cancels && std::abs(got - ref) <= 1e-15 * std::abs(x));
    if (dtype == DType::BF16) {  // a float a few ULPs off may round to the neighbouring bf16
        double rounded = bf16_to_float(float_to_bf16(float(ref)));
        if (ulp_distance(got, rounded, DType::BF16) <= 1) return true;
        return cancels && x < 0 && std::abs(got - ref) <= kGeluAbs * std::abs(x) + std::ldexp(std::abs(ref), -8);
    }
    if (ulp_distance(got, ref, DType::F32) <= c.ulps) return true;
    return cancels && x < 0 && std::abs(got - ref) <= kGeluAbs * std::abs(x);
}

void check_unary(const UnaryCase& c, const Tensor& x, const std::string& what) {
    Tensor out = empty(x.shape(), x.dtype());
    cpu_backend().unary(c.op, x, out, c.p0, c.p1);
    for_each_element(x.numel(), [&](int64_t i) {
        double xi = value_at(x, i), got = value_at(out, i);
        double ref = x.dtype() == DType::F64 ? unary_reference<double>(c.op, xi, c.p0, c.p1)
                                             : double(unary_reference<float>(c.op, float(xi), c.p0, c.p1));
        bool ok = unary_close(c, x.dtype(), xi, got, ref);
        EXPECT_TRUE(ok) << what << " " << unary_op_name(c.op) << "(" << c.p0 << ") " << dtype_name(x.dtype())
                        << " element " << i << " x " << xi << ": got " << got << ", want " << ref;
        return ok;
    });
}

TEST(CpuKernels, UnaryOpsAgainstScalarReference) {
    for (const UnaryCase& c : kUnaryCases)
        for (DType dtype : kFloatTypes)
            for (int64_t n : kSizes) {
                if (n > 1000 && dtype == DType::F64) continue;  // the scalar path: small sizes show it
                Tensor x = positive_domain(c.op) ? abs(random({n}, DType::F64, uint64_t(n) + 1, 3.0)).to(dtype)
                                                 : random({n}, dtype, uint64_t(n) + 1, 3.0);
                check_unary(c, x, "flat n=" + std::to_string(n));
            }
}

TEST(CpuKernels, UnaryOpsOnStridedInputsAndSpecialValues) {
    for (const UnaryCase& c : kUnaryCases)
        for (DType dtype : kFloatTypes) {
            Tensor x = random({19, 33}, dtype, 11, 2.0).t();  // transposed: the scalar strided loop
            if (positive_domain(c.op)) x = abs(x);
            check_unary(c, x, "transposed");
            Tensor s = random({5, 40}, dtype, 12, 2.0).narrow(1, 3, 31);
            if (positive_domain(c.op)) s = abs(s);
            check_unary(c, s, "sliced rows");
            std::vector<double> special = {0.0, -0.0, INFINITY, -INFINITY, NAN, 1e-40, -1e-40, 88.0, -88.0,
                                           100.0, -100.0, 1e-3, 5.0, -5.0, -10.0, 20.0, -20.0};
            check_unary(c, from_vector(special, {int64_t(special.size())}, DType::F64).to(dtype), "special values");
        }
}

// The sweep: for each function, every 61st float (by bit pattern) in its interesting range,
// against the exact value.
TEST(CpuKernels, UlpSweepOfSleefFunctions) {
    struct Sweep {
        UnaryCase c;
        float lo, hi;
    };
    std::vector<Sweep> sweeps = {{{UnaryOp::Exp, 0, 0, false, 2}, -87.0f, 88.0f},
                                 {{UnaryOp::Log, 0, 0, false, 2}, 1e-30f, 1e30f},
                                 {{UnaryOp::Tanh, 0, 0, false, 2}, -12.0f, 12.0f},
                                 {{UnaryOp::Sigmoid, 0, 0, false, kUlpBound}, -80.0f, 80.0f},
                                 {{UnaryOp::Gelu, 0, 0, false, kUlpBound}, -12.0f, 12.0f},
                                 {{UnaryOp::GeluTanh, 0, 0, false, kUlpBound}, -12.0f, 12.0f},
                                 {{UnaryOp::QuickGelu, 0, 0, false, kUlpBound}, -40.0f, 40.0f}};
    for (const Sweep& s : sweeps) {
        std::vector<float> xs;
        for (float x = s.lo; x < s.hi;) {
            xs.push_back(x);
            int32_t b;
            std::memcpy(&b, &x, 4);
            b += x < 0 ? -61 : 61;
            if (x < 0 && b < int32_t(0x80000000u + 61)) b = 0;  // crossed -0: continue from +0
            std::memcpy(&x, &b, 4);
        }
        check_unary(s.c, from_vector(xs, {int64_t(xs.size())}), "sweep");
    }
}

// ---- binary ----

// d/dx of x/2 (1 + tanh u), u = sqrt(2/pi) (x + 0.044715 x^3), in double through sigmoid(2u):
// 1/2 (1 + tanh u) = s and 1/4 (1 - tanh^2 u) = s (1 - s) with s = 1 / (1 + exp(-2u)), so the
// left tail keeps its relative accuracy
double gelu_tanh_derivative_reference(double x) {
    double u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
    double s = 1 / (1 + std::exp(-2 * u)), s_minus = 1 / (1 + std::exp(2 * u));  // s_minus = 1 - s
    return s + 2 * x * s * s_minus * 0.7978845608028654 * (1 + 3 * 0.044715 * x * x);
}

// Exact ops in A (float for F32 / BF16, double for F64); the activations' backward as the
// exact derivative (in double) times g.
template <typename A>
double binary_reference(BinaryOp op, A a, A b) {
    switch (op) {
        case BinaryOp::Add: return a + b;
        case BinaryOp::Sub: return a - b;
        case BinaryOp::Mul: return a * b;
        case BinaryOp::Div: return a / b;
        case BinaryOp::Maximum: return std::isnan(a) || a > b ? a : b;
        case BinaryOp::Minimum: return std::isnan(a) || a < b ? a : b;
        case BinaryOp::Eq: return a == b;
        case BinaryOp::Gt: return a > b;
        case BinaryOp::Lt: return a < b;
        case BinaryOp::Ge: return a >= b;
        case BinaryOp::Le: return a <= b;
        default: break;
    }
    double x = a, g = b;
    if (op == BinaryOp::GeluBackward)
        return g * (0.5 * std::erfc(-x * M_SQRT1_2) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI));
    if (op == BinaryOp::GeluTanhBackward) return g * gelu_tanh_derivative_reference(x);
    double s = 1 / (1 + std::exp(-1.702 * x));
    return g * (s + 1.702 * x * s * (1 - s));
}

bool is_activation_backward(BinaryOp op) {
    return op == BinaryOp::GeluBackward || op == BinaryOp::GeluTanhBackward || op == BinaryOp::QuickGeluBackward;
}

// a and b are already expanded to out's shape (as the front-end passes them).
void check_binary(BinaryOp op, const Tensor& a, const Tensor& b, const std::string& what) {
    Tensor out = empty(a.shape(), a.dtype());
    cpu_backend().binary(op, a, b, out);
    DType dtype = a.dtype();
    for_each_element(out.numel(), [&](int64_t i) {
        double x = value_at(a, i), y = value_at(b, i), got = value_at(out, i);
        double want = dtype == DType::F64 ? binary_reference<double>(op, x, y) : binary_reference<float>(op, float(x), float(y));
        bool ok;
        if (!is_activation_backward(op)) {
            ok = bits_of(got, dtype) == bits_of(want, dtype);
        } else {
            // a few float roundings and one SLEEF call from exact; the derivative's terms are
            // O(1), so the error scales with |g| as much as with the result
            double tol = (dtype == DType::BF16 ? 8e-3 : dtype == DType::F64 ? 1e-13 : 2e-6) *
                         std::max(std::abs(want), std::abs(y));
            ok = std::abs(got - want) <= tol || (std::isnan(got) && std::isnan(want));
        }
        EXPECT_TRUE(ok) << what << " " << binary_op_name(op) << " " << dtype_name(dtype) << " element " << i << ": "
                        << x << ", " << y << " -> " << got;
        return ok;
    });
}

const std::vector<BinaryOp> kBinaryOps = {
    BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Maximum, BinaryOp::Minimum,
    BinaryOp::Eq, BinaryOp::Gt, BinaryOp::Lt, BinaryOp::Ge, BinaryOp::Le,
    BinaryOp::GeluBackward, BinaryOp::GeluTanhBackward, BinaryOp::QuickGeluBackward};

TEST(CpuKernels, BinaryOpsContiguous) {
    for (BinaryOp op : kBinaryOps)
        for (DType dtype : kFloatTypes)
            for (int64_t n : kSizes) {
                if (n > 1000 && dtype == DType::F64) continue;
                Tensor a = random({n}, dtype, uint64_t(n), 2.0), b = random({n}, dtype, uint64_t(n) + 100, 2.0);
                if (n == 17) b = a.detach().clone();  // equal operands: the comparisons' ties
                check_binary(op, a, b, "flat n=" + std::to_string(n));
            }
}

TEST(CpuKernels, BinaryOpsBroadcastAndStrided) {
    for (BinaryOp op : kBinaryOps)
        for (DType dtype : kFloatTypes)
            for (int64_t C : {1, 15, 16, 17, 129}) {
                Shape shape = {37, C};
                Tensor x = random(shape, dtype, uint64_t(C), 2.0);
                Tensor row = random({C}, dtype, uint64_t(C) + 1, 2.0).expand(shape);      // bias: (N, C) op (C)
                Tensor col = random({37, 1}, dtype, uint64_t(C) + 2, 2.0).expand(shape);  // (N, 1)
                Tensor scalar = random({}, dtype, uint64_t(C) + 3, 2.0).expand(shape);    // ()
                Tensor xt = random({C, 37}, dtype, uint64_t(C) + 4, 2.0).t();             // transposed
                check_binary(op, x, row, "row vector C=" + std::to_string(C));
                check_binary(op, row, x, "row vector first C=" + std::to_string(C));
                check_binary(op, x, col, "column C=" + std::to_string(C));
                check_binary(op, scalar, x, "scalar C=" + std::to_string(C));
                check_binary(op, xt, x, "transposed C=" + std::to_string(C));
                check_binary(op, xt, row, "transposed and row C=" + std::to_string(C));
            }
}

// The tanh-GELU derivative keeps its relative accuracy in the left tail, where the textbook form
// 1/2 (1 + t) + x/2 (1 - t^2) du/dx rounds t to -1 and returns 0 or a rounding residue of the
// true value's size (x = -5: -1.6e-6; the CUDA kernel gave +1.5e-6 there, the CPU -0).
TEST(CpuKernels, GeluTanhDerivativeIsAccurateInTheLeftTail) {
    std::vector<double> xs;
    for (double x = -9; x <= -2; x += 0.25) xs.push_back(x);
    int64_t n = int64_t(xs.size());
    for (DType dtype : {DType::F32, DType::F64}) {
        Tensor a = from_vector(xs, {n}, DType::F64).to(dtype), g = ones({n}, dtype), out = empty({n}, dtype);
        cpu_backend().binary(BinaryOp::GeluTanhBackward, a, g, out);
        for (int64_t i = 0; i < n; i++) {
            double want = gelu_tanh_derivative_reference(xs[size_t(i)]);
            EXPECT_LT(want, 0.0) << "x = " << xs[size_t(i)];
            EXPECT_NEAR(value_at(out, i), want, (dtype == DType::F32 ? 1e-5 : 1e-12) * std::abs(want))
                << dtype_name(dtype) << " x = " << xs[size_t(i)];
        }
    }
}

TEST(CpuKernels, BinaryNanAndSignedZeroSemantics) {
    std::vector<double> av = {NAN, 1.0, NAN, 0.0, -0.0, 2.0, -INFINITY, 3.0}, bv = {1.0, NAN, NAN, -0.0, 0.0, 2.0, 1.0, INFINITY};
    for (DType dtype : kFloatTypes) {
        Tensor a = from_vector(av, {8}, DType::F64).to(dtype), b = from_vector(bv, {8}, DType::F64).to(dtype);
        for (BinaryOp op : kBinaryOps)
            if (!is_activation_backward(op)) check_binary(op, a, b, "special values");
    }
}

TEST(CpuKernels, FrontEndBiasAddMatchesReference) {
    for (DType dtype : {DType::F32, DType::BF16}) {
        Tensor x = random({4, 65, 128}, dtype, 1), bias = random({128}, dtype, 2);
        Tensor y = x + bias;
        for_each_element(y.numel(), [&](int64_t i) {
            uint64_t want = bits_of(float(value_at(x, i)) + float(value_at(bias, i % 128)), dtype);
            EXPECT_EQ(bits_at(y, i), want) << "element " << i;
            return bits_at(y, i) == want;
        });
    }
}

// ---- where ----

TEST(CpuKernels, WhereCopiesTheChosenBits) {
    for (DType dtype : kFloatTypes)
        for (int64_t n : {1, 15, 16, 17, 129, 100003}) {
            Tensor cond = gt(random({n}, DType::F64, uint64_t(n)), zeros({}, DType::F64)).to(dtype);
            if (n == 17) {  // -0 is false, NaN is true
                Tensor special = from_vector(std::vector<double>{-0.0, NAN, 0.0, 1e-30}, {4}, DType::F64).to(dtype);
                cond = cat({special, cond.narrow(0, 4, n - 4)}, 0);
            }
            Tensor a = random({n}, dtype, uint64_t(n) + 1), b = random({n}, dtype, uint64_t(n) + 2);
            Tensor out = empty({n}, dtype);
            cpu_backend().where(cond, a, b, out);
            for_each_element(n, [&](int64_t i) {
                uint64_t want = value_at(cond, i) != 0 ? bits_at(a, i) : bits_at(b, i);
                EXPECT_EQ(bits_at(out, i), want) << dtype_name(dtype) << " n " << n << " element " << i;
                return bits_at(out, i) == want;
            });
        }
    // broadcast operands through the front-end
    Tensor x = random({7, 33}, DType::F32, 5);
    Tensor y = where(gt(x, zeros({})), x, zeros({}));
    for_each_element(y.numel(), [&](int64_t i) {
        double want = value_at(x, i) > 0 ? value_at(x, i) : 0.0;
        EXPECT_EQ(value_at(y, i), want);
        return value_at(y, i) == want;
    });
}

}  // namespace

// An F32 tensor with a BF16 one (the autocast residual add): the kernel reads the BF16 operand
// as it is, and must give the bits of casting it to F32 first; the BF16 input's gradient comes
// back in BF16.
TEST(CpuKernels, MixedF32Bf16BinaryOpsMatchCastingFirst) {
    Generator gen(17);
    for (int64_t n : {1, 17, 1000003}) {
        Tensor a = randn({n}, gen), b = randn({n}, gen).to(DType::BF16);
        Tensor b32 = b.to(DType::F32);
        for (auto [name, op] : {std::pair<const char*, Tensor (*)(const Tensor&, const Tensor&)>{"add", add},
                                {"sub", sub}, {"mul", mul}, {"div", div}}) {
            Tensor mixed = op(a, b), reference = op(a, b32);
            ASSERT_EQ(mixed.dtype(), DType::F32) << name;
            EXPECT_EQ(std::memcmp(mixed.raw_data(), reference.raw_data(), size_t(n) * 4), 0) << name << " n=" << n;
            Tensor swapped = op(b, a), swapped_ref = op(b32, a);
            EXPECT_EQ(std::memcmp(swapped.raw_data(), swapped_ref.raw_data(), size_t(n) * 4), 0) << name << " swapped";
        }
    }
    // broadcast: (N, C) F32 + (C) BF16
    Tensor x = randn({65, 129}, gen), row = randn({129}, gen).to(DType::BF16);
    Tensor got = x + row, want = x + row.to(DType::F32);
    EXPECT_EQ(std::memcmp(got.raw_data(), want.raw_data(), size_t(got.numel()) * 4), 0);
    // gradients keep each input's dtype
    Tensor xa = randn({4, 5}, gen).set_requires_grad(), xb = randn({4, 5}, gen).to(DType::BF16).set_requires_grad();
    sum(xa * xb).backward();
    EXPECT_EQ(xa.grad().dtype(), DType::F32);
    EXPECT_EQ(xb.grad().dtype(), DType::BF16);
    test::expect_close(xa.grad().to(DType::F64), xb.detach().to(DType::F64), 0, 0, "d(a*b)/da = b");
}
