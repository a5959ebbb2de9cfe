// engine/cpu/cpu_reduce.cpp
// defines: the CPU row kernels: reduce_rows (sum/max/min), argmax_rows, cumsum_rows and
// sort_rows. Each row is handled by one thread from start to end, so results do not depend on
// the thread count. Sums accumulate in double.
#include <algorithm>
#include <numeric>
#include <vector>

#include "engine/cpu/cpu_backend.h"

namespace rankclip {

void CpuBackend::reduce_rows(ReduceOp op, const Tensor& x, Tensor& out) {
    int64_t R = x.shape().back(), N = x.numel() / std::max<int64_t>(R, 1);
    if (R == 0) N = out.numel();
    // checked here, not in the loop: an exception must not leave an OpenMP region
    RC_CHECK(op == ReduceOp::Sum || op == ReduceOp::SumSquares || R > 0 || N == 0, "max/min: cannot reduce an empty dimension");
    dispatch_floating(x.dtype(), "reduce", [&](auto tag) {
        using T = decltype(tag);
        const T* xs = static_cast<const T*>(x.raw_data());
        T* ys = static_cast<T*>(out.raw_data());
#pragma omp parallel for schedule(static) if (N * R > 32768)
        for (int64_t n = 0; n < N; n++) {
            const T* row = xs + n * R;
            if (op == ReduceOp::Sum) {
                double s = 0;
                for (int64_t r = 0; r < R; r++) s += load(row + r);
                store(ys + n, s);
            } else if (op == ReduceOp::SumSquares) {
                double s = 0;
                for (int64_t r = 0; r < R; r++) s += double(load(row + r)) * double(load(row + r));
                store(ys + n, s);
            } else {
                double best = load(row);
                for (int64_t r = 1; r < R; r++) {
                    double v = load(row + r);
                    if (v != v) { best = v; break; }  // NaN propagates, as in PyTorch
                    if (op == ReduceOp::Max ? v > best : v < best) best = v;
                }
                store(ys + n, best);
            }
        }
    });
}

void CpuBackend::argmax_rows(const Tensor& x, Tensor& out) {
    int64_t R = x.shape().back(), N = x.numel() / std::max<int64_t>(R, 1);
    RC_CHECK(R > 0, "argmax: cannot reduce an empty dimension");
    int64_t* ys = out.data<int64_t>();
    dispatch_all(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* xs = static_cast<const T*>(x.raw_data());
#pragma omp parallel for schedule(static) if (N * R > 32768)
        for (int64_t n = 0; n < N; n++) {
            const T* row = xs + n * R;
            int64_t best = 0;
            for (int64_t r = 1; r < R; r++)
                if (load(row + r) > load(row + best)) best = r;
            ys[n] = best;
        }
    });
}

void CpuBackend::cumsum_rows(const Tensor& x, Tensor& out, bool reverse) {
    int64_t R = x.shape().back(), N = R ? x.numel() / R : 0;
    dispatch_floating(x.dtype(), "cumsum", [&](auto tag) {
        using T = decltype(tag);
        using A = Acc<T>;
        const T* xs = static_cast<const T*>(x.raw_data());
        T* ys = static_cast<T*>(out.raw_data());
#pragma omp parallel for schedule(static) if (N * R > 32768)
        for (int64_t n = 0; n < N; n++) {
            A s = 0;
            for (int64_t i = 0; i < R; i++) {
                int64_t r = reverse ? R - 1 - i : i;
                s += load(xs + n * R + r);
                store(ys + n * R + r, s);
            }
        }
    });
}

void CpuBackend::sort_rows(const Tensor& x, Tensor& values, Tensor& indices, bool descending) {
    int64_t R = x.shape().back(), N = R ? x.numel() / R : 0;
    int64_t* idx = indices.data<int64_t>();
    dispatch_all(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* xs = static_cast<const T*>(x.raw_data());
        T* vs = static_cast<T*>(values.raw_data());
#pragma omp parallel for schedule(static) if (N * R > 4096)
        for (int64_t n = 0; n < N; n++) {
            const T* row = xs + n * R;
            int64_t* order = idx + n * R;
            std::iota(order, order + R, int64_t(0));
            if (descending)
                std::stable_sort(order, order + R, [&](int64_t a, int64_t b) { return load(row + a) > load(row + b); });
            else
                std::stable_sort(order, order + R, [&](int64_t a, int64_t b) { return load(row + a) < load(row + b); });
            for (int64_t r = 0; r < R; r++) vs[n * R + r] = row[order[r]];
        }
    });
}

}  // namespace rankclip
