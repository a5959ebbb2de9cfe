// cuda/layer_norm.cu
// defines: CudaBackend::layer_norm (forward, saving mean and rstd in Acc precision: F32 for F32
// and BF16 tensors, F64 for F64) and layer_norm_backward (gx, and gw/gb written when defined).
//
// Forward: one warp per row when C <= 2048 (four rows per block), else one 512-thread block per
// row; two-pass statistics (mean, then the centred sum of squares), as the CPU backend; F32 warp
// rows with C % 4 == 0 are read and written as float4.
// Backward (cuda/dev/layer_norm_backward.cu, kernel3): each block takes a chunk of rows, one warp
// per row computes gx and adds gy * xhat, gy into its own shared-memory accumulators; the block
// sums its warps in warp order into partials (blocks, C), which a second kernel sums in block
// order. No float atomics: gw/gb are bit-identical run to run. Rows too wide for the shared
// accumulators (C > 1600 in F32) take a two-kernel path with the same guarantee: gx by rows,
// then (32-column x row-chunk) blocks into the partials (cuda/dev kernel2).
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cuda/cuda_backend.h"
#include "cuda/fused_common.cuh"

namespace rankclip {

namespace {

using namespace fused;

constexpr int64_t kWarpRowLimit = 2048;  // widest row one warp normalises
constexpr int kBlockRowThreads = 512;
// Fused backward: 8 warps per block, whose per-warp gw/gb sums must fit in this much shared
// memory (C <= 1600 in F32, 800 in F64: every CLIP width). Wider rows take the two-kernel path,
// which measured faster there (cuda/dev/layer_norm_backward.cu on an H200).
constexpr int kFusedWarps = 8;
constexpr size_t kMaxAccumulatorSmem = 100 * 1024;

// x, y: (N, C); w, b: (C) or null; mean, rstd: (N).
// y = (x - mean) * rstd * w + b with rstd = 1 / sqrt(mean((x - mean)^2) + eps)
template <typename T, int kThreads>
__global__ void layer_norm_forward_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                          const T* __restrict__ b, T* __restrict__ y,
                                          Acc<T>* __restrict__ mean, Acc<T>* __restrict__ rstd,
                                          int64_t N, int64_t C, Acc<T> eps) {
    using A = Acc<T>;
    __shared__ A shared[kThreads > 32 ? kThreads / 32 : 1];
    int64_t row;
    int tid;
    group_row_position<kThreads>(row, tid);
    if (row >= N) return;  // whole warps only (block groups never take it)
    const T* xr = x + row * C;
    A sum = A(0);
    for (int64_t c = tid; c < C; c += kThreads) sum += A(load(xr + c));
    A m = group_sum<kThreads>(sum, shared) / A(C);
    A var = A(0);
    for (int64_t c = tid; c < C; c += kThreads) {
        A d = A(load(xr + c)) - m;
        var += d * d;
    }
    A s = A(1) / acc_sqrt(group_sum<kThreads>(var, shared) / A(C) + eps);
    T* yr = y + row * C;
    for (int64_t c = tid; c < C; c += kThreads) {
        A v = (A(load(xr + c)) - m) * s;
        if (w) v *= A(load(w + c));
        if (b) v += A(load(b + c));
        store(yr + c, v);
    }
    if (tid == 0) {
        mean[row] = m;
        rstd[row] = s;
    }
}

// The same for F32 rows read and written four floats at a time (C % 4 == 0, 16-byte aligned
// pointers): 75% of the copy roofline instead of 56% at (12608, 768) on an H200
// (cuda/dev/layer_norm_forward.cu kernel4 vs kernel2).
template <int kThreads>
__global__ void layer_norm_forward_vec4_kernel(const float* __restrict__ x, const float* __restrict__ w,
                                               const float* __restrict__ b, float* __restrict__ y,
                                               float* __restrict__ mean, float* __restrict__ rstd, int64_t N,
                                               int64_t C, float eps) {
    __shared__ float shared[kThreads > 32 ? kThreads / 32 : 1];
    int64_t row;
    int tid;
    group_row_position<kThreads>(row, tid);
    if (row >= N) return;
    const int64_t C4 = C / 4;
    const float4* xr = reinterpret_cast<const float4*>(x + row * C);
    float sum = 0.0f;
    for (int64_t c = tid; c < C4; c += kThreads) {
        float4 v = xr[c];
        sum += (v.x + v.y) + (v.z + v.w);
    }
    float m = group_sum<kThreads>(sum, shared) / float(C);
    float var = 0.0f;
    for (int64_t c = tid; c < C4; c += kThreads) {
        float4 v = xr[c];
        float d0 = v.x - m, d1 = v.y - m, d2 = v.z - m, d3 = v.w - m;
        var += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3);
    }
    float s = 1.0f / sqrtf(group_sum<kThreads>(var, shared) / float(C) + eps);
    const float4* w4 = reinterpret_cast<const float4*>(w);
    const float4* b4 = reinterpret_cast<const float4*>(b);
    float4* yr = reinterpret_cast<float4*>(y + row * C);
    for (int64_t c = tid; c < C4; c += kThreads) {
        float4 v = xr[c];
        float4 o = make_float4((v.x - m) * s, (v.y - m) * s, (v.z - m) * s, (v.w - m) * s);
        if (w) {
            float4 wv = w4[c];
            o = make_float4(o.x * wv.x, o.y * wv.y, o.z * wv.z, o.w * wv.w);
        }
        if (b) {
            float4 bv = b4[c];
            o = make_float4(o.x + bv.x, o.y + bv.y, o.z + bv.z, o.w + bv.w);
        }
        yr[c] = o;
    }
    if (tid == 0) {
        mean[row] = m;
        rstd[row] = s;
    }
}

// gy, x, gx: (N, C); w: (C) or null; mean, rstd: (N). Block b handles rows
// [b * rows_per_block, (b + 1) * rows_per_block), one warp per row.
// forward was: xhat = (x - mean) * rstd;  y = xhat * w + b, so
//   gx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = gy * w
//   gw = sum over rows of gy * xhat, gb = sum over rows of gy
// kWeightGrads: also writes this block's gw/gb sums to partial_w/partial_b (blocks, C); needs
// (warps, 2, C) accumulators of dynamic shared memory.
template <typename T, bool kWeightGrads>
__global__ void layer_norm_backward_kernel(const T* __restrict__ gy, const T* __restrict__ x,
                                           const T* __restrict__ w, const Acc<T>* __restrict__ mean,
                                           const Acc<T>* __restrict__ rstd, T* __restrict__ gx,
                                           Acc<T>* __restrict__ partial_w, Acc<T>* __restrict__ partial_b,
                                           int64_t N, int64_t C, int64_t rows_per_block) {
    using A = Acc<T>;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    A* accumulators = reinterpret_cast<A*>(smem_raw);  // (warps, 2, C)
    int warps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    A* acc_w = accumulators + int64_t(warp) * 2 * C;
    A* acc_b = acc_w + C;
    if constexpr (kWeightGrads)
        for (int64_t c = lane; c < C; c += 32) acc_w[c] = acc_b[c] = A(0);
    int64_t row_begin = int64_t(blockIdx.x) * rows_per_block;
    int64_t row_end = min(N, row_begin + rows_per_block);
    for (int64_t n = row_begin + warp; n < row_end; n += warps) {
        const T* gyr = gy + n * C;
        const T* xr = x + n * C;
        A m = mean[n], s = rstd[n];
        A dxhat_sum = A(0), dxhat_xhat_sum = A(0);
        for (int64_t c = lane; c < C; c += 32) {
            // rounded product (no FMA): pass 2 must see the same dxhat for the sums to cancel
            A dxhat = w ? acc_mul_rn(A(load(gyr + c)), A(load(w + c))) : A(load(gyr + c));
            dxhat_sum += dxhat;
            dxhat_xhat_sum += dxhat * ((A(load(xr + c)) - m) * s);
        }
        A dxhat_mean = warp_sum(dxhat_sum) / A(C);
        A dxhat_xhat_mean = warp_sum(dxhat_xhat_sum) / A(C);
        T* gxr = gx + n * C;
        for (int64_t c = lane; c < C; c += 32) {
            A g = A(load(gyr + c));
            A xhat = (A(load(xr + c)) - m) * s;
            A dxhat = w ? acc_mul_rn(g, A(load(w + c))) : g;
            store(gxr + c, (dxhat - dxhat_mean - xhat * dxhat_xhat_mean) * s);
            if constexpr (kWeightGrads) {
                acc_w[c] += g * xhat;  // this warp's own slice: no race, row order fixed
                acc_b[c] += g;
            }
        }
    }
    if constexpr (kWeightGrads) {
        __syncthreads();
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
            A sw = A(0), sb = A(0);
            for (int i = 0; i < warps; i++) {
                sw += accumulators[int64_t(i) * 2 * C + c];
                sb += accumulators[int64_t(i) * 2 * C + C + c];
            }
            partial_w[int64_t(blockIdx.x) * C + c] = sw;
            partial_b[int64_t(blockIdx.x) * C + c] = sb;
        }
    }
}

// The wide-row path of gw/gb: block (32, 8) sums 32 columns over one chunk of rows into
// partial_w/partial_b (chunks, C). Thread (tx, ty) takes rows ty, ty + 8, ...; the eight
// partial sums are then added in ty order.
template <typename T>
__global__ void layer_norm_weight_grad_partials_kernel(const T* __restrict__ gy, const T* __restrict__ x,
                                                       const Acc<T>* __restrict__ mean,
                                                       const Acc<T>* __restrict__ rstd,
                                                       Acc<T>* __restrict__ partial_w,
                                                       Acc<T>* __restrict__ partial_b, int64_t N, int64_t C,
                                                       int64_t rows_per_chunk) {
    using A = Acc<T>;
    __shared__ A sw_s[8][33], sb_s[8][33];
    int64_t c = int64_t(blockIdx.x) * 32 + threadIdx.x;
    int64_t chunk = blockIdx.y;
    int64_t row_begin = chunk * rows_per_chunk, row_end = min(N, row_begin + rows_per_chunk);
    A sw = A(0), sb = A(0);
    if (c < C) {
        for (int64_t n = row_begin + threadIdx.y; n < row_end; n += 8) {
            A g = A(load(gy + n * C + c));
            sw += g * ((A(load(x + n * C + c)) - mean[n]) * rstd[n]);
            sb += g;
        }
    }
    sw_s[threadIdx.y][threadIdx.x] = sw;
    sb_s[threadIdx.y][threadIdx.x] = sb;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        A tw = A(0), tb = A(0);
        for (int i = 0; i < 8; i++) {
            tw += sw_s[i][threadIdx.x];
            tb += sb_s[i][threadIdx.x];
        }
        partial_w[chunk * C + c] = tw;
        partial_b[chunk * C + c] = tb;
    }
}

// gw[c] = sum over parts of partial_w[part, c], in part order (gb likewise); either may be null.
template <typename T>
__global__ void layer_norm_reduce_partials_kernel(const Acc<T>* __restrict__ partial_w,
                                                  const Acc<T>* __restrict__ partial_b, T* __restrict__ gw,
                                                  T* __restrict__ gb, int64_t parts, int64_t C) {
    using A = Acc<T>;
    int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (c >= C) return;
    A sw = A(0), sb = A(0);
    for (int64_t p = 0; p < parts; p++) {
        sw += partial_w[p * C + c];
        sb += partial_b[p * C + c];
    }
    if (gw) store(gw + c, sw);
    if (gb) store(gb + c, sb);
}

template <typename T>
void layer_norm_backward_launch(const T* gy, const T* x, const T* w, const Acc<T>* mean, const Acc<T>* rstd,
                                T* gx, T* gw, T* gb, int64_t N, int64_t C, int device) {
    using A = Acc<T>;
    CudaContext& ctx = cuda_context(device);
    cudaStream_t stream = ctx.stream;
    bool weight_grads = gw != nullptr || gb != nullptr;
    size_t smem = size_t(kFusedWarps) * 2 * size_t(C) * sizeof(A);  // per-warp gw/gb sums

    if (!weight_grads || smem > kMaxAccumulatorSmem) {
        // gx only: four rows per 128-thread block
        layer_norm_backward_kernel<T, false><<<unsigned((N + 3) / 4), 128, 0, stream>>>(
            gy, x, w, mean, rstd, gx, nullptr, nullptr, N, C, 4);
        RC_CUDA_CHECK_LAUNCH("layer_norm_backward_kernel");
        if (!weight_grads) return;
        // wide rows: gw/gb from (32 columns x row chunk) blocks; about four blocks per SM
        int64_t strips = (C + 31) / 32;
        int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(N, 4 * ctx.num_sms / std::max<int64_t>(strips, 1)));
        chunks = std::min<int64_t>(chunks, 65535);
        int64_t rows_per_chunk = (N + chunks - 1) / chunks;
        chunks = (N + rows_per_chunk - 1) / rows_per_chunk;
        DeviceScratch partials(ctx, 2 * size_t(chunks) * size_t(C) * sizeof(A));
        A* partial_w = partials.as<A>();
        A* partial_b = partial_w + chunks * C;
        layer_norm_weight_grad_partials_kernel<T><<<dim3(unsigned(strips), unsigned(chunks)), dim3(32, 8), 0, stream>>>(
            gy, x, mean, rstd, partial_w, partial_b, N, C, rows_per_chunk);
        RC_CUDA_CHECK_LAUNCH("layer_norm_weight_grad_partials_kernel");
        layer_norm_reduce_partials_kernel<T><<<unsigned((C + 255) / 256), 256, 0, stream>>>(
            partial_w, partial_b, gw, gb, chunks, C);
        RC_CUDA_CHECK_LAUNCH("layer_norm_reduce_partials_kernel");
        return;
    }

    // fused: as many blocks as fit on the GPU at once, each a contiguous chunk of rows (the grid
    // depends only on N, C and the device, so the summation order is the same every run)
    auto kernel = layer_norm_backward_kernel<T, true>;
    allow_dynamic_smem(kernel, smem);
    int blocks_per_sm = 0;
    RC_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_sm, kernel, kFusedWarps * 32, smem));
    int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(int64_t(ctx.num_sms) * std::max(blocks_per_sm, 1),
                                                            (N + kFusedWarps - 1) / kFusedWarps));
    int64_t rows_per_block = (N + blocks - 1) / blocks;
    blocks = (N + rows_per_block - 1) / rows_per_block;
    DeviceScratch partials(ctx, 2 * size_t(blocks) * size_t(C) * sizeof(A));
    A* partial_w = partials.as<A>();
    A* partial_b = partial_w + blocks * C;
    kernel<<<unsigned(blocks), kFusedWarps * 32, smem, stream>>>(
        gy, x, w, mean, rstd, gx, partial_w, partial_b, N, C, rows_per_block);
    RC_CUDA_CHECK_LAUNCH("layer_norm_backward_kernel");
    layer_norm_reduce_partials_kernel<T><<<unsigned((C + 255) / 256), 256, 0, stream>>>(
        partial_w, partial_b, gw, gb, blocks, C);
    RC_CUDA_CHECK_LAUNCH("layer_norm_reduce_partials_kernel");
}

// null counts as aligned (an absent weight or bias)
inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <typename T>
const T* data_or_null(const Tensor& t) {
    return t.defined() ? static_cast<const T*>(t.raw_data()) : nullptr;
}

template <typename T>
void layer_norm_forward_launch(const T* xs, const T* ws, const T* bs, T* ys, Acc<T>* ms, Acc<T>* rs, int64_t N,
                               int64_t C, double eps, cudaStream_t stream) {
    using A = Acc<T>;
    bool vec4 = false;
    // float4 for warp rows only: wide rows are measured best staged in shared memory (dev kernel3),
    // a variant not promoted yet
    if constexpr (std::is_same_v<T, float>) {
        vec4 = C <= kWarpRowLimit && C % 4 == 0 && aligned16(xs) && aligned16(ys) && aligned16(ws) && aligned16(bs);
        if (vec4)
            layer_norm_forward_vec4_kernel<32><<<unsigned((N + 3) / 4), 128, 0, stream>>>(xs, ws, bs, ys, ms, rs, N,
                                                                                          C, float(eps));
    }
    if (!vec4) {
        if (C <= kWarpRowLimit)
            layer_norm_forward_kernel<T, 32><<<unsigned((N + 3) / 4), 128, 0, stream>>>(xs, ws, bs, ys, ms, rs, N, C,
                                                                                         A(eps));
        else
            layer_norm_forward_kernel<T, kBlockRowThreads><<<unsigned(N), kBlockRowThreads, 0, stream>>>(
                xs, ws, bs, ys, ms, rs, N, C, A(eps));
    }
    RC_CUDA_CHECK_LAUNCH("layer_norm_forward_kernel");
}

}  // namespace

void CudaBackend::layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& out, Tensor& mean,
                             Tensor& rstd, double eps) {
    int64_t N, C;
    rows_of(x, N, C);
    if (N == 0) return;
    cudaStream_t stream = cuda_stream(x.device().index);
    RC_GPU_FLOAT_TYPES(x.dtype(), "layer_norm", x, {
        using A = Acc<T>;
        RC_CHECK(mean.dtype() == (sizeof(A) == 8 ? DType::F64 : DType::F32), "layer_norm (cuda): mean/rstd must be ",
                 sizeof(A) == 8 ? "F64" : "F32", " for ", x.str(), ", got ", mean.str());
        const T* xs = static_cast<const T*>(x.raw_data());
        T* ys = static_cast<T*>(out.raw_data());
        A* ms = static_cast<A*>(mean.raw_data());
        A* rs = static_cast<A*>(rstd.raw_data());
        layer_norm_forward_launch<T>(xs, data_or_null<T>(w), data_or_null<T>(b), ys, ms, rs, N, C, eps, stream);
    });
}

void CudaBackend::layer_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& w, const Tensor& mean,
                                      const Tensor& rstd, Tensor& gx, Tensor& gw, Tensor& gb) {
    int64_t N, C;
    rows_of(x, N, C);
    if (C == 0) return;
    RC_GPU_FLOAT_TYPES(x.dtype(), "layer_norm_backward", x, {
        using A = Acc<T>;
        T* gws = gw.defined() ? static_cast<T*>(gw.raw_data()) : nullptr;
        T* gbs = gb.defined() ? static_cast<T*>(gb.raw_data()) : nullptr;
        if (N == 0) {  // no rows: the weight gradients are empty sums
            if (gw.defined()) fill(gw, 0.0);
            if (gb.defined()) fill(gb, 0.0);
            return;
        }
        layer_norm_backward_launch<T>(static_cast<const T*>(gy.raw_data()), static_cast<const T*>(x.raw_data()),
                                      data_or_null<T>(w), static_cast<const A*>(mean.raw_data()),
                                      static_cast<const A*>(rstd.raw_data()), static_cast<T*>(gx.raw_data()),
                                      gws, gbs, N, C, x.device().index);
    });
}

}  // namespace rankclip
