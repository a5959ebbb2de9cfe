// tests/test_cuda_ops.cpp
// CPU-vs-CUDA equivalence of every op in engine/ops.h, forward and backward, plus the CUDA
// tensor plumbing (creation on the device, copies, casts, views, in-place ops), kernel error
// reporting and the real device allocator (reuse across identical steps, empty_cache, peak,
// no-cache mode, out-of-memory message).
//
// How a case runs (check_case): inputs are drawn on the CPU from a seeded Generator in F64, cast
// to the dtype under test, and copied to cuda:0. The same function runs on both copies; the
// outputs must agree, then sum(out * w) with fixed random weights w is backpropagated on both
// sides and every input gradient must agree. Non-contiguous inputs are made inside the case
// function (transpose / narrow / expand of the leaf), so both devices see the same views.
// F32 and F64 run every case; BF16 runs the cases marked bf16 on the device and compares with
// the F32 CPU result computed from the same bf16-rounded inputs, with relative bounds.
//
// Without a GPU every test skips with one message (see no_cuda_reason). Setting
// RANKCLIP_CUDA_TESTS_ON_CPU=1 runs the same comparisons with the CPU as the device under test:
// a self-check of this harness (and of the BF16 bounds against the CPU's bf16 path) on machines
// without a GPU; the allocator tests still skip then.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/random.h"
#include "tests/cuda_test_util.h"
#include "tests/test_util.h"
#ifdef RANKCLIP_CUDA
#include "cuda/allocator.h"
#include "cuda/cuda_backend.h"
#include "cuda/device.h"
#endif

namespace rankclip {
namespace {

using Inputs = std::vector<Tensor>;
using test::TensorFn;

// ---- the device under test, and the one skip message ----

using test::cpu_stands_in_for_cuda;
using test::no_cuda_reason;

using test::no_real_cuda_reason;

#define SKIP_WITHOUT_CUDA()                                  \
    do {                                                     \
        std::string reason_ = no_cuda_reason();              \
        if (!reason_.empty()) GTEST_SKIP() << reason_;       \
    } while (0)

#define SKIP_WITHOUT_REAL_CUDA()                             \
    do {                                                     \
        std::string reason_ = no_real_cuda_reason();         \
        if (!reason_.empty()) GTEST_SKIP() << reason_;       \
    } while (0)

Device device_under_test() { return cpu_stands_in_for_cuda() ? Device::cpu() : Device::cuda(0); }

// A copy of t on `device` that shares nothing with t (so leaves of the two sides are distinct).
Tensor copy_to(const Tensor& t, Device device) {
    Tensor out = t.to(device);
    if (out.impl() == t.impl()) out = t.detach().clone();
    return out;
}

Tensor on_cpu(const Tensor& t) { return t.to(Device::cpu()); }

// ---- comparison ----

// |got - want| <= atol + rtol * (|want| + spread * max|want|), elementwise. The spread term
// scales the bound for elements that are small only through cancellation (a sum near 0), while
// a wrong element (a bad index, a race, a missed tile) still stands out by orders of magnitude.
struct Tol {
    double rtol, atol, spread;
};
constexpr Tol kExact{0, 0, 0};
constexpr Tol kElemF32{1e-5, 1e-6, 1e-2};   // elementwise: same formula, ulp-level differences
constexpr Tol kLooseF32{1e-4, 1e-5, 1e-2};  // reductions, GEMM, attention: other summation orders
constexpr Tol kF64{1e-10, 1e-12, 1e-2};
constexpr Tol kBF16{2e-2, 1e-3, 1.0};       // bf16 on the device vs fp32 on the CPU

void expect_matches(const Tensor& got_any, const Tensor& want_any, Tol tol, const std::string& what) {
    Tensor got = on_cpu(got_any), want = on_cpu(want_any);
    ASSERT_EQ(got.shape(), want.shape()) << what << ": shapes differ: " << got.str() << " vs " << want.str();
    if (!is_floating(want.dtype()) || !is_floating(got.dtype())) {
        auto g = got.to_vector<int64_t>(), w = want.to_vector<int64_t>();
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < g.size(); i++)
            if (g[i] != w[i] && bad++ == 0) first = i;
        EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << g.size() << " integer elements differ, first at flat index "
                           << first << ": " << (bad ? g[first] : 0) << " vs " << (bad ? w[first] : 0);
        return;
    }
    auto g = got.to_vector<double>(), w = want.to_vector<double>();
    double max_abs = 0;
    for (double v : w)
        if (std::isfinite(v)) max_abs = std::max(max_abs, std::abs(v));
    size_t bad = 0, worst = 0;
    double worst_excess = -1;
    for (size_t i = 0; i < g.size(); i++) {
        bool ok;
        if (std::isnan(w[i]) || std::isnan(g[i])) ok = std::isnan(w[i]) && std::isnan(g[i]);
        else if (std::isinf(w[i]) || std::isinf(g[i])) ok = g[i] == w[i];
        else ok = std::abs(g[i] - w[i]) <= tol.atol + tol.rtol * (std::abs(w[i]) + tol.spread * max_abs);
        if (!ok) {
            bad++;
            double excess = std::isfinite(g[i] - w[i]) ? std::abs(g[i] - w[i]) : std::numeric_limits<double>::max();
            if (excess > worst_excess) {
                worst_excess = excess;
                worst = i;
            }
        }
    }
    EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << g.size() << " elements out of bounds (rtol " << tol.rtol
                       << ", atol " << tol.atol << ", spread " << tol.spread << ", max|want| " << max_abs
                       << "); worst at flat index " << worst << ": got " << (bad ? g[worst] : 0) << ", want "
                       << (bad ? w[worst] : 0);
}

// Bit-for-bit equality (same dtype, same bytes).
void expect_same_bits(const Tensor& got_any, const Tensor& want_any, const std::string& what) {
    Tensor got = on_cpu(got_any).contiguous(), want = on_cpu(want_any).contiguous();
    ASSERT_EQ(got.shape(), want.shape()) << what;
    ASSERT_EQ(got.dtype(), want.dtype()) << what;
    size_t n = size_t(got.numel()) * dtype_size(got.dtype());
    EXPECT_EQ(n == 0 ? 0 : std::memcmp(got.raw_data(), want.raw_data(), n), 0) << what << ": bits differ";
}

// ---- cases ----

struct Case {
    std::string name;
    std::function<Inputs(Generator&)> make;  // CPU inputs; floating ones in F64
    TensorFn fn;                             // runs unchanged on both devices
    bool loose = false;                      // F32 bound: kLooseF32 instead of kElemF32
    bool bf16 = false;                       // also run with bf16 tensors on the device
};

uint64_t seed_of(const std::string& name) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a: the same seed for a case on every run
    for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
    return h & 0xffffffffu;
}

Tol tol_for(const Case& c, DType dtype) {
    switch (dtype) {
        case DType::F64: return kF64;
        case DType::BF16: return kBF16;
        default: return c.loose ? kLooseF32 : kElemF32;
    }
}

void check_case(const Case& c, DType dtype) {
    SCOPED_TRACE(c.name + " [" + dtype_name(dtype) + "]");
    const Device dev = device_under_test();
    const DType ref_dtype = dtype == DType::BF16 ? DType::F32 : dtype;
    Generator gen(seed_of(c.name));
    Inputs base = c.make(gen);

    Inputs ref_in, dev_in;
    for (const Tensor& t : base) {
        if (!t.defined()) {
            ref_in.emplace_back();
            dev_in.emplace_back();
        } else if (!is_floating(t.dtype())) {  // indices and targets: the same on both sides
            ref_in.push_back(t);
            dev_in.push_back(copy_to(t, dev));
        } else {
            Tensor v = t.to(dtype);  // bf16: rounded once, so both sides start from equal values
            Tensor r = v.to(ref_dtype).detach().clone();
            Tensor d = copy_to(v.detach(), dev);
            r.set_requires_grad(true);
            d.set_requires_grad(true);
            ref_in.push_back(r);
            dev_in.push_back(d);
        }
    }

    Tensor want = c.fn(ref_in);
    Tensor got = c.fn(dev_in);
    ASSERT_TRUE(got.device() == dev) << "output on " << got.device().str();
    DType want_dtype = (dtype == DType::BF16 && want.dtype() == DType::F32) ? DType::BF16 : want.dtype();
    EXPECT_EQ(dtype_name(got.dtype()), std::string(dtype_name(want_dtype))) << "output dtype";
    Tol tol = is_floating(want.dtype()) ? tol_for(c, dtype) : kExact;
    expect_matches(got, want, tol, "output");

    ASSERT_EQ(got.requires_grad(), want.requires_grad()) << "requires_grad of the output";
    if (!want.requires_grad()) return;
    Generator wgen(4321);
    Tensor w = randn(want.shape(), wgen, DType::F64).to(got.dtype());  // bf16: rounded, used by both
    sum(want * w.to(want.dtype())).backward();
    sum(got * copy_to(w, dev)).backward();
    for (size_t k = 0; k < ref_in.size(); k++) {
        if (!ref_in[k].defined() || !is_floating(ref_in[k].dtype())) continue;
        Tensor gw = ref_in[k].grad(), gg = dev_in[k].grad();
        std::string what = "gradient of input " + std::to_string(k);
        ASSERT_EQ(gg.defined(), gw.defined()) << what << ": defined on one side only";
        if (!gw.defined()) continue;
        EXPECT_TRUE(gg.device() == dev) << what << " on " << gg.device().str();
        expect_matches(gg, gw, tol_for(c, dtype), what);
    }
}

// Runs every case in F32 and F64 (and BF16 where marked); an exception (a kernel the backend
// lacks, a CUDA error) fails that case only, so one gap does not hide the rest of the group.
void check_all(const std::vector<Case>& cases, bool with_bf16) {
    for (const Case& c : cases) {
        std::vector<DType> dtypes = {DType::F32, DType::F64};
        if (with_bf16 && c.bf16) dtypes.push_back(DType::BF16);
        for (DType dtype : dtypes) {
            try {
                check_case(c, dtype);
            } catch (const std::exception& e) {
                ADD_FAILURE() << c.name << " [" << dtype_name(dtype) << "]: threw: " << e.what();
            }
        }
    }
}

// ---- input makers (CPU, F64 unless integer) ----

Tensor normal(Generator& g, const Shape& s, double scale = 1.0) { return randn(s, g, DType::F64) * scale; }
// in [0.5, 2): for log, sqrt, rsqrt, fractional powers
Tensor positive(Generator& g, const Shape& s) { return rand(s, g, DType::F64) * 1.5 + 0.5; }
// |x| in [0.5, 2) with a random sign: for denominators
Tensor nonzero(Generator& g, const Shape& s) {
    return positive(g, s) * (randint(0, 2, s, g, DType::F64) * 2.0 - 1.0);
}
// multiples of 0.5 in [-2, 2]: many ties and exact zeros (max/min/sort/argmax tie rules, kinks)
Tensor ties(Generator& g, const Shape& s) { return randint(-4, 5, s, g, DType::F64) * 0.5; }
Tensor ids(Generator& g, int64_t lo, int64_t hi, const Shape& s, DType dtype = DType::I64) {
    return randint(lo, hi, s, g, dtype);
}
Tensor ints(const std::vector<int64_t>& v) { return from_vector(v, {int64_t(v.size())}, DType::I64); }

// ---- elementwise ----

std::vector<Case> binary_cases() {
    return {
        {"add, broadcast (3,1,5) + (4,1)", [](Generator& g) { return Inputs{normal(g, {3, 1, 5}), normal(g, {4, 1})}; },
         [](const Inputs& in) { return add(in[0], in[1]); }, false, true},
        {"add, rows of 4099", [](Generator& g) { return Inputs{normal(g, {2, 4099}), normal(g, {2, 4099})}; },
         [](const Inputs& in) { return in[0] + in[1]; }, false, true},
        // dense but one element off the alignment of the kernels' vector loads (kernels::Pack)
        {"add, views one element in", [](Generator& g) { return Inputs{normal(g, {4100}), normal(g, {4100})}; },
         [](const Inputs& in) { return in[0].narrow(0, 1, 4099) + in[1].narrow(0, 1, 4099); }, false, true},
        {"quick_gelu and a cast of a view one element in", [](Generator& g) { return Inputs{normal(g, {2, 4100})}; },
         [](const Inputs& in) {
             Tensor x = in[0].view({-1}).narrow(0, 1, 8199);
             return quick_gelu(x) + cast(cast(x, DType::F64), x.dtype());
         },
         false, true},
        {"sub, transposed input", [](Generator& g) { return Inputs{normal(g, {7, 5}), normal(g, {5, 7})}; },
         [](const Inputs& in) { return sub(in[0].t(), in[1]); }, false, true},
        {"mul, narrowed input", [](Generator& g) { return Inputs{normal(g, {6, 9}), normal(g, {6, 5})}; },
         [](const Inputs& in) { return mul(in[0].narrow(1, 2, 5), in[1]); }, false, true},
        // 3M elements: more than one grid-stride pass of a capped grid, strided and broadcast
        {"mul, 1733 x 1741 transposed times a column",
         [](Generator& g) { return Inputs{normal(g, {1741, 1733}), normal(g, {1733, 1})}; },
         [](const Inputs& in) { return in[0].t() * in[1]; }, true, true},
        {"div, broadcast row", [](Generator& g) { return Inputs{normal(g, {4, 33}), nonzero(g, {33})}; },
         [](const Inputs& in) { return div(in[0], in[1]); }, false, true},
        {"maximum with ties", [](Generator& g) { return Inputs{ties(g, {5, 9}), ties(g, {5, 9})}; },
         [](const Inputs& in) { return maximum(in[0], in[1]); }, false, true},
        {"minimum with ties", [](Generator& g) { return Inputs{ties(g, {5, 9}), ties(g, {5, 9})}; },
         [](const Inputs& in) { return minimum(in[0], in[1]); }, false, true},
        {"maximum, broadcast (4,1,6) vs (5,1)", [](Generator& g) { return Inputs{normal(g, {4, 1, 6}), normal(g, {5, 1})}; },
         [](const Inputs& in) { return maximum(in[0], in[1]); }, false, true},
        {"where, broadcast condition",
         [](Generator& g) { return Inputs{randint(0, 2, {3, 1}, g, DType::F64), normal(g, {3, 8}), normal(g, {8})}; },
         [](const Inputs& in) { return where(in[0], in[1], in[2]); }, false, true},
        {"scalar arithmetic", [](Generator& g) { return Inputs{normal(g, {3, 1000})}; },
         [](const Inputs& in) { return ((in[0] + 2.5) * -1.5 - 3.0) / 4.0 + (1.0 - in[0]) * 0.5; }, false, true},
        {"scalar divided by tensor", [](Generator& g) { return Inputs{nonzero(g, {3, 100})}; },
         [](const Inputs& in) { return 2.0 / in[0] + (-in[0]); }, false, true},
        {"eq, gt, lt with ties", [](Generator& g) { return Inputs{ties(g, {6, 40}), ties(g, {40})}; },
         [](const Inputs& in) { return eq(in[0], in[1]) + gt(in[0], in[1]) * 2.0 + lt(in[0], in[1]) * 4.0; }, false,
         true},
        {"affine", [](Generator& g) { return Inputs{normal(g, {3, 1000})}; },
         [](const Inputs& in) { return affine(in[0], 1.7, -0.3); }, false, true},
        {"cast to F64 and back", [](Generator& g) { return Inputs{normal(g, {4, 33})}; },
         [](const Inputs& in) { return cast(cast(in[0], DType::F64) * 3.0, in[0].dtype()); }},
        {"cast to BF16", [](Generator& g) { return Inputs{normal(g, {4, 33})}; },
         [](const Inputs& in) { return cast(in[0], DType::BF16); }},
    };
}

std::vector<Case> unary_cases() {
    auto unary = [](std::string name, std::function<Tensor(Generator&, const Shape&)> make,
                    std::function<Tensor(const Tensor&)> f) {
        return Case{name, [make](Generator& g) { return Inputs{make(g, {3, 1000})}; },
                    [f](const Inputs& in) { return f(in[0]); }, false, true};
    };
    auto n = [](double scale) { return [scale](Generator& g, const Shape& s) { return normal(g, s, scale); }; };
    return {
        unary("neg", n(1), [](const Tensor& x) { return neg(x); }),
        unary("exp", n(2), [](const Tensor& x) { return exp(x); }),
        unary("log", positive, [](const Tensor& x) { return log(x); }),
        unary("sqrt", positive, [](const Tensor& x) { return sqrt(x); }),
        unary("rsqrt", positive, [](const Tensor& x) { return rsqrt(x); }),
        unary("reciprocal", nonzero, [](const Tensor& x) { return reciprocal(x); }),
        unary("pow 2", positive, [](const Tensor& x) { return pow(x, 2.0); }),
        unary("pow 0.5", positive, [](const Tensor& x) { return pow(x, 0.5); }),
        unary("pow -1.5", positive, [](const Tensor& x) { return pow(x, -1.5); }),
        unary("pow 3 of negative values", n(1), [](const Tensor& x) { return pow(x, 3.0); }),
        unary("abs with zeros", ties, [](const Tensor& x) { return abs(x); }),
        unary("tanh", n(2), [](const Tensor& x) { return tanh(x); }),
        unary("sigmoid", n(3), [](const Tensor& x) { return sigmoid(x); }),
        unary("relu with zeros", ties, [](const Tensor& x) { return relu(x); }),
        unary("gelu exact", n(2), [](const Tensor& x) { return gelu(x); }),
        unary("gelu tanh", n(2), [](const Tensor& x) { return gelu(x, true); }),
        unary("quick_gelu", n(2), [](const Tensor& x) { return quick_gelu(x); }),
        unary("clamp at the bounds", ties, [](const Tensor& x) { return clamp(x, -0.5, 1.0); }),
        unary("clamp_min", n(1), [](const Tensor& x) { return clamp_min(x, 0.1); }),
        Case{"exp of a transposed, narrowed view", [](Generator& g) { return Inputs{normal(g, {40, 17})}; },
             [](const Inputs& in) { return exp(in[0].t().narrow(1, 3, 31)); }, false, true},
        Case{"tanh of an expanded input", [](Generator& g) { return Inputs{normal(g, {5, 1})}; },
             [](const Inputs& in) { return tanh(in[0].expand({5, 300})); }, false, true},
    };
}

// ---- reductions ----

std::vector<Case> reduce_cases() {
    return {
        {"sum of all 4099", [](Generator& g) { return Inputs{normal(g, {4099})}; },
         [](const Inputs& in) { return sum(in[0]); }, true},
        {"sum dim 1 of (3, 1000)", [](Generator& g) { return Inputs{normal(g, {3, 1000})}; },
         [](const Inputs& in) { return sum(in[0], {1}); }, true},
        {"sum dims {0, 2} keepdim", [](Generator& g) { return Inputs{normal(g, {5, 7, 9})}; },
         [](const Inputs& in) { return sum(in[0], {0, -1}, true); }, true},
        {"sum of a transposed input", [](Generator& g) { return Inputs{normal(g, {1000, 3})}; },
         [](const Inputs& in) { return sum(in[0].t(), {-1}); }, true},
        {"sum of rows of 100003", [](Generator& g) { return Inputs{normal(g, {2, 100003})}; },
         [](const Inputs& in) { return sum(in[0], {1}); }, true},
        // down the columns of (A, R, C) (reduce_cols): a bias gradient's shape, rows cut into
        // chunks, a partial column tile; slabs; max down the columns
        {"bias gradient: sum dims {0, 1} of (4, 3001, 70)", [](Generator& g) { return Inputs{normal(g, {4, 3001, 70})}; },
         [](const Inputs& in) { return sum(in[0], {0, 1}); }, true},
        {"sum dim 1 of (3, 517, 45)", [](Generator& g) { return Inputs{normal(g, {3, 517, 45})}; },
         [](const Inputs& in) { return sum(in[0], {1}); }, true},
        {"amax dim 1 of (3, 517, 45)", [](Generator& g) { return Inputs{normal(g, {3, 517, 45})}; },
         [](const Inputs& in) { return amax(in[0], {1}); }, true},
        {"sum over an empty dim", [](Generator& g) { return Inputs{normal(g, {4, 0})}; },
         [](const Inputs& in) { return sum(in[0], {1}); }, true},
        {"mean dim 1", [](Generator& g) { return Inputs{normal(g, {4, 4099})}; },
         [](const Inputs& in) { return mean(in[0], {1}); }, true},
        {"mean of all", [](Generator& g) { return Inputs{normal(g, {6, 7, 8})}; },
         [](const Inputs& in) { return mean(in[0]); }, true},
        {"amax with ties", [](Generator& g) { return Inputs{ties(g, {6, 50})}; },
         [](const Inputs& in) { return amax(in[0], {1}); }, true},
        {"amin dim 0 keepdim with ties", [](Generator& g) { return Inputs{ties(g, {6, 50})}; },
         [](const Inputs& in) { return amin(in[0], {0}, true); }, true},
        {"amax of all, rows of 4099", [](Generator& g) { return Inputs{normal(g, {3, 4099})}; },
         [](const Inputs& in) { return amax(in[0]); }, true},
        {"max values with ties", [](Generator& g) { return Inputs{ties(g, {7, 13})}; },
         [](const Inputs& in) { return max(in[0], 1).first; }, true},
        {"max indices with ties", [](Generator& g) { return Inputs{ties(g, {7, 13})}; },
         [](const Inputs& in) { return max(in[0], 0, true).second; }, true},
        {"argmax dim 0 with ties", [](Generator& g) { return Inputs{ties(g, {7, 13})}; },
         [](const Inputs& in) { return argmax(in[0], 0); }, true},
        {"argmax of rows of 4099 keepdim", [](Generator& g) { return Inputs{normal(g, {3, 4099})}; },
         [](const Inputs& in) { return argmax(in[0], -1, true); }, true},
        {"logsumexp of large values", [](Generator& g) { return Inputs{normal(g, {4, 1000}, 30)}; },
         [](const Inputs& in) { return logsumexp(in[0], {1}); }, true},
        {"logsumexp over two dims", [](Generator& g) { return Inputs{normal(g, {3, 5, 7})}; },
         [](const Inputs& in) { return logsumexp(in[0], {0, 2}, true); }, true},
        {"sum_to (4,3,5) -> (3,1)", [](Generator& g) { return Inputs{normal(g, {4, 3, 5})}; },
         [](const Inputs& in) { return sum_to(in[0], {3, 1}); }, true},
    };
}

// ---- matmul ----

std::vector<Case> matmul_cases() {
    auto mm = [](std::string name, Shape a, Shape b, bool bf16 = true) {
        return Case{name, [a, b](Generator& g) { return Inputs{normal(g, a), normal(g, b)}; },
                    [](const Inputs& in) { return matmul(in[0], in[1]); }, true, bf16};
    };
    return {
        mm("1-D dot 257", {257}, {257}),
        mm("(33, 65) @ (65, 17)", {33, 65}, {65, 17}),
        mm("matrix @ vector", {31, 40}, {40}),
        mm("vector @ matrix", {40}, {40, 23}),
        mm("batched with broadcast (2,1,5,7) @ (3,7,4)", {2, 1, 5, 7}, {3, 7, 4}),
        mm("K = 4099", {8, 4099}, {4099, 9}),
        mm("(256, 512) @ (512, 384)", {256, 512}, {512, 384}),
        mm("batch (4,16,32) @ shared (32,8)", {4, 16, 32}, {32, 8}),
        mm("1 x 1", {1, 1}, {1, 1}),
        mm("K = 0", {3, 0}, {0, 4}, false),
        {"transposed operands a.t() @ b.t()",
         [](Generator& g) { return Inputs{normal(g, {65, 33}), normal(g, {17, 65})}; },
         [](const Inputs& in) { return matmul(in[0].t(), in[1].t()); }, true, true},
        {"permuted batch (heads) q @ k^T",
         [](Generator& g) { return Inputs{normal(g, {2, 9, 3, 16}), normal(g, {2, 11, 3, 16})}; },
         [](const Inputs& in) {
             return matmul(in[0].permute({0, 2, 1, 3}), in[1].permute({0, 2, 3, 1}));  // (2,3,9,11)
         },
         true, true},
        {"narrowed rows", [](Generator& g) { return Inputs{normal(g, {20, 30}), normal(g, {30, 12})}; },
         [](const Inputs& in) { return matmul(in[0].narrow(0, 3, 11).narrow(1, 1, 29), in[1].narrow(0, 0, 29)); },
         true, true},
    };
}

// linear: the cuBLASLt GEMM with the bias in its epilogue where the bias is 16-byte aligned, the
// GEMM and a broadcast add otherwise (cuda/matmul.cu)
std::vector<Case> linear_cases() {
    auto lin = [](std::string name, Shape x, int64_t N, bool bias, bool bf16 = true) {
        return Case{name,
                    [x, N, bias](Generator& g) {
                        return Inputs{normal(g, x), normal(g, {N, x.back()}), bias ? normal(g, {N}) : Tensor()};
                    },
                    [](const Inputs& in) { return linear(in[0], in[1], in[2]); }, true, bf16};
    };
    return {
        lin("linear (33, 65) x (17, 65)^T + bias", {33, 65}, 17, true),
        lin("linear without bias", {33, 65}, 17, false),
        lin("linear of (3, 7, 64) tokens", {3, 7, 64}, 96, true),
        lin("linear (256, 384) x (512, 384)^T + bias", {256, 384}, 512, true),
        lin("linear of one row", {1, 40}, 8, true),
        lin("linear K = 0", {4, 0}, 3, true, false),
        {"linear with an unaligned bias and input",  // offsets of 1 element and of one 65-wide row
         [](Generator& g) { return Inputs{normal(g, {34, 65}), normal(g, {17, 65}), normal(g, {18})}; },
         [](const Inputs& in) { return linear(in[0].narrow(0, 1, 33), in[1], in[2].narrow(0, 1, 17)); }, true,
         true},
    };
}

// ---- shape ops and indexing ----

std::vector<Case> shape_index_cases() {
    return {
        {"cat dim 1 with a transposed part",
         [](Generator& g) { return Inputs{normal(g, {3, 4}), normal(g, {5, 3}), normal(g, {3, 1})}; },
         [](const Inputs& in) { return cat({in[0], in[1].t(), in[2]}, 1); }},
        {"stack dim -1", [](Generator& g) { return Inputs{normal(g, {4, 6}), normal(g, {4, 6})}; },
         [](const Inputs& in) { return stack({in[0], in[1]}, -1); }},
        {"flip dims {0, 2}", [](Generator& g) { return Inputs{normal(g, {3, 4, 5})}; },
         [](const Inputs& in) { return flip(in[0], {0, 2}); }},
        {"cumsum rows of 4099", [](Generator& g) { return Inputs{normal(g, {3, 4099})}; },
         [](const Inputs& in) { return cumsum(in[0], -1); }, true},
        {"cumsum reverse", [](Generator& g) { return Inputs{normal(g, {5, 300})}; },
         [](const Inputs& in) { return cumsum(in[0], 1, true); }, true},
        {"cumsum dim 0 of a transposed input", [](Generator& g) { return Inputs{normal(g, {6, 700})}; },
         [](const Inputs& in) { return cumsum(in[0].t(), 0); }, true},
        {"index_select dim 1, repeated indices",
         [](Generator& g) { return Inputs{normal(g, {4, 10, 3}), ints({0, 9, 3, 3, 9, 1})}; },
         [](const Inputs& in) { return index_select(in[0], 1, in[1]); }, true},
        {"index_select with I32 index",
         [](Generator& g) { return Inputs{normal(g, {12, 5}), ids(g, 0, 12, {20}, DType::I32)}; },
         [](const Inputs& in) { return index_select(in[0], 0, in[1]); }, true},
        {"embedding (50, 768), ids (4, 77)", [](Generator& g) { return Inputs{normal(g, {50, 768}), ids(g, 0, 50, {4, 77})}; },
         [](const Inputs& in) { return embedding(in[0], in[1]); }, true},
        // a padded text batch: 60 of each row's 77 ids are the padding id, one run of 480 in
        // the backward's sorted keys (its adds in order, 8 loads ahead, and a tail)
        {"embedding of a padded batch, ids (8, 77)",
         [](Generator& g) {
             std::vector<int64_t> v = ids(g, 0, 40, {8, 77}).to_vector<int64_t>();
             for (size_t j = 0; j < v.size(); j++)
                 if (j % 77 >= 17) v[j] = 3;
             return Inputs{normal(g, {40, 64}), from_vector(v, {8, 77}, DType::I64)};
         },
         [](const Inputs& in) { return embedding(in[0], in[1]); }, true},
        {"gather dim 1, index smaller than input",
         [](Generator& g) { return Inputs{normal(g, {4, 9, 5}), ids(g, 0, 9, {3, 6, 5})}; },
         [](const Inputs& in) { return gather(in[0], 1, in[1]); }, true},
        {"gather dim 0, repeated rows", [](Generator& g) { return Inputs{normal(g, {8, 6}), ids(g, 0, 8, {11, 6})}; },
         [](const Inputs& in) { return gather(in[0], 0, in[1]); }, true},
        {"gather along rows of 4099",
         [](Generator& g) { return Inputs{normal(g, {3, 4099}), ids(g, 0, 4099, {3, 50})}; },
         [](const Inputs& in) { return gather(in[0], -1, in[1]); }, true},
        {"sort values ascending, rows of 4099", [](Generator& g) { return Inputs{normal(g, {5, 4099})}; },
         [](const Inputs& in) { return sort(in[0]).first; }},
        {"sort values descending", [](Generator& g) { return Inputs{normal(g, {7, 130})}; },
         [](const Inputs& in) { return sort(in[0], -1, true).first; }},
        {"sort values dim 0", [](Generator& g) { return Inputs{normal(g, {37, 4})}; },
         [](const Inputs& in) { return sort(in[0], 0).first; }},
        {"sort indices, stable with ties", [](Generator& g) { return Inputs{ties(g, {6, 100})}; },
         [](const Inputs& in) { return sort(in[0]).second; }},
        {"sort indices descending, stable with ties", [](Generator& g) { return Inputs{ties(g, {6, 1000})}; },
         [](const Inputs& in) { return sort(in[0], -1, true).second; }},
        {"sort indices, rows of 4099", [](Generator& g) { return Inputs{normal(g, {2, 4099})}; },
         [](const Inputs& in) { return sort(in[0]).second; }},
        {"argsort dim 0 with ties", [](Generator& g) { return Inputs{ties(g, {50, 3})}; },
         [](const Inputs& in) { return argsort(in[0], 0); }},
        {"sort rows of one", [](Generator& g) { return Inputs{normal(g, {5, 1})}; },
         [](const Inputs& in) { return sort(in[0]).first; }},
    };
}

// ---- nn ----

std::vector<Case> softmax_cases() {
    std::vector<Case> cases;
    for (int64_t C : {1, 7, 1000, 4099}) {
        Shape s = {3, C};
        cases.push_back({"softmax C = " + std::to_string(C), [s](Generator& g) { return Inputs{normal(g, s, 5)}; },
                         [](const Inputs& in) { return softmax(in[0], -1); }, true, true});
        cases.push_back({"log_softmax C = " + std::to_string(C), [s](Generator& g) { return Inputs{normal(g, s, 5)}; },
                         [](const Inputs& in) { return log_softmax(in[0], -1); }, true, true});
    }
    cases.push_back({"softmax C = 49408", [](Generator& g) { return Inputs{normal(g, {2, 49408}, 3)}; },
                     [](const Inputs& in) { return softmax(in[0], 1); }, true, true});
    cases.push_back({"softmax dim 0 of a transposed input", [](Generator& g) { return Inputs{normal(g, {6, 300})}; },
                     [](const Inputs& in) { return softmax(in[0].t(), 0); }, true, true});
    cases.push_back({"log_softmax dim 1 of (2, 5, 3)", [](Generator& g) { return Inputs{normal(g, {2, 5, 3})}; },
                     [](const Inputs& in) { return log_softmax(in[0], 1); }, true, true});
    cases.push_back({"softmax with -inf entries",
                     [](Generator& g) { return Inputs{normal(g, {4, 50}), randint(0, 4, {4, 50}, g, DType::F64)}; },
                     [](const Inputs& in) {
                         // about a quarter masked; column 0 always kept so no row is all -inf
                         Tensor keep = maximum(in[1], full({50}, 0.0, in[1].dtype(), in[1].device()));
                         Tensor col0 = cat({ones({4, 1}, in[0].dtype(), in[0].device()),
                                            zeros({4, 49}, in[0].dtype(), in[0].device())}, 1);
                         Tensor visible = maximum(keep, col0);
                         Tensor masked = where(visible, in[0], full({}, -INFINITY, in[0].dtype(), in[0].device()));
                         return softmax(masked, -1);
                     },
                     true, true});
    cases.push_back({"softmax_composite", [](Generator& g) { return Inputs{normal(g, {5, 1000}, 5)}; },
                     [](const Inputs& in) { return softmax_composite(in[0], -1); }, true});
    cases.push_back({"log_softmax_composite", [](Generator& g) { return Inputs{normal(g, {5, 1000}, 5)}; },
                     [](const Inputs& in) { return log_softmax_composite(in[0], 1); }, true});
    return cases;
}

std::vector<Case> layer_norm_cases() {
    auto ln = [](std::string name, Shape x, bool affine = true, double eps = 1e-5) {
        int64_t C = x.back();
        return Case{name,
                    [x, C, affine](Generator& g) {
                        Tensor xs = normal(g, x, 2.0) + 3.0;  // an offset mean, as real activations have
                        if (!affine) return Inputs{xs, Tensor(), Tensor()};
                        return Inputs{xs, normal(g, {C}) + 1.0, normal(g, {C})};
                    },
                    [eps](const Inputs& in) { return layer_norm(in[0], in[1], in[2], eps); }, true, true};
    };
    return {
        ln("layer_norm (2, 77, 768)", {2, 77, 768}),
        ln("layer_norm C = 1", {5, 1}),
        ln("layer_norm C = 5", {9, 5}),
        ln("layer_norm C = 1000", {3, 1000}),
        ln("layer_norm C = 4099", {2, 4099}),
        ln("layer_norm without weight and bias", {6, 768}, false),
        ln("layer_norm eps 1e-6", {4, 64}, true, 1e-6),
        {"layer_norm of a transposed input",
         [](Generator& g) { return Inputs{normal(g, {768, 6}), normal(g, {768}), normal(g, {768})}; },
         [](const Inputs& in) { return layer_norm(in[0].t(), in[1], in[2]); }, true, true},
        {"layer_norm_composite", [](Generator& g) { return Inputs{normal(g, {4, 768}), normal(g, {768}), normal(g, {768})}; },
         [](const Inputs& in) { return layer_norm_composite(in[0], in[1], in[2]); }, true},
    };
}

std::vector<Case> loss_cases() {
    auto ce = [](std::string name, int64_t N, int64_t C, Reduction r, DType target_dtype = DType::I64,
                 std::vector<int64_t> ignored_rows = {}, int64_t ignore_index = -100) {
        return Case{name,
                    [=](Generator& g) {
                        Tensor t = ids(g, 0, C, {N});
                        for (int64_t row : ignored_rows) t.narrow(0, row, 1).fill_(double(ignore_index));
                        return Inputs{normal(g, {N, C}, 3), t.to(target_dtype)};
                    },
                    [=](const Inputs& in) { return cross_entropy(in[0], in[1], r, ignore_index); }, true};
    };
    return {
        ce("cross_entropy mean, C = 1000", 7, 1000, Reduction::Mean),
        ce("cross_entropy sum", 7, 1000, Reduction::Sum),
        ce("cross_entropy none", 7, 1000, Reduction::None),
        ce("cross_entropy with ignored rows", 9, 100, Reduction::Mean, DType::I64, {1, 4, 5}),
        ce("cross_entropy ignore_index 3", 9, 10, Reduction::Mean, DType::I64, {0, 2}, 3),
        ce("cross_entropy I32 targets", 5, 37, Reduction::Mean, DType::I32),
        ce("cross_entropy C = 49408", 3, 49408, Reduction::Mean),
        ce("cross_entropy C = 4099", 4, 4099, Reduction::Sum),
        ce("cross_entropy C = 1", 4, 1, Reduction::Mean),
        ce("cross_entropy every row ignored (NaN)", 3, 5, Reduction::Mean, DType::I64, {0, 1, 2}),
        {"cross_entropy_composite",
         [](Generator& g) { return Inputs{normal(g, {5, 100}, 3), ids(g, 0, 100, {5})}; },
         [](const Inputs& in) { return cross_entropy_composite(in[0], in[1]); }, true},
        {"l2_normalize last dim", [](Generator& g) { return Inputs{normal(g, {4, 768})}; },
         [](const Inputs& in) { return l2_normalize(in[0]); }, true, true},
        {"l2_normalize dim 0 with a zero column", [](Generator& g) { return Inputs{normal(g, {5, 3})}; },
         [](const Inputs& in) {
             Tensor mask = from_vector<double>({1, 0, 1}, {3}, in[0].dtype(), in[0].device());
             return l2_normalize(in[0] * mask, 0);
         },
         true},
    };
}

std::vector<Case> dropout_cases() {
    // A fresh generator inside the function: both sides draw the same seed, so the masks
    // (counter-based, keyed by that seed) must be the same on both devices.
    auto dr = [](std::string name, Shape s, double p, bool training) {
        return Case{name, [s](Generator& g) { return Inputs{normal(g, s)}; },
                    [p, training](const Inputs& in) {
                        Generator gen(77);
                        return dropout(in[0], p, training, gen);
                    },
                    false, true};
    };
    return {
        dr("dropout p = 0.1", {3, 1000}, 0.1, true),
        dr("dropout p = 0.5, 4099", {4099}, 0.5, true),
        dr("dropout p = 1", {4, 7}, 1.0, true),
        dr("dropout, eval mode", {4, 7}, 0.3, false),
    };
}

std::vector<Case> attention_cases() {
    std::vector<Case> cases;
    auto att = [](std::string name, int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D, bool causal,
                  double scale = -1.0, bool bf16 = false) {
        return Case{name,
                    [=](Generator& g) {
                        return Inputs{normal(g, {B, H, Tq, D}), normal(g, {B, H, Tk, D}), normal(g, {B, H, Tk, D})};
                    },
                    [=](const Inputs& in) { return scaled_dot_product_attention(in[0], in[1], in[2], causal, scale); },
                    true, bf16};
    };
    for (int64_t T : {1, 17, 77, 128})
        for (int64_t D : {32, 64})
            for (bool causal : {false, true}) {
                std::string name = "attention T = " + std::to_string(T) + ", D = " + std::to_string(D) +
                                   (causal ? ", causal" : "");
                cases.push_back(att(name, 2, 3, T, T, D, causal, -1.0, T == 77 || T == 128));
            }
    cases.push_back(att("attention Tq 17 < Tk 77", 1, 2, 17, 77, 32, false, -1.0, true));
    cases.push_back(att("attention Tq 77 > Tk 17, causal", 1, 2, 77, 17, 32, true, -1.0, true));
    cases.push_back(att("attention scale 0.3", 2, 2, 33, 33, 64, false, 0.3));
    cases.push_back(att("attention D = 16, T = 200", 1, 2, 200, 200, 16, true));
    cases.push_back({"attention of permuted (B, T, H, D) inputs",
                     [](Generator& g) {
                         return Inputs{normal(g, {2, 77, 4, 32}), normal(g, {2, 77, 4, 32}), normal(g, {2, 77, 4, 32})};
                     },
                     [](const Inputs& in) {
                         auto heads = [](const Tensor& t) { return t.permute({0, 2, 1, 3}); };  // (B, H, T, D)
                         return scaled_dot_product_attention(heads(in[0]), heads(in[1]), heads(in[2]), true);
                     },
                     true, true});
    cases.push_back({"attention_composite, causal",
                     [](Generator& g) {
                         return Inputs{normal(g, {2, 3, 17, 32}), normal(g, {2, 3, 17, 32}), normal(g, {2, 3, 17, 32})};
                     },
                     [](const Inputs& in) { return attention_composite(in[0], in[1], in[2], true); }, true});
    return cases;
}

// ---- the equivalence tests ----

// Runs `checks` once with each value of the environment variable `var` (a backend reads it per
// call to pick a path), then unsets it, also when a check returns early.
void on_each_path(const char* var, std::initializer_list<const char*> values, const std::function<void()>& checks) {
    struct Unset {
        const char* var;
        ~Unset() { unsetenv(var); }
    } unset{var};
    for (const char* value : values) {
        SCOPED_TRACE(std::string(var) + "=" + value);
        setenv(var, value, 1);
        checks();
    }
}

TEST(CudaOps, BinaryAndScalarElementwise) {
    SKIP_WITHOUT_CUDA();
    check_all(binary_cases(), true);
}

TEST(CudaOps, UnaryElementwise) {
    SKIP_WITHOUT_CUDA();
    check_all(unary_cases(), true);
}

TEST(CudaOps, Reductions) {
    SKIP_WITHOUT_CUDA();
    check_all(reduce_cases(), false);
}

TEST(CudaOps, Matmul) {
    SKIP_WITHOUT_CUDA();
#ifdef RANKCLIP_CUDA
    // The F32 bounds assume full-precision GEMMs; RANKCLIP_TF32=1 would loosen them to ~1e-3.
    if (!cpu_stands_in_for_cuda()) {
        ASSERT_FALSE(tf32_enabled()) << "unset RANKCLIP_TF32 for this test";
    }
#endif
    check_all(matmul_cases(), true);
}

TEST(CudaOps, Linear) {
    SKIP_WITHOUT_CUDA();
    check_all(linear_cases(), true);
}

// The two GEMM paths of cuda/matmul.cu on every matmul and linear case (forward and gradients):
// cuBLASLt with the bias and its gradient in the epilogues (the default) and cuBLAS with a
// separate bias add and reduce_cols (RANKCLIP_GEMM=cublas); and cuBLASLt's results, the
// gradients too, are the same bit for bit when run again.
TEST(CudaOps, GemmOnEachPath) {
    SKIP_WITHOUT_CUDA();
    on_each_path("RANKCLIP_GEMM", {"cublas", "cublaslt"}, [] {
        check_all(matmul_cases(), true);
        check_all(linear_cases(), true);
    });
    Generator g(11);
    const Device dev = device_under_test();
    for (DType dtype : {DType::F32, DType::BF16}) {
        Tensor x = copy_to(randn({640, 384}, g).to(dtype), dev), w = copy_to(randn({1152, 384}, g).to(dtype), dev);
        Tensor b = copy_to(randn({1152}, g).to(dtype), dev);
        Tensor first = linear(x, w, b), second = linear(x, w, b);
        expect_same_bits(second, first, std::string("linear run twice [") + dtype_name(dtype) + "]");
        expect_same_bits(matmul(x, w.t()), matmul(x, w.t()), std::string("matmul run twice [") + dtype_name(dtype) + "]");
        // the weight and bias gradients (one GEMM with the bias gradient in its epilogue)
        Tensor gy = copy_to(randn({640, 1152}, g).to(dtype), dev);
        auto weight_grads = [&] {
            Tensor wl = w.detach().clone(), bl = b.detach().clone();
            wl.set_requires_grad(true);
            bl.set_requires_grad(true);
            sum(linear(x, wl, bl) * gy).backward();
            return std::pair{wl.grad(), bl.grad()};
        };
        auto [gw1, gb1] = weight_grads();
        auto [gw2, gb2] = weight_grads();
        expect_same_bits(gw2, gw1, std::string("weight gradient twice [") + dtype_name(dtype) + "]");
        expect_same_bits(gb2, gb1, std::string("bias gradient twice [") + dtype_name(dtype) + "]");
    }
}

TEST(CudaOps, ShapeOpsAndIndexing) {
    SKIP_WITHOUT_CUDA();
    check_all(shape_index_cases(), false);
}

TEST(CudaOps, SoftmaxAndLogSoftmax) {
    SKIP_WITHOUT_CUDA();
    check_all(softmax_cases(), true);
}

TEST(CudaOps, LayerNorm) {
    SKIP_WITHOUT_CUDA();
    check_all(layer_norm_cases(), true);
}

TEST(CudaOps, CrossEntropyAndNormalize) {
    SKIP_WITHOUT_CUDA();
    check_all(loss_cases(), true);
}

TEST(CudaOps, Dropout) {
    SKIP_WITHOUT_CUDA();
    check_all(dropout_cases(), true);
}

TEST(CudaOps, Attention) {
    SKIP_WITHOUT_CUDA();
    check_all(attention_cases(), true);
}

// The two CUDA paths of attention (cuda/attention.cu) on every case: the flash kernels, which
// otherwise keep only T < 32, and the batched GEMMs (cuda/attention_gemm.cu), which otherwise
// take T >= 32.
TEST(CudaOps, AttentionOnEachPath) {
    SKIP_WITHOUT_CUDA();
    on_each_path("RANKCLIP_ATTENTION", {"kernel", "gemm"}, [] { check_all(attention_cases(), true); });
}

TEST(CudaOps, DropoutMaskIsTheSameOnBothDevices) {
    SKIP_WITHOUT_CUDA();
    const Device dev = device_under_test();
    Tensor x = ones({64, 129});
    Generator g_cpu(5), g_dev(5);
    Tensor a = dropout(x, 0.25, true, g_cpu);
    Tensor b = dropout(copy_to(x, dev), 0.25, true, g_dev);
    expect_same_bits(b, a, "dropout mask");
    // The generator advanced the same way on both sides: the next masks agree too.
    expect_same_bits(dropout(copy_to(x, dev), 0.5, true, g_dev), dropout(x, 0.5, true, g_cpu), "second mask");
    // and roughly a quarter is dropped
    double kept = sum(gt(a, zeros({}))).item();
    EXPECT_NEAR(kept / double(x.numel()), 0.75, 0.03);
}

// ---- creation, copies, casts, views and in-place ops on the device ----

TEST(CudaTensor, CreationOnTheDeviceMatchesTheCpu) {
    SKIP_WITHOUT_CUDA();
    const Device dev = device_under_test();
    for (DType dt : {DType::F32, DType::F64, DType::BF16, DType::I32, DType::I64}) {
        SCOPED_TRACE(dtype_name(dt));
        expect_same_bits(zeros({3, 5}, dt, dev), zeros({3, 5}, dt), "zeros");
        expect_same_bits(ones({7}, dt, dev), ones({7}, dt), "ones");
        expect_same_bits(full({2, 3, 4}, -3.0, dt, dev), full({2, 3, 4}, -3.0, dt), "full");
        expect_same_bits(arange(-2, 9, 0.5 * (is_floating(dt) ? 1 : 2), dt, dev),
                         arange(-2, 9, 0.5 * (is_floating(dt) ? 1 : 2), dt), "arange");
        expect_same_bits(scalar_tensor(2.5, dt, dev), scalar_tensor(2.5, dt), "scalar_tensor");
        Tensor z = zeros_like(full({4, 3}, 1.0, dt, dev));
        EXPECT_TRUE(z.device() == dev);
        expect_same_bits(z, zeros({4, 3}, dt), "zeros_like");
        expect_same_bits(ones_like(zeros({4, 3}, dt, dev)), ones({4, 3}, dt), "ones_like");
        std::vector<double> values = {1.5, -2.25, 3.0, 1e6, -7.0, 0.0};
        expect_same_bits(from_vector(values, {2, 3}, dt, dev), from_vector(values, {2, 3}, dt), "from_vector");
    }
    for (DType dt : {DType::F32, DType::F64, DType::BF16}) {
        SCOPED_TRACE(dtype_name(dt));
        Generator a(11), b(11);
        expect_same_bits(randn({5, 1000}, a, dt, dev), randn({5, 1000}, b, dt), "randn");
        expect_same_bits(rand({3, 17}, a, dt, dev), rand({3, 17}, b, dt), "rand");
    }
    Generator a(12), b(12);
    expect_same_bits(randint(-5, 100, {40}, a, DType::I64, dev), randint(-5, 100, {40}, b), "randint");
    expect_same_bits(randint(0, 7, {9}, a, DType::I32, dev), randint(0, 7, {9}, b, DType::I32), "randint I32");
    expect_same_bits(randperm(1000, a, dev), randperm(1000, b), "randperm");
}

TEST(CudaTensor, CopiesAndCastsAreExact) {
    SKIP_WITHOUT_CUDA();
    const Device dev = device_under_test();
    Generator g(3);
    // values with bf16 rounding ties, NaN, infinities and big integers in them
    Tensor src = randn({6, 50}, g, DType::F64) * 1000.0;
    {
        NoGradGuard no_grad;
        src.narrow(1, 0, 1).fill_(std::nan(""));
        src.narrow(1, 1, 1).fill_(INFINITY);
        src.narrow(1, 2, 1).fill_(-INFINITY);
        src.narrow(1, 3, 1).fill_(1.00390625);  // halfway between two bf16 values: rounds to even
        src.narrow(1, 4, 1).fill_(16777217.0);  // not representable in F32
    }
    for (DType from : {DType::F32, DType::F64, DType::BF16, DType::I32, DType::I64}) {
        Tensor host = is_floating(from) ? src.to(from) : clamp(src.narrow(1, 5, 45), -1e5, 1e5).to(from);
        Tensor on_dev = copy_to(host, dev);
        EXPECT_TRUE(on_dev.device() == dev);
        expect_same_bits(on_dev, host, std::string("round trip of ") + dtype_name(from));
        for (DType to : {DType::F32, DType::F64, DType::BF16, DType::I32, DType::I64}) {
            if (!is_floating(to) && is_floating(from)) continue;  // NaN/inf to int is undefined behaviour
            SCOPED_TRACE(std::string(dtype_name(from)) + " -> " + dtype_name(to));
            Tensor d = on_dev.to(to);
            EXPECT_TRUE(d.device() == dev);
            // equal values (NaN payloads may differ: the GPU's F64 -> F32 NaN is canonical)
            EXPECT_EQ(dtype_name(d.dtype()), std::string(dtype_name(to)));
            expect_matches(d, host.to(to), kExact, "cast");
        }
    }
    // finite floats to integers truncate the same way
    Tensor finite = randn({100}, g, DType::F32) * 50.0;
    expect_same_bits(copy_to(finite, dev).to(DType::I64), finite.to(DType::I64), "F32 -> I64");
    expect_same_bits(copy_to(finite, dev).to(DType::I32), finite.to(DType::I32), "F32 -> I32");
}

TEST(CudaTensor, ViewsContiguousCloneAndInPlaceOps) {
    SKIP_WITHOUT_CUDA();
    const Device dev = device_under_test();
    Generator g(4);
    Tensor x = randn({4, 6, 5}, g);
    Tensor xd = copy_to(x, dev);
    auto both = [&](const std::function<Tensor(const Tensor&)>& f, const std::string& what) {
        Tensor a = f(xd), b = f(x);
        EXPECT_TRUE(a.device() == dev) << what;
        EXPECT_EQ(a.shape(), b.shape()) << what;
        expect_same_bits(a.contiguous(), b.contiguous(), what);
    };
    both([](const Tensor& t) { return t.permute({2, 0, 1}); }, "permute");
    both([](const Tensor& t) { return t.transpose(0, 2).narrow(1, 2, 3); }, "transpose + narrow");
    both([](const Tensor& t) { return t.select(1, 4); }, "select");
    both([](const Tensor& t) { return t.narrow(0, 1, 1).expand({3, 6, 5}); }, "expand");
    both([](const Tensor& t) { return t.transpose(0, 1).reshape({6, 20}); }, "reshape (a copy)");
    both([](const Tensor& t) { return t.flatten(1).unsqueeze(0).squeeze(0); }, "flatten/unsqueeze/squeeze");
    both([](const Tensor& t) { return t.permute({1, 2, 0}).clone(); }, "clone of a permuted view");
    both([](const Tensor& t) { return t.permute({1, 2, 0}).to(DType::BF16); }, "cast of a permuted view");
    EXPECT_TRUE(xd.permute({2, 0, 1}).contiguous().is_contiguous());

    // in place, on the device, compared with the same on the CPU
    Tensor a = x.clone(), ad = copy_to(x, dev);
    {
        NoGradGuard no_grad;
        Tensor y = randn({6, 1}, g);
        a.add_(y, 0.5);
        ad.add_(copy_to(y, dev), 0.5);
        a.mul_(-3.0);
        ad.mul_(-3.0);
        a.narrow(2, 1, 2).fill_(7.5);
        ad.narrow(2, 1, 2).fill_(7.5);
        a.select(0, 3).zero_();
        ad.select(0, 3).zero_();
    }
    expect_same_bits(ad, a, "add_, mul_, fill_, zero_");

    // copy_ broadcasts, casts and crosses devices in both directions
    Tensor row = randn({5}, g, DType::F64);
    Tensor dst = zeros({6, 5}, DType::F32, dev);
    dst.copy_(row);  // CPU F64 -> device F32
    expect_same_bits(dst, row.to(DType::F32).expand({6, 5}).contiguous(), "copy_ host -> device");
    Tensor back = zeros({6, 5}, DType::BF16);
    back.copy_(dst);  // device F32 -> CPU BF16
    expect_same_bits(back, row.to(DType::F32).to(DType::BF16).expand({6, 5}).contiguous(), "copy_ device -> host");
    Tensor view_dst = zeros({5, 6}, DType::F32, dev);
    view_dst.t().copy_(dst);  // into a transposed view on the device
    expect_same_bits(view_dst, row.to(DType::F32).expand({6, 5}).t().contiguous(), "copy_ into a view");

    // item and to_vector read from the device
    EXPECT_EQ(xd.select(0, 1).select(0, 2).select(0, 3).item(), double(x.to_vector<float>()[1 * 30 + 2 * 5 + 3]));
    EXPECT_EQ(xd.to_vector<float>(), x.to_vector<float>());
}

TEST(CudaTensor, MixingDevicesIsAnErrorNamingBoth) {
    SKIP_WITHOUT_CUDA();
    if (cpu_stands_in_for_cuda()) GTEST_SKIP() << "needs two different devices";
    Tensor a = ones({3}), b = ones({3}, DType::F32, Device::cuda(0));
    try {
        Tensor c = a + b;
        FAIL() << "adding a CPU and a CUDA tensor should throw";
    } catch (const Error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("cpu"), std::string::npos) << msg;
        EXPECT_NE(msg.find("cuda:0"), std::string::npos) << msg;
    }
    EXPECT_THROW(matmul(ones({2, 2}), ones({2, 2}, DType::F32, Device::cuda(0))), Error);
}

TEST(CudaTensor, OutOfRangeIndexIsReportedAndTheDeviceStaysUsable) {
    SKIP_WITHOUT_CUDA();
    const Device dev = device_under_test();
    Tensor x = copy_to(ones({5, 3}), dev);
    Tensor bad = copy_to(ints({0, 7}), dev);
    try {
        Tensor y = index_select(x, 0, bad);
        std::vector<float> values = y.to_vector<float>();  // the CUDA kernel's flag is read at this sync
        FAIL() << "an out-of-range index should be an error";
    } catch (const Error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("index_select"), std::string::npos) << msg;
    }
    Tensor bad_gather = copy_to(from_vector<int64_t>({0, 1, 2, 3, 4, 99}, {2, 3}, DType::I64), dev);
    EXPECT_THROW(
        {
            Tensor y = gather(x, 0, bad_gather);
            y.to_vector<float>();
        },
        Error);
    // later work runs normally
    Tensor ok = index_select(x * 2.0, 0, copy_to(ints({4, 0}), dev));
    EXPECT_EQ(ok.to_vector<float>(), std::vector<float>(6, 2.0f));
}

// ---- the real device allocator ----

#ifdef RANKCLIP_CUDA

// One forward + backward step of a small model on cuda:0; returns the loss.
double allocator_step() {
    Device dev = Device::cuda(0);
    Generator g(8);
    Tensor w = randn({256, 256}, g, DType::F32, dev).set_requires_grad(true);
    Tensor x = randn({64, 256}, g, DType::F32, dev);
    Tensor h = gelu(layer_norm(matmul(x, w), Tensor(), Tensor()));
    Tensor loss = cross_entropy(h, randint(0, 256, {64}, g, DType::I64, dev));
    loss.backward();
    return loss.item();
}

TEST(CudaDeviceAllocator, AnIdenticalSecondStepNeedsNoNewCudaMalloc) {
    SKIP_WITHOUT_REAL_CUDA();
    CachingAllocator& alloc = cuda_allocator(0);
    if (!alloc.caching()) GTEST_SKIP() << "RANKCLIP_CUDA_NO_CACHE is set: nothing is cached";
    double first = allocator_step();
    AllocatorStats before = alloc.stats();
    double second = allocator_step();
    AllocatorStats after = alloc.stats();
    EXPECT_EQ(first, second);
    EXPECT_GT(after.num_allocs, before.num_allocs);
    EXPECT_EQ(after.num_raw_allocs, before.num_raw_allocs) << "the second step should reuse cached blocks";
    EXPECT_EQ(after.allocated_bytes, before.allocated_bytes) << "the step leaked device memory";
}

TEST(CudaDeviceAllocator, EmptyCacheReturnsFreeBlocksToTheDriver) {
    SKIP_WITHOUT_REAL_CUDA();
    CachingAllocator& alloc = cuda_allocator(0);
    if (!alloc.caching()) GTEST_SKIP() << "RANKCLIP_CUDA_NO_CACHE is set: nothing is cached";
    allocator_step();
    EXPECT_GT(alloc.stats().cached_bytes, 0u);
    size_t free_before = 0, free_after = 0, total = 0;
    ASSERT_EQ(cudaMemGetInfo(&free_before, &total), cudaSuccess);
    AllocatorStats before = alloc.stats();
    alloc.empty_cache();
    AllocatorStats after = alloc.stats();
    ASSERT_EQ(cudaMemGetInfo(&free_after, &total), cudaSuccess);
    EXPECT_EQ(after.cached_bytes, 0u);
    EXPECT_GT(after.num_raw_frees, before.num_raw_frees);
    EXPECT_EQ(after.allocated_bytes, before.allocated_bytes) << "live blocks must not be touched";
    EXPECT_GE(free_after, free_before);
    // and the next step still works, allocating afresh
    EXPECT_TRUE(std::isfinite(allocator_step()));
    EXPECT_GT(alloc.stats().num_raw_allocs, after.num_raw_allocs);
}

TEST(CudaDeviceAllocator, TracksThePeak) {
    SKIP_WITHOUT_REAL_CUDA();
    CachingAllocator& alloc = cuda_allocator(0);
    alloc.reset_peak();
    size_t base = alloc.stats().allocated_bytes;
    EXPECT_EQ(alloc.stats().peak_bytes, base);
    const size_t bytes = size_t(64) << 20;
    {
        Tensor big = empty({int64_t(bytes / 4)}, DType::F32, Device::cuda(0));
        big.fill_(1.0);
        EXPECT_GE(alloc.stats().allocated_bytes, base + bytes);
        EXPECT_EQ(sum(big).item(), double(bytes / 4));
    }
    AllocatorStats s = alloc.stats();
    EXPECT_EQ(s.allocated_bytes, base) << "the tensor's block goes back when it dies";
    EXPECT_GE(s.peak_bytes, base + bytes) << "the peak remembers it";
    alloc.reset_peak();
    EXPECT_EQ(alloc.stats().peak_bytes, base);
}

TEST(CudaDeviceAllocator, NoCacheModeGoesToTheDriverEveryTime) {
    SKIP_WITHOUT_REAL_CUDA();
    // The process-wide allocator reads RANKCLIP_CUDA_NO_CACHE once, at its creation. When the
    // whole run has it set (gpu-check runs the CUDA tests a second time that way), check it;
    // in any case check a separate no-cache allocator over the real cudaMalloc/cudaFree.
    if (!CachingAllocator::caching_from_env("RANKCLIP_CUDA_NO_CACHE")) {
        CachingAllocator& alloc = cuda_allocator(0);
        EXPECT_FALSE(alloc.caching());
        AllocatorStats before = alloc.stats();
        allocator_step();
        AllocatorStats after = alloc.stats();
        EXPECT_EQ(after.num_raw_allocs - before.num_raw_allocs, after.num_allocs - before.num_allocs);
        EXPECT_EQ(after.cached_bytes, 0u);
    }
    int frees = 0;
    CachingAllocator raw(
        [](size_t n) -> void* {
            void* p = nullptr;
            if (cudaMalloc(&p, n) != cudaSuccess) {
                cudaGetLastError();
                return nullptr;
            }
            return p;
        },
        [&frees](void* p) {
            frees++;
            cudaFree(p);
        },
        /*caching=*/false, "cuda:0 test");
    void* a = raw.allocate(1000);
    ASSERT_NE(a, nullptr);
    ASSERT_EQ(cudaMemset(a, 0x5a, 1000), cudaSuccess);  // the exact size is usable
    raw.deallocate(a);
    EXPECT_EQ(frees, 1);
    void* b = raw.allocate(1000);
    raw.deallocate(b);
    EXPECT_EQ(raw.stats().num_raw_allocs, 2u);
    EXPECT_EQ(raw.stats().cached_bytes, 0u);
    EXPECT_EQ(frees, 2);
}

TEST(CudaDeviceAllocator, OutOfMemoryIsAnErrorNamingTheSize) {
    SKIP_WITHOUT_REAL_CUDA();
    const int64_t elements = int64_t(1) << 48;  // 1 PiB of F32
    const size_t bytes = size_t(elements) * 4;
    try {
        Tensor t = empty({elements}, DType::F32, Device::cuda(0));
        FAIL() << "allocating 1 PiB should fail";
    } catch (const Error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("out of memory"), std::string::npos) << msg;
        EXPECT_NE(msg.find(std::to_string(bytes)), std::string::npos) << msg;
    }
    // the failure left the device usable
    Tensor ok = ones({1000}, DType::F32, Device::cuda(0));
    EXPECT_EQ(sum(ok).item(), 1000.0);
}

TEST(CudaDevice, Tf32IsOffByDefaultAndChangesF32GemmsOnlyWhenOn) {
    SKIP_WITHOUT_REAL_CUDA();
    if (std::getenv("RANKCLIP_TF32")) GTEST_SKIP() << "RANKCLIP_TF32 is set in the environment";
    EXPECT_FALSE(tf32_enabled());
    Generator g(21);
    Tensor a = randn({128, 512}, g), b = randn({512, 64}, g);
    Tensor want = matmul(a, b);
    Tensor full = on_cpu(matmul(copy_to(a, Device::cuda(0)), copy_to(b, Device::cuda(0))));
    expect_matches(full, want, kLooseF32, "fp32 GEMM");
    Tensor tf32;
    {
        struct Tf32Off {  // switched off again even if the GEMM throws
            ~Tf32Off() { set_tf32(false); }
        } restore;
        set_tf32(true);
        tf32 = on_cpu(matmul(copy_to(a, Device::cuda(0)), copy_to(b, Device::cuda(0))));
    }
    EXPECT_FALSE(tf32_enabled());
    expect_matches(tf32, want, Tol{1e-2, 1e-2, 0.5}, "tf32 GEMM");  // close, but TF32 is ~1e-3
    Tensor again = on_cpu(matmul(copy_to(a, Device::cuda(0)), copy_to(b, Device::cuda(0))));
    expect_same_bits(again, full, "fp32 GEMM after switching TF32 off again");
    if (std::memcmp(tf32.raw_data(), full.raw_data(), size_t(full.numel()) * 4) == 0)
        std::cout << "[   NOTE   ] TF32 on gave the same bits as fp32 for this GEMM (no TF32 kernel chosen?)\n";
}

#endif  // RANKCLIP_CUDA

}  // namespace
}  // namespace rankclip
