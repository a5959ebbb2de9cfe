// cuda/cuda_backend.h
// defines: CudaBackend, the engine's op table for CUDA devices (see engine/backend.h for the
// contract of every kernel), cuda_backend(), the one instance (registered with the engine when
// the program starts, see cuda/device.cpp), and cuda_device_count / cuda_available.
// Files: cuda/device.{h,cpp} (registration, device count, per-device stream, cuBLAS handle),
// cuda/capability.cpp (bf16 support),
// cuda/allocator.* (caching allocator, pinned buffers), cuda/cuda_backend.cu (memory, copies,
// elementwise, where, dropout), cuda/rows.cu (reductions over rows and down columns, argmax,
// cumsum, sort),
// cuda/indexing.cu (index_select/add, gather/scatter_add), cuda/kernel_common.cuh (their shared
// helpers), cuda/matmul.cu (cuBLASLt, cuBLAS), cuda/softmax.cu, cuda/layer_norm.cu, cuda/cross_entropy.cu,
// cuda/attention.cu (fused kernels; long sequences go to cuda/attention_gemm.cu, batched GEMMs).
#pragma once
#include <cstdint>

#include "engine/backend.h"

namespace rankclip {

struct CudaBackend : Backend {
    const char* name() const override { return "cuda"; }

    // cuda/device.cpp, cuda/capability.cpp: no CUDA context is created by these
    int device_count() const override;
    bool supports_bf16(int index, std::string* why) const override;

    void* allocate(size_t nbytes) override;
    void deallocate(void* ptr, size_t nbytes) override;
    void* allocate_pinned_host(size_t nbytes) override;
    void free_pinned_host(void* ptr, size_t nbytes) override;
    void copy(const Tensor& src, Tensor& dst) override;
    void copy_to_host(const void* device_src, void* host_dst, size_t nbytes) override;
    void copy_from_host(const void* host_src, void* device_dst, size_t nbytes) override;
    void fill(Tensor& dst, double value) override;
    void synchronize() override;

    void unary(UnaryOp op, const Tensor& x, Tensor& out, double p0, double p1) override;
    void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) override;
    void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) override;

    void reduce_rows(ReduceOp op, const Tensor& x, Tensor& out) override;
    void reduce_cols(ReduceOp op, const Tensor& x, Tensor& out) override;
    void argmax_rows(const Tensor& x, Tensor& out_i64) override;
    void cumsum_rows(const Tensor& x, Tensor& out, bool reverse) override;
    void sort_rows(const Tensor& x, Tensor& values, Tensor& indices, bool descending) override;

    // cuda/matmul.cu (cuBLASLt; linear's bias and its gradient in the GEMM's epilogue)
    void matmul(const Tensor& a, const Tensor& b, Tensor& out, bool trans_a, bool trans_b) override;
    void linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out) override;
    void linear_weight_grad(const Tensor& g, const Tensor& x, Tensor& gw, Tensor& gb) override;

    // cuda/softmax.cu, cuda/layer_norm.cu, cuda/cross_entropy.cu
    void softmax_rows(const Tensor& x, Tensor& out, bool log) override;
    void softmax_rows_backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log) override;
    void layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& out, Tensor& mean,
                    Tensor& rstd, double eps) override;
    void layer_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& w, const Tensor& mean,
                             const Tensor& rstd, Tensor& gx, Tensor& gw, Tensor& gb) override;
    void cross_entropy(const Tensor& logits, const Tensor& target, Tensor& losses, Tensor& lse,
                       int64_t ignore_index) override;
    void cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& lse,
                                const Tensor& grad_losses, Tensor& glogits,
                                int64_t ignore_index) override;

    void index_select(const Tensor& x, const Tensor& index, Tensor& out, int64_t outer, int64_t n,
                      int64_t inner) override;
    void index_add(const Tensor& g, const Tensor& index, Tensor& gx, int64_t outer, int64_t n,
                   int64_t inner) override;
    void gather(const Tensor& x, const Tensor& index, Tensor& out, int64_t outer, int64_t n,
                int64_t m, int64_t inner) override;
    void scatter_add(const Tensor& g, const Tensor& index, Tensor& gx, int64_t outer, int64_t n,
                     int64_t m, int64_t inner) override;

    void dropout_mask(Tensor& out, double p, uint64_t seed, uint64_t offset) override;

    // cuda/adamw.cu
    void adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWScalars& s) override;

    // cuda/list_mle.cu
    void list_mle(const Tensor& x, const Tensor& order, const Tensor& w, Tensor& losses, Tensor& maxpos,
                  Tensor& suffix, double eps) override;
    void list_mle_backward(const Tensor& x, const Tensor& order, const Tensor& w, const Tensor& maxpos,
                           const Tensor& suffix, const Tensor& grad_losses, Tensor& gx, double eps) override;

    // cuda/attention.cu
    void attention(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse,
                   bool causal, double scale) override;
    void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                            const Tensor& lse, const Tensor& gout, Tensor& gq, Tensor& gk,
                            Tensor& gv, bool causal, double scale) override;
};

// Number of usable CUDA devices; 0 when there is no driver or no GPU (any CUDA error).
int cuda_device_count();
bool cuda_available();

// The CUDA backend, created on the first call (no CUDA call: it is an op table; device state comes
// with the first use of a device, cuda_context in cuda/device.h). Registered with the engine at
// start-up even on a machine without a GPU; its device_count() is then 0 and the engine treats
// CUDA as absent (has_backend). Defined in cuda/device.cpp.
Backend* cuda_backend();

}  // namespace rankclip
