// engine/cpu/cpu_indexing.cpp
// defines: the CPU indexing kernels — index_select and its deterministic scatter-add
// (index_add, the embedding backward), gather and scatter_add along a dim — and the dropout
// mask from the counter-based Philox generator (the same mask the CUDA kernel makes).
// Scatter-adds never let two threads write one element: threads split the non-indexed
// positions and walk the indices in order, so sums are the same on every run.
#include "engine/cpu/cpu_backend.h"
#include "engine/philox.h"

namespace rankclip {

static void check_indices(const Tensor& index, int64_t n, const char* op) {
    for (int64_t i = 0, m = index.numel(); i < m; i++) {
        int64_t k = load_index(index, i);
        RC_CHECK(k >= 0 && k < n, op, ": index ", k, " at position ", i, " is out of range [0, ", n, ")");
    }
}

// out (outer, len(index), inner) = x (outer, n, inner)[:, index, :]
void CpuBackend::index_select(const Tensor& x, const Tensor& index, Tensor& out, int64_t outer, int64_t n,
                              int64_t inner) {
    check_indices(index, n, "index_select");
    int64_t m = index.numel();
    dispatch_all(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* xs = static_cast<const T*>(x.raw_data());
        T* ys = static_cast<T*>(out.raw_data());
#pragma omp parallel for collapse(2) schedule(static) if (outer * m * inner > 32768)
        for (int64_t o = 0; o < outer; o++)
            for (int64_t j = 0; j < m; j++) {
                const T* src = xs + (o * n + load_index(index, j)) * inner;
                T* dst = ys + (o * m + j) * inner;
                for (int64_t i = 0; i < inner; i++) dst[i] = src[i];
            }
    });
}

// gx (outer, n, inner) += g (outer, len(index), inner) at rows index
void CpuBackend::index_add(const Tensor& g, const Tensor& index, Tensor& gx, int64_t outer, int64_t n,
                           int64_t inner) {
    check_indices(index, n, "index_add");
    int64_t m = index.numel();
    dispatch_floating(g.dtype(), "index_add", [&](auto tag) {
        using T = decltype(tag);
        const T* gs = static_cast<const T*>(g.raw_data());
        T* ys = static_cast<T*>(gx.raw_data());
        int64_t chunk = 64;  // threads own disjoint column chunks of the destination
        int64_t chunks = (inner + chunk - 1) / chunk;
#pragma omp parallel for collapse(2) schedule(static) if (outer * m * inner > 32768)
        for (int64_t o = 0; o < outer; o++)
            for (int64_t ch = 0; ch < chunks; ch++) {
                int64_t i0 = ch * chunk, i1 = std::min(inner, i0 + chunk);
                for (int64_t j = 0; j < m; j++) {
                    T* dst = ys + (o * n + load_index(index, j)) * inner;
                    const T* src = gs + (o * m + j) * inner;
                    for (int64_t i = i0; i < i1; i++) store(dst + i, load(dst + i) + load(src + i));
                }
            }
    });
}

// out[o, j, i] = x[o, index[o, j, i], i]; x (outer, n, inner), index/out (outer, m, inner)
void CpuBackend::gather(const Tensor& x, const Tensor& index, Tensor& out, int64_t outer, int64_t n, int64_t m,
                        int64_t inner) {
    check_indices(index, n, "gather");
    dispatch_all(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* xs = static_cast<const T*>(x.raw_data());
        T* ys = static_cast<T*>(out.raw_data());
#pragma omp parallel for schedule(static) if (outer * m * inner > 32768)
        for (int64_t o = 0; o < outer; o++)
            for (int64_t j = 0; j < m; j++)
                for (int64_t i = 0; i < inner; i++) {
                    int64_t at = (o * m + j) * inner + i;
                    ys[at] = xs[(o * n + load_index(index, at)) * inner + i];
                }
    });
}

// gx[o, index[o, j, i], i] += g[o, j, i]
void CpuBackend::scatter_add(const Tensor& g, const Tensor& index, Tensor& gx, int64_t outer, int64_t n,
                             int64_t m, int64_t inner) {
    check_indices(index, n, "scatter_add");
    dispatch_floating(g.dtype(), "scatter_add", [&](auto tag) {
        using T = decltype(tag);
        const T* gs = static_cast<const T*>(g.raw_data());
        T* ys = static_cast<T*>(gx.raw_data());
#pragma omp parallel for collapse(2) schedule(static) if (outer * m * inner > 32768)
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++)
                for (int64_t j = 0; j < m; j++) {
                    int64_t at = (o * m + j) * inner + i;
                    T* dst = ys + (o * n + load_index(index, at)) * inner + i;
                    store(dst, load(dst) + load(gs + at));
                }
    });
}

void CpuBackend::dropout_mask(Tensor& out, double p, uint64_t seed, uint64_t offset) {
    int64_t total = out.numel();
    dispatch_floating(out.dtype(), "dropout", [&](auto tag) {
        using T = decltype(tag);
        T* ys = static_cast<T*>(out.raw_data());
        double keep_scale = 1.0 / (1.0 - p);
#pragma omp parallel for schedule(static) if (total > 32768)
        for (int64_t i = 0; i < total; i++)
            store(ys + i, philox_uniform(seed, offset, uint64_t(i)) >= float(p) ? keep_scale : 0.0);
    });
}

}  // namespace rankclip
