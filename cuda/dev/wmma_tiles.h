// cuda/dev/wmma_tiles.h
// defines: what the playground's tensor-core attention kernels (attention_forward kernel5,
// attention_backward kernel3) share, in namespace tc: bf16 tiles of 64 rows x 64 (the head dim)
// in shared memory, loaded from global memory with 128-bit copies; 16 x 64 x 64 products of a
// warp's 16 rows on WMMA 16x16x16 bf16 fragments with fp32 accumulators; and the host helpers that
// round test inputs to bf16 and copy them to the device.
#pragma once
#include <mma.h>

#include "common.h"

namespace tc {

using bf16 = __nv_bfloat16;
using namespace nvcuda;
constexpr int kD = 64;          // head dim (the CLIP towers')
constexpr int kWarps = 4;       // 16 rows (queries or keys) each
constexpr int kTile = 16 * kWarps;
constexpr int kLd = kD + 8;     // bf16 rows in shared memory (144 bytes: 16-byte aligned, banks spread)
constexpr int kLdF = kTile + 4; // fp32 scratch rows (272 bytes)
static_assert(kD == kTile, "fp32 scratch rows hold scores (kTile wide) and output rows (kD wide)");

using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major>;
using FragBCol = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major>;
using FragBRow = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major>;
using FragC = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

// rows (up to kTile) of kD bf16 from global memory into a [kTile][kLd] tile; zeros past `valid`
__device__ __forceinline__ void load_tile(bf16* dst, const bf16* src, int valid) {
    for (int idx = threadIdx.x; idx < kTile * (kD / 8); idx += blockDim.x) {
        const int r = idx / (kD / 8), c = (idx % (kD / 8)) * 8;
        uint4 val = make_uint4(0, 0, 0, 0);
        if (r < valid) val = *reinterpret_cast<const uint4*>(src + int64_t(r) * kD + c);
        *reinterpret_cast<uint4*>(dst + r * kLd + c) = val;
    }
}

// acc[n] (16 x 16, columns 16 n ...) += A (16 x 64, row-major at a) @ B (64 x 64), B row-major
// at b, or with kBCol its transpose stored (B's columns are the rows at b: K^T from K's rows)
template <bool kBCol>
__device__ __forceinline__ void mma_16x64x64(FragC (&acc)[4], const bf16* a, const bf16* b) {
#pragma unroll
    for (int n = 0; n < 4; n++)
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
            FragA fa;
            wmma::load_matrix_sync(fa, a + kk * 16, kLd);
            if constexpr (kBCol) {
                FragBCol fb;
                wmma::load_matrix_sync(fb, b + n * 16 * kLd + kk * 16, kLd);
                wmma::mma_sync(acc[n], fa, fb, acc[n]);
            } else {
                FragBRow fb;
                wmma::load_matrix_sync(fb, b + kk * 16 * kLd + n * 16, kLd);
                wmma::mma_sync(acc[n], fa, fb, acc[n]);
            }
        }
}
__device__ __forceinline__ void zero(FragC (&acc)[4]) {
#pragma unroll
    for (int n = 0; n < 4; n++) wmma::fill_fragment(acc[n], 0.0f);
}
// the 16 x 64 result into fp32 rows of kLdF at dst
__device__ __forceinline__ void store(float* dst, FragC (&acc)[4]) {
#pragma unroll
    for (int n = 0; n < 4; n++) wmma::store_matrix_sync(dst + n * 16, acc[n], kLdF, wmma::mem_row_major);
}

// host: the floats rounded to bf16 (the reference's inputs), and as bf16 on the device
inline std::vector<float> rounded_to_bf16(const std::vector<float>& x) {
    std::vector<float> r(x.size());
    for (size_t i = 0; i < x.size(); i++) r[i] = host_bf16_to_float(host_float_to_bf16(x[i]));
    return r;
}
inline bf16* device_bf16(const std::vector<float>& x) {
    std::vector<uint16_t> bits(x.size());
    for (size_t i = 0; i < x.size(); i++) bits[i] = host_float_to_bf16(x[i]);
    bf16* d = device_alloc<bf16>(x.size());
    CUDA_CHECK(cudaMemcpy(d, bits.data(), bits.size() * 2, cudaMemcpyHostToDevice));
    return d;
}

}  // namespace tc
