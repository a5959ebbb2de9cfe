// cuda/matmul.cu
// defines: CudaBackend::matmul (batched GEMM through cuBLAS) and the TF32 switch.
//
// Our tensors are row-major, cuBLAS is column-major. A row-major (R, C) matrix is, byte for
// byte, the column-major (C, R) matrix: its transpose. So out = a @ b is computed as
// out^T = b^T @ a^T, i.e. cuBLAS gets b as its first operand and a as its second, with m = N and
// n = M, and writes the column-major (N, M) matrix that is our row-major (M, N) out.
//
// Precision: F32 uses CUBLAS_COMPUTE_32F (no TF32), so results match the CPU to fp32 rounding,
// unless TF32 is switched on; F64 uses cublasDgemmStridedBatched; BF16 reads and writes bf16 and
// accumulates in fp32.
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/device.h"

namespace rankclip {

namespace {

bool tf32_from_env() {
    const char* v = std::getenv("RANKCLIP_TF32");
    return v != nullptr && std::strcmp(v, "1") == 0;
}

std::atomic<bool> g_tf32{tf32_from_env()};

}  // namespace

void set_tf32(bool on) { g_tf32.store(on); }
bool tf32_enabled() { return g_tf32.load(); }

// a: (batch, M, K), or (batch, K, M) if trans_a; b: (batch, K, N), or (batch, N, K) if trans_b;
// out: (batch, M, N). A batch dim of a or b may be missing (2-D), which broadcasts it.
void CudaBackend::matmul(const Tensor& a, const Tensor& b, Tensor& out, bool trans_a,
                         bool trans_b) {
    auto shapes = [&] {
        return str_cat("a ", a.str(), trans_a ? " (transposed)" : "", ", b ", b.str(),
                       trans_b ? " (transposed)" : "", ", out ", out.str());
    };
    RC_CHECK(a.dim() >= 2 && b.dim() >= 2 && out.dim() >= 2, "cuda matmul: needs matrices: ",
             shapes());
    RC_CHECK(a.dtype() == b.dtype() && a.dtype() == out.dtype(),
             "cuda matmul: dtypes differ: ", shapes());
    const int64_t M = out.size(-2), N = out.size(-1);
    const int64_t K = trans_a ? a.size(-2) : a.size(-1);
    const int64_t a_rows = trans_a ? a.size(-1) : a.size(-2);
    const int64_t b_k = trans_b ? b.size(-1) : b.size(-2);
    const int64_t b_cols = trans_b ? b.size(-2) : b.size(-1);
    RC_CHECK(a_rows == M && b_k == K && b_cols == N, "cuda matmul: shapes do not match: ", shapes());
    const int64_t batch = M * N == 0 ? 0 : out.numel() / (M * N);
    const int64_t a_batch = M * K == 0 ? batch : a.numel() / (M * K);
    const int64_t b_batch = K * N == 0 ? batch : b.numel() / (K * N);
    RC_CHECK((a_batch == batch || a_batch == 1) && (b_batch == batch || b_batch == 1),
             "cuda matmul: batch sizes differ: ", shapes());
    RC_CHECK(M <= INT_MAX && N <= INT_MAX && K <= INT_MAX && batch <= INT_MAX,
             "cuda matmul: a dimension exceeds cuBLAS's int range: ", shapes());
    if (out.numel() == 0) return;

    const int device = out.device().index;
    cublasHandle_t handle = cuda_cublas(device);
    auto check = [&](cublasStatus_t status, const char* call) {
        RC_CHECK(status == CUBLAS_STATUS_SUCCESS, "cuda matmul: ", call, " failed with ",
                 cublasGetStatusName(status), " (", cublasGetStatusString(status), ") for ",
                 shapes(), " at ", __FILE__, ":", __LINE__);
    };
    if (K == 0) {  // an empty sum: out = 0
        RC_CUDA_CHECK(cudaMemsetAsync(out.raw_data(), 0, out.numel() * dtype_size(out.dtype()),
                                      cuda_stream(device)));
        return;
    }

    // Column-major view (see the top of the file): C(N, M) = op(B) (N, K) @ op(A) (K, M).
    const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int m = int(N), n = int(M), k = int(K);
    const int ld_b = trans_b ? int(K) : int(N);  // row length of b as stored
    const int ld_a = trans_a ? int(M) : int(K);  // row length of a as stored
    const int ld_c = int(N);
    const long long stride_b = b_batch == 1 ? 0 : K * N;
    const long long stride_a = a_batch == 1 ? 0 : M * K;
    const long long stride_c = M * N;
    const void* B = b.raw_data();
    const void* A = a.raw_data();
    void* C = out.raw_data();

    switch (out.dtype()) {
        case DType::F32: {
            const float alpha = 1.0f, beta = 0.0f;
            cublasComputeType_t compute =
                tf32_enabled() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
            check(cublasGemmStridedBatchedEx(
                handle, op_b, op_a, m, n, k, &alpha, B, CUDA_R_32F, ld_b, stride_b, A, CUDA_R_32F,
                ld_a, stride_a, &beta, C, CUDA_R_32F, ld_c, stride_c, int(batch), compute,
                CUBLAS_GEMM_DEFAULT),
                  "cublasGemmStridedBatchedEx");
            break;
        }
        case DType::BF16: {
            const float alpha = 1.0f, beta = 0.0f;
            check(cublasGemmStridedBatchedEx(
                handle, op_b, op_a, m, n, k, &alpha, B, CUDA_R_16BF, ld_b, stride_b, A,
                CUDA_R_16BF, ld_a, stride_a, &beta, C, CUDA_R_16BF, ld_c, stride_c, int(batch),
                CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                  "cublasGemmStridedBatchedEx");
            break;
        }
        case DType::F64: {
            const double alpha = 1.0, beta = 0.0;
            check(cublasDgemmStridedBatched(
                handle, op_b, op_a, m, n, k, &alpha, static_cast<const double*>(B), ld_b, stride_b,
                static_cast<const double*>(A), ld_a, stride_a, &beta, static_cast<double*>(C), ld_c,
                stride_c, int(batch)),
                  "cublasDgemmStridedBatched");
            break;
        }
        default:
            missing("matmul", out);
    }
}

}  // namespace rankclip
