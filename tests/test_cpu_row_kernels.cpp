// tests/test_cpu_row_kernels.cpp
// tests: the vectorised CPU row kernels against straightforward scalar references written
// here (in double), on awkward row lengths (1, 15, 16, 17, 127, 129, 512, 768) and dtypes F32,
// BF16, F64:
//   - reduce_rows and reduce_cols (sum, sum of squares, max, min; NaN and +-0 as the scalar
//     loop has them) through sum / amax / amin over every kind of dim set;
//   - layer_norm forward and backward (gx, dW, db), softmax / log_softmax and their backward,
//     cross_entropy forward and backward (with ignored rows);
//   - determinism: the same bits twice, and with 1 and 2 threads;
//   - the AdamW step bit for bit against the reference formula in exactly rounded float
//     operations (no multiply-add), over sizes that use the vector body and the scalar tail.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "tests/test_util.h"

using namespace rankclip;
using rankclip::test::element_offset;
using rankclip::test::expect_close;

namespace {

const std::vector<int64_t> kRowLengths = {1, 15, 16, 17, 127, 129, 512, 768};

Tensor random(const Shape& shape, DType dtype, uint64_t seed, double scale = 1.0) {
    Generator gen(seed);
    return (randn(shape, gen, DType::F64) * scale).to(dtype);
}

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

bool same_bits(const Tensor& a, const Tensor& b) {
    Tensor x = a.contiguous(), y = b.contiguous();
    return x.dtype() == y.dtype() && x.numel() == y.numel() &&
           std::memcmp(x.raw_data(), y.raw_data(), size_t(x.numel()) * dtype_size(x.dtype())) == 0;
}

// The tolerance of a kernel result against the double reference, by dtype (bf16 outputs carry
// their 8-bit rounding).
double rtol_of(DType dtype) { return dtype == DType::F64 ? 1e-12 : dtype == DType::F32 ? 2e-5 : 1.6e-2; }

// ---- reductions ----

// The scalar loop's semantics per reduced group: sums in double in order; max/min keep the first
// of equal values (so the first of +0 / -0) and return the first NaN.
double reduce_reference(ReduceOp op, const std::vector<double>& group) {
    if (op == ReduceOp::Sum || op == ReduceOp::SumSquares) {
        double s = 0;
        for (double v : group) s += op == ReduceOp::Sum ? v : v * v;
        return s;
    }
    double best = group[0];
    if (std::isnan(best)) return best;
    for (double v : group) {
        if (std::isnan(v)) return v;
        if (op == ReduceOp::Max ? v > best : v < best) best = v;
    }
    return best;
}

// x reduced over dims (keepdim), checked against the reference group by group.
void check_reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, const std::string& what) {
    Tensor out = op == ReduceOp::Sum ? sum(x, dims, true) : op == ReduceOp::Max ? amax(x, dims, true) : amin(x, dims, true);
    Tensor xc = x.contiguous().to(DType::F64);
    std::vector<double> xv = values(xc), got = values(out);
    // group of each element: its index with the reduced dims zeroed
    Shape kept = out.shape();
    std::vector<std::vector<double>> groups(size_t(out.numel()));
    for (int64_t i = 0; i < x.numel(); i++) {
        int64_t rem = i, g = 0, stride = 1;
        for (int64_t d = x.dim() - 1; d >= 0; d--) {
            int64_t idx = rem % x.size(d);
            rem /= x.size(d);
            g += (kept[d] == 1 ? 0 : idx) * stride;
            stride *= kept[d];
        }
        groups[size_t(g)].push_back(xv[size_t(i)]);
    }
    int failures = 0;
    for (size_t g = 0; g < groups.size() && failures < 5; g++) {
        double want = reduce_reference(op, groups[g]);
        double tol = 0;  // max / min: exact
        if (op == ReduceOp::Sum) {
            double mag = 0;
            for (double v : groups[g]) mag += std::abs(v);
            tol = mag * (x.dtype() == DType::F64 ? 1e-15 : x.dtype() == DType::F32 ? 1e-7 : 8e-3);
        }
        bool ok = std::abs(got[g] - want) <= tol || (std::isnan(got[g]) && std::isnan(want));
        if (op != ReduceOp::Sum && want == 0) ok = ok && std::signbit(got[g]) == std::signbit(want);
        if (!ok) failures++;
        EXPECT_TRUE(ok) << what << " group " << g << ": got " << got[g] << ", want " << want;
    }
}

TEST(CpuRowKernels, SumAmaxAminOverEveryKindOfDims) {
    for (DType dtype : {DType::F32, DType::BF16, DType::F64})
        for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min}) {
            Tensor x = random({6, 35, 129}, dtype, 1, 3.0);
            for (const std::vector<int64_t>& dims : std::vector<std::vector<int64_t>>{
                     {2}, {1, 2}, {0}, {0, 1}, {1}, {0, 2}, {0, 1, 2}})
                check_reduce(op, x, dims, std::string(dtype_name(dtype)) + " dims of (6, 35, 129)");
            check_reduce(op, x.transpose(0, 2), {0}, "transposed");
            for (int64_t C : kRowLengths) {
                Tensor y = random({33, C}, dtype, uint64_t(C), 2.0);
                check_reduce(op, y, {1}, "rows C=" + std::to_string(C));
                check_reduce(op, y, {0}, "columns C=" + std::to_string(C));
            }
        }
}

TEST(CpuRowKernels, ColumnSumIsTheSequentialDoubleSum) {
    // reduce_cols adds the rows in order in double: exactly the reference, rounded once
    for (DType dtype : {DType::F32, DType::BF16})
        for (int64_t C : {1, 17, 64, 129, 512}) {
            Tensor x = random({2, 301, C}, dtype, uint64_t(C), 5.0);
            Tensor out = sum(x, {0, 1});
            std::vector<double> xv = values(x), got = values(out);
            for (int64_t c = 0; c < C; c++) {
                double s = 0;
                for (int64_t r = 0; r < 2 * 301; r++) s += xv[size_t(r * C + c)];
                double want = dtype == DType::F32 ? double(float(s)) : double(bf16_to_float(float_to_bf16(float(s))));
                ASSERT_EQ(got[size_t(c)], want) << dtype_name(dtype) << " C " << C << " column " << c;
            }
        }
}

TEST(CpuRowKernels, MaxMinNanAndSignedZeroRules) {
    // rows and columns with NaN first / later, +0 before -0 and after
    std::vector<std::vector<double>> rows = {{0.0, -0.0, -1.0},  {-0.0, 0.0, -3.0}, {1.0, NAN, 5.0},
                                             {NAN, 2.0, -NAN},   {-2.0, -1.0, -0.0}, {3.0, 3.0, 1.0}};
    for (DType dtype : {DType::F32, DType::BF16, DType::F64})
        for (int64_t width : {3, 19, 40}) {  // padded with -5 so the vector paths see them
            std::vector<double> flat;
            for (const auto& r : rows)
                for (int64_t c = 0; c < width; c++) flat.push_back(c < 3 ? r[size_t(c)] : -5.0);
            Tensor x = from_vector(flat, {int64_t(rows.size()), width}, DType::F64).to(dtype);
            for (ReduceOp op : {ReduceOp::Max, ReduceOp::Min}) {
                check_reduce(op, x, {1}, "rows width " + std::to_string(width));
                check_reduce(op, x.t().contiguous(), {0}, "columns width " + std::to_string(width));
            }
        }
}

// ---- layer_norm ----

struct LayerNormRef {
    std::vector<double> y, gx, gw, gb;
};

LayerNormRef layer_norm_reference(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& gy, double eps) {
    int64_t C = x.size(-1), N = x.numel() / C;
    auto xv = values(x), wv = values(w), bv = values(b), gv = values(gy);
    LayerNormRef r{std::vector<double>(xv.size()), std::vector<double>(xv.size()), std::vector<double>(size_t(C)),
                   std::vector<double>(size_t(C))};
    for (int64_t n = 0; n < N; n++) {
        const double* xr = &xv[size_t(n * C)];
        double m = 0, v = 0;
        for (int64_t c = 0; c < C; c++) m += xr[c];
        m /= double(C);
        for (int64_t c = 0; c < C; c++) v += (xr[c] - m) * (xr[c] - m);
        double s = 1 / std::sqrt(v / double(C) + eps), d1 = 0, d2 = 0;
        for (int64_t c = 0; c < C; c++) {
            double xhat = (xr[c] - m) * s, g = gv[size_t(n * C + c)];
            r.y[size_t(n * C + c)] = xhat * wv[size_t(c)] + bv[size_t(c)];
            d1 += g * wv[size_t(c)];
            d2 += g * wv[size_t(c)] * xhat;
            r.gw[size_t(c)] += g * xhat;
            r.gb[size_t(c)] += g;
        }
        for (int64_t c = 0; c < C; c++) {
            double xhat = (xr[c] - m) * s, dxhat = gv[size_t(n * C + c)] * wv[size_t(c)];
            r.gx[size_t(n * C + c)] = (dxhat - d1 / double(C) - xhat * d2 / double(C)) * s;
        }
    }
    return r;
}

// Max |got - want| <= rtol * max(1, max |want|): the outputs are O(1) with cancellation in gx.
void expect_near_all(const std::vector<double>& got, const std::vector<double>& want, double rtol,
                     const std::string& what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    double scale = 1;
    for (double v : want) scale = std::max(scale, std::abs(v));
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < got.size(); i++)
        if (!(std::abs(got[i] - want[i]) <= worst)) worst = std::abs(got[i] - want[i]), at = i;
    EXPECT_LE(worst, rtol * scale) << what << ": worst at " << at << " got " << got[at] << " want " << want[at];
}

struct LayerNormOut {
    Tensor y, mean, rstd, gx, gw, gb;
};

LayerNormOut run_layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& gy, double eps) {
    int64_t C = x.size(-1), N = x.numel() / C;
    DType acc = x.dtype() == DType::F64 ? DType::F64 : DType::F32;
    LayerNormOut o{empty(x.shape(), x.dtype()), empty({N}, acc),         empty({N}, acc),
                   empty(x.shape(), x.dtype()), empty({C}, x.dtype()), empty({C}, x.dtype())};
    cpu_backend().layer_norm(x, w, b, o.y, o.mean, o.rstd, eps);
    cpu_backend().layer_norm_backward(gy, x, w, o.mean, o.rstd, o.gx, o.gw, o.gb);
    return o;
}

TEST(CpuRowKernels, LayerNormForwardBackwardAgainstReference) {
    for (DType dtype : {DType::F32, DType::BF16, DType::F64})
        for (int64_t C : kRowLengths)
            for (int64_t N : {1, 3, 130}) {
                std::string what = std::string(dtype_name(dtype)) + " N " + std::to_string(N) + " C " + std::to_string(C);
                Tensor x = random({N, C}, dtype, uint64_t(C + N), 2.0) + 0.5;
                Tensor w = random({C}, dtype, 2) + 1.0, b = random({C}, dtype, 3);
                Tensor gy = random({N, C}, dtype, 4);
                LayerNormOut o = run_layer_norm(x, w, b, gy, 1e-5);
                LayerNormRef r = layer_norm_reference(x, w, b, gy, 1e-5);
                double tol = rtol_of(dtype) * (dtype == DType::F64 ? 1 : 4);
                expect_near_all(values(o.y), r.y, tol, what + " y");
                expect_near_all(values(o.gx), r.gx, tol * (C > 1 ? 1 : 1e3), what + " gx");
                expect_near_all(values(o.gw), r.gw, tol, what + " gw");
                expect_near_all(values(o.gb), r.gb, tol, what + " gb");
            }
}

TEST(CpuRowKernels, LayerNormWithoutAffineAndGradsOptional) {
    Tensor x = random({70, 129}, DType::F32, 5), gy = random({70, 129}, DType::F32, 6);
    Tensor y = empty(x.shape()), mean = empty({70}), rstd = empty({70}), gx = empty(x.shape());
    cpu_backend().layer_norm(x, Tensor(), Tensor(), y, mean, rstd, 1e-5);
    Tensor none_w, none_b;
    cpu_backend().layer_norm_backward(gy, x, Tensor(), mean, rstd, gx, none_w, none_b);
    LayerNormRef r = layer_norm_reference(x, ones({129}), zeros({129}), gy, 1e-5);
    expect_near_all(values(y), r.y, 8e-5, "y");
    expect_near_all(values(gx), r.gx, 8e-5, "gx");
}

TEST(CpuRowKernels, LayerNormIsDeterministicAcrossThreadCounts) {
    int threads = get_num_threads();
    for (DType dtype : {DType::F32, DType::BF16}) {
        Tensor x = random({1000, 512}, dtype, 7), w = random({512}, dtype, 8), b = random({512}, dtype, 9);
        Tensor gy = random({1000, 512}, dtype, 10);
        set_num_threads(1);
        LayerNormOut one = run_layer_norm(x, w, b, gy, 1e-5);
        set_num_threads(2);
        LayerNormOut two = run_layer_norm(x, w, b, gy, 1e-5), again = run_layer_norm(x, w, b, gy, 1e-5);
        set_num_threads(threads);
        for (auto [a, c, name] : {std::tuple{one.y, two.y, "y"}, std::tuple{one.gx, two.gx, "gx"},
                                  std::tuple{one.gw, two.gw, "gw"}, std::tuple{one.gb, two.gb, "gb"},
                                  std::tuple{two.gw, again.gw, "gw twice"}})
            EXPECT_TRUE(same_bits(a, c)) << dtype_name(dtype) << " " << name;
    }
}

// ---- softmax, cross_entropy ----

TEST(CpuRowKernels, SoftmaxAndBackwardAgainstReference) {
    for (DType dtype : {DType::F32, DType::BF16, DType::F64})
        for (int64_t C : kRowLengths)
            for (bool log : {false, true}) {
                int64_t N = 9;
                std::string what = std::string(dtype_name(dtype)) + (log ? " log_softmax" : " softmax") + " C " +
                                   std::to_string(C);
                Tensor x = random({N, C}, dtype, uint64_t(C), 4.0), gy = random({N, C}, dtype, uint64_t(C) + 1);
                Tensor y = empty(x.shape(), dtype), gx = empty(x.shape(), dtype);
                cpu_backend().softmax_rows(x, y, log);
                cpu_backend().softmax_rows_backward(y, gy, gx, log);
                auto xv = values(x), gv = values(gy);
                std::vector<double> ry(xv.size()), rg(xv.size());
                for (int64_t n = 0; n < N; n++) {
                    double m = -INFINITY, s = 0, sg = 0, dot = 0;
                    for (int64_t c = 0; c < C; c++) m = std::max(m, xv[size_t(n * C + c)]);
                    for (int64_t c = 0; c < C; c++) s += std::exp(xv[size_t(n * C + c)] - m);
                    for (int64_t c = 0; c < C; c++) {
                        double p = std::exp(xv[size_t(n * C + c)] - m) / s;
                        ry[size_t(n * C + c)] = log ? xv[size_t(n * C + c)] - m - std::log(s) : p;
                        sg += gv[size_t(n * C + c)];
                        dot += gv[size_t(n * C + c)] * p;
                    }
                    for (int64_t c = 0; c < C; c++) {
                        double p = std::exp(xv[size_t(n * C + c)] - m) / s, g = gv[size_t(n * C + c)];
                        rg[size_t(n * C + c)] = log ? g - p * sg : p * (g - dot);
                    }
                }
                double tol = rtol_of(dtype) * (dtype == DType::F64 ? 10 : 4);
                expect_near_all(values(y), ry, tol * (log ? 10 : 1), what + " y");
                // backward from the kernel's own (rounded) y: bf16's rounding of y carries over
                expect_near_all(values(gx), rg, tol * (dtype == DType::BF16 ? 4 : 1) * (log ? 10 : 1), what + " gx");
            }
}

TEST(CpuRowKernels, CrossEntropyAndBackwardAgainstReference) {
    for (DType dtype : {DType::F32, DType::BF16, DType::F64})
        for (int64_t C : kRowLengths) {
            int64_t N = 11;
            std::vector<int64_t> targets;
            for (int64_t n = 0; n < N; n++) targets.push_back(n % 4 == 3 ? -100 : (n * 7 + 3) % C);
            Tensor target = from_vector(targets, {N}, DType::I64);
            Tensor x = random({N, C}, dtype, uint64_t(C), 3.0), gl = random({N}, dtype, uint64_t(C) + 5);
            DType acc = dtype == DType::F64 ? DType::F64 : DType::F32;
            Tensor losses = empty({N}, dtype), lse = empty({N}, acc), gx = empty({N, C}, dtype);
            cpu_backend().cross_entropy(x, target, losses, lse, -100);
            cpu_backend().cross_entropy_backward(x, target, lse, gl, gx, -100);
            auto xv = values(x), glv = values(gl);
            std::vector<double> rl(static_cast<size_t>(N)), rg(static_cast<size_t>(N * C));
            for (int64_t n = 0; n < N; n++) {
                double m = -INFINITY, s = 0;
                for (int64_t c = 0; c < C; c++) m = std::max(m, xv[size_t(n * C + c)]);
                for (int64_t c = 0; c < C; c++) s += std::exp(xv[size_t(n * C + c)] - m);
                double l = m + std::log(s);
                int64_t t = targets[size_t(n)];
                rl[size_t(n)] = t == -100 ? 0 : l - xv[size_t(n * C + t)];
                for (int64_t c = 0; c < C; c++)
                    rg[size_t(n * C + c)] = t == -100 ? 0 : glv[size_t(n)] * (std::exp(xv[size_t(n * C + c)] - l) - (c == t));
            }
            std::string what = std::string(dtype_name(dtype)) + " C " + std::to_string(C);
            expect_near_all(values(losses), rl, rtol_of(dtype) * 4, what + " losses");
            expect_near_all(values(gx), rg, rtol_of(dtype) * 4, what + " gx");
        }
}

// ---- AdamW ----

// The reference step in exactly rounded float operations: each double result of one operation
// on floats, rounded to float, is the correctly rounded float result (double has more than
// 2 x 24 + 2 bits). GCC narrows such expressions back to float operations, which it would then
// contract into multiply-adds: not here.
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
void adamw_reference(std::vector<float>& p, const std::vector<float>& g, std::vector<float>& m, std::vector<float>& v,
                     const AdamWScalars& s) {
    auto mul = [](float a, float b) { return float(double(a) * double(b)); };
    auto add = [](float a, float b) { return float(double(a) + double(b)); };
    auto div = [](float a, float b) { return float(double(a) / double(b)); };
    for (size_t i = 0; i < p.size(); i++) {
        float pi = mul(p[i], s.decay);
        float mi = add(mul(m[i], s.beta1), mul(s.one_minus_beta1, g[i]));
        float vi = add(mul(v[i], s.beta2), mul(mul(s.one_minus_beta2, g[i]), g[i]));
        float denom = add(div(float(std::sqrt(double(vi))), s.bc2_sqrt), s.eps);
        p[i] = add(pi, div(mul(s.neg_step_size, mi), denom));
        m[i] = mi;
        v[i] = vi;
    }
}
#pragma GCC pop_options

TEST(CpuRowKernels, AdamWMatchesTheReferenceBitForBit) {
    AdamWScalars s;
    s.beta1 = 0.9f, s.one_minus_beta1 = float(1.0 - 0.9), s.beta2 = 0.98f, s.one_minus_beta2 = float(1.0 - 0.98);
    s.eps = 1e-6f, s.decay = float(1.0 - 5e-4 * 0.2), s.neg_step_size = float(-5e-4 / (1 - std::pow(0.9, 3.0)));
    s.bc2_sqrt = float(std::sqrt(1 - std::pow(0.98, 3.0)));
    for (int64_t n : {1, 15, 16, 17, 127, 129, 1000003}) {
        Tensor p = random({n}, DType::F32, 1), g = random({n}, DType::F32, 2, 1e-2), m = random({n}, DType::F32, 3, 1e-2);
        Tensor v = abs(random({n}, DType::F32, 4, 1e-4));
        auto pv = p.to_vector<float>(), gv = g.to_vector<float>(), mv = m.to_vector<float>(), vv = v.to_vector<float>();
        for (int step = 0; step < 3; step++) {
            cpu_backend().adamw(p, g, m, v, s);
            adamw_reference(pv, gv, mv, vv, s);
        }
        auto pg = p.to_vector<float>(), mg = m.to_vector<float>(), vg = v.to_vector<float>();
        ASSERT_EQ(std::memcmp(pg.data(), pv.data(), size_t(n) * 4), 0) << "param, n " << n;
        ASSERT_EQ(std::memcmp(mg.data(), mv.data(), size_t(n) * 4), 0) << "m, n " << n;
        ASSERT_EQ(std::memcmp(vg.data(), vv.data(), size_t(n) * 4), 0) << "v, n " << n;
    }
}

}  // namespace
