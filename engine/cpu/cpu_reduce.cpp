// engine/cpu/cpu_reduce.cpp
// defines: the CPU row kernels: reduce_rows (sum/max/min), reduce_cols (the same over the
// middle dim of (A, R, C), vectorised along C), argmax_rows, cumsum_rows and sort_rows. Each
// row (or block of columns) is handled by one thread from start to end, so results do not
// depend on the thread count. Sums accumulate in double; the AVX-512 row sum keeps 16 partial
// sums (in a fixed order), the column sum adds the rows in order exactly as the scalar loop.
#include <algorithm>
#include <numeric>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/vec.h"

namespace rankclip {

// Rows (or column blocks) are split across threads when the input has more elements than this.
static constexpr int64_t kReduceParallelMin = 32768;
// reduce_cols hands out columns to the threads in blocks of this many.
static constexpr int64_t kColumnBlock = 16;

// ---- sums: in double, the scalar order (the reference) and the vector one ----

template <typename T>
static double row_sum(const T* row, int64_t R, bool squares) {
#if RANKCLIP_AVX512
    if constexpr (vec::kVectorised<T>) {
        // 16 floats a step, widened to two times 8 doubles; lanes added in a fixed tree at the end
        __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
        vec::for_lanes(R, [&](int64_t i, __mmask16 m) {
            __m512 v = vec::load(row + i, m);
            __m512d a = vec::low_pd(v), b = vec::high_pd(v);
            lo = squares ? _mm512_fmadd_pd(a, a, lo) : _mm512_add_pd(lo, a);
            hi = squares ? _mm512_fmadd_pd(b, b, hi) : _mm512_add_pd(hi, b);
        });
        return vec::hsum(_mm512_add_pd(lo, hi));
    }
#endif
    double s = 0;
    for (int64_t r = 0; r < R; r++) s += squares ? double(load(row + r)) * double(load(row + r)) : double(load(row + r));
    return s;
}

// Max or min of a row; the first NaN met is the result, as in PyTorch.
template <typename T>
static double row_extremum(const T* row, int64_t R, bool max) {
#if RANKCLIP_AVX512
    if constexpr (vec::kVectorised<T>) {
        __m512 best = vec::set1(max ? -INFINITY : INFINITY);
        __mmask16 nan = 0;
        vec::for_lanes(R, [&](int64_t i, __mmask16 m) {
            __m512 v = vec::load(row + i, m);
            nan |= _mm512_mask_cmp_ps_mask(m, v, v, _CMP_UNORD_Q);
            best = max ? _mm512_mask_max_ps(best, m, best, v) : _mm512_mask_min_ps(best, m, best, v);
        });
        float b = max ? _mm512_reduce_max_ps(best) : _mm512_reduce_min_ps(best);
        // which NaN, and which of +0 / -0, is decided by order: the scalar loop settles those rows
        if (!nan && b != 0) return b;
    }
#endif
    double best = load(row);
    for (int64_t r = 1; r < R; r++) {
        double v = load(row + r);
        if (v != v) return v;
        if (max ? v > best : v < best) best = v;
    }
    return best;
}

void CpuBackend::reduce_rows(ReduceOp op, const Tensor& x, Tensor& out) {
    int64_t R = x.shape().back(), N = x.numel() / std::max<int64_t>(R, 1);
    if (R == 0) N = out.numel();
    // checked here, not in the loop: an exception must not leave an OpenMP region
    RC_CHECK(op == ReduceOp::Sum || op == ReduceOp::SumSquares || R > 0 || N == 0, "max/min: cannot reduce an empty dimension");
    dispatch_floating(x.dtype(), "reduce", [&](auto tag) {
        using T = decltype(tag);
        const T* xs = static_cast<const T*>(x.raw_data());
        T* ys = static_cast<T*>(out.raw_data());
#pragma omp parallel for schedule(static) if (N * R > kReduceParallelMin)
        for (int64_t n = 0; n < N; n++) {
            const T* row = xs + n * R;
            if (op == ReduceOp::Sum || op == ReduceOp::SumSquares) store(ys + n, row_sum(row, R, op == ReduceOp::SumSquares));
            else store(ys + n, row_extremum(row, R, op == ReduceOp::Max));
        }
    });
}

#if RANKCLIP_AVX512
// Sums (of squares) of columns [c0, c1) of one (R, C) slab: the rows read in order (as memory
// streams best), each column's sum kept in double in an array small enough for L1 (16 columns
// = two vectors of 8 doubles). Every column adds its rows in order: the scalar loop's sums.
template <bool Squares, typename T>
static void sum_cols_vec(const T* x, T* y, int64_t R, int64_t C, int64_t c0, int64_t c1) {
    int64_t vecs = (c1 - c0 + 15) / 16;
    std::vector<double> acc(size_t(16 * vecs), 0.0);  // (c1 - c0) sums, rounded up to 16
    const __mmask16 last = vec::tail_mask(c1 - c0 - 16 * (vecs - 1));
    for (int64_t r = 0; r < R; r++) {
        const T* row = x + r * C + c0;
        for (int64_t j = 0; j < vecs; j++) {
            __m512 v = vec::load(row + 16 * j, j == vecs - 1 ? last : __mmask16(0xFFFF));
            __m512d a = vec::low_pd(v), b = vec::high_pd(v);
            double* s = acc.data() + 16 * j;
            __m512d sa = _mm512_loadu_pd(s), sb = _mm512_loadu_pd(s + 8);
            _mm512_storeu_pd(s, Squares ? _mm512_fmadd_pd(a, a, sa) : _mm512_add_pd(sa, a));
            _mm512_storeu_pd(s + 8, Squares ? _mm512_fmadd_pd(b, b, sb) : _mm512_add_pd(sb, b));
        }
    }
    for (int64_t j = 0; j < vecs; j++) {  // float(sum), as store() rounds
        __m256 lo = _mm512_cvtpd_ps(_mm512_loadu_pd(acc.data() + 16 * j)), hi = _mm512_cvtpd_ps(_mm512_loadu_pd(acc.data() + 16 * j + 8));
        vec::store(y + c0 + 16 * j, _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1), j == vecs - 1 ? last : __mmask16(0xFFFF));
    }
}

// Max / min of `width` columns, 16 at a time, rows in order: a lane takes v when v beats it, or
// when v is the lane's first NaN (which then sticks, as the scalar loop stops at it).
template <bool Max, typename T>
static void extremum_cols_vec(const T* x, T* y, int64_t R, int64_t C, int64_t width) {
    for (int64_t j = 0; j < width; j += 16) {
        __mmask16 m = vec::tail_mask(width - j);
        __m512 best = vec::load(x + j, m);
        for (int64_t r = 1; r < R; r++) {
            __m512 v = vec::load(x + r * C + j, m);
            __mmask16 beats = _mm512_cmp_ps_mask(v, best, Max ? _CMP_GT_OQ : _CMP_LT_OQ);
            __mmask16 first_nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q);
            best = _mm512_mask_blend_ps(beats | first_nan, best, v);
        }
        vec::store(y + j, best, m);
    }
}
#endif

// Columns [c0, c1) of x (R rows of stride C) reduced over the rows in row order: the arithmetic
// of reduce_rows's scalar loop on the transposed copy (sums in double, NaN and ties as there).
template <typename T>
static void reduce_cols_range(ReduceOp op, const T* x, T* y, int64_t R, int64_t C, int64_t c0, int64_t c1) {
#if RANKCLIP_AVX512
    if constexpr (vec::kVectorised<T>) {
        if (op == ReduceOp::Sum) return sum_cols_vec<false>(x, y, R, C, c0, c1);
        if (op == ReduceOp::SumSquares) return sum_cols_vec<true>(x, y, R, C, c0, c1);
        if (op == ReduceOp::Max) return extremum_cols_vec<true>(x + c0, y + c0, R, C, c1 - c0);
        return extremum_cols_vec<false>(x + c0, y + c0, R, C, c1 - c0);
    }
#endif
    bool sum = op == ReduceOp::Sum || op == ReduceOp::SumSquares;
    for (int64_t c = c0; c < c1; c++) {
        double s = sum ? 0.0 : double(load(x + c));
        for (int64_t r = sum ? 0 : 1; r < R; r++) {
            double v = load(x + r * C + c);
            if (op == ReduceOp::SumSquares) s += v * v;
            else if (sum) s += v;
            else if (v != v) { s = v; break; }
            else if (op == ReduceOp::Max ? v > s : v < s) s = v;
        }
        store(y + c, s);
    }
}

// x: (A, R, C) contiguous -> out: (A, C). The A * (blocks of 16 columns) tasks are split into
// one contiguous range per thread; each column is reduced over all R rows in order: nothing
// depends on the thread count.
void CpuBackend::reduce_cols(ReduceOp op, const Tensor& x, Tensor& out) {
    int64_t A = x.size(0), R = x.size(1), C = x.size(2);
    RC_CHECK(op == ReduceOp::Sum || op == ReduceOp::SumSquares || R > 0 || A * C == 0, "max/min: cannot reduce an empty dimension");
    dispatch_floating(x.dtype(), "reduce", [&](auto tag) {
        using T = decltype(tag);
        const T* xs = static_cast<const T*>(x.raw_data());
        T* ys = static_cast<T*>(out.raw_data());
        int64_t blocks = (C + kColumnBlock - 1) / kColumnBlock, tasks = A * blocks;
        // tasks [begin, end), grouped by slab
        auto run = [&](int64_t begin, int64_t end) {
            for (int64_t task = begin; task < end;) {
                int64_t a = task / blocks, stop = std::min(end, (a + 1) * blocks);
                int64_t c0 = task % blocks * kColumnBlock, c1 = std::min(C, (stop - a * blocks) * kColumnBlock);
                reduce_cols_range(op, xs + a * R * C, ys + a * C, R, C, c0, c1);
                task = stop;
            }
        };
        if (A * R * C <= kReduceParallelMin || omp_get_max_threads() == 1) return run(0, tasks);
#pragma omp parallel
        {
            int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
            run(tasks * t / threads, tasks * (t + 1) / threads);
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
