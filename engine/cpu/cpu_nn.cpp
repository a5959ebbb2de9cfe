// engine/cpu/cpu_nn.cpp
// defines: the fused CPU kernels over rows (N, C): softmax / log_softmax and their backward,
// layer_norm forward (saving mean, rstd) and backward, cross_entropy forward (saving the row
// log-sum-exp) and its fused backward. Statistics are kept in Acc precision (F32, or F64 for
// F64 tensors). dW/db of layer_norm are reduced per column in row order: deterministic.
#include <vector>

#include "engine/cpu/cpu_backend.h"

namespace rankclip {

void CpuBackend::softmax_rows(const Tensor& x, Tensor& out, bool log) {
    int64_t C = x.shape().back(), N = C ? x.numel() / C : 0;
    dispatch_floating(x.dtype(), log ? "log_softmax" : "softmax", [&](auto tag) {
        using T = decltype(tag);
        using A = Acc<T>;
        const T* xs = static_cast<const T*>(x.raw_data());
        T* ys = static_cast<T*>(out.raw_data());
#pragma omp parallel for schedule(static) if (N * C > 16384)
        for (int64_t n = 0; n < N; n++) {
            const T* row = xs + n * C;
            A m = -INFINITY;
            for (int64_t c = 0; c < C; c++) m = std::max(m, A(load(row + c)));
            A s = 0;
            for (int64_t c = 0; c < C; c++) s += std::exp(load(row + c) - m);
            if (log) {
                A lse = m + std::log(s);
                for (int64_t c = 0; c < C; c++) store(ys + n * C + c, load(row + c) - lse);
            } else {
                A inv = A(1) / s;
                for (int64_t c = 0; c < C; c++) store(ys + n * C + c, std::exp(load(row + c) - m) * inv);
            }
        }
    });
}

void CpuBackend::softmax_rows_backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log) {
    int64_t C = y.shape().back(), N = C ? y.numel() / C : 0;
    dispatch_floating(y.dtype(), "softmax_backward", [&](auto tag) {
        using T = decltype(tag);
        using A = Acc<T>;
        const T* ys = static_cast<const T*>(y.raw_data());
        const T* gys = static_cast<const T*>(gy.raw_data());
        T* gxs = static_cast<T*>(gx.raw_data());
#pragma omp parallel for schedule(static) if (N * C > 16384)
        for (int64_t n = 0; n < N; n++) {
            const T* yr = ys + n * C;
            const T* gr = gys + n * C;
            A dot = 0;
            if (log) {
                // forward: y = x - lse(x)  =>  gx = gy - softmax(x) * sum(gy)
                for (int64_t c = 0; c < C; c++) dot += load(gr + c);
                for (int64_t c = 0; c < C; c++) store(gxs + n * C + c, load(gr + c) - std::exp(A(load(yr + c))) * dot);
            } else {
                // forward: y = softmax(x)  =>  gx = y * (gy - sum(gy * y))
                for (int64_t c = 0; c < C; c++) dot += load(gr + c) * load(yr + c);
                for (int64_t c = 0; c < C; c++) store(gxs + n * C + c, load(yr + c) * (load(gr + c) - dot));
            }
        }
    });
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
#pragma omp parallel for schedule(static) if (N * C > 16384)
        for (int64_t n = 0; n < N; n++) {
            const T* xn = xs + n * C;
            A m = 0, v = 0;
            for (int64_t c = 0; c < C; c++) m += load(xn + c);
            m /= A(C);
            for (int64_t c = 0; c < C; c++) v += (load(xn + c) - m) * (load(xn + c) - m);
            A s = A(1) / std::sqrt(v / A(C) + A(eps));
            for (int64_t c = 0; c < C; c++) {
                A y = (load(xn + c) - m) * s;
                if (ws) y *= A(load(ws + c));
                if (bs) y += A(load(bs + c));
                store(ys + n * C + c, y);
            }
            ms[n] = m;
            rs[n] = s;
        }
    });
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
#pragma omp parallel for schedule(static) if (N * C > 16384)
        for (int64_t n = 0; n < N; n++) {
            // forward was: xhat = (x - mean) * rstd;  y = xhat * w + b
            A dxhat_mean = 0, dxhat_xhat_mean = 0;
            for (int64_t c = 0; c < C; c++) {
                A xhat = (load(xs + n * C + c) - ms[n]) * rs[n];
                A dxhat = load(gys + n * C + c) * (ws ? A(load(ws + c)) : A(1));
                dxhat_mean += dxhat;
                dxhat_xhat_mean += dxhat * xhat;
            }
            dxhat_mean /= A(C);
            dxhat_xhat_mean /= A(C);
            for (int64_t c = 0; c < C; c++) {
                A xhat = (load(xs + n * C + c) - ms[n]) * rs[n];
                A dxhat = load(gys + n * C + c) * (ws ? A(load(ws + c)) : A(1));
                store(gxs + n * C + c, (dxhat - dxhat_mean - xhat * dxhat_xhat_mean) * rs[n]);
            }
        }
        if (gw.defined() || gb.defined()) {
            T* gws = gw.defined() ? static_cast<T*>(gw.raw_data()) : nullptr;
            T* gbs = gb.defined() ? static_cast<T*>(gb.raw_data()) : nullptr;
            // one thread per block of columns, rows summed in order: deterministic
#pragma omp parallel for schedule(static) if (N * C > 16384)
            for (int64_t c0 = 0; c0 < C; c0 += 64) {
                int64_t c1 = std::min(C, c0 + 64);
                double sw[64] = {0}, sb[64] = {0};
                for (int64_t n = 0; n < N; n++)
                    for (int64_t c = c0; c < c1; c++) {
                        A g = load(gys + n * C + c);
                        sw[c - c0] += double(g * ((load(xs + n * C + c) - ms[n]) * rs[n]));
                        sb[c - c0] += double(g);
                    }
                for (int64_t c = c0; c < c1; c++) {
                    if (gws) store(gws + c, sw[c - c0]);
                    if (gbs) store(gbs + c, sb[c - c0]);
                }
            }
        }
    });
}

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
#pragma omp parallel for schedule(static) if (N * C > 16384)
        for (int64_t n = 0; n < N; n++) {
            const T* row = xs + n * C;
            A m = -INFINITY, s = 0;
            for (int64_t c = 0; c < C; c++) m = std::max(m, A(load(row + c)));
            for (int64_t c = 0; c < C; c++) s += std::exp(load(row + c) - m);
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
#pragma omp parallel for schedule(static) if (N * C > 16384)
        for (int64_t n = 0; n < N; n++) {
            // forward: loss = lse(x) - x[t]  =>  dx = g * (softmax(x) - onehot(t))
            int64_t t = load_index(target, n);
            A g = t == ignore_index ? A(0) : A(load(gl + n));
            for (int64_t c = 0; c < C; c++) {
                A p = std::exp(load(xs + n * C + c) - lses[n]);
                store(gxs + n * C + c, g * (p - A(c == t)));
            }
        }
    });
}

}  // namespace rankclip
