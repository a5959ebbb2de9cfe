// engine/cpu/strided.h
// defines: the loops every CPU elementwise kernel runs on.
//   coalesce          drops size-1 dims and merges neighbouring dims wherever every operand's
//                     strides allow: a contiguous tensor becomes one dim, a (N, C) + (C) bias add
//                     stays two.
//   for_each_run      hands the kernel runs of the innermost (coalesced) dim: the element offset
//                     of each of N operands, each one's step along the run (1 contiguous, 0
//                     broadcast, or anything) and the length, so a kernel vectorises the runs
//                     whose steps it knows and loops over the others.
//   for_each_strided  the element-at-a-time loop on top of it.
// Threads: the flat index range is cut into equal pieces, one per thread, when it holds at least
// `parallel_min` elements (below that a fork/join costs more than it saves). Every element gets
// the same arithmetic however the range is cut, so results never depend on the thread count.
#pragma once
#include <cstdint>
#include <omp.h>

#include <algorithm>
#include <array>

#include "engine/shape.h"

namespace rankclip {

// Below this many elements an elementwise loop runs on the calling thread. Measured in
// engine/cpu/dev/elementwise.cpp on 2 idle cores (fork/join ~0.7 us): a cached flat add
// breaks even near 16K floats, two threads win clearly from 64K; an exp-like op wins from 4K.
constexpr int64_t kElementwiseParallelMin = 32768;

// A loop nest over N operands: dims outer to inner (at least one), strides per operand.
template <size_t N>
struct LoopNest {
    Shape shape;
    std::array<Shape, N> strides;
};

template <size_t N>
LoopNest<N> coalesce(const Shape& shape, const std::array<const Shape*, N>& strides) {
    LoopNest<N> nest;
    for (size_t d = 0; d < shape.size(); d++) {
        if (shape[d] == 1) continue;  // its stride never matters
        bool merge = !nest.shape.empty();
        for (size_t k = 0; k < N && merge; k++)  // outer stride == inner stride * inner size
            merge = nest.strides[k].back() == (*strides[k])[d] * shape[d];
        if (merge) {
            nest.shape.back() *= shape[d];
            for (size_t k = 0; k < N; k++) nest.strides[k].back() = (*strides[k])[d];
        } else {
            nest.shape.push_back(shape[d]);
            for (size_t k = 0; k < N; k++) nest.strides[k].push_back((*strides[k])[d]);
        }
    }
    if (nest.shape.empty()) {  // a single element
        nest.shape.push_back(1);
        for (size_t k = 0; k < N; k++) nest.strides[k].push_back(0);
    }
    return nest;
}

// f(const std::array<int64_t, N>& offset, const std::array<int64_t, N>& step, int64_t len):
// elements offset[k] + j * step[k], j < len, of operand k.
template <size_t N, typename F>
void for_each_run(const Shape& shape, const std::array<const Shape*, N>& strides, int64_t parallel_min, F&& f) {
    int64_t total = numel(shape);
    if (total == 0) return;
    LoopNest<N> nest = coalesce(shape, strides);
    int64_t nd = int64_t(nest.shape.size()), inner = nest.shape[nd - 1];
    std::array<int64_t, N> step;
    for (size_t k = 0; k < N; k++) step[k] = nest.strides[k][nd - 1];

    // the runs covering flat elements [begin, end)
    auto range = [&](int64_t begin, int64_t end) {
        Shape index(nd);
        std::array<int64_t, N> base{};  // offsets of the current run's first element
        int64_t rem = begin;
        for (int64_t d = nd - 1; d >= 0; d--) {
            index[d] = rem % nest.shape[d];
            rem /= nest.shape[d];
            for (size_t k = 0; k < N; k++) base[k] += index[d] * nest.strides[k][d];
        }
        for (int64_t pos = begin; pos < end;) {
            int64_t len = std::min(inner - index[nd - 1], end - pos);
            f(base, step, len);
            pos += len;
            index[nd - 1] += len;
            for (size_t k = 0; k < N; k++) base[k] += len * step[k];
            // carry into the outer dims
            for (int64_t d = nd - 1; d > 0 && index[d] == nest.shape[d]; d--) {
                index[d] = 0;
                index[d - 1]++;
                for (size_t k = 0; k < N; k++)
                    base[k] += nest.strides[k][d - 1] - nest.shape[d] * nest.strides[k][d];
            }
        }
    };
    if (total < parallel_min || omp_get_max_threads() == 1) {
        range(0, total);
        return;
    }
#pragma omp parallel
    {
        // equal pieces, cut at multiples of 64 elements (whole cache lines of floats)
        int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t piece = (total / threads + 63) / 64 * 64;
        int64_t begin = std::min(total, t * piece), end = t == threads - 1 ? total : std::min(total, begin + piece);
        if (begin < end) range(begin, end);
    }
}

// f(const std::array<int64_t, N>& offset): every element of `shape`, in row-major order within
// each thread's piece.
template <size_t N, typename F>
void for_each_strided(const Shape& shape, const std::array<const Shape*, N>& strides, F&& f) {
    for_each_run<N>(shape, strides, kElementwiseParallelMin,
                    [&](const std::array<int64_t, N>& base, const std::array<int64_t, N>& step, int64_t len) {
                        std::array<int64_t, N> off = base;
                        for (int64_t j = 0; j < len; j++) {
                            f(off);
                            for (size_t k = 0; k < N; k++) off[k] += step[k];
                        }
                    });
}

}  // namespace rankclip
