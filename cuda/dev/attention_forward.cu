// cuda/dev/attention_forward.cu
// defines: scaled-dot-product attention forward variants, q (BH, Tq, D), k, v (BH, Tk, D) ->
// out (BH, Tq, D), lse (BH, Tq), optional causal mask (key j visible to query i iff j <= i);
// a CPU reference, the correctness check over shapes and block sizes, and a benchmark against
// a cuBLAS-based naive attention (S = Q K^T in global memory, softmax, O = P V).
//   kernel1: one warp per query row, looping over every key (online softmax, no tiles).
//   kernel2: flash-style tiles: K/V tiles of 32 keys in shared memory, one lane per key for the
//            scores, one lane per head dim for P V; one query row per warp.
//   kernel3: kernel2 with four query rows per warp (each K/V value read from shared memory
//            serves four rows). This is the design of cuda/attention.cu.
//   kernel4: kernel3 with 128-bit shared-memory reads for the scores (float4 along D).
// The number of warps per block is the "block size" swept by the checks.
//   kernel5: bf16 on the tensor cores (q, k, v, out bf16, lse fp32; D = 64 only), flash-style:
//            a block of 4 warps takes 64 query rows of one (b, h), 16 per warp; K and V tiles of
//            64 keys pass through shared memory; each warp's 16 x 64 scores come from WMMA
//            16x16x16 products with fp32 accumulators, the online softmax keeps each row's max
//            and sum in registers (two lanes a row), P goes to shared memory in bf16, and P V
//            (WMMA again) is added into the warp's fp32 output rows in shared memory, where the
//            per-row rescale can be done (a WMMA accumulator's layout is opaque). Checked on the
//            bf16-rounded inputs against the same CPU reference, and timed against the engine's
//            present bf16 path (cuda/attention_gemm.cu: S in fp32 and P in bf16 through global
//            memory, cuBLAS GEMMs). Written without a GPU on 2026-12-04: not yet run.
// Usage: ./attention_forward [variant]   (no argument: all variants)
#include "common.h"
#include "wmma_tiles.h"

// ---------------------------------------------------------------------------------------------
// CPU reference (double)

void attention_forward_cpu(const float* q, const float* k, const float* v, float* out, float* lse, int BH,
                           int Tq, int Tk, int D, bool causal, float scale) {
    std::vector<double> p(Tk), acc(D);
    for (int bh = 0; bh < BH; bh++)
        for (int i = 0; i < Tq; i++) {
            const float* qi = q + (size_t(bh) * Tq + i) * D;
            int keys = causal ? std::min(Tk, i + 1) : Tk;
            double m = -INFINITY;
            for (int j = 0; j < keys; j++) {
                const float* kj = k + (size_t(bh) * Tk + j) * D;
                double s = 0;
                for (int d = 0; d < D; d++) s += double(qi[d]) * kj[d];
                p[j] = s * scale;
                m = std::max(m, p[j]);
            }
            double sum = 0;
            for (int j = 0; j < keys; j++) sum += (p[j] = std::exp(p[j] - m));
            std::fill(acc.begin(), acc.end(), 0.0);
            for (int j = 0; j < keys; j++)
                for (int d = 0; d < D; d++) acc[d] += p[j] * v[(size_t(bh) * Tk + j) * D + d];
            for (int d = 0; d < D; d++) out[(size_t(bh) * Tq + i) * D + d] = float(acc[d] / sum);
            lse[size_t(bh) * Tq + i] = float(m + std::log(sum));
        }
}

// ---------------------------------------------------------------------------------------------
// kernel1: one warp per query row; lane c owns dims c, c + 32, ... (kDL of them)

template <int kDL>
__global__ void attention_forward_kernel1(const float* q, const float* k, const float* v, float* out, float* lse,
                                          int BH, int Tq, int Tk, int D, bool causal, float scale) {
    int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;  // bh * Tq + i
    int lane = threadIdx.x % 32;
    if (row >= int64_t(BH) * Tq) return;
    int64_t bh = row / Tq;
    int i = int(row % Tq);
    const float* qi = q + row * D;
    float qv[kDL], o[kDL];
    for (int c = 0; c < kDL; c++) {
        int d = c * 32 + lane;
        qv[c] = d < D ? qi[d] : 0.0f;
        o[c] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    int keys = causal ? min(Tk, i + 1) : Tk;
    for (int j = 0; j < keys; j++) {
        const float* kj = k + (bh * Tk + j) * D;
        const float* vj = v + (bh * Tk + j) * D;
        float s = 0.0f;
        for (int c = 0; c < kDL; c++) {
            int d = c * 32 + lane;
            if (d < D) s += qv[c] * kj[d];
        }
        s = warp_sum(s) * scale;
        float m_new = fmaxf(m, s);
        float alpha = expf(m - m_new), p = expf(s - m_new);
        l = l * alpha + p;
        for (int c = 0; c < kDL; c++) {
            int d = c * 32 + lane;
            o[c] = o[c] * alpha + (d < D ? p * vj[d] : 0.0f);
        }
        m = m_new;
    }
    for (int c = 0; c < kDL; c++) {
        int d = c * 32 + lane;
        if (d < D) out[row * D + d] = l > 0 ? o[c] / l : 0.0f;
    }
    if (lane == 0) lse[row] = l > 0 ? m + logf(l) : -INFINITY;
}

// ---------------------------------------------------------------------------------------------
// kernels 2-4: tiled. Block = `warps` warps, each with kRows query rows; the block's query tile
// is warps * kRows rows. Keys come in tiles of 32, one per lane. Shared memory (floats):
//   Qs (query tile, Dp) | Ks (32, Dp + kPad) | Vs (32, Dp), Dp = 32 * kDL
// The K rows are padded so that lane j reading Ks[j][d] hits distinct banks (kPad = 1 for
// scalar reads; 4 for float4 reads, which a quarter-warp serves 8 lanes at a time).

constexpr int kKeyTile = 32;

template <int kDL, int kRows, bool kVec4>
__global__ void attention_forward_tiled(const float* __restrict__ q, const float* __restrict__ k,
                                        const float* __restrict__ v, float* __restrict__ out,
                                        float* __restrict__ lse, int Tq, int Tk, int D, int n_qtiles,
                                        bool causal, float scale) {
    constexpr int Dp = kDL * 32;
    constexpr int kPad = kVec4 ? 4 : 1;
    extern __shared__ __align__(16) float smem[];
    const int warps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int query_tile = warps * kRows;
    float* Qs = smem;                          // (query_tile, Dp)
    float* Ks = Qs + query_tile * Dp;          // (32, Dp + kPad)
    float* Vs = Ks + kKeyTile * (Dp + kPad);   // (32, Dp)

    const int64_t bh = blockIdx.x / n_qtiles;
    const int q0 = (blockIdx.x % n_qtiles) * query_tile;
    const float* qb = q + bh * Tq * D;
    const float* kb = k + bh * Tk * D;
    const float* vb = v + bh * Tk * D;

    for (int idx = threadIdx.x; idx < query_tile * Dp; idx += blockDim.x) {
        int r = idx / Dp, d = idx % Dp, i = q0 + r;
        Qs[idx] = (i < Tq && d < D) ? qb[int64_t(i) * D + d] : 0.0f;
    }
    float m[kRows], l[kRows], o[kRows][kDL];
    for (int r = 0; r < kRows; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
        for (int c = 0; c < kDL; c++) o[r][c] = 0.0f;
    }
    const int row0 = warp * kRows;  // this warp's first row in the tile
    const int q_last = min(Tq, q0 + query_tile) - 1;
    const int k_end = causal ? min(Tk, q_last + 1) : Tk;

    for (int k0 = 0; k0 < k_end; k0 += kKeyTile) {
        __syncthreads();  // the previous tile is consumed (and Qs is written, the first time)
        for (int idx = threadIdx.x; idx < kKeyTile * Dp; idx += blockDim.x) {
            int j = idx / Dp, d = idx % Dp, key = k0 + j;
            bool in = key < Tk && d < D;
            Ks[j * (Dp + kPad) + d] = in ? kb[int64_t(key) * D + d] : 0.0f;
            Vs[j * Dp + d] = in ? vb[int64_t(key) * D + d] : 0.0f;
        }
        __syncthreads();

        // scores: lane = key
        float s[kRows];
        for (int r = 0; r < kRows; r++) s[r] = 0.0f;
        const float* krow = Ks + lane * (Dp + kPad);
        if constexpr (kVec4) {
#pragma unroll 8
            for (int d = 0; d < Dp; d += 4) {
                float4 kv = *reinterpret_cast<const float4*>(krow + d);
#pragma unroll
                for (int r = 0; r < kRows; r++) {
                    float4 qv = *reinterpret_cast<const float4*>(Qs + (row0 + r) * Dp + d);
                    s[r] += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
                }
            }
        } else {
#pragma unroll 16
            for (int d = 0; d < Dp; d++) {
                float kv = krow[d];
#pragma unroll
                for (int r = 0; r < kRows; r++) s[r] += Qs[(row0 + r) * Dp + d] * kv;
            }
        }
        // online softmax; p replaces s
        const int key = k0 + lane;
#pragma unroll
        for (int r = 0; r < kRows; r++) {
            int i = q0 + row0 + r;
            bool visible = key < Tk && (!causal || key <= i);
            float x = visible ? s[r] * scale : -INFINITY;
            float m_new = fmaxf(m[r], warp_max(x));
            float p = 0.0f, alpha = 1.0f;
            if (m_new != -INFINITY) {  // warp-uniform
                p = expf(x - m_new);
                alpha = expf(m[r] - m_new);
            }
            l[r] = l[r] * alpha + p;  // per-lane partial sums; alpha is the same for every lane
            m[r] = m_new;
#pragma unroll
            for (int c = 0; c < kDL; c++) o[r][c] *= alpha;
            s[r] = p;
        }
        // o += P V: lane = head dim
        const int jn = min(kKeyTile, k_end - k0);
        for (int j = 0; j < jn; j++) {
            float vj[kDL];
#pragma unroll
            for (int c = 0; c < kDL; c++) vj[c] = Vs[j * Dp + c * 32 + lane];
#pragma unroll
            for (int r = 0; r < kRows; r++) {
                float pj = __shfl_sync(0xffffffffu, s[r], j);
#pragma unroll
                for (int c = 0; c < kDL; c++) o[r][c] += pj * vj[c];
            }
        }
    }
#pragma unroll
    for (int r = 0; r < kRows; r++) {
        int i = q0 + row0 + r;
        float lsum = warp_sum(l[r]);
        if (i >= Tq) continue;
        float inv = lsum > 0.0f ? 1.0f / lsum : 0.0f;
        float* orow = out + (bh * Tq + i) * D;
#pragma unroll
        for (int c = 0; c < kDL; c++) {
            int d = c * 32 + lane;
            if (d < D) orow[d] = o[r][c] * inv;
        }
        if (lane == 0) lse[bh * Tq + i] = lsum > 0.0f ? m[r] + logf(lsum) : -INFINITY;
    }
}

// ---------------------------------------------------------------------------------------------
// the cuBLAS reference: S = scale Q K^T (BH, Tq, Tk) in global memory, masked softmax in place,
// O = P V

__global__ void masked_softmax_rows(float* s, float* lse, int64_t rows, int Tq, int Tk, bool causal, float scale) {
    int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= rows) return;
    int i = int(row % Tq);
    float* sr = s + row * Tk;
    int keys = causal ? min(Tk, i + 1) : Tk;
    float m = -INFINITY, sum = 0.0f;
    for (int j = lane; j < keys; j += 32) {
        float x = sr[j] * scale;
        if (x > m) {
            sum = sum * expf(m - x) + 1.0f;
            m = x;
        } else {
            sum += expf(x - m);
        }
    }
    warp_online_merge(m, sum);
    for (int j = lane; j < Tk; j += 32) sr[j] = j < keys ? expf(sr[j] * scale - m) / sum : 0.0f;
    if (lane == 0) lse[row] = m + logf(sum);
}

struct CublasAttention {
    cublasHandle_t handle;
    float* scores = nullptr;
    CublasAttention() { CUBLAS_CHECK(cublasCreate(&handle)); }
    ~CublasAttention() {
        cublasDestroy(handle);
        if (scores) cudaFree(scores);
    }
    void operator()(const float* q, const float* k, const float* v, float* out, float* lse, int BH, int Tq,
                    int Tk, int D, bool causal, float scale) {
        if (!scores) scores = device_alloc<float>(size_t(BH) * Tq * Tk);
        const float one = 1.0f, zero = 0.0f;
        // row-major S (Tq, Tk) = Q (Tq, D) K^T: column-major S^T (Tk, Tq) = K (Tk, D as col-major D x Tk)^T ...
        CUBLAS_CHECK(cublasSgemmStridedBatched(handle, CUBLAS_OP_T, CUBLAS_OP_N, Tk, Tq, D, &one, k, D,
                                               int64_t(Tk) * D, q, D, int64_t(Tq) * D, &zero, scores, Tk,
                                               int64_t(Tq) * Tk, BH));
        int64_t rows = int64_t(BH) * Tq;
        masked_softmax_rows<<<unsigned(ceil_div<int64_t>(rows, 4)), 128>>>(scores, lse, rows, Tq, Tk, causal, scale);
        CUDA_CHECK_LAUNCH();
        // row-major O (Tq, D) = P (Tq, Tk) V (Tk, D): column-major O^T = V^T P^T
        CUBLAS_CHECK(cublasSgemmStridedBatched(handle, CUBLAS_OP_N, CUBLAS_OP_N, D, Tq, Tk, &one, v, D,
                                               int64_t(Tk) * D, scores, Tk, int64_t(Tq) * Tk, &zero, out, D,
                                               int64_t(Tq) * D, BH));
    }
};

// ---------------------------------------------------------------------------------------------
// kernel5: bf16 on the tensor cores (see the top of the file)

namespace tc {

constexpr int kQTile = kTile;  // query rows per block, 16 per warp
constexpr int kKTile = kTile;  // keys per K/V tile
constexpr size_t kSmemBytes = size_t(kQTile + 2 * kKTile + kQTile) * kLd * sizeof(bf16)  // Q, K, V, P
                              + size_t(2 * kQTile) * kLdF * sizeof(float);                // S (and P V), O

// grid (ceil(Tq / 64), BH), 128 threads, kSmemBytes of dynamic shared memory
__global__ void __launch_bounds__(kWarps * 32)
    attention_forward_kernel5(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                              bf16* __restrict__ out, float* __restrict__ lse, int Tq, int Tk, bool causal,
                              float scale) {
    extern __shared__ __align__(128) unsigned char smem[];
    bf16* sq = reinterpret_cast<bf16*>(smem);
    bf16* sk = sq + kQTile * kLd;
    bf16* sv = sk + kKTile * kLd;
    bf16* sp = sv + kKTile * kLd;
    float* ss = reinterpret_cast<float*>(sp + kQTile * kLd);
    float* so = ss + kQTile * kLdF;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t bh = blockIdx.y;
    const int q0 = blockIdx.x * kQTile;

    load_tile(sq, q + (bh * Tq + q0) * kD, min(kQTile, Tq - q0));
    const bf16* wq = sq + warp * 16 * kLd;  // this warp's 16 query rows
    bf16* wp = sp + warp * 16 * kLd;        // its P (16 x 64 keys)
    float* ws = ss + warp * 16 * kLdF;      // its S, then its P V
    float* wo = so + warp * 16 * kLdF;      // its output rows, fp32
    for (int idx = lane; idx < 16 * kD; idx += 32) wo[(idx / kD) * kLdF + idx % kD] = 0.0f;
    __syncwarp();  // each lane then works on rows other lanes zeroed

    // lane: row r of the warp's 16, half h of the 64 columns
    const int r = lane / 2, h = lane % 2;
    const int qi = q0 + warp * 16 + r;
    float m = -INFINITY, l = 0.0f;
    float* srow = ws + r * kLdF + h * 32;
    float* orow = wo + r * kLdF + h * 32;
    bf16* prow = wp + r * kLd + h * 32;

    const int key_end = causal ? min(Tk, q0 + kQTile) : Tk;
    for (int k0 = 0; k0 < key_end; k0 += kKTile) {
        __syncthreads();  // every warp is done with the previous K and V tiles
        load_tile(sk, k + (bh * Tk + k0) * kD, min(kKTile, Tk - k0));
        load_tile(sv, v + (bh * Tk + k0) * kD, min(kKTile, Tk - k0));
        __syncthreads();

        FragC acc[4];
        zero(acc);
        mma_16x64x64<true>(acc, wq, sk);  // S (16 x 64 keys) = Q_w K^T
        store(ws, acc);
        __syncwarp();

        // online softmax over this tile's 64 keys: each lane 32 of its row's scores
        float x[32], tile_max = -INFINITY;
#pragma unroll
        for (int c = 0; c < 32; c++) {
            const int key = k0 + h * 32 + c;
            const bool visible = key < Tk && (!causal || key <= qi);
            x[c] = visible ? srow[c] * scale : -INFINITY;
            tile_max = fmaxf(tile_max, x[c]);
        }
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
        const float m_new = fmaxf(m, tile_max);
        const float alpha = m_new == -INFINITY ? 1.0f : __expf(m - m_new);
        float sum = 0.0f;
#pragma unroll
        for (int c = 0; c < 32; c++) {
            const float p = x[c] == -INFINITY ? 0.0f : __expf(x[c] - m_new);
            prow[c] = __float2bfloat16(p);
            sum += p;
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        l = l * alpha + sum;
        m = m_new;
#pragma unroll
        for (int c = 0; c < 32; c++) orow[c] *= alpha;
        __syncwarp();

        zero(acc);
        mma_16x64x64<false>(acc, wp, sv);  // P V (16 x D) into ws, then added to the output rows
        store(ws, acc);
        __syncwarp();
#pragma unroll
        for (int c = 0; c < 32; c++) orow[c] += srow[c];
        __syncwarp();  // before the next tile's scores overwrite ws
    }

    if (qi < Tq) {
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;
        bf16* og = out + (bh * Tq + qi) * kD + h * 32;
#pragma unroll
        for (int c = 0; c < 32; c++) og[c] = __float2bfloat16(orow[c] * inv);
        if (h == 0) lse[bh * Tq + qi] = l > 0.0f ? m + logf(l) : -INFINITY;
    }
}

void attention_forward_tc(const bf16* q, const bf16* k, const bf16* v, bf16* out, float* lse, int BH, int Tq,
                          int Tk, bool causal, float scale) {
    static bool configured = false;
    if (!configured) {
        CUDA_CHECK(cudaFuncSetAttribute(attention_forward_kernel5, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        int(kSmemBytes)));
        configured = true;
    }
    dim3 grid(unsigned(ceil_div(Tq, kQTile)), unsigned(BH));
    attention_forward_kernel5<<<grid, kWarps * 32, kSmemBytes>>>(q, k, v, out, lse, Tq, Tk, causal, scale);
    CUDA_CHECK_LAUNCH();
}

// The engine's present bf16 path (cuda/attention_gemm.cu), with strided batches: S = scale Q K^T
// in fp32, a row kernel for lse and P in bf16, O = P V in bf16.
__global__ void softmax_to_bf16_rows(const float* s, bf16* p, float* lse, int64_t rows, int Tq, int Tk, bool causal,
                                     float scale) {
    const int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= rows) return;
    const int i = int(row % Tq);
    const int keys = causal ? min(Tk, i + 1) : Tk;
    const float* sr = s + row * Tk;
    float mx = -INFINITY;
    for (int j = lane; j < keys; j += 32) mx = fmaxf(mx, sr[j] * scale);
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int j = lane; j < keys; j += 32) sum += __expf(sr[j] * scale - mx);
    const float l = mx + logf(warp_sum(sum));
    for (int j = lane; j < Tk; j += 32) p[row * Tk + j] = __float2bfloat16(j < keys ? __expf(sr[j] * scale - l) : 0.0f);
    if (lane == 0) lse[row] = l;
}

struct GemmPathAttention {
    cublasHandle_t handle;
    float* scores = nullptr;
    bf16* probs = nullptr;
    GemmPathAttention() { CUBLAS_CHECK(cublasCreate(&handle)); }
    ~GemmPathAttention() {
        cublasDestroy(handle);
        if (scores) cudaFree(scores);
        if (probs) cudaFree(probs);
    }
    void operator()(const bf16* q, const bf16* k, const bf16* v, bf16* out, float* lse, int BH, int Tq, int Tk,
                    bool causal, float scale) {
        const size_t n = size_t(BH) * Tq * Tk;
        if (!scores) scores = device_alloc<float>(n), probs = device_alloc<bf16>(n);
        const float one = 1.0f, zero = 0.0f;
        CUBLAS_CHECK(cublasGemmStridedBatchedEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, Tk, Tq, kD, &one, k, CUDA_R_16BF, kD,
                                                int64_t(Tk) * kD, q, CUDA_R_16BF, kD, int64_t(Tq) * kD, &zero, scores,
                                                CUDA_R_32F, Tk, int64_t(Tq) * Tk, BH, CUBLAS_COMPUTE_32F,
                                                CUBLAS_GEMM_DEFAULT));
        const int64_t rows = int64_t(BH) * Tq;
        softmax_to_bf16_rows<<<unsigned(ceil_div<int64_t>(rows, 8)), 256>>>(scores, probs, lse, rows, Tq, Tk, causal,
                                                                             scale);
        CUDA_CHECK_LAUNCH();
        CUBLAS_CHECK(cublasGemmStridedBatchedEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, kD, Tq, Tk, &one, v, CUDA_R_16BF, kD,
                                                int64_t(Tk) * kD, probs, CUDA_R_16BF, Tk, int64_t(Tq) * Tk, &zero, out,
                                                CUDA_R_16BF, kD, int64_t(Tq) * kD, BH, CUBLAS_COMPUTE_32F,
                                                CUBLAS_GEMM_DEFAULT));
    }
};

}  // namespace tc

// ---------------------------------------------------------------------------------------------
// launcher

template <int kDL>
void attention_forward_dl(int variant, const float* q, const float* k, const float* v, float* out, float* lse,
                          int BH, int Tq, int Tk, int D, bool causal, float scale, int warps) {
    if (variant == 1) {
        int64_t rows = int64_t(BH) * Tq;
        attention_forward_kernel1<kDL><<<unsigned(ceil_div<int64_t>(rows, warps)), warps * 32>>>(
            q, k, v, out, lse, BH, Tq, Tk, D, causal, scale);
        CUDA_CHECK_LAUNCH();
        return;
    }
    const int rows = variant == 2 ? 1 : 4;
    const int pad = variant == 4 ? 4 : 1;
    const int query_tile = warps * rows, Dp = kDL * 32;
    const int n_qtiles = ceil_div(Tq, query_tile);
    size_t smem = (size_t(query_tile) * Dp + size_t(kKeyTile) * (Dp + pad) + size_t(kKeyTile) * Dp) * sizeof(float);
    dim3 grid(unsigned(int64_t(BH) * n_qtiles));
    auto launch = [&](auto kernel) {
        if (smem > 48 * 1024)
            CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
        kernel<<<grid, warps * 32, smem>>>(q, k, v, out, lse, Tq, Tk, D, n_qtiles, causal, scale);
    };
    if (variant == 2) launch(attention_forward_tiled<kDL, 1, false>);
    if (variant == 3) launch(attention_forward_tiled<kDL, 4, false>);
    if (variant == 4) launch(attention_forward_tiled<kDL, 4, true>);
    CUDA_CHECK_LAUNCH();
}

void attention_forward(int variant, const float* q, const float* k, const float* v, float* out, float* lse,
                       int BH, int Tq, int Tk, int D, bool causal, float scale, int warps) {
    if (D <= 32) attention_forward_dl<1>(variant, q, k, v, out, lse, BH, Tq, Tk, D, causal, scale, warps);
    else if (D <= 64) attention_forward_dl<2>(variant, q, k, v, out, lse, BH, Tq, Tk, D, causal, scale, warps);
    else if (D <= 128) attention_forward_dl<4>(variant, q, k, v, out, lse, BH, Tq, Tk, D, causal, scale, warps);
    else attention_forward_dl<8>(variant, q, k, v, out, lse, BH, Tq, Tk, D, causal, scale, warps);
}

int main(int argc, char** argv) {
    require_cuda_device_or_exit("attention_forward");
    const int variant = selected_variant(argc, argv);
    const int n_variants = 4;
    bool ok = true;

    struct Case { int BH, Tq, Tk, D; bool causal; };
    const Case cases[] = {{1, 1, 1, 1, false},   {2, 7, 7, 16, true},    {3, 77, 77, 64, true},
                          {2, 50, 50, 64, false}, {1, 33, 65, 128, false}, {1, 65, 33, 128, true},
                          {2, 130, 130, 80, true}, {1, 40, 70, 256, true}, {2, 5, 300, 32, false},
                          {2, 197, 197, 64, false}, {1, 130, 70, 64, true},   {1, 33, 129, 64, false}};
    for (const Case& t : cases) {
        size_t nq = size_t(t.BH) * t.Tq * t.D, nk = size_t(t.BH) * t.Tk * t.D;
        std::vector<float> q = random_normal(nq, 21), k = random_normal(nk, 22), v = random_normal(nk, 23);
        std::vector<float> out(nq), lse(size_t(t.BH) * t.Tq);
        float scale = 1.0f / std::sqrt(float(t.D));
        attention_forward_cpu(q.data(), k.data(), v.data(), out.data(), lse.data(), t.BH, t.Tq, t.Tk, t.D, t.causal, scale);
        float *dq = device_from_host(q), *dk = device_from_host(k), *dv = device_from_host(v);
        float *dout = device_alloc<float>(nq), *dlse = device_alloc<float>(lse.size());
        for (int var = 1; var <= n_variants; var++) {  // the fp32 variants (kernel5 below)
            if (variant && var != variant) continue;
            for (int warps : {1, 2, 4, 8}) {
                CUDA_CHECK(cudaMemset(dout, 0, nq * sizeof(float)));
                attention_forward(var, dq, dk, dv, dout, dlse, t.BH, t.Tq, t.Tk, t.D, t.causal, scale, warps);
                CUDA_CHECK(cudaDeviceSynchronize());
                bool good = validate_device("out", dout, out.data(), nq, 2e-5f, 1e-4f) &&
                            validate_device("lse", dlse, lse.data(), lse.size(), 2e-5f, 1e-5f);
                if (!good)
                    std::printf("kernel%d failed at BH=%d Tq=%d Tk=%d D=%d causal=%d warps=%d\n", var, t.BH, t.Tq,
                                t.Tk, t.D, int(t.causal), warps);
                ok &= good;
            }
        }
        {  // the cuBLAS reference must agree too
            CublasAttention reference;
            reference(dq, dk, dv, dout, dlse, t.BH, t.Tq, t.Tk, t.D, t.causal, scale);
            CUDA_CHECK(cudaDeviceSynchronize());
            bool good = validate_device("out", dout, out.data(), nq, 2e-5f, 1e-4f);
            if (!good) std::printf("cuBLAS reference failed at BH=%d Tq=%d Tk=%d D=%d\n", t.BH, t.Tq, t.Tk, t.D);
            ok &= good;
        }
        for (float* p : {dq, dk, dv, dout, dlse}) CUDA_CHECK(cudaFree(p));

        // kernel5 and the engine's bf16 GEMM path, on the bf16-rounded inputs (D = 64 only)
        if (t.D == tc::kD && (variant == 0 || variant == 5)) {
            std::vector<float> out16(nq), lse16(lse.size());
            attention_forward_cpu(tc::rounded_to_bf16(q).data(), tc::rounded_to_bf16(k).data(),
                                  tc::rounded_to_bf16(v).data(), out16.data(), lse16.data(), t.BH, t.Tq, t.Tk, t.D,
                                  t.causal, scale);
            tc::bf16 *bq = tc::device_bf16(q), *bk = tc::device_bf16(k), *bv = tc::device_bf16(v);
            tc::bf16 *bout = device_alloc<tc::bf16>(nq), *bout2 = device_alloc<tc::bf16>(nq);
            float *blse = device_alloc<float>(lse.size()), *blse2 = device_alloc<float>(lse.size());
            tc::attention_forward_tc(bq, bk, bv, bout, blse, t.BH, t.Tq, t.Tk, t.causal, scale);
            tc::attention_forward_tc(bq, bk, bv, bout2, blse2, t.BH, t.Tq, t.Tk, t.causal, scale);
            CUDA_CHECK(cudaDeviceSynchronize());
            bool good = validate_device_bf16("out (kernel5)", bout, out16.data(), nq, 1e-2f, 1e-2f) &&
                        validate_device("lse (kernel5)", blse, lse16.data(), lse16.size(), 1e-3f, 1e-3f) &&
                        same_bits("out (kernel5)", bout, bout2, nq) && same_bits("lse (kernel5)", blse, blse2, lse.size());
            if (!good) std::printf("kernel5 failed at BH=%d Tq=%d Tk=%d causal=%d\n", t.BH, t.Tq, t.Tk, int(t.causal));
            ok &= good;
            tc::GemmPathAttention gemm_path;
            gemm_path(bq, bk, bv, bout, blse, t.BH, t.Tq, t.Tk, t.causal, scale);
            CUDA_CHECK(cudaDeviceSynchronize());
            good = validate_device_bf16("out (bf16 GEMM path)", bout, out16.data(), nq, 1e-2f, 1e-2f);
            if (!good) std::printf("bf16 GEMM path failed at BH=%d Tq=%d Tk=%d\n", t.BH, t.Tq, t.Tk);
            ok &= good;
            for (void* p : {(void*)bq, (void*)bk, (void*)bv, (void*)bout, (void*)bout2, (void*)blse, (void*)blse2})
                CUDA_CHECK(cudaFree(p));
        }
    }
    std::printf("correctness: %s\n", ok ? "ok" : "FAILED");

    // benchmark: CLIP text tower (B 256, 8 heads, T 77, causal), ViT-B/16 (B 128, 12 heads,
    // T 197), and a long sequence
    const Case bench[] = {{256 * 8, 77, 77, 64, true}, {128 * 12, 197, 197, 64, false}, {8 * 16, 1024, 1024, 128, true}};
    for (const Case& t : bench) {
        size_t nq = size_t(t.BH) * t.Tq * t.D, nk = size_t(t.BH) * t.Tk * t.D;
        float *dq = device_from_host(random_normal(nq, 24)), *dk = device_from_host(random_normal(nk, 25));
        float *dv = device_from_host(random_normal(nk, 26));
        float *dout = device_alloc<float>(nq), *dlse = device_alloc<float>(size_t(t.BH) * t.Tq);
        float scale = 1.0f / std::sqrt(float(t.D));
        double flops = 4.0 * t.BH * double(t.Tq) * t.Tk * t.D * (t.causal ? 0.5 : 1.0);
        std::printf("benchmark BH=%d T=%d D=%d causal=%d (F32)\n", t.BH, t.Tq, t.D, int(t.causal));
        CublasAttention reference;
        float ref_ms = benchmark_ms(10, [&] { reference(dq, dk, dv, dout, dlse, t.BH, t.Tq, t.Tk, t.D, t.causal, scale); });
        report_flops("cuBLAS naive attention (S in global memory)", ref_ms, flops, 0);
        for (int var = 1; var <= n_variants; var++) {
            if (variant && var != variant) continue;
            for (int warps : {4, 8}) {
                float ms = benchmark_ms(10, [&] {
                    attention_forward(var, dq, dk, dv, dout, dlse, t.BH, t.Tq, t.Tk, t.D, t.causal, scale, warps);
                });
                char what[64];
                std::snprintf(what, sizeof what, "kernel%d, %d warps", var, warps);
                report_flops(what, ms, flops, ref_ms);
            }
        }
        if (t.D == tc::kD && (variant == 0 || variant == 5)) {  // bf16: kernel5 against the engine's GEMM path
            std::printf("benchmark BH=%d T=%d D=%d causal=%d (BF16)\n", t.BH, t.Tq, t.D, int(t.causal));
            tc::bf16 *bq = tc::device_bf16(random_normal(nq, 24)), *bk = tc::device_bf16(random_normal(nk, 25));
            tc::bf16 *bv = tc::device_bf16(random_normal(nk, 26)), *bout = device_alloc<tc::bf16>(nq);
            tc::GemmPathAttention gemm_path;
            float gemm_ms = benchmark_ms(10, [&] { gemm_path(bq, bk, bv, bout, dlse, t.BH, t.Tq, t.Tk, t.causal, scale); });
            report_flops("bf16 GEMM path (cuda/attention_gemm.cu's design)", gemm_ms, flops, 0);
            float ms = benchmark_ms(10, [&] { tc::attention_forward_tc(bq, bk, bv, bout, dlse, t.BH, t.Tq, t.Tk, t.causal, scale); });
            report_flops("kernel5 (tensor cores)", ms, flops, gemm_ms);
            for (void* p : {(void*)bq, (void*)bk, (void*)bv, (void*)bout}) CUDA_CHECK(cudaFree(p));
        }
        for (float* p : {dq, dk, dv, dout, dlse}) CUDA_CHECK(cudaFree(p));
    }
    return finish("attention_forward", ok);
}
