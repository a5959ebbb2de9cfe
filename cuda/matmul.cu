// cuda/matmul.cu
// defines: CudaBackend::matmul, linear and linear_weight_grad (GEMMs through cuBLASLt; linear's
// bias added, and its bias gradient summed, in the GEMM's epilogue), and the TF32 switch.
//
// Our tensors are row-major, cuBLAS is column-major. A row-major (R, C) matrix is, byte for
// byte, the column-major (C, R) matrix: its transpose. So out = a @ b is computed as
// out^T = b^T @ a^T, i.e. cuBLAS gets b as its first operand and a as its second, with m = N and
// n = M, and writes the column-major (N, M) matrix that is our row-major (M, N) out. linear's
// bias (N) is then one value per row of that column-major out: what cuBLASLt's BIAS epilogue adds.
// Its weight gradient gw (N, K) = g^T x is the column-major (K, N) = x^T (K, M) @ g (M, N), whose
// second operand's sums over the shared dim M are the bias gradient: the BGRADB epilogue.
//
// Paths: F32 and BF16 go to cuBLASLt. Each distinct problem (shapes, strides, dtype, operand
// alignment, bias or not) gets a plan on first use: its layouts, its descriptor and the algorithm
// cuBLASLt's heuristic picks for our workspace; plans are cached, so a training step after the
// first asks no heuristic. F64, and a problem the heuristic has no algorithm for, go to
// cublasGemmStridedBatchedEx / cublasDgemmStridedBatched, where linear adds its bias in a second
// pass (Backend::linear) and the bias gradient is a reduce_cols (Backend::linear_weight_grad). RANKCLIP_GEMM=cublas forces that path (read per call: the tests run
// every case on both paths, the benchmarks compare them).
//
// Precision: F32 uses CUBLAS_COMPUTE_32F (no TF32), so results match the CPU to fp32 rounding,
// unless TF32 is switched on; BF16 reads and writes bf16 and accumulates in fp32. Both paths are
// deterministic: the same plan runs the same algorithm every time, and cuBLASLt's split-K
// reductions run in a fixed order.
#include <array>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

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

bool cublaslt_forced_off() {  // RANKCLIP_GEMM=cublas
    const char* v = std::getenv("RANKCLIP_GEMM");
    return v != nullptr && std::strcmp(v, "cublas") == 0;
}

// What the GEMM's epilogue does with the vector `bias`: nothing, add bias (m) to every column of
// C, or write into it the sums of op_b(B) over k (n values, one per column of C).
enum class Epilogue { None, Bias, BiasGradB };

// One GEMM in cuBLAS's column-major terms, `batch` times:
//   C (m, n) = op_a(A) (m, k) @ op_b(B) (k, n), and the epilogue
// A is our b and B our a (see the top of the file).
struct Gemm {
    DType dtype;
    cublasOperation_t op_a, op_b;
    int64_t m, n, k;
    int64_t lda, ldb, ldc;                 // column lengths as stored
    int64_t batch, stride_a, stride_b, stride_c;  // stride 0: one matrix for the whole batch
    const void* A;
    const void* B;
    void* C;
    Epilogue epilogue = Epilogue::None;
    void* bias = nullptr;  // Bias: read; BiasGradB: written
};

// a: (batch, M, K), or (batch, K, M) if trans_a; b: (batch, K, N), or (batch, N, K) if trans_b;
// out: (batch, M, N), all packed. A batch dim of a or b may be missing (2-D), which broadcasts it.
Gemm column_major_gemm(const Tensor& a, const Tensor& b, Tensor& out, bool trans_a, bool trans_b) {
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
    // C(N, M) = op(B) (N, K) @ op(A) (K, M)
    Gemm g;
    g.dtype = out.dtype();
    g.op_a = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    g.op_b = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    g.m = N, g.n = M, g.k = K;
    g.lda = trans_b ? K : N;  // row length of b as stored
    g.ldb = trans_a ? M : K;  // row length of a as stored
    g.ldc = N;
    g.batch = batch;
    g.stride_a = b_batch == 1 ? 0 : K * N;
    g.stride_b = a_batch == 1 ? 0 : M * K;
    g.stride_c = M * N;
    g.A = b.raw_data();
    g.B = a.raw_data();
    g.C = out.raw_data();
    return g;
}

void check_cublas(cublasStatus_t status, const char* call, const Gemm& g) {
    RC_CHECK(status == CUBLAS_STATUS_SUCCESS, "cuda matmul: ", call, " failed with ",
             cublasGetStatusName(status), " (", cublasGetStatusString(status), ") for the ",
             dtype_name(g.dtype), " column-major GEMM m ", g.m, ", n ", g.n, ", k ", g.k,
             ", batch ", g.batch);
}

// ---- the cuBLAS path ----

void cublas_gemm(const Gemm& g, int device) {
    cublasHandle_t handle = cuda_cublas(device);
    const int m = int(g.m), n = int(g.n), k = int(g.k);
    const int lda = int(g.lda), ldb = int(g.ldb), ldc = int(g.ldc), batch = int(g.batch);
    switch (g.dtype) {
        case DType::F32:
        case DType::BF16: {
            const float alpha = 1.0f, beta = 0.0f;
            const cudaDataType_t type = g.dtype == DType::F32 ? CUDA_R_32F : CUDA_R_16BF;
            const cublasComputeType_t compute = g.dtype == DType::F32 && tf32_enabled()
                                                    ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                    : CUBLAS_COMPUTE_32F;
            check_cublas(cublasGemmStridedBatchedEx(handle, g.op_a, g.op_b, m, n, k, &alpha, g.A, type, lda,
                                                    g.stride_a, g.B, type, ldb, g.stride_b, &beta, g.C,
                                                    type, ldc, g.stride_c, batch, compute,
                                                    CUBLAS_GEMM_DEFAULT),
                         "cublasGemmStridedBatchedEx", g);
            break;
        }
        case DType::F64: {
            const double alpha = 1.0, beta = 0.0;
            check_cublas(cublasDgemmStridedBatched(handle, g.op_a, g.op_b, m, n, k, &alpha,
                                                   static_cast<const double*>(g.A), lda, g.stride_a,
                                                   static_cast<const double*>(g.B), ldb, g.stride_b, &beta,
                                                   static_cast<double*>(g.C), ldc, g.stride_c, batch),
                         "cublasDgemmStridedBatched", g);
            break;
        }
        default:
            RC_CHECK(false, "cuda matmul: no GEMM for ", dtype_name(g.dtype));
    }
}

// ---- the cuBLASLt path ----

// The largest power of two (up to 256, the alignment cuBLASLt assumes unless told) dividing the
// address of every matrix of a batch (stride_bytes apart): cuBLASLt's kernels load with vectors
// of that width.
int64_t alignment(const void* ptr, int64_t stride_bytes) {
    const uint64_t bits = reinterpret_cast<uintptr_t>(ptr) | uint64_t(stride_bytes) | 256u;
    return int64_t(bits & (~bits + 1));
}

struct LtPlan {
    bool usable = false;  // false: the heuristic has no algorithm; the cuBLAS path runs instead
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
};
using LtKey = std::array<int64_t, 20>;

// Plans live as long as the process (a few dozen distinct problems in a training run).
std::mutex g_plans_mutex;
std::map<LtKey, LtPlan> g_plans;

void check_lt(cublasStatus_t status, const char* call, const Gemm& g) { check_cublas(status, call, g); }

template <typename T>
void set_desc(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, T value, const Gemm& g) {
    check_lt(cublasLtMatmulDescSetAttribute(desc, attr, &value, sizeof(value)), "cublasLtMatmulDescSetAttribute", g);
}

// A column-major (rows, cols) operand with column length ld, `batch` of them `stride` apart.
cublasLtMatrixLayout_t make_layout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld, int64_t batch,
                                   int64_t stride, const Gemm& g) {
    cublasLtMatrixLayout_t layout = nullptr;
    check_lt(cublasLtMatrixLayoutCreate(&layout, type, uint64_t(rows), uint64_t(cols), ld),
             "cublasLtMatrixLayoutCreate", g);
    if (batch > 1) {
        const int32_t count = int32_t(batch);
        check_lt(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)),
                 "cublasLtMatrixLayoutSetAttribute", g);
        check_lt(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                                  sizeof(stride)),
                 "cublasLtMatrixLayoutSetAttribute", g);
    }
    return layout;
}

LtPlan make_plan(cublasLtHandle_t lt, const Gemm& g, bool tf32, size_t workspace_bytes,
                 const std::array<int64_t, 4>& align) {
    const cudaDataType_t type = g.dtype == DType::F32 ? CUDA_R_32F : CUDA_R_16BF;
    LtPlan plan;
    check_lt(cublasLtMatmulDescCreate(&plan.desc, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F,
                                      CUDA_R_32F),
             "cublasLtMatmulDescCreate", g);
    set_desc(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, int32_t(g.op_a), g);
    set_desc(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, int32_t(g.op_b), g);
    if (g.epilogue != Epilogue::None) {  // the vector in C's dtype
        const cublasLtEpilogue_t epilogue = g.epilogue == Epilogue::Bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_BGRADB;
        set_desc(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, uint32_t(epilogue), g);
        set_desc(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, g.bias, g);  // its alignment steers the heuristic
    }
    const bool ta = g.op_a == CUBLAS_OP_T, tb = g.op_b == CUBLAS_OP_T;
    plan.a = make_layout(type, ta ? g.k : g.m, ta ? g.m : g.k, g.lda, g.batch, g.stride_a, g);
    plan.b = make_layout(type, tb ? g.n : g.k, tb ? g.k : g.n, g.ldb, g.batch, g.stride_b, g);
    plan.c = make_layout(type, g.m, g.n, g.ldc, g.batch, g.stride_c, g);

    cublasLtMatmulPreference_t pref = nullptr;
    check_lt(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate", g);
    auto set_pref = [&](cublasLtMatmulPreferenceAttributes_t attr, auto value) {
        check_lt(cublasLtMatmulPreferenceSetAttribute(pref, attr, &value, sizeof(value)),
                 "cublasLtMatmulPreferenceSetAttribute", g);
    };
    set_pref(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t(workspace_bytes));
    set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, uint32_t(align[0]));
    set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, uint32_t(align[1]));
    set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, uint32_t(align[2]));
    set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, uint32_t(align[2]));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t status =
        cublasLtMatmulAlgoGetHeuristic(lt, plan.desc, plan.a, plan.b, plan.c, plan.c, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (status == CUBLAS_STATUS_NOT_SUPPORTED || (status == CUBLAS_STATUS_SUCCESS && found == 0)) return plan;
    check_lt(status, "cublasLtMatmulAlgoGetHeuristic", g);
    plan.algo = result.algo;
    plan.usable = true;
    return plan;
}

// Runs g through cuBLASLt; false (nothing queued) when no algorithm fits it.
bool cublaslt_gemm(const Gemm& g, int device) {
    if (g.dtype != DType::F32 && g.dtype != DType::BF16) return false;
    const bool batched = g.batch > 1;
    if (batched && (g.stride_a == 0 || g.stride_b == 0)) return false;  // a broadcast operand: cuBLAS
    const int64_t esize = batched ? int64_t(dtype_size(g.dtype)) : 0;  // strides matter only in a batch
    const std::array<int64_t, 4> align = {alignment(g.A, g.stride_a * esize), alignment(g.B, g.stride_b * esize),
                                          alignment(g.C, g.stride_c * esize),
                                          g.bias ? alignment(g.bias, 0) : 0};
    if (g.epilogue != Epilogue::None && align[3] < 16) return false;  // the epilogue moves 16-byte vectors
    const bool tf32 = g.dtype == DType::F32 && tf32_enabled();
    const LtKey key = {device,   int64_t(g.dtype), tf32,       g.op_a,     g.op_b,     g.m,        g.n,
                       g.k,      g.lda,            g.ldb,      g.ldc,      g.batch,    g.stride_a, g.stride_b,
                       g.stride_c, int64_t(g.epilogue), align[0], align[1], align[2], align[3]};
    CudaContext& ctx = cuda_context(device);
    cublasLtHandle_t lt = cuda_cublaslt(device);
    std::lock_guard<std::mutex> lock(g_plans_mutex);  // the descriptor's bias pointer is per call
    auto it = g_plans.find(key);
    if (it == g_plans.end()) it = g_plans.emplace(key, make_plan(lt, g, tf32, ctx.cublas_workspace_bytes, align)).first;
    const LtPlan& plan = it->second;
    if (!plan.usable) return false;
    if (g.epilogue != Epilogue::None) set_desc(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, g.bias, g);
    const float alpha = 1.0f, beta = 0.0f;
    check_lt(cublasLtMatmul(lt, plan.desc, &alpha, g.A, plan.a, g.B, plan.b, &beta, g.C, plan.c, g.C, plan.c,
                            &plan.algo, ctx.cublas_workspace, ctx.cublas_workspace_bytes, ctx.stream),
             "cublasLtMatmul", g);
    return true;
}

}  // namespace

void set_tf32(bool on) { g_tf32.store(on); }
bool tf32_enabled() { return g_tf32.load(); }

void CudaBackend::matmul(const Tensor& a, const Tensor& b, Tensor& out, bool trans_a, bool trans_b) {
    const Gemm g = column_major_gemm(a, b, out, trans_a, trans_b);
    if (out.numel() == 0) return;
    const int device = out.device().index;
    if (g.k == 0) {  // an empty sum: out = 0
        RC_CUDA_CHECK(cudaMemsetAsync(out.raw_data(), 0, out.numel() * dtype_size(out.dtype()),
                                      cuda_stream(device)));
        return;
    }
    if (!cublaslt_forced_off() && cublaslt_gemm(g, device)) return;
    cublas_gemm(g, device);
}

// x (M, K) @ w (N, K)^T + bias (N) -> out (M, N), in one cuBLASLt call where it has an algorithm
// with the bias epilogue; otherwise the GEMM and a broadcast add (Backend::linear).
void CudaBackend::linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out) {
    if (bias.defined() && out.numel() > 0 && x.size(1) > 0 && !cublaslt_forced_off()) {
        Gemm g = column_major_gemm(x, w, out, false, true);
        RC_CHECK(bias.dtype() == out.dtype() && bias.numel() == g.m, "cuda linear: bias ", bias.str(),
                 " does not fit out ", out.str());
        g.epilogue = Epilogue::Bias;
        g.bias = bias.raw_data();
        if (cublaslt_gemm(g, out.device().index)) return;
    }
    Backend::linear(x, w, bias, out);
}

// gw (N, K) = g (M, N)^T @ x (M, K) and gb (N) = g's column sums, in one cuBLASLt call where it
// has an algorithm with the BGRADB epilogue; otherwise the GEMM and a reduce_cols.
void CudaBackend::linear_weight_grad(const Tensor& g, const Tensor& x, Tensor& gw, Tensor& gb) {
    if (gb.defined() && !cublaslt_forced_off()) {
        Gemm gemm = column_major_gemm(g, x, gw, true, false);
        RC_CHECK(gb.dtype() == gw.dtype() && gb.numel() == gemm.n, "cuda linear_weight_grad: bias gradient ",
                 gb.str(), " does not fit ", gw.str());
        gemm.epilogue = Epilogue::BiasGradB;
        gemm.bias = gb.raw_data();
        if (cublaslt_gemm(gemm, gw.device().index)) return;
    }
    Backend::linear_weight_grad(g, x, gw, gb);
}

}  // namespace rankclip
