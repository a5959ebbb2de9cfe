// engine/cpu/dev/rows.cpp
// defines: the row-kernel playground: softmax (forward, backward), cross_entropy (forward +
// backward) and the two sums a training step runs most: a bias gradient (R, C) -> (C) (what
// sum_to does in every broadcast add's backward) and row sums (R, C) -> (R). Each variant is
// checked against a double reference on awkward shapes, then timed on the model's shapes.
//   variant 1  scalar, libm (the library before; the bias gradient through a transposing copy
//              and a row sum, as sum_to did)
//   variant 2  AVX-512 + SLEEF   <- the library's (but for softmax and the column sum); the
//              softmax computes exp twice per element; the column sum:
//              blocks of 64 columns, each over all rows in order, in double
//   variant 3  softmax: exp(x - max) stored in the sum's pass, then scaled   <- the library's;
//              column sum: fixed chunks of 256 rows in float, the chunks summed in double:
//              reads memory once, in order, but is not the sequential double sum
//   (tried: variant 2 over tiles of 128 rows swept block by block -- slower than 2 on
//   (8320, 512): each cache line belongs to one block, a tile gives no reuse)
//   variant 4  (column sum only) rows read in order, each thread's columns accumulated in
//              double in an array that stays in L1: the sequential double sum per column
//              <- the library's
#include <sleef.h>

#include <vector>

#include "common.h"

static const int64_t kShapes[][2] = {{8320, 128}, {8320, 512}, {4096, 128}};

static inline __mmask16 tail_mask(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

// ---- softmax ----
static void softmax_v1(const float* x, float* y, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int64_t n = 0; n < N; n++) {
        const float* r = x + n * C;
        float m = -INFINITY, s = 0;
        for (int64_t c = 0; c < C; c++) m = std::max(m, r[c]);
        for (int64_t c = 0; c < C; c++) s += std::exp(r[c] - m);
        for (int64_t c = 0; c < C; c++) y[n * C + c] = std::exp(r[c] - m) / s;
    }
}
static void softmax_v2(const float* x, float* y, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int64_t n = 0; n < N; n++) {
        const float* r = x + n * C;
        __m512 mx = _mm512_set1_ps(-INFINITY), acc = _mm512_setzero_ps();
        for (int64_t i = 0; i < C; i += 16) mx = _mm512_mask_max_ps(mx, tail_mask(C - i), mx, _mm512_maskz_loadu_ps(tail_mask(C - i), r + i));
        __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
        for (int64_t i = 0; i < C; i += 16) {
            __mmask16 k = tail_mask(C - i);
            acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(k, Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, r + i), m))));
        }
        __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(acc));
        for (int64_t i = 0; i < C; i += 16) {
            __mmask16 k = tail_mask(C - i);
            _mm512_mask_storeu_ps(y + n * C + i, k, _mm512_mul_ps(Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, r + i), m)), inv));
        }
    }
}
// variant 3: exp(x - max) stored in the sum's pass, then scaled (one exp per element)
static void softmax_v3(const float* x, float* y, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int64_t n = 0; n < N; n++) {
        const float* r = x + n * C;
        float* out = y + n * C;
        __m512 mx = _mm512_set1_ps(-INFINITY), acc = _mm512_setzero_ps();
        for (int64_t i = 0; i < C; i += 16) mx = _mm512_mask_max_ps(mx, tail_mask(C - i), mx, _mm512_maskz_loadu_ps(tail_mask(C - i), r + i));
        __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
        for (int64_t i = 0; i < C; i += 16) {
            __mmask16 k = tail_mask(C - i);
            __m512 e = _mm512_maskz_mov_ps(k, Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, r + i), m)));
            _mm512_mask_storeu_ps(out + i, k, e);
            acc = _mm512_add_ps(acc, e);
        }
        __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(acc));
        for (int64_t i = 0; i < C; i += 16) {
            __mmask16 k = tail_mask(C - i);
            _mm512_mask_storeu_ps(out + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, out + i), inv));
        }
    }
}
static void softmax_backward_v1(const float* y, const float* g, float* gx, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int64_t n = 0; n < N; n++) {
        float dot = 0;
        for (int64_t c = 0; c < C; c++) dot += g[n * C + c] * y[n * C + c];
        for (int64_t c = 0; c < C; c++) gx[n * C + c] = y[n * C + c] * (g[n * C + c] - dot);
    }
}
static void softmax_backward_v2(const float* y, const float* g, float* gx, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int64_t n = 0; n < N; n++) {
        const float *yr = y + n * C, *gr = g + n * C;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t i = 0; i < C; i += 16)
            acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail_mask(C - i), gr + i), _mm512_maskz_loadu_ps(tail_mask(C - i), yr + i), acc);
        __m512 dot = _mm512_set1_ps(_mm512_reduce_add_ps(acc));
        for (int64_t i = 0; i < C; i += 16) {
            __mmask16 k = tail_mask(C - i);
            _mm512_mask_storeu_ps(gx + n * C + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, yr + i), _mm512_sub_ps(_mm512_maskz_loadu_ps(k, gr + i), dot)));
        }
    }
}

// ---- cross_entropy forward + backward (one call: losses and glogits, grad 1 per row) ----
static void cross_entropy_v1(const float* x, const int64_t* t, float* loss, float* gx, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int64_t n = 0; n < N; n++) {
        const float* r = x + n * C;
        float m = -INFINITY, s = 0;
        for (int64_t c = 0; c < C; c++) m = std::max(m, r[c]);
        for (int64_t c = 0; c < C; c++) s += std::exp(r[c] - m);
        float lse = m + std::log(s);
        loss[n] = lse - r[t[n]];
        for (int64_t c = 0; c < C; c++) gx[n * C + c] = std::exp(r[c] - lse) - float(c == t[n]);
    }
}
static void cross_entropy_v2(const float* x, const int64_t* t, float* loss, float* gx, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int64_t n = 0; n < N; n++) {
        const float* r = x + n * C;
        __m512 mx = _mm512_set1_ps(-INFINITY), acc = _mm512_setzero_ps();
        for (int64_t i = 0; i < C; i += 16) mx = _mm512_mask_max_ps(mx, tail_mask(C - i), mx, _mm512_maskz_loadu_ps(tail_mask(C - i), r + i));
        float m = _mm512_reduce_max_ps(mx);
        for (int64_t i = 0; i < C; i += 16) {
            __mmask16 k = tail_mask(C - i);
            acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(k, Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, r + i), _mm512_set1_ps(m)))));
        }
        float lse = m + std::log(_mm512_reduce_add_ps(acc));
        loss[n] = lse - r[t[n]];
        for (int64_t i = 0; i < C; i += 16) {
            __mmask16 k = tail_mask(C - i);
            __m512 p = Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, r + i), _mm512_set1_ps(lse)));
            __mmask16 onehot = t[n] >= i && t[n] < i + 16 ? __mmask16(1u << (t[n] - i)) : 0;
            _mm512_mask_storeu_ps(gx + n * C + i, k, _mm512_mask_sub_ps(p, onehot, p, _mm512_set1_ps(1.0f)));
        }
    }
}

// ---- column sums (R, C) -> (C) ----
static void colsum_v1(const float* x, float* y, int64_t R, int64_t C, std::vector<float>& scratch) {
    scratch.resize(size_t(R * C));
    float* xt = scratch.data();  // (C, R): the transposing copy, then rows
#pragma omp parallel for schedule(static) if (R * C > 32768)
    for (int64_t c = 0; c < C; c++)
        for (int64_t r = 0; r < R; r++) xt[c * R + r] = x[r * C + c];
#pragma omp parallel for schedule(static) if (R * C > 32768)
    for (int64_t c = 0; c < C; c++) {
        double s = 0;
        for (int64_t r = 0; r < R; r++) s += xt[c * R + r];
        y[c] = float(s);
    }
}
template <int NV>
static void colsum_block(const float* x, float* y, int64_t R, int64_t C, int64_t width) {
    __m512d acc[2 * NV];
    for (auto& a : acc) a = _mm512_setzero_pd();
    const __mmask16 last = tail_mask(width - 16 * (NV - 1));
    for (int64_t r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int j = 0; j < NV; j++) {
            __m512 v = _mm512_maskz_loadu_ps(j == NV - 1 ? last : __mmask16(0xFFFF), x + r * C + 16 * j);
            acc[2 * j] = _mm512_add_pd(acc[2 * j], _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
            acc[2 * j + 1] = _mm512_add_pd(acc[2 * j + 1], _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
        }
    for (int j = 0; j < NV; j++) {
        __m512 out = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(acc[2 * j])), _mm512_cvtpd_ps(acc[2 * j + 1]), 1);
        _mm512_mask_storeu_ps(y + 16 * j, j == NV - 1 ? last : __mmask16(0xFFFF), out);
    }
}
static void colsum_v2(const float* x, float* y, int64_t R, int64_t C, std::vector<float>&) {
    int64_t blocks = (C + 63) / 64;
#pragma omp parallel for schedule(static) if (R * C > 32768)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t c0 = b * 64, w = std::min<int64_t>(64, C - c0);
        switch ((w + 15) / 16) {
            case 1: colsum_block<1>(x + c0, y + c0, R, C, w); break;
            case 2: colsum_block<2>(x + c0, y + c0, R, C, w); break;
            case 3: colsum_block<3>(x + c0, y + c0, R, C, w); break;
            default: colsum_block<4>(x + c0, y + c0, R, C, w); break;
        }
    }
}
static void colsum_v3(const float* x, float* y, int64_t R, int64_t C, std::vector<float>& scratch) {
    const int64_t chunk = 256;
    int64_t chunks = (R + chunk - 1) / chunk;
    scratch.assign(size_t(chunks * C), 0.0f);
#pragma omp parallel for schedule(static) if (R * C > 32768)
    for (int64_t k = 0; k < chunks; k++)
        for (int64_t r = k * chunk; r < std::min(R, (k + 1) * chunk); r++)
            for (int64_t i = 0; i < C; i += 16) {
                __mmask16 m = tail_mask(C - i);
                float* s = &scratch[size_t(k * C + i)];
                _mm512_mask_storeu_ps(s, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, s), _mm512_maskz_loadu_ps(m, x + r * C + i)));
            }
    for (int64_t c = 0; c < C; c++) {
        double s = 0;
        for (int64_t k = 0; k < chunks; k++) s += scratch[size_t(k * C + c)];
        y[c] = float(s);
    }
}

// rows in order, each thread's columns accumulated in double in an L1-resident array
static void colsum_v4(const float* x, float* y, int64_t R, int64_t C, std::vector<float>&) {
    int64_t blocks = (C + 15) / 16;
    auto run = [&](int64_t b0, int64_t b1) {
        std::vector<double> acc(size_t((b1 - b0) * 16), 0.0);
        for (int64_t r = 0; r < R; r++) {
            const float* row = x + r * C;
            for (int64_t b = b0; b < b1; b++) {
                __m512 v = _mm512_maskz_loadu_ps(tail_mask(C - 16 * b), row + 16 * b);
                double* a = &acc[size_t((b - b0) * 16)];
                _mm512_storeu_pd(a, _mm512_add_pd(_mm512_loadu_pd(a), _mm512_cvtps_pd(_mm512_castps512_ps256(v))));
                _mm512_storeu_pd(a + 8, _mm512_add_pd(_mm512_loadu_pd(a + 8), _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1))));
            }
        }
        for (int64_t b = b0; b < b1; b++) {
            const double* a = &acc[size_t((b - b0) * 16)];
            __m512 out = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(_mm512_loadu_pd(a))), _mm512_cvtpd_ps(_mm512_loadu_pd(a + 8)), 1);
            _mm512_mask_storeu_ps(y + 16 * b, tail_mask(C - 16 * b), out);
        }
    };
    if (R * C <= 32768) return run(0, blocks);
#pragma omp parallel
    {
        int64_t T = omp_get_num_threads(), t = omp_get_thread_num();
        run(blocks * t / T, blocks * (t + 1) / T);
    }
}

// ---- row sums (R, C) -> (R), in double ----
static void rowsum_v1(const float* x, float* y, int64_t R, int64_t C) {
#pragma omp parallel for schedule(static) if (R * C > 32768)
    for (int64_t r = 0; r < R; r++) {
        double s = 0;
        for (int64_t c = 0; c < C; c++) s += x[r * C + c];
        y[r] = float(s);
    }
}
static void rowsum_v2(const float* x, float* y, int64_t R, int64_t C) {
#pragma omp parallel for schedule(static) if (R * C > 32768)
    for (int64_t r = 0; r < R; r++) {
        __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
        for (int64_t i = 0; i < C; i += 16) {
            __m512 v = _mm512_maskz_loadu_ps(tail_mask(C - i), x + r * C + i);
            lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
            hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
        }
        y[r] = float(_mm512_reduce_add_pd(_mm512_add_pd(lo, hi)));
    }
}

// ---- checks ----
static bool check_all() {
    bool ok = true;
    const int64_t shapes[][2] = {{1, 1}, {3, 15}, {9, 16}, {7, 17}, {5, 127}, {3, 129}, {300, 512}, {2, 768}};
    std::vector<float> scratch;
    for (auto& s : shapes) {
        int64_t N = s[0], C = s[1];
        auto x = random_normal(size_t(N * C), 1, 3.0f), g = random_normal(size_t(N * C), 2);
        std::vector<int64_t> t(static_cast<size_t>(N));
        for (int64_t n = 0; n < N; n++) t[size_t(n)] = (n * 7 + 3) % C;
        std::vector<float> ref(static_cast<size_t>(N * C)), gref(static_cast<size_t>(N * C)), lref(static_cast<size_t>(N)), got(static_cast<size_t>(N * C)), lgot(static_cast<size_t>(N));
        for (int64_t n = 0; n < N; n++) {
            double m = -INFINITY, sum = 0, dot = 0;
            for (int64_t c = 0; c < C; c++) m = std::max(m, double(x[size_t(n * C + c)]));
            for (int64_t c = 0; c < C; c++) sum += std::exp(x[size_t(n * C + c)] - m);
            for (int64_t c = 0; c < C; c++) ref[size_t(n * C + c)] = float(std::exp(x[size_t(n * C + c)] - m) / sum);
            for (int64_t c = 0; c < C; c++) dot += double(g[size_t(n * C + c)]) * ref[size_t(n * C + c)];
            for (int64_t c = 0; c < C; c++) gref[size_t(n * C + c)] = float(ref[size_t(n * C + c)] * (g[size_t(n * C + c)] - dot));
            lref[size_t(n)] = float(m + std::log(sum) - x[size_t(n * C + t[size_t(n)])]);
        }
        for (auto f : {softmax_v1, softmax_v2, softmax_v3}) f(x.data(), got.data(), N, C), ok &= validate("softmax", got, ref, 1e-6f, 1e-5f);
        for (auto f : {softmax_backward_v1, softmax_backward_v2})
            f(ref.data(), g.data(), got.data(), N, C), ok &= validate("softmax backward", got, gref, 1e-6f, 1e-5f);
        for (auto f : {cross_entropy_v1, cross_entropy_v2}) {
            f(x.data(), t.data(), lgot.data(), got.data(), N, C);
            ok &= validate("cross_entropy loss", lgot, lref, 1e-5f, 1e-5f);
            for (int64_t n = 0; n < N; n++) got[size_t(n * C + t[size_t(n)])] += 1.0f;  // back to softmax
            ok &= validate("cross_entropy grad", got, ref, 1e-6f, 1e-5f);
        }
        std::vector<float> cref(static_cast<size_t>(C)), cgot(static_cast<size_t>(C)), rref(static_cast<size_t>(N)), rgot(static_cast<size_t>(N));
        for (int64_t c = 0; c < C; c++) {
            double sum = 0;
            for (int64_t n = 0; n < N; n++) sum += x[size_t(n * C + c)];
            cref[size_t(c)] = float(sum);
        }
        for (int64_t n = 0; n < N; n++) {
            double sum = 0;
            for (int64_t c = 0; c < C; c++) sum += x[size_t(n * C + c)];
            rref[size_t(n)] = float(sum);
        }
        for (auto f : {colsum_v1, colsum_v2, colsum_v4}) f(x.data(), cgot.data(), N, C, scratch), ok &= validate("column sum (exact)", cgot, cref, 0.0f);
        colsum_v3(x.data(), cgot.data(), N, C, scratch), ok &= validate("column sum v3", cgot, cref, 1e-4f, 1e-5f);
        for (auto f : {rowsum_v1, rowsum_v2}) f(x.data(), rgot.data(), N, C), ok &= validate("row sum", rgot, rref, 1e-5f, 1e-6f);
    }
    return ok;
}

int main(int argc, char** argv) {
    int variant = selected_variant(argc, argv);
    int threads = playground_threads();
    print_rooflines();
    bool ok = check_all();
    std::printf("library (engine/cpu/cpu_nn.cpp, cpu_reduce.cpp) uses variant 2, 3 for softmax, 4 for the bias gradient\n");
    auto want = [&](int v) { return variant == 0 || variant == v; };
    std::vector<float> scratch;
    for (auto& s : kShapes) {
        int64_t N = s[0], C = s[1];
        auto x = random_normal(size_t(N * C), 1, 3.0f), g = random_normal(size_t(N * C), 2), y(x), gx(x);
        std::vector<int64_t> t(static_cast<size_t>(N));
        for (int64_t n = 0; n < N; n++) t[size_t(n)] = n % C;
        std::vector<float> loss(static_cast<size_t>(N)), cols(static_cast<size_t>(C)), rows(static_cast<size_t>(N));
        double bytes = 4.0 * N * C;
        char name[64];
        std::printf("shape (%ld, %ld), %d threads\n", long(N), long(C), threads);
        for (int v = 1; v <= 4; v++) {
            if (!want(v)) continue;
            if (v <= 2) {  // (variants 3 and 4: softmax and the column sum only)
                std::snprintf(name, sizeof name, "softmax v%d", v);
                report_bandwidth(name, time_it([&] { (v == 1 ? softmax_v1 : softmax_v2)(x.data(), y.data(), N, C); }), 2 * bytes);
                std::snprintf(name, sizeof name, "softmax backward v%d", v);
                report_bandwidth(name, time_it([&] { (v == 1 ? softmax_backward_v1 : softmax_backward_v2)(y.data(), g.data(), gx.data(), N, C); }), 3 * bytes);
                std::snprintf(name, sizeof name, "cross_entropy fwd+bwd v%d", v);
                report_bandwidth(name, time_it([&] { (v == 1 ? cross_entropy_v1 : cross_entropy_v2)(x.data(), t.data(), loss.data(), gx.data(), N, C); }), 2 * bytes);
                std::snprintf(name, sizeof name, "row sum v%d", v);
                report_bandwidth(name, time_it([&] { (v == 1 ? rowsum_v1 : rowsum_v2)(x.data(), rows.data(), N, C); }), bytes);
            }
            if (v == 3) report_bandwidth("softmax v3 (one exp per element)", time_it([&] { softmax_v3(x.data(), y.data(), N, C); }), 2 * bytes);
            auto colsum = v == 1 ? colsum_v1 : v == 2 ? colsum_v2 : v == 3 ? colsum_v3 : colsum_v4;
            std::snprintf(name, sizeof name, "bias gradient (R, C) -> (C) v%d", v);
            report_bandwidth(name, time_it([&] { colsum(x.data(), cols.data(), N, C, scratch); }), bytes);
        }
    }
    return finish("rows", ok);
}
