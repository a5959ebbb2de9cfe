// engine/cpu/cpu_backend.h
// defines: CpuBackend, the engine's op table for the CPU (OpenMP threads, Eigen GEMM), and the
// scalar load/store helpers its kernels share. Kernels compute in `Acc` precision: float for
// F32 and BF16 storage, double for F64 (the gradient-check dtype).
#pragma once
#include <cstdint>
#include <omp.h>

#include <cmath>

#include "engine/backend.h"

namespace rankclip {

struct CpuBackend : Backend {
    const char* name() const override { return "cpu"; }
    void* allocate(size_t nbytes) override;
    void deallocate(void* ptr, size_t nbytes) override;
    void copy(const Tensor& src, Tensor& dst) override;
    void copy_to_host(const void* src, void* dst, size_t nbytes) override;
    void copy_from_host(const void* src, void* dst, size_t nbytes) override;
    void fill(Tensor& dst, double value) override;

    void unary(UnaryOp op, const Tensor& x, Tensor& out, double p0, double p1) override;
    void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) override;
    bool binary_mixes_float_dtypes() const override;
    void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) override;

    void reduce_rows(ReduceOp op, const Tensor& x, Tensor& out) override;
    void reduce_cols(ReduceOp op, const Tensor& x, Tensor& out) override;
    void argmax_rows(const Tensor& x, Tensor& out_i64) override;
    void cumsum_rows(const Tensor& x, Tensor& out, bool reverse) override;
    void sort_rows(const Tensor& x, Tensor& values, Tensor& indices, bool descending) override;

    void matmul(const Tensor& a, const Tensor& b, Tensor& out, bool trans_a, bool trans_b) override;
    void linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out) override;
    void linear_weight_grad(const Tensor& g, const Tensor& x, Tensor& gw, Tensor& gb) override;

    void softmax_rows(const Tensor& x, Tensor& out, bool log) override;
    void softmax_rows_backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log) override;
    void layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& out, Tensor& mean,
                    Tensor& rstd, double eps) override;
    void layer_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& w, const Tensor& mean,
                             const Tensor& rstd, Tensor& gx, Tensor& gw, Tensor& gb) override;
    void cross_entropy(const Tensor& logits, const Tensor& target, Tensor& losses, Tensor& lse,
                       int64_t ignore_index) override;
    void cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& lse,
                                const Tensor& grad_losses, Tensor& glogits, int64_t ignore_index) override;

    void index_select(const Tensor& x, const Tensor& index, Tensor& out, int64_t outer, int64_t n,
                      int64_t inner) override;
    void index_add(const Tensor& g, const Tensor& index, Tensor& gx, int64_t outer, int64_t n,
                   int64_t inner) override;
    void gather(const Tensor& x, const Tensor& index, Tensor& out, int64_t outer, int64_t n, int64_t m,
                int64_t inner) override;
    void scatter_add(const Tensor& g, const Tensor& index, Tensor& gx, int64_t outer, int64_t n, int64_t m,
                     int64_t inner) override;
    void dropout_mask(Tensor& out, double p, uint64_t seed, uint64_t offset) override;
    void adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWScalars& s) override;

    // engine/cpu/cpu_list_mle.cpp
    void list_mle(const Tensor& x, const Tensor& order, const Tensor& w, Tensor& losses, Tensor& maxpos,
                  Tensor& suffix, double eps) override;
    void list_mle_backward(const Tensor& x, const Tensor& order, const Tensor& w, const Tensor& maxpos,
                           const Tensor& suffix, const Tensor& grad_losses, Tensor& gx, double eps) override;

    void attention(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse, bool causal,
                   double scale) override;
    void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                            const Tensor& lse, const Tensor& gout, Tensor& gq, Tensor& gk, Tensor& gv,
                            bool causal, double scale) override;
};

CpuBackend& cpu_backend();
// The caching allocator behind CPU tensors (engine/cpu/cpu_allocator.cpp): stats, empty_cache.
class CachingAllocator;
CachingAllocator& cpu_allocator();

// ---- scalar helpers shared by the CPU kernels ----
template <typename T> struct AccOf { using type = float; };
template <> struct AccOf<double> { using type = double; };
template <typename T> using Acc = typename AccOf<T>::type;

inline float load(const float* p) { return *p; }
inline double load(const double* p) { return *p; }
inline float load(const bf16* p) { return bf16_to_float(*p); }
inline int64_t load(const int32_t* p) { return *p; }
inline int64_t load(const int64_t* p) { return *p; }
inline void store(float* p, double v) { *p = float(v); }
inline void store(double* p, double v) { *p = v; }
inline void store(bf16* p, double v) { *p = float_to_bf16(float(v)); }
inline void store(int32_t* p, double v) { *p = int32_t(v); }
inline void store(int64_t* p, double v) { *p = int64_t(v); }

// Reads an index tensor element (I64 or I32) as int64.
inline int64_t load_index(const Tensor& index, int64_t i) {
    return index.dtype() == DType::I64 ? static_cast<const int64_t*>(index.raw_data())[i]
                                       : static_cast<const int32_t*>(index.raw_data())[i];
}

// Calls f(T{}) with T the C++ type of a floating dtype (float, double, bf16); kernels write
// `[&](auto tag) { using T = decltype(tag); ... }`.
template <typename F>
void dispatch_floating(DType dtype, const char* op, F&& f) {
    switch (dtype) {
        case DType::F32: f(float{}); break;
        case DType::F64: f(double{}); break;
        case DType::BF16: f(bf16{}); break;
        default: throw Error(str_cat(op, ": no cpu kernel for dtype ", dtype_name(dtype)));
    }
}

// The same over every dtype (copy, fill, where, sort, indexing).
template <typename F>
void dispatch_all(DType dtype, F&& f) {
    switch (dtype) {
        case DType::F32: f(float{}); break;
        case DType::F64: f(double{}); break;
        case DType::BF16: f(bf16{}); break;
        case DType::I32: f(int32_t{}); break;
        case DType::I64: f(int64_t{}); break;
    }
}

}  // namespace rankclip

