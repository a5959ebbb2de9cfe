// engine/cpu/cpu_matmul.cpp
// defines: the CPU GEMM, through Eigen maps over our row-major buffers (no copies). Batches of
// small matrices (attention heads) run one matrix per thread (Eigen sees it is inside a parallel
// region and stays single-threaded); large ones let Eigen split the matrix over the threads. BF16 inputs are widened to F32 (Eigen has no bf16 GEMM worth using).
#include <Eigen/Core>

#include "engine/cpu/cpu_backend.h"
#include "engine/ops.h"

namespace rankclip {

template <typename T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <typename T>
static void gemm_one(const T* a, const T* b, T* c, int64_t M, int64_t N, int64_t K, bool ta, bool tb) {
    Eigen::Map<const RowMatrix<T>> A(a, ta ? K : M, ta ? M : K);
    Eigen::Map<const RowMatrix<T>> B(b, tb ? N : K, tb ? K : N);
    Eigen::Map<RowMatrix<T>> C(c, M, N);
    if (!ta && !tb) C.noalias() = A * B;
    else if (ta && !tb) C.noalias() = A.transpose() * B;
    else if (!ta && tb) C.noalias() = A * B.transpose();
    else C.noalias() = A.transpose() * B.transpose();
}

template <typename T>
static void gemm_batched(const Tensor& a, const Tensor& b, Tensor& out, bool ta, bool tb) {
    int64_t batch = out.size(0), M = out.size(1), N = out.size(2);
    int64_t K = ta ? a.size(1) : a.size(2);
    const T* as = static_cast<const T*>(a.raw_data());
    const T* bs = static_cast<const T*>(b.raw_data());
    T* cs = static_cast<T*>(out.raw_data());
    int64_t sa = a.size(1) * a.size(2), sb = b.size(1) * b.size(2), sc = M * N;
    // a batch dim of size 1 broadcasts (stride 0)
    if (a.size(0) == 1) sa = 0;
    if (b.size(0) == 1) sb = 0;
    if (batch > 1 && M * N * K < 128 * 128 * 128) {
#pragma omp parallel for schedule(static) if (batch * M * N * K > 32768)
        for (int64_t i = 0; i < batch; i++) {
            gemm_one(as + i * sa, bs + i * sb, cs + i * sc, M, N, K, ta, tb);
        }
    } else {
        for (int64_t i = 0; i < batch; i++) gemm_one(as + i * sa, bs + i * sb, cs + i * sc, M, N, K, ta, tb);
    }
}

void CpuBackend::matmul(const Tensor& a, const Tensor& b, Tensor& out, bool ta, bool tb) {
    switch (a.dtype()) {
        case DType::F32: gemm_batched<float>(a, b, out, ta, tb); break;
        case DType::F64: gemm_batched<double>(a, b, out, ta, tb); break;
        case DType::BF16: {
            Tensor af = empty(a.shape(), DType::F32), bf = empty(b.shape(), DType::F32);
            Tensor of = empty(out.shape(), DType::F32);
            copy(a, af);
            copy(b, bf);
            gemm_batched<float>(af, bf, of, ta, tb);
            copy(of, out);
            break;
        }
        default: missing("matmul", a);
    }
}

}  // namespace rankclip
