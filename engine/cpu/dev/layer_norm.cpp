// engine/cpu/dev/layer_norm.cpp
// defines: the layer_norm playground: forward (y, mean, rstd) and backward (gx, dW, db) over
// rows (N, C), checked against a double reference on awkward shapes, then timed on the model's
// shapes against the copy bandwidth.
//   variant 1  scalar rows; dW/db by a second pass over all rows per block of 64 columns (the
//              library before)
//   variant 2  AVX-512 rows (16 partial sums, fixed tree); dW/db summed in the same pass into
//              per-block-of-64-rows partials, then over the blocks in order   <- the library's
// Both are deterministic and independent of the thread count.
#include <vector>

#include "common.h"

static const int64_t kShapes[][2] = {{8320, 128}, {8320, 512}, {4096, 128}};
static const float kEps = 1e-5f;

static inline __mmask16 tail_mask(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }
static inline float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }

struct Problem {
    int64_t N, C;
    std::vector<float> x, w, b, gy;
};
struct Result {
    std::vector<float> y, mean, rstd, gx, gw, gb;
    explicit Result(const Problem& p)
        : y(size_t(p.N * p.C)), mean(size_t(p.N)), rstd(size_t(p.N)), gx(size_t(p.N * p.C)), gw(size_t(p.C)), gb(size_t(p.C)) {}
};

// ---- variant 1: scalar ----
static void forward_v1(const Problem& p, Result& r) {
    int64_t N = p.N, C = p.C;
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int64_t n = 0; n < N; n++) {
        const float* xn = &p.x[size_t(n * C)];
        float m = 0, v = 0;
        for (int64_t c = 0; c < C; c++) m += xn[c];
        m /= float(C);
        for (int64_t c = 0; c < C; c++) v += (xn[c] - m) * (xn[c] - m);
        float s = 1.0f / std::sqrt(v / float(C) + kEps);
        for (int64_t c = 0; c < C; c++) r.y[size_t(n * C + c)] = (xn[c] - m) * s * p.w[size_t(c)] + p.b[size_t(c)];
        r.mean[size_t(n)] = m, r.rstd[size_t(n)] = s;
    }
}
static void backward_v1(const Problem& p, Result& r) {
    int64_t N = p.N, C = p.C;
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int64_t n = 0; n < N; n++) {
        float m = r.mean[size_t(n)], s = r.rstd[size_t(n)], d1 = 0, d2 = 0;
        for (int64_t c = 0; c < C; c++) {
            float xhat = (p.x[size_t(n * C + c)] - m) * s, dxhat = p.gy[size_t(n * C + c)] * p.w[size_t(c)];
            d1 += dxhat, d2 += dxhat * xhat;
        }
        d1 /= float(C), d2 /= float(C);
        for (int64_t c = 0; c < C; c++) {
            float xhat = (p.x[size_t(n * C + c)] - m) * s, dxhat = p.gy[size_t(n * C + c)] * p.w[size_t(c)];
            r.gx[size_t(n * C + c)] = (dxhat - d1 - xhat * d2) * s;
        }
    }
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int64_t c0 = 0; c0 < C; c0 += 64) {
        int64_t c1 = std::min(C, c0 + 64);
        double sw[64] = {0}, sb[64] = {0};
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = c0; c < c1; c++) {
                float g = p.gy[size_t(n * C + c)];
                sw[c - c0] += double(g * ((p.x[size_t(n * C + c)] - r.mean[size_t(n)]) * r.rstd[size_t(n)]));
                sb[c - c0] += double(g);
            }
        for (int64_t c = c0; c < c1; c++) r.gw[size_t(c)] = float(sw[c - c0]), r.gb[size_t(c)] = float(sb[c - c0]);
    }
}

// ---- variant 2: AVX-512, fused dW/db partials ----
static void forward_v2(const Problem& p, Result& r) {
    int64_t N = p.N, C = p.C;
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int64_t n = 0; n < N; n++) {
        const float* x = &p.x[size_t(n * C)];
        __m512 acc = _mm512_setzero_ps();
        for (int64_t i = 0; i < C; i += 16) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(tail_mask(C - i), x + i));
        float m = hsum(acc) / float(C);
        __m512 mv = _mm512_set1_ps(m);
        acc = _mm512_setzero_ps();
        for (int64_t i = 0; i < C; i += 16) {
            __mmask16 k = tail_mask(C - i);
            __m512 d = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x + i), mv);
            acc = _mm512_fmadd_ps(d, d, acc);
        }
        float s = 1.0f / std::sqrt(hsum(acc) / float(C) + kEps);
        __m512 sv = _mm512_set1_ps(s);
        for (int64_t i = 0; i < C; i += 16) {
            __mmask16 k = tail_mask(C - i);
            __m512 y = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), mv), sv);
            y = _mm512_fmadd_ps(y, _mm512_maskz_loadu_ps(k, &p.w[size_t(i)]), _mm512_maskz_loadu_ps(k, &p.b[size_t(i)]));
            _mm512_mask_storeu_ps(&r.y[size_t(n * C + i)], k, y);
        }
        r.mean[size_t(n)] = m, r.rstd[size_t(n)] = s;
    }
}
static void backward_v2(const Problem& p, Result& r) {
    const int64_t kBlock = 64;
    int64_t N = p.N, C = p.C, blocks = (N + kBlock - 1) / kBlock;
    std::vector<float> pw(size_t(blocks * C), 0.0f), pb(size_t(blocks * C), 0.0f);
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int64_t blk = 0; blk < blocks; blk++) {
        float* sw = &pw[size_t(blk * C)];
        float* sb = &pb[size_t(blk * C)];
        for (int64_t n = blk * kBlock; n < std::min(N, (blk + 1) * kBlock); n++) {
            const float* x = &p.x[size_t(n * C)];
            const float* gy = &p.gy[size_t(n * C)];
            __m512 mv = _mm512_set1_ps(r.mean[size_t(n)]), rv = _mm512_set1_ps(r.rstd[size_t(n)]);
            __m512 s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps();
            for (int64_t i = 0; i < C; i += 16) {
                __mmask16 k = tail_mask(C - i);
                __m512 g = _mm512_maskz_loadu_ps(k, gy + i);
                __m512 xhat = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), mv), rv);
                __m512 dxhat = _mm512_mul_ps(g, _mm512_maskz_loadu_ps(k, &p.w[size_t(i)]));
                s1 = _mm512_add_ps(s1, dxhat);
                s2 = _mm512_fmadd_ps(dxhat, xhat, s2);
                _mm512_mask_storeu_ps(sw + i, k, _mm512_fmadd_ps(g, xhat, _mm512_maskz_loadu_ps(k, sw + i)));
                _mm512_mask_storeu_ps(sb + i, k, _mm512_add_ps(g, _mm512_maskz_loadu_ps(k, sb + i)));
            }
            __m512 d1 = _mm512_set1_ps(hsum(s1) / float(C)), d2 = _mm512_set1_ps(hsum(s2) / float(C));
            for (int64_t i = 0; i < C; i += 16) {
                __mmask16 k = tail_mask(C - i);
                __m512 xhat = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), mv), rv);
                __m512 dxhat = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, gy + i), _mm512_maskz_loadu_ps(k, &p.w[size_t(i)]));
                _mm512_mask_storeu_ps(&r.gx[size_t(n * C + i)], k, _mm512_mul_ps(_mm512_fnmadd_ps(xhat, d2, _mm512_sub_ps(dxhat, d1)), rv));
            }
        }
    }
#pragma omp parallel for schedule(static) if (blocks * C > 16384)
    for (int64_t c = 0; c < C; c++) {
        double tw = 0, tb = 0;
        for (int64_t blk = 0; blk < blocks; blk++) tw += pw[size_t(blk * C + c)], tb += pb[size_t(blk * C + c)];
        r.gw[size_t(c)] = float(tw), r.gb[size_t(c)] = float(tb);
    }
}

// ---- reference (double) and checks ----
static void reference(const Problem& p, std::vector<double>& y, std::vector<double>& gx, std::vector<double>& gw,
                      std::vector<double>& gb) {
    int64_t N = p.N, C = p.C;
    y.assign(size_t(N * C), 0), gx.assign(size_t(N * C), 0), gw.assign(size_t(C), 0), gb.assign(size_t(C), 0);
    for (int64_t n = 0; n < N; n++) {
        double m = 0, v = 0, d1 = 0, d2 = 0;
        for (int64_t c = 0; c < C; c++) m += p.x[size_t(n * C + c)];
        m /= double(C);
        for (int64_t c = 0; c < C; c++) v += (p.x[size_t(n * C + c)] - m) * (p.x[size_t(n * C + c)] - m);
        double s = 1 / std::sqrt(v / double(C) + kEps);
        for (int64_t c = 0; c < C; c++) {
            double xhat = (p.x[size_t(n * C + c)] - m) * s, g = p.gy[size_t(n * C + c)];
            y[size_t(n * C + c)] = xhat * p.w[size_t(c)] + p.b[size_t(c)];
            d1 += g * p.w[size_t(c)], d2 += g * p.w[size_t(c)] * xhat;
            gw[size_t(c)] += g * xhat, gb[size_t(c)] += g;
        }
        for (int64_t c = 0; c < C; c++) {
            double xhat = (p.x[size_t(n * C + c)] - m) * s;
            gx[size_t(n * C + c)] = (p.gy[size_t(n * C + c)] * p.w[size_t(c)] - d1 / double(C) - xhat * d2 / double(C)) * s;
        }
    }
}

static Problem make_problem(int64_t N, int64_t C) {
    Problem p{N, C, random_normal(size_t(N * C), 1, 2.0f), random_normal(size_t(C), 2), random_normal(size_t(C), 3),
              random_normal(size_t(N * C), 4)};
    for (float& v : p.x) v += 0.5f;
    return p;
}

static bool close_to(const char* what, const std::vector<float>& got, const std::vector<double>& want, float tol) {
    std::vector<float> w(want.begin(), want.end());
    float scale = 1;
    for (float v : w) scale = std::max(scale, std::fabs(v));
    return validate(what, got, w, tol * scale);
}

static bool check_all() {
    bool ok = true;
    const int64_t shapes[][2] = {{1, 1}, {3, 15}, {130, 16}, {7, 17}, {65, 127}, {3, 129}, {130, 512}, {2, 768}};
    for (auto& s : shapes) {
        Problem p = make_problem(s[0], s[1]);
        std::vector<double> y, gx, gw, gb;
        reference(p, y, gx, gw, gb);
        for (int v = 1; v <= 2; v++) {
            Result r(p), again(p);
            (v == 1 ? forward_v1 : forward_v2)(p, r);
            (v == 1 ? backward_v1 : backward_v2)(p, r);
            float tol = s[1] == 1 ? 1e-2f : 1e-5f;  // C = 1: gx is rounding noise times rstd
            ok &= close_to("y", r.y, y, 1e-5f) && close_to("gx", r.gx, gx, tol) && close_to("gw", r.gw, gw, 1e-5f) &&
                  close_to("gb", r.gb, gb, 1e-5f);
            (v == 1 ? forward_v1 : forward_v2)(p, again);
            (v == 1 ? backward_v1 : backward_v2)(p, again);
            ok &= same_bits("y twice", r.y, again.y) && same_bits("gw twice", r.gw, again.gw);
        }
    }
    return ok;
}

int main(int argc, char** argv) {
    int variant = selected_variant(argc, argv);
    int threads = playground_threads();
    print_rooflines();
    bool ok = check_all();
    std::printf("library (engine/cpu/cpu_nn.cpp) uses variant 2\n");
    for (auto& s : kShapes) {
        Problem p = make_problem(s[0], s[1]);
        Result r(p);
        double bytes_fwd = 8.0 * p.N * p.C, bytes_bwd = 12.0 * p.N * p.C;
        std::printf("shape (%ld, %ld), %d threads\n", long(p.N), long(p.C), threads);
        for (int v = 1; v <= 2; v++) {
            if (variant && variant != v) continue;
            char name[64];
            std::snprintf(name, sizeof name, "forward v%d", v);
            report_bandwidth(name, time_it([&] { (v == 1 ? forward_v1 : forward_v2)(p, r); }), bytes_fwd);
            std::snprintf(name, sizeof name, "backward (gx, dW, db) v%d", v);
            report_bandwidth(name, time_it([&] { (v == 1 ? backward_v1 : backward_v2)(p, r); }), bytes_bwd);
        }
    }
    return finish("layer_norm", ok);
}
