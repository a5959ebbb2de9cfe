// engine/cpu/cpu_nn.cpp
// defines: the fused CPU kernels over rows (N, C): softmax / log_softmax and their backward,
// layer_norm forward (saving mean, rstd) and backward, cross_entropy forward (saving the row
// log-sum-exp) and its fused backward. Statistics are kept in Acc precision (F32, or F64 for
// F64 tensors).
// Each kernel has its scalar row function (the reference, and the F64 path) and, with AVX-512,
// a 16-lane one for F32 / BF16 rows (sums in 16 partial lanes added in a fixed tree order, exp
// and log from SLEEF). A row is one thread's from start to end, so results do not depend on
// the thread count; layer_norm's dW/db are summed per fixed block of rows, then over the blocks
// in order: deterministic too.
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/vec.h"
#include "engine/ops.h"

namespace rankclip {

// Rows are split across threads when the tensor has more elements than this.
static constexpr int64_t kRowsParallelMin = 16384;

#if RANKCLIP_AVX512
// Sum of f(i, m) (16 lanes, m masking the tail) over a row of C, in 16 partial lanes.
template <typename F>
static inline float row_sum(int64_t C, F&& f) {
    __m512 acc = _mm512_setzero_ps();
    vec::for_lanes(C, [&](int64_t i, __mmask16 m) { acc = _mm512_add_ps(acc, f(i, m)); });
    return vec::hsum(acc);
}

template <typename T>
static inline float row_max(const T* row, int64_t C) {
    __m512 acc = vec::set1(-INFINITY);
    vec::for_lanes(C, [&](int64_t i, __mmask16 m) { acc = _mm512_mask_max_ps(acc, m, acc, vec::load(row + i, m)); });
    return vec::hmax(acc);
}
#endif

// ---- softmax / log_softmax ----

// Where a row's float intermediates go: the output row itself when it is F32, else `buffer`.
static float* y_as_float(float* y, std::vector<float>&, int64_t) { return y; }
static float* y_as_float(bf16*, std::vector<float>& buffer, int64_t C) {
    if (int64_t(buffer.size()) < C) buffer.resize(size_t(C));
    return buffer.data();
}

template <typename T>
static void softmax_row(const T* row, T* y, int64_t C, bool log) {
    using A = Acc<T>;
#if RANKCLIP_AVX512
    if constexpr (vec::kVectorised<T>) {
        __m512 m = vec::set1(row_max(row, C));
        if (log) {
            float s = row_sum(C, [&](int64_t i, __mmask16 k) {
                return _mm512_maskz_mov_ps(k, vec::exp(_mm512_sub_ps(vec::load(row + i, k), m)));
            });
            __m512 lse = _mm512_add_ps(m, vec::set1(std::log(s)));
            vec::for_lanes(C, [&](int64_t i, __mmask16 k) { vec::store(y + i, _mm512_sub_ps(vec::load(row + i, k), lse), k); });
            return;
        }
        // exp(x - max) kept from the sum's pass (in y for F32, else in a float row) and scaled
        static thread_local std::vector<float> row_buffer;
        float* e = y_as_float(y, row_buffer, C);
        float s = row_sum(C, [&](int64_t i, __mmask16 k) {
            __m512 v = _mm512_maskz_mov_ps(k, vec::exp(_mm512_sub_ps(vec::load(row + i, k), m)));
            _mm512_mask_storeu_ps(e + i, k, v);
            return v;
        });
        __m512 inv = vec::set1(1.0f / s);
        vec::for_lanes(C, [&](int64_t i, __mmask16 k) { vec::store(y + i, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, e + i), inv), k); });
        return;
    }
#endif
    A m = -INFINITY;
    for (int64_t c = 0; c < C; c++) m = std::max(m, A(load(row + c)));
    A s = 0;
    for (int64_t c = 0; c < C; c++) s += std::exp(load(row + c) - m);
    if (log) {
        A lse = m + std::log(s);
        for (int64_t c = 0; c < C; c++) store(y + c, load(row + c) - lse);
    } else {
        A inv = A(1) / s;
        for (int64_t c = 0; c < C; c++) store(y + c, std::exp(load(row + c) - m) * inv);
    }
}

void CpuBackend::softmax_rows(const Tensor& x, Tensor& out, bool log) {
    int64_t C = x.shape().back(), N = C ? x.numel() / C : 0;
    dispatch_floating(x.dtype(), log ? "log_softmax" : "softmax", [&](auto tag) {
        using T = decltype(tag);
        const T* xs = static_cast<const T*>(x.raw_data());
        T* ys = static_cast<T*>(out.raw_data());
#pragma omp parallel for schedule(static) if (N * C > kRowsParallelMin)
        for (int64_t n = 0; n < N; n++) softmax_row(xs + n * C, ys + n * C, C, log);
    });
}

template <typename T>
static void softmax_backward_row(const T* yr, const T* gr, T* gx, int64_t C, bool log) {
    using A = Acc<T>;
#if RANKCLIP_AVX512
    if constexpr (vec::kVectorised<T>) {
        if (log) {
            __m512 dot = vec::set1(row_sum(C, [&](int64_t i, __mmask16 k) { return vec::load(gr + i, k); }));
            vec::for_lanes(C, [&](int64_t i, __mmask16 k) {
                __m512 p = vec::exp(vec::load(yr + i, k));
                vec::store(gx + i, _mm512_fnmadd_ps(p, dot, vec::load(gr + i, k)), k);
            });
        } else {
            __m512 dot = vec::set1(row_sum(C, [&](int64_t i, __mmask16 k) {
                return _mm512_mul_ps(vec::load(gr + i, k), vec::load(yr + i, k));
            }));
            vec::for_lanes(C, [&](int64_t i, __mmask16 k) {
                vec::store(gx + i, _mm512_mul_ps(vec::load(yr + i, k), _mm512_sub_ps(vec::load(gr + i, k), dot)), k);
            });
        }
        return;
    }
#endif
    A dot = 0;
    if (log) {
        // forward: y = x - lse(x)  =>  gx = gy - softmax(x) * sum(gy)
        for (int64_t c = 0; c < C; c++) dot += load(gr + c);
        for (int64_t c = 0; c < C; c++) store(gx + c, load(gr + c) - std::exp(A(load(yr + c))) * dot);
    } else {
        // forward: y = softmax(x)  =>  gx = y * (gy - sum(gy * y))
        for (int64_t c = 0; c < C; c++) dot += load(gr + c) * load(yr + c);
        for (int64_t c = 0; c < C; c++) store(gx + c, load(yr + c) * (load(gr + c) - dot));
    }
}

void CpuBackend::softmax_rows_backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log) {
    int64_t C = y.shape().back(), N = C ? y.numel() / C : 0;
    dispatch_floating(y.dtype(), "softmax_backward", [&](auto tag) {
        using T = decltype(tag);
        const T* ys = static_cast<const T*>(y.raw_data());
        const T* gys = static_cast<const T*>(gy.raw_data());
        T* gxs = static_cast<T*>(gx.raw_data());
#pragma omp parallel for schedule(static) if (N * C > kRowsParallelMin)
        for (int64_t n = 0; n < N; n++) softmax_backward_row(ys + n * C, gys + n * C, gxs + n * C, C, log);
    });
}

// ---- layer_norm ----

// One row: y = (x - mean) * rstd * w + b; returns mean and rstd.
template <typename T>
static void layer_norm_row(const T* x, const T* w, const T* b, T* y, int64_t C, double eps, Acc<T>& mean,
                           Acc<T>& rstd) {
    using A = Acc<T>;
#if RANKCLIP_AVX512
    if constexpr (vec::kVectorised<T>) {
        float m = row_sum(C, [&](int64_t i, __mmask16 k) { return vec::load(x + i, k); }) / float(C);
        __m512 mv = vec::set1(m);
        float v = row_sum(C, [&](int64_t i, __mmask16 k) {
            __m512 d = _mm512_maskz_sub_ps(k, vec::load(x + i, k), mv);
            return _mm512_mul_ps(d, d);
        });
        float s = 1.0f / std::sqrt(v / float(C) + float(eps));
        __m512 sv = vec::set1(s);
        vec::for_lanes(C, [&](int64_t i, __mmask16 k) {
            __m512 yv = _mm512_mul_ps(_mm512_sub_ps(vec::load(x + i, k), mv), sv);
            if (w) yv = _mm512_mul_ps(yv, vec::load(w + i, k));
            if (b) yv = _mm512_add_ps(yv, vec::load(b + i, k));
            vec::store(y + i, yv, k);
        });
        mean = m, rstd = s;
        return;
    }
#endif
    A m = 0, v = 0;
    for (int64_t c = 0; c < C; c++) m += load(x + c);
    m /= A(C);
    for (int64_t c = 0; c < C; c++) v += (load(x + c) - m) * (load(x + c) - m);
    A s = A(1) / std::sqrt(v / A(C) + A(eps));
    for (int64_t c = 0; c < C; c++) {
        A yc = (load(x + c) - m) * s;
        if (w) yc *= A(load(w + c));
        if (b) yc += A(load(b + c));
        store(y + c, yc);
    }
    mean = m, rstd = s;
}

// x: (N, C) rows to normalise; w, b: (C) or undefined. out: (N, C); mean, rstd: (N).
void CpuBackend::layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& out, Tensor& mean,
                            Tensor& rstd, double eps) {
    int64_t C = x.shape().back(), N = C ? x.numel() / C : 0;
    dispatch_floating(x.dtype(), "layer_norm", [&](auto tag) {
        using T = decltype(tag);
        using A = Acc<T>;
        const T* xs = static_cast<const T*>(x.raw_data());
        const T* ws = w.defined() ? static_cast<const T*>(w.raw_data()) : nullptr;
        const T* bs = b.defined() ? static_cast<const T*>(b.raw_data()) : nullptr;
        T* ys = static_cast<T*>(out.raw_data());
        A* ms = static_cast<A*>(mean.raw_data());
        A* rs = static_cast<A*>(rstd.raw_data());
#pragma omp parallel for schedule(static) if (N * C > kRowsParallelMin)
        for (int64_t n = 0; n < N; n++) layer_norm_row(xs + n * C, ws, bs, ys + n * C, C, eps, ms[n], rs[n]);
    });
}

// dW and db are summed over fixed blocks of this many rows (in Acc precision), then over the
// blocks in order (in double): the same bits whatever the thread count.
static constexpr int64_t kLayerNormBlockRows = 64;

// One row of the backward: gx, and the row's gy * xhat and gy added into sw, sb (when given).
// forward was: xhat = (x - mean) * rstd;  y = xhat * w + b
template <typename T>
static void layer_norm_backward_row(const T* gy, const T* x, const T* w, Acc<T> mean, Acc<T> rstd, T* gx,
                                    int64_t C, Acc<T>* sw, Acc<T>* sb) {
    using A = Acc<T>;
#if RANKCLIP_AVX512
    if constexpr (vec::kVectorised<T>) {
        __m512 mv = vec::set1(mean), rv = vec::set1(rstd);
        auto xhat_at = [&](int64_t i, __mmask16 k) { return _mm512_mul_ps(_mm512_sub_ps(vec::load(x + i, k), mv), rv); };
        auto dxhat_at = [&](int64_t i, __mmask16 k) {
            return w ? _mm512_mul_ps(vec::load(gy + i, k), vec::load(w + i, k)) : vec::load(gy + i, k);
        };
        __m512 s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps();
        vec::for_lanes(C, [&](int64_t i, __mmask16 k) {
            __m512 xhat = xhat_at(i, k), dxhat = dxhat_at(i, k), g = vec::load(gy + i, k);
            s1 = _mm512_add_ps(s1, dxhat);
            s2 = _mm512_fmadd_ps(dxhat, xhat, s2);
            if (sw) _mm512_mask_storeu_ps(sw + i, k, _mm512_fmadd_ps(g, xhat, _mm512_maskz_loadu_ps(k, sw + i)));
            if (sb) _mm512_mask_storeu_ps(sb + i, k, _mm512_add_ps(g, _mm512_maskz_loadu_ps(k, sb + i)));
        });
        __m512 dxhat_mean = vec::set1(vec::hsum(s1) / float(C)), dxhat_xhat_mean = vec::set1(vec::hsum(s2) / float(C));
        vec::for_lanes(C, [&](int64_t i, __mmask16 k) {
            __m512 centred = _mm512_fnmadd_ps(xhat_at(i, k), dxhat_xhat_mean, _mm512_sub_ps(dxhat_at(i, k), dxhat_mean));
            vec::store(gx + i, _mm512_mul_ps(centred, rv), k);
        });
        return;
    }
#endif
    A dxhat_mean = 0, dxhat_xhat_mean = 0;
    for (int64_t c = 0; c < C; c++) {
        A xhat = (load(x + c) - mean) * rstd;
        A g = load(gy + c);
        A dxhat = g * (w ? A(load(w + c)) : A(1));
        dxhat_mean += dxhat;
        dxhat_xhat_mean += dxhat * xhat;
        if (sw) sw[c] += g * xhat;
        if (sb) sb[c] += g;
    }
    dxhat_mean /= A(C);
    dxhat_xhat_mean /= A(C);
    for (int64_t c = 0; c < C; c++) {
        A xhat = (load(x + c) - mean) * rstd;
        A dxhat = load(gy + c) * (w ? A(load(w + c)) : A(1));
        store(gx + c, (dxhat - dxhat_mean - xhat * dxhat_xhat_mean) * rstd);
    }
}

// gy: (N, C) -> gx: (N, C); gw, gb: (C) written (not accumulated), when defined.
void CpuBackend::layer_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& w, const Tensor& mean,
                                     const Tensor& rstd, Tensor& gx, Tensor& gw, Tensor& gb) {
    int64_t C = x.shape().back(), N = C ? x.numel() / C : 0;
    dispatch_floating(x.dtype(), "layer_norm_backward", [&](auto tag) {
        using T = decltype(tag);
        using A = Acc<T>;
        const T* xs = static_cast<const T*>(x.raw_data());
        const T* gys = static_cast<const T*>(gy.raw_data());
        const T* ws = w.defined() ? static_cast<const T*>(w.raw_data()) : nullptr;
        const A* ms = static_cast<const A*>(mean.raw_data());
        const A* rs = static_cast<const A*>(rstd.raw_data());
        T* gxs = static_cast<T*>(gx.raw_data());
        bool want_w = gw.defined(), want_b = gb.defined();
        int64_t blocks = (N + kLayerNormBlockRows - 1) / kLayerNormBlockRows;
        // (blocks, C) partial sums of gy * xhat and gy, from the caching allocator: as a
        // std::vector (0.4 MB each at (8192, 768)) they were fresh, zeroed pages every call
        const DType acc_dtype = sizeof(A) == sizeof(double) ? DType::F64 : DType::F32;
        Tensor part_w = want_w ? zeros({blocks, C}, acc_dtype) : Tensor(), part_b = want_b ? zeros({blocks, C}, acc_dtype) : Tensor();
        A* pw = want_w ? static_cast<A*>(part_w.raw_data()) : nullptr;
        A* pb = want_b ? static_cast<A*>(part_b.raw_data()) : nullptr;
#pragma omp parallel for schedule(static) if (N * C > kRowsParallelMin)
        for (int64_t blk = 0; blk < blocks; blk++) {
            A* sw = want_w ? pw + blk * C : nullptr;
            A* sb = want_b ? pb + blk * C : nullptr;
            for (int64_t n = blk * kLayerNormBlockRows; n < std::min(N, (blk + 1) * kLayerNormBlockRows); n++)
                layer_norm_backward_row(gys + n * C, xs + n * C, ws, ms[n], rs[n], gxs + n * C, C, sw, sb);
        }
        if (!want_w && !want_b) return;
        T* gws = want_w ? static_cast<T*>(gw.raw_data()) : nullptr;
        T* gbs = want_b ? static_cast<T*>(gb.raw_data()) : nullptr;
#pragma omp parallel for schedule(static) if (blocks * C > kRowsParallelMin)
        for (int64_t c = 0; c < C; c++) {
            double tw = 0, tb = 0;
            for (int64_t blk = 0; blk < blocks; blk++) {
                if (gws) tw += double(pw[blk * C + c]);
                if (gbs) tb += double(pb[blk * C + c]);
            }
            if (gws) store(gws + c, tw);
            if (gbs) store(gbs + c, tb);
        }
    });
}

// ---- cross_entropy ----

// logits: (N, C), target: (N). losses: (N) = lse - logits[target]; lse: (N) in Acc precision.
void CpuBackend::cross_entropy(const Tensor& logits, const Tensor& target, Tensor& losses, Tensor& lse,
                               int64_t ignore_index) {
    int64_t C = logits.shape().back(), N = C ? logits.numel() / C : 0;
    dispatch_floating(logits.dtype(), "cross_entropy", [&](auto tag) {
        using T = decltype(tag);
        using A = Acc<T>;
        const T* xs = static_cast<const T*>(logits.raw_data());
        T* ls = static_cast<T*>(losses.raw_data());
        A* lses = static_cast<A*>(lse.raw_data());
        for (int64_t n = 0; n < N; n++) {  // validate targets before the parallel loop
            int64_t t = load_index(target, n);
            RC_CHECK(t == ignore_index || (t >= 0 && t < C), "cross_entropy: target ", t, " at row ", n,
                     " is out of range for ", C, " classes");
        }
#pragma omp parallel for schedule(static) if (N * C > kRowsParallelMin)
        for (int64_t n = 0; n < N; n++) {
            const T* row = xs + n * C;
            A m = -INFINITY, s = 0;
#if RANKCLIP_AVX512
            if constexpr (vec::kVectorised<T>) {
                m = row_max(row, C);
                __m512 mv = vec::set1(m);
                s = row_sum(C, [&](int64_t i, __mmask16 k) {
                    return _mm512_maskz_mov_ps(k, vec::exp(_mm512_sub_ps(vec::load(row + i, k), mv)));
                });
            } else
#endif
            {
                for (int64_t c = 0; c < C; c++) m = std::max(m, A(load(row + c)));
                for (int64_t c = 0; c < C; c++) s += std::exp(load(row + c) - m);
            }
            lses[n] = m + std::log(s);
            int64_t t = load_index(target, n);
            store(ls + n, t == ignore_index ? A(0) : lses[n] - A(load(row + t)));
        }
    });
}

void CpuBackend::cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& lse,
                                        const Tensor& grad_losses, Tensor& glogits, int64_t ignore_index) {
    int64_t C = logits.shape().back(), N = C ? logits.numel() / C : 0;
    dispatch_floating(logits.dtype(), "cross_entropy_backward", [&](auto tag) {
        using T = decltype(tag);
        using A = Acc<T>;
        const T* xs = static_cast<const T*>(logits.raw_data());
        const A* lses = static_cast<const A*>(lse.raw_data());
        const T* gl = static_cast<const T*>(grad_losses.raw_data());
        T* gxs = static_cast<T*>(glogits.raw_data());
#pragma omp parallel for schedule(static) if (N * C > kRowsParallelMin)
        for (int64_t n = 0; n < N; n++) {
            // forward: loss = lse(x) - x[t]  =>  dx = g * (softmax(x) - onehot(t))
            int64_t t = load_index(target, n);
            A g = t == ignore_index ? A(0) : A(load(gl + n));
            const T* row = xs + n * C;
            T* out = gxs + n * C;
#if RANKCLIP_AVX512
            if constexpr (vec::kVectorised<T>) {
                __m512 lv = vec::set1(lses[n]), gv = vec::set1(g);
                vec::for_lanes(C, [&](int64_t i, __mmask16 k) {
                    __m512 p = vec::exp(_mm512_sub_ps(vec::load(row + i, k), lv));
                    __mmask16 onehot = t >= i && t < i + vec::kLanes ? __mmask16(1u << (t - i)) : 0;
                    p = _mm512_mask_sub_ps(p, onehot, p, vec::set1(1.0f));
                    vec::store(out + i, _mm512_mul_ps(gv, p), k);
                });
                continue;
            }
#endif
            for (int64_t c = 0; c < C; c++) {
                A p = std::exp(load(row + c) - lses[n]);
                store(out + c, g * (p - A(c == t)));
            }
        }
    });
}

}  // namespace rankclip
