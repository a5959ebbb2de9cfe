// cuda/attention_gemm.cu
// defines: attention_gemm_forward / attention_gemm_backward, attention on the tensor cores through
// cuBLAS's batched GEMMs, for the sequence lengths of the ViT-B towers (T = 50, 77, 197), where the
// flash-style kernels of cuda/attention.cu, on CUDA cores, spent a third of a b32 training step
// (`rankclip bench --profile`, docs/PERFORMANCE.md). Per (b, h), q (Tq, D), k, v (Tk, D):
//   forward:  S = scale Q K^T (GEMM, fp32)   P = softmax(S), lse = logsumexp(S) (a row kernel)
//             O = P V (GEMM; P in the input dtype, as flash attention keeps it)
//   backward: S = scale Q K^T, P = exp(S - lse) (recomputed: nothing but lse is saved)
//             dV = P^T dO, dP = dO V^T (GEMMs)
//             dS = scale P (dP - delta), delta = rowsum(P dP) = rowsum(dO O) (a row kernel)
//             dQ = dS K, dK = dS^T Q (GEMMs)
// S, P and dP go to global memory (B H Tq Tk values each), unlike the flash kernels: at T = 197
// that is 155 KB of fp32 scores per (b, h), each read once by the next kernel.
// q, k, v, out and the gradients are read and written where they lie: batched GEMMs take one
// pointer per (b, h) matrix (built on the device) and the row stride as the leading dimension, so
// the heads of a packed (B, T, 3, H, D) projection need no copy. Rows must not overlap (a stride-0
// repeat is left to the flash kernels; see attention_gemm_applies).
// Precision: F32 GEMMs as cuda/matmul.cu (full fp32 unless TF32 is switched on); BF16 reads bf16,
// accumulates in fp32, keeps S and dP in fp32. Deterministic: cuBLAS's batched GEMMs and the row
// kernels do the same arithmetic on every run.
#include "cuda/attention_gemm.h"

#include <climits>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "cuda/cuda_check.h"
#include "cuda/device.h"
#include "cuda/fused_common.cuh"

namespace rankclip {

namespace {

using namespace fused;

// Matrix i = (b, h) of an operand starts at base + b sb + h sh (bytes).
struct Operand {
    const char* base;
    int64_t sb, sh;
};
constexpr int kMaxOperands = 10;
struct Operands {
    Operand op[kMaxOperands];
    int n;
};

// ptrs[o * BH + i] = the start of matrix i of operand o
__global__ void batch_pointers_kernel(Operands set, void** ptrs, int64_t BH, int64_t H) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= BH) return;
    const int64_t b = i / H, h = i % H;
    for (int o = 0; o < set.n; o++)
        ptrs[o * BH + i] = const_cast<char*>(set.op[o].base) + b * set.op[o].sb + h * set.op[o].sh;
}

// A (B, H, T, D) view: its matrices start at b stride0 + h stride1; rows are stride2 apart.
Operand view_operand(const Tensor& t) {
    const int64_t es = int64_t(dtype_size(t.dtype()));
    return {static_cast<const char*>(t.raw_data()), t.strides()[0] * es, t.strides()[1] * es};
}
// A contiguous (B, H, rows, cols) buffer of `es`-byte elements
Operand buffer_operand(const void* base, int64_t H, int64_t rows, int64_t cols, int64_t es) {
    return {static_cast<const char*>(base), H * rows * cols * es, rows * cols * es};
}

// The device pointer arrays of a set of operands, one array of BH pointers per operand.
struct BatchPointers {
    BatchPointers(CudaContext& ctx, const Operands& set, int64_t BH, int64_t H)
        : buffer(ctx, size_t(set.n) * size_t(BH) * sizeof(void*)), BH(BH) {
        batch_pointers_kernel<<<unsigned((BH + 127) / 128), 128, 0, ctx.stream>>>(set, buffer.as<void*>(), BH, H);
        RC_CUDA_CHECK_LAUNCH("batch_pointers_kernel");
    }
    const void* const* operator[](int o) const { return buffer.as<void*>() + o * BH; }  // an input
    void* const* out(int o) const { return buffer.as<void*>() + o * BH; }                // an output
    DeviceScratch buffer;
    int64_t BH;
};

struct GemmTypes {
    cudaDataType io;              // q, k, v, out, P, dS and the gradients
    cublasComputeType_t compute;  // fp32 accumulation (TF32 for F32 only when switched on)
};

// Row-major C (M, N) = alpha op(A) op(B) for each of `batch` matrices; A is (M, K) as stored, or
// (K, M) when ta; B is (K, N), or (N, K) when tb; lda, ldb, ldc are the row strides as stored.
// cuBLAS is column-major: it computes C^T = op(B)^T op(A)^T (see cuda/matmul.cu's header).
void gemm(cublasHandle_t handle, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
          const void* const* A, cudaDataType a_type, int64_t lda, const void* const* B, cudaDataType b_type,
          int64_t ldb, void* const* C, cudaDataType c_type, int64_t ldc, int64_t batch,
          cublasComputeType_t compute, const char* what) {
    const float beta = 0.0f;
    const cublasStatus_t status = cublasGemmBatchedEx(
        handle, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, int(N), int(M), int(K), &alpha, B,
        b_type, int(ldb), A, a_type, int(lda), &beta, C, c_type, int(ldc), int(batch), compute, CUBLAS_GEMM_DEFAULT);
    RC_CHECK(status == CUBLAS_STATUS_SUCCESS, "attention (cuda, gemm): ", what, ": cublasGemmBatchedEx failed with ",
             cublasGetStatusName(status), " (", cublasGetStatusString(status), ") for M ", M, " N ", N, " K ", K,
             " batch ", batch);
}

// The row kernels give one warp a row of S: BH Tq rows of Tk scores, where query qi = row % Tq
// sees keys j < n, n = Tk or, causal, min(Tk, qi + 1) (>= 1: Tk >= 1 on this path).
struct ScoreRow {
    int64_t row, n;
    int lane;
};
__device__ __forceinline__ bool score_row(int64_t rows, int64_t Tq, int64_t Tk, bool causal, ScoreRow& r) {
    r.row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
    r.lane = threadIdx.x % 32;
    if (r.row >= rows) return false;
    const int64_t qi = r.row % Tq;
    r.n = causal ? (qi + 1 < Tk ? qi + 1 : Tk) : Tk;
    return true;
}
// p[j] = exp(s[j] - lse) for the visible keys, 0 for the masked ones
template <typename T>
__device__ __forceinline__ void write_probabilities(const float* s, float lse, T* p, const ScoreRow& r, int64_t Tk) {
    for (int64_t j = r.lane; j < Tk; j += 32) store(p + j, j < r.n ? acc_exp(s[j] - lse) : 0.0f);
}

// Forward: lse = logsumexp of the visible scores; P = exp(S - lse), 0 where masked.
template <typename T>
__global__ void softmax_lse_kernel(const float* __restrict__ S, T* __restrict__ P, float* __restrict__ lse,
                                   int64_t rows, int64_t Tq, int64_t Tk, bool causal) {
    ScoreRow r;
    if (!score_row(rows, Tq, Tk, causal, r)) return;
    const float* s = S + r.row * Tk;
    float m = neg_inf<float>();
    for (int64_t j = r.lane; j < r.n; j += 32) m = acc_max(m, s[j]);
    m = warp_max(m);
    float sum = 0.0f;
    for (int64_t j = r.lane; j < r.n; j += 32) sum += acc_exp(s[j] - m);
    const float l = m + acc_log(warp_sum(sum));
    if (r.lane == 0) lse[r.row] = l;
    write_probabilities(s, l, P + r.row * Tk, r, Tk);
}

// Backward: P = exp(S - lse) from the recomputed S, 0 where masked.
template <typename T>
__global__ void probabilities_kernel(const float* __restrict__ S, const float* __restrict__ lse, T* __restrict__ P,
                                     int64_t rows, int64_t Tq, int64_t Tk, bool causal) {
    ScoreRow r;
    if (!score_row(rows, Tq, Tk, causal, r)) return;
    write_probabilities(S + r.row * Tk, lse[r.row], P + r.row * Tk, r, Tk);
}

// Backward: dS = scale P (dP - delta), delta = sum_j P_j dP_j (= rowsum(dO O), since dP = dO V^T
// and O = P V), 0 where masked.
template <typename T>
__global__ void score_gradient_kernel(const float* __restrict__ S, const float* __restrict__ lse,
                                      const float* __restrict__ dP, T* __restrict__ dS, int64_t rows, int64_t Tq,
                                      int64_t Tk, bool causal, float scale) {
    ScoreRow r;
    if (!score_row(rows, Tq, Tk, causal, r)) return;
    const float *s = S + r.row * Tk, *dp = dP + r.row * Tk;
    const float l = lse[r.row];
    float delta = 0.0f;
    for (int64_t j = r.lane; j < r.n; j += 32) delta += acc_exp(s[j] - l) * dp[j];
    delta = warp_sum(delta);
    T* ds = dS + r.row * Tk;
    for (int64_t j = r.lane; j < Tk; j += 32)
        store(ds + j, j < r.n ? scale * acc_exp(s[j] - l) * (dp[j] - delta) : 0.0f);
}

constexpr int kRowsPerBlock = 8;  // warps (rows) per block of the row kernels
unsigned row_blocks(int64_t rows) { return unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock); }

template <typename T>
GemmTypes gemm_types() {
    if constexpr (std::is_same_v<T, bf16>) return {CUDA_R_16BF, CUBLAS_COMPUTE_32F};
    else return {CUDA_R_32F, tf32_enabled() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F};
}

// Whether the rows of a (B, H, T, D) view are D-long, unit-stride and apart by a valid leading
// dimension (no stride-0 repeats, no overlap).
bool rows_are_gemm_operands(const Tensor& t) {
    const int64_t D = t.size(3);
    return t.dim() == 4 && (t.strides()[3] == 1 || D == 1) &&
           (t.size(2) <= 1 || (t.strides()[2] >= D && t.strides()[2] <= INT_MAX));
}
// The leading dimension of a (B, H, T, D) view: its row stride (any value >= D when T = 1).
int64_t ld(const Tensor& t) { return t.size(2) <= 1 ? t.size(3) : t.strides()[2]; }

const char* attention_path_env() {
    const char* v = std::getenv("RANKCLIP_ATTENTION");
    return v ? v : "";
}

}  // namespace

bool attention_gemm_applies(const Tensor& q, const Tensor& k, std::initializer_list<const Tensor*> others) {
    const std::string forced = attention_path_env();  // (a getenv per call: tests switch it)
    if (forced == "kernel") return false;
    if (q.dtype() != DType::F32 && q.dtype() != DType::BF16) return false;
    if (q.dim() != 4) return false;
    const int64_t Tq = q.size(2), Tk = k.size(2), D = q.size(3), BH = q.size(0) * q.size(1);
    if (Tq == 0 || Tk == 0 || D == 0 || D % 8 != 0) return false;
    if (BH * Tq * Tk > (int64_t(1) << 28)) return false;  // S alone would pass 1 GB: the flash kernels
    if (!rows_are_gemm_operands(q) || !rows_are_gemm_operands(k)) return false;
    for (const Tensor* t : others)
        if (!rows_are_gemm_operands(*t)) return false;
    // Short sequences: the flash kernels are faster there (a handful of launches, nothing stored)
    return forced == "gemm" || Tq * Tk >= 1024;
}

namespace {

// What both directions start from: the shape, the device's stream and cuBLAS handle; run(f)
// calls f with a value of the storage type (bf16 or float) and that type's GEMM types.
struct Problem {
    Problem(const Tensor& q, const Tensor& k)
        : H(q.size(1)), BH(q.size(0) * q.size(1)), Tq(q.size(2)), Tk(k.size(2)), D(q.size(3)), bf16_io(q.dtype() == DType::BF16),
          ctx(cuda_context(q.device().index)), handle(cuda_cublas(q.device().index)) {}
    template <typename F>
    void run(F&& f) const {
        if (bf16_io) f(bf16(), gemm_types<bf16>());
        else f(float(), gemm_types<float>());
    }
    int64_t H, BH, Tq, Tk, D;
    bool bf16_io;
    CudaContext& ctx;
    cublasHandle_t handle;
};

}  // namespace

void attention_gemm_forward(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse, bool causal,
                            double scale) {
    const Problem pr(q, k);
    const int64_t H = pr.H, BH = pr.BH, Tq = pr.Tq, Tk = pr.Tk, D = pr.D;
    pr.run([&](auto tag, const GemmTypes& types) {
        using T = decltype(tag);
        DeviceScratch S(pr.ctx, size_t(BH * Tq * Tk) * sizeof(float)), P(pr.ctx, size_t(BH * Tq * Tk) * sizeof(T));
        Operands set{{view_operand(q), view_operand(k), view_operand(v), view_operand(out),
                      buffer_operand(S.get(), H, Tq, Tk, sizeof(float)), buffer_operand(P.get(), H, Tq, Tk, sizeof(T))},
                     6};
        BatchPointers ptr(pr.ctx, set, BH, H);
        const int64_t ldq = ld(q), ldk = ld(k), ldv = ld(v), ldo = ld(out);
        // S (Tq, Tk) = scale Q K^T
        gemm(pr.handle, false, true, Tq, Tk, D, float(scale), ptr[0], types.io, ldq, ptr[1], types.io, ldk, ptr.out(4),
             CUDA_R_32F, Tk, BH, types.compute, "S = scale Q K^T");
        softmax_lse_kernel<T><<<row_blocks(BH * Tq), kRowsPerBlock * 32, 0, pr.ctx.stream>>>(
            S.as<float>(), P.as<T>(), static_cast<float*>(lse.raw_data()), BH * Tq, Tq, Tk, causal);
        RC_CUDA_CHECK_LAUNCH("softmax_lse_kernel");
        // O (Tq, D) = P V
        gemm(pr.handle, false, false, Tq, D, Tk, 1.0f, ptr[5], types.io, Tk, ptr[2], types.io, ldv, ptr.out(3),
             types.io, ldo, BH, types.compute, "O = P V");
    });
}

void attention_gemm_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lse,
                             const Tensor& gout, Tensor& gq, Tensor& gk, Tensor& gv, bool causal, double scale) {
    const Problem pr(q, k);
    const int64_t H = pr.H, BH = pr.BH, Tq = pr.Tq, Tk = pr.Tk, D = pr.D;
    pr.run([&](auto tag, const GemmTypes& types) {
        using T = decltype(tag);
        const size_t scores = size_t(BH * Tq * Tk);
        DeviceScratch S(pr.ctx, scores * sizeof(float)), dP(pr.ctx, scores * sizeof(float)), P(pr.ctx, scores * sizeof(T));
        Operands set{{view_operand(q), view_operand(k), view_operand(v), view_operand(gout), view_operand(gq),
                      view_operand(gk), view_operand(gv), buffer_operand(S.get(), H, Tq, Tk, sizeof(float)),
                      buffer_operand(dP.get(), H, Tq, Tk, sizeof(float)), buffer_operand(P.get(), H, Tq, Tk, sizeof(T))},
                     10};
        BatchPointers ptr(pr.ctx, set, BH, H);
        enum { Q, K, V, dO, dQ, dK, dV, Sc, dPr, Pr };
        const int64_t ldq = ld(q), ldk = ld(k), ldv = ld(v), ldgo = ld(gout);
        const float* lses = static_cast<const float*>(lse.raw_data());
        // S = scale Q K^T; P = exp(S - lse)
        gemm(pr.handle, false, true, Tq, Tk, D, float(scale), ptr[Q], types.io, ldq, ptr[K], types.io, ldk,
             ptr.out(Sc), CUDA_R_32F, Tk, BH, types.compute, "S = scale Q K^T");
        probabilities_kernel<T><<<row_blocks(BH * Tq), kRowsPerBlock * 32, 0, pr.ctx.stream>>>(
            S.as<float>(), lses, P.as<T>(), BH * Tq, Tq, Tk, causal);
        RC_CUDA_CHECK_LAUNCH("probabilities_kernel");
        // dV (Tk, D) = P^T dO
        gemm(pr.handle, true, false, Tk, D, Tq, 1.0f, ptr[Pr], types.io, Tk, ptr[dO], types.io, ldgo, ptr.out(dV),
             types.io, ld(gv), BH, types.compute, "dV = P^T dO");
        // dP (Tq, Tk) = dO V^T
        gemm(pr.handle, false, true, Tq, Tk, D, 1.0f, ptr[dO], types.io, ldgo, ptr[V], types.io, ldv, ptr.out(dPr),
             CUDA_R_32F, Tk, BH, types.compute, "dP = dO V^T");
        // dS = scale P (dP - delta), into P's buffer (dV's GEMM, queued before on the stream, has read P)
        score_gradient_kernel<T><<<row_blocks(BH * Tq), kRowsPerBlock * 32, 0, pr.ctx.stream>>>(
            S.as<float>(), lses, dP.as<float>(), P.as<T>(), BH * Tq, Tq, Tk, causal, float(scale));
        RC_CUDA_CHECK_LAUNCH("score_gradient_kernel");
        // dQ (Tq, D) = dS K;  dK (Tk, D) = dS^T Q
        gemm(pr.handle, false, false, Tq, D, Tk, 1.0f, ptr[Pr], types.io, Tk, ptr[K], types.io, ldk, ptr.out(dQ),
             types.io, ld(gq), BH, types.compute, "dQ = dS K");
        gemm(pr.handle, true, false, Tk, D, Tq, 1.0f, ptr[Pr], types.io, Tk, ptr[Q], types.io, ldq, ptr.out(dK),
             types.io, ld(gk), BH, types.compute, "dK = dS^T Q");
    });
}

}  // namespace rankclip
