// engine/cpu/cpu_attention.cpp
// defines: the fused CPU scaled-dot-product attention, forward and backward. One (batch, head)
// per thread; a query row's scores live in a small buffer and are never written out. The
// forward saves the row log-sum-exp so the backward can rebuild the probabilities:
//   forward:  S = scale * Q K^T (causal: key j > query i masked), P = softmax(S), O = P V
//   backward: dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dO * O)), dQ = scale dS K,
//             dK = scale dS^T Q
#include <vector>

#include "engine/cpu/cpu_backend.h"

namespace rankclip {

// q (BH, Tq, D), k/v (BH, Tk, D) -> out (BH, Tq, D), lse (BH, Tq)
void CpuBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse,
                           bool causal, double scale) {
    int64_t D = q.size(-1), Tq = q.size(-2), Tk = k.size(-2), BH = q.numel() / std::max<int64_t>(Tq * D, 1);
    dispatch_floating(q.dtype(), "attention", [&](auto tag) {
        using T = decltype(tag);
        using A = Acc<T>;
        const T *qs = static_cast<const T*>(q.raw_data()), *ks = static_cast<const T*>(k.raw_data()),
                *vs = static_cast<const T*>(v.raw_data());
        T* os = static_cast<T*>(out.raw_data());
        A* ls = static_cast<A*>(lse.raw_data());
#pragma omp parallel for schedule(static) if (BH * Tq * Tk * D > 16384)
        for (int64_t bh = 0; bh < BH; bh++) {
            std::vector<A> p(static_cast<size_t>(Tk)), acc(static_cast<size_t>(D));
            for (int64_t i = 0; i < Tq; i++) {
                const T* qi = qs + (bh * Tq + i) * D;
                int64_t keys = causal ? std::min(Tk, i + 1) : Tk;
                A m = -INFINITY;
                for (int64_t j = 0; j < keys; j++) {
                    const T* kj = ks + (bh * Tk + j) * D;
                    A s = 0;
                    for (int64_t d = 0; d < D; d++) s += A(load(qi + d)) * A(load(kj + d));
                    p[j] = s * A(scale);
                    m = std::max(m, p[j]);
                }
                A sum = 0;
                for (int64_t j = 0; j < keys; j++) sum += (p[j] = std::exp(p[j] - m));
                std::fill(acc.begin(), acc.end(), A(0));
                for (int64_t j = 0; j < keys; j++) {
                    const T* vj = vs + (bh * Tk + j) * D;
                    for (int64_t d = 0; d < D; d++) acc[d] += p[j] * A(load(vj + d));
                }
                for (int64_t d = 0; d < D; d++) store(os + (bh * Tq + i) * D + d, acc[d] / sum);
                ls[bh * Tq + i] = m + std::log(sum);
            }
        }
    });
}

void CpuBackend::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                    const Tensor& lse, const Tensor& gout, Tensor& gq, Tensor& gk, Tensor& gv,
                                    bool causal, double scale) {
    int64_t D = q.size(-1), Tq = q.size(-2), Tk = k.size(-2), BH = q.numel() / std::max<int64_t>(Tq * D, 1);
    dispatch_floating(q.dtype(), "attention_backward", [&](auto tag) {
        using T = decltype(tag);
        using A = Acc<T>;
        const T *qs = static_cast<const T*>(q.raw_data()), *ks = static_cast<const T*>(k.raw_data()),
                *vs = static_cast<const T*>(v.raw_data()), *os = static_cast<const T*>(out.raw_data()),
                *gos = static_cast<const T*>(gout.raw_data());
        const A* ls = static_cast<const A*>(lse.raw_data());
        T *gqs = static_cast<T*>(gq.raw_data()), *gks = static_cast<T*>(gk.raw_data()),
          *gvs = static_cast<T*>(gv.raw_data());
#pragma omp parallel for schedule(static) if (BH * Tq * Tk * D > 16384)
        for (int64_t bh = 0; bh < BH; bh++) {
            std::vector<A> dk(static_cast<size_t>(Tk * D), A(0)), dv(static_cast<size_t>(Tk * D), A(0)), dq(static_cast<size_t>(D));
            for (int64_t i = 0; i < Tq; i++) {
                const T* qi = qs + (bh * Tq + i) * D;
                const T* goi = gos + (bh * Tq + i) * D;
                const T* oi = os + (bh * Tq + i) * D;
                int64_t keys = causal ? std::min(Tk, i + 1) : Tk;
                A delta = 0;  // rowsum(dO * O)
                for (int64_t d = 0; d < D; d++) delta += A(load(goi + d)) * A(load(oi + d));
                std::fill(dq.begin(), dq.end(), A(0));
                for (int64_t j = 0; j < keys; j++) {
                    const T* kj = ks + (bh * Tk + j) * D;
                    const T* vj = vs + (bh * Tk + j) * D;
                    A s = 0, dp = 0;
                    for (int64_t d = 0; d < D; d++) {
                        s += A(load(qi + d)) * A(load(kj + d));
                        dp += A(load(goi + d)) * A(load(vj + d));
                    }
                    A pj = std::exp(s * A(scale) - ls[bh * Tq + i]);
                    A ds = pj * (dp - delta) * A(scale);
                    for (int64_t d = 0; d < D; d++) {
                        dv[j * D + d] += pj * A(load(goi + d));
                        dk[j * D + d] += ds * A(load(qi + d));
                        dq[d] += ds * A(load(kj + d));
                    }
                }
                for (int64_t d = 0; d < D; d++) store(gqs + (bh * Tq + i) * D + d, dq[d]);
            }
            for (int64_t x = 0; x < Tk * D; x++) {
                store(gks + bh * Tk * D + x, dk[x]);
                store(gvs + bh * Tk * D + x, dv[x]);
            }
        }
    });
}

}  // namespace rankclip
