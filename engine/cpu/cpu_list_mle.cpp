// engine/cpu/cpu_list_mle.cpp
// defines: the fused ListMLE kernels on the CPU. Per row: gather the scores in ranked order,
// subtract the max, one reverse pass for the suffix sums Z_k = sum_{j>=k} exp(u_j) (saved) and
// the loss, and in backward one forward pass for the prefix sums of w_k / (Z_k + eps). O(B)
// per row after the caller's sort; rows run in parallel, each in a fixed order (deterministic).
#include <cmath>

#include "engine/cpu/cpu_backend.h"

namespace rankclip {

// x: (N, B), order: (N, B) I64, w: (B) or undefined. losses: (N); maxpos: (N) I64;
// suffix: (N, B) in Acc precision.
void CpuBackend::list_mle(const Tensor& x, const Tensor& order, const Tensor& w, Tensor& losses,
                          Tensor& maxpos, Tensor& suffix, double eps) {
    int64_t B = x.shape().back(), N = B ? x.numel() / B : 0;
    dispatch_floating(x.dtype(), "list_mle", [&](auto tag) {
        using T = decltype(tag);
        using A = Acc<T>;
        const T* xs = static_cast<const T*>(x.raw_data());
        const int64_t* os = static_cast<const int64_t*>(order.raw_data());
        const T* ws = w.defined() ? static_cast<const T*>(w.raw_data()) : nullptr;
        T* ls = static_cast<T*>(losses.raw_data());
        int64_t* mp = static_cast<int64_t*>(maxpos.raw_data());
        A* zs = static_cast<A*>(suffix.raw_data());
#pragma omp parallel for schedule(static) if (N * B > 16384)
        for (int64_t n = 0; n < N; n++) {
            const T* row = xs + n * B;
            const int64_t* rank = os + n * B;
            A* z = zs + n * B;
            // m = max_k x[order[k]], at its first ranked position
            A m = -INFINITY;
            int64_t at = 0;
            for (int64_t k = 0; k < B; k++) {
                A v = load(row + rank[k]);
                if (v > m) m = v, at = k;
            }
            // Z_k = sum_{j>=k} exp(u_j);  loss = sum_k w_k (log(Z_k + eps) - u_k),  u = x - m
            A run = 0, loss = 0;
            for (int64_t k = B - 1; k >= 0; k--) {
                A u = A(load(row + rank[k])) - m;
                run += std::exp(u);
                z[k] = run;
                A wk = ws ? A(load(ws + k)) : A(1);
                loss += wk * (std::log(run + A(eps)) - u);
            }
            store(ls + n, loss);
            mp[n] = at;
        }
    });
}

void CpuBackend::list_mle_backward(const Tensor& x, const Tensor& order, const Tensor& w, const Tensor& maxpos,
                                   const Tensor& suffix, const Tensor& grad_losses, Tensor& gx, double eps) {
    int64_t B = x.shape().back(), N = B ? x.numel() / B : 0;
    dispatch_floating(x.dtype(), "list_mle_backward", [&](auto tag) {
        using T = decltype(tag);
        using A = Acc<T>;
        const T* xs = static_cast<const T*>(x.raw_data());
        const int64_t* os = static_cast<const int64_t*>(order.raw_data());
        const T* ws = w.defined() ? static_cast<const T*>(w.raw_data()) : nullptr;
        const int64_t* mp = static_cast<const int64_t*>(maxpos.raw_data());
        const A* zs = static_cast<const A*>(suffix.raw_data());
        const T* gl = static_cast<const T*>(grad_losses.raw_data());
        T* gxs = static_cast<T*>(gx.raw_data());
#pragma omp parallel for schedule(static) if (N * B > 16384)
        for (int64_t n = 0; n < N; n++) {
            const T* row = xs + n * B;
            const int64_t* rank = os + n * B;
            const A* z = zs + n * B;
            T* grow = gxs + n * B;
            A g = load(gl + n);
            A m = load(row + rank[mp[n]]);
            // forward: loss = sum_k w_k (log(Z_k + eps) - u_k), Z_k = sum_{j>=k} exp(u_j)
            //   => d loss / d u_j = exp(u_j) sum_{k<=j} w_k / (Z_k + eps) - w_j
            A prefix = 0, total = 0;
            for (int64_t j = 0; j < B; j++) {
                A wj = ws ? A(load(ws + j)) : A(1);
                prefix += wj / (z[j] + A(eps));
                A u = A(load(row + rank[j])) - m;
                A du = g * (std::exp(u) * prefix - wj);
                store(grow + rank[j], du);
                total += du;
            }
            // u = x - max(x): the max's position receives minus the sum of all du
            int64_t at = rank[mp[n]];
            store(grow + at, A(load(grow + at)) - total);
        }
    });
}

}  // namespace rankclip
