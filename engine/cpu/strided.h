// engine/cpu/strided.h
// defines: for_each_strided, the loop every CPU elementwise kernel runs on. It visits the
// elements of `shape` in row-major order and hands the kernel the element offset of each of N
// operands (any strides, 0 for broadcast dims). Rows of the last dim are split across OpenMP
// threads statically, so a given thread count always does the same arithmetic.
#pragma once
#include <array>

#include "engine/shape.h"

namespace rankclip {

template <size_t N, typename F>
void for_each_strided(const Shape& shape, const std::array<const Shape*, N>& strides, F&& f) {
    int64_t total = numel(shape);
    if (total == 0) return;
    int64_t nd = int64_t(shape.size());
    bool contiguous = true;
    Shape dense = contiguous_strides(shape);
    for (size_t k = 0; k < N; k++)
        for (int64_t d = 0; d < nd; d++)
            if (shape[d] != 1 && (*strides[k])[d] != dense[d]) contiguous = false;
    if (contiguous) {  // fast path: one flat loop
#pragma omp parallel for schedule(static) if (total > 32768)
        for (int64_t i = 0; i < total; i++) {
            std::array<int64_t, N> off;
            off.fill(i);
            f(off);
        }
        return;
    }
    int64_t last = nd ? shape[nd - 1] : 1;
    int64_t rows = total / last;
    std::array<int64_t, N> step;
    for (size_t k = 0; k < N; k++) step[k] = nd ? (*strides[k])[nd - 1] : 0;
#pragma omp parallel for schedule(static) if (total > 32768)
    for (int64_t r = 0; r < rows; r++) {
        std::array<int64_t, N> base{};
        int64_t rem = r;
        for (int64_t d = nd - 2; d >= 0; d--) {
            int64_t idx = rem % shape[d];
            rem /= shape[d];
            for (size_t k = 0; k < N; k++) base[k] += idx * (*strides[k])[d];
        }
        for (int64_t j = 0; j < last; j++) {
            std::array<int64_t, N> off;
            for (size_t k = 0; k < N; k++) off[k] = base[k] + j * step[k];
            f(off);
        }
    }
}

}  // namespace rankclip
