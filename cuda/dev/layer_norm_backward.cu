// cuda/dev/layer_norm_backward.cu
// defines: LayerNorm backward kernel variants, dy (N, C), x (N, C), w (C), mean, rstd (N)
// -> dx (N, C), dw, db (C); a CPU reference, the correctness + determinism checks, the benchmark.
// Every variant is deterministic: dw/db are never accumulated with float atomics; partial sums
// are written to a scratch buffer and reduced in a fixed order by a second kernel.
//   kernel1: one thread per row for dx; one thread per column (looping over all rows) for dw/db.
//   kernel2: one warp per row for dx; dw/db from (32-column strip x row chunk) blocks into
//            partials (chunks, C), then a fixed-order reduction. x and dy are read twice.
//   kernel3: fused: each block takes a chunk of rows, one warp per row computes dx and adds
//            dy * xhat, dy into its own shared-memory accumulators (no two warps share one);
//            the block then sums its warps in order into partials (blocks, C), reduced as in
//            kernel2. x and dy are read once from DRAM. cuda/layer_norm.cu uses it with 8 warps
//            when their accumulators fit in 100 KiB (C <= 1600), kernel2 for wider rows.
// Usage: ./layer_norm_backward [variant]   (no argument: all variants)
#include "common.h"

// ---------------------------------------------------------------------------------------------
// CPU reference (double accumulation); forward was xhat = (x - mean) * rstd, y = xhat * w + b

void layer_norm_backward_cpu(const float* dy, const float* x, const float* w, const float* mean,
                            const float* rstd, float* dx, float* dw, float* db, int N, int C) {
    std::vector<double> dw_acc(C, 0.0), db_acc(C, 0.0);
    for (int n = 0; n < N; n++) {
        const float* dyn = dy + size_t(n) * C;
        const float* xn = x + size_t(n) * C;
        double dxhat_mean = 0.0, dxhat_xhat_mean = 0.0;
        for (int c = 0; c < C; c++) {
            double xhat = (xn[c] - double(mean[n])) * rstd[n];
            double dxhat = double(dyn[c]) * w[c];
            dxhat_mean += dxhat;
            dxhat_xhat_mean += dxhat * xhat;
            dw_acc[c] += double(dyn[c]) * xhat;
            db_acc[c] += dyn[c];
        }
        dxhat_mean /= C;
        dxhat_xhat_mean /= C;
        for (int c = 0; c < C; c++) {
            double xhat = (xn[c] - double(mean[n])) * rstd[n];
            double dxhat = double(dyn[c]) * w[c];
            dx[size_t(n) * C + c] = float((dxhat - dxhat_mean - xhat * dxhat_xhat_mean) * rstd[n]);
        }
    }
    for (int c = 0; c < C; c++) {
        dw[c] = float(dw_acc[c]);
        db[c] = float(db_acc[c]);
    }
}

// ---------------------------------------------------------------------------------------------
// kernel1

__global__ void layer_norm_backward_dx_kernel1(const float* dy, const float* x, const float* w,
                                              const float* mean, const float* rstd, float* dx, int N, int C) {
    int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const float* dyn = dy + size_t(n) * C;
    const float* xn = x + size_t(n) * C;
    float m = mean[n], s = rstd[n];
    float dxhat_mean = 0.0f, dxhat_xhat_mean = 0.0f;
    for (int c = 0; c < C; c++) {
        float dxhat = dyn[c] * w[c];
        dxhat_mean += dxhat;
        dxhat_xhat_mean += dxhat * (xn[c] - m) * s;
    }
    dxhat_mean /= C;
    dxhat_xhat_mean /= C;
    for (int c = 0; c < C; c++) {
        float xhat = (xn[c] - m) * s;
        dx[size_t(n) * C + c] = (dyn[c] * w[c] - dxhat_mean - xhat * dxhat_xhat_mean) * s;
    }
}

__global__ void layer_norm_backward_dwdb_kernel1(const float* dy, const float* x, const float* mean,
                                                const float* rstd, float* dw, float* db, int N, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float dw_acc = 0.0f, db_acc = 0.0f;
    for (int n = 0; n < N; n++) {
        float g = dy[size_t(n) * C + c];
        dw_acc += g * (x[size_t(n) * C + c] - mean[n]) * rstd[n];
        db_acc += g;
    }
    dw[c] = dw_acc;
    db[c] = db_acc;
}

// ---------------------------------------------------------------------------------------------
// shared pieces of kernel2 and kernel3

// dx for one row by one warp; returns nothing, writes dx. Also used by kernel3 (which adds the
// dw/db accumulation in the same loop, so it is written out there).
__global__ void layer_norm_backward_dx_kernel2(const float* __restrict__ dy, const float* __restrict__ x,
                                              const float* __restrict__ w, const float* __restrict__ mean,
                                              const float* __restrict__ rstd, float* __restrict__ dx,
                                              int N, int C) {
    int n = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (n >= N) return;
    const float* dyn = dy + size_t(n) * C;
    const float* xn = x + size_t(n) * C;
    float m = mean[n], s = rstd[n];
    float dxhat_sum = 0.0f, dxhat_xhat_sum = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float dxhat = dyn[c] * w[c];
        dxhat_sum += dxhat;
        dxhat_xhat_sum += dxhat * (xn[c] - m) * s;
    }
    float dxhat_mean = warp_sum(dxhat_sum) / C, dxhat_xhat_mean = warp_sum(dxhat_xhat_sum) / C;
    for (int c = lane; c < C; c += 32) {
        float xhat = (xn[c] - m) * s;
        dx[size_t(n) * C + c] = (dyn[c] * w[c] - dxhat_mean - xhat * dxhat_xhat_mean) * s;
    }
}

// partials (chunks, C) for dw and db: block (32, 8) covers 32 columns x one chunk of rows.
// Thread (tx, ty) sums rows ty, ty + 8, ... of the chunk; the 8 sums are added in order.
__global__ void layer_norm_backward_dwdb_partial_kernel2(const float* __restrict__ dy,
                                                        const float* __restrict__ x,
                                                        const float* __restrict__ mean,
                                                        const float* __restrict__ rstd,
                                                        float* __restrict__ dw_partial,
                                                        float* __restrict__ db_partial, int N, int C,
                                                        int rows_per_chunk) {
    __shared__ float dw_s[8][33], db_s[8][33];
    int c = blockIdx.x * 32 + threadIdx.x;
    int chunk = blockIdx.y;
    int row_begin = chunk * rows_per_chunk, row_end = min(N, row_begin + rows_per_chunk);
    float dw_acc = 0.0f, db_acc = 0.0f;
    if (c < C) {
        for (int n = row_begin + threadIdx.y; n < row_end; n += 8) {
            float g = dy[size_t(n) * C + c];
            dw_acc += g * (x[size_t(n) * C + c] - mean[n]) * rstd[n];
            db_acc += g;
        }
    }
    dw_s[threadIdx.y][threadIdx.x] = dw_acc;
    db_s[threadIdx.y][threadIdx.x] = db_acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float dw_sum = 0.0f, db_sum = 0.0f;
        for (int i = 0; i < 8; i++) {
            dw_sum += dw_s[i][threadIdx.x];
            db_sum += db_s[i][threadIdx.x];
        }
        dw_partial[size_t(chunk) * C + c] = dw_sum;
        db_partial[size_t(chunk) * C + c] = db_sum;
    }
}

// dw[c] = sum over chunks of dw_partial[chunk, c], in chunk order (the same for db).
__global__ void layer_norm_backward_reduce_partials(const float* __restrict__ dw_partial,
                                                   const float* __restrict__ db_partial, float* dw,
                                                   float* db, int chunks, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float dw_sum = 0.0f, db_sum = 0.0f;
    for (int i = 0; i < chunks; i++) {
        dw_sum += dw_partial[size_t(i) * C + c];
        db_sum += db_partial[size_t(i) * C + c];
    }
    dw[c] = dw_sum;
    db[c] = db_sum;
}

// ---------------------------------------------------------------------------------------------
// kernel3: fused. Shared memory: (warps, 2, C) floats.

__global__ void layer_norm_backward_kernel3(const float* __restrict__ dy, const float* __restrict__ x,
                                           const float* __restrict__ w, const float* __restrict__ mean,
                                           const float* __restrict__ rstd, float* __restrict__ dx,
                                           float* __restrict__ dw_partial, float* __restrict__ db_partial,
                                           int N, int C, int rows_per_block) {
    extern __shared__ float accumulators[];
    int warps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float* dw_acc = accumulators + size_t(warp) * 2 * C;
    float* db_acc = dw_acc + C;
    for (int c = lane; c < C; c += 32) dw_acc[c] = db_acc[c] = 0.0f;
    int row_begin = blockIdx.x * rows_per_block, row_end = min(N, row_begin + rows_per_block);
    for (int n = row_begin + warp; n < row_end; n += warps) {
        const float* dyn = dy + size_t(n) * C;
        const float* xn = x + size_t(n) * C;
        float m = mean[n], s = rstd[n];
        float dxhat_sum = 0.0f, dxhat_xhat_sum = 0.0f;
        for (int c = lane; c < C; c += 32) {
            float dxhat = dyn[c] * w[c];
            dxhat_sum += dxhat;
            dxhat_xhat_sum += dxhat * (xn[c] - m) * s;
        }
        float dxhat_mean = warp_sum(dxhat_sum) / C, dxhat_xhat_mean = warp_sum(dxhat_xhat_sum) / C;
        for (int c = lane; c < C; c += 32) {
            float g = dyn[c], xhat = (xn[c] - m) * s;
            dx[size_t(n) * C + c] = (g * w[c] - dxhat_mean - xhat * dxhat_xhat_mean) * s;
            dw_acc[c] += g * xhat;  // this warp's own slice: no race, fixed order
            db_acc[c] += g;
        }
    }
    __syncthreads();
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float dw_sum = 0.0f, db_sum = 0.0f;
        for (int i = 0; i < warps; i++) {
            dw_sum += accumulators[size_t(i) * 2 * C + c];
            db_sum += accumulators[size_t(i) * 2 * C + C + c];
        }
        dw_partial[size_t(blockIdx.x) * C + c] = dw_sum;
        db_partial[size_t(blockIdx.x) * C + c] = db_sum;
    }
}

// ---------------------------------------------------------------------------------------------
// launchers

struct Scratch {
    float* dw_partial;
    float* db_partial;
    int max_chunks;
};

int num_sms() {
    static int sms = 0;
    if (!sms) CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    return sms;
}

size_t kernel3_smem(int block_size, int C) { return size_t(block_size / 32) * 2 * C * sizeof(float); }

bool variant_supports(int variant, int C, int block_size) {
    if (variant != 3) return true;
    int max_optin = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&max_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
    return kernel3_smem(block_size, C) <= size_t(max_optin);
}

void layer_norm_backward(int variant, const float* dy, const float* x, const float* w, const float* mean,
                        const float* rstd, float* dx, float* dw, float* db, int N, int C, int block_size,
                        Scratch& scratch) {
    switch (variant) {
        case 1:
            layer_norm_backward_dx_kernel1<<<ceil_div(N, block_size), block_size>>>(dy, x, w, mean, rstd, dx, N, C);
            CUDA_CHECK_LAUNCH();
            layer_norm_backward_dwdb_kernel1<<<ceil_div(C, block_size), block_size>>>(dy, x, mean, rstd, dw, db, N, C);
            break;
        case 2: {
            layer_norm_backward_dx_kernel2<<<ceil_div(N, block_size / 32), block_size>>>(dy, x, w, mean, rstd, dx, N, C);
            CUDA_CHECK_LAUNCH();
            // enough chunks to fill the GPU about four times over
            int strips = ceil_div(C, 32);
            int chunks = std::min(scratch.max_chunks, std::max(1, 4 * num_sms() / strips));
            int rows_per_chunk = ceil_div(N, chunks);
            chunks = ceil_div(N, rows_per_chunk);
            layer_norm_backward_dwdb_partial_kernel2<<<dim3(strips, chunks), dim3(32, 8)>>>(
                dy, x, mean, rstd, scratch.dw_partial, scratch.db_partial, N, C, rows_per_chunk);
            CUDA_CHECK_LAUNCH();
            layer_norm_backward_reduce_partials<<<ceil_div(C, 256), 256>>>(scratch.dw_partial, scratch.db_partial,
                                                                          dw, db, chunks, C);
            break;
        }
        case 3: {
            size_t smem = kernel3_smem(block_size, C);
            if (smem > 48 * 1024)
                CUDA_CHECK(cudaFuncSetAttribute(layer_norm_backward_kernel3,
                                                cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
            // as many blocks as fit on the GPU at once (two per SM was too few: 8 warps per SM)
            int blocks_per_sm = 0;
            CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_sm, layer_norm_backward_kernel3,
                                                                     block_size, smem));
            int blocks = std::min({scratch.max_chunks, num_sms() * std::max(blocks_per_sm, 1),
                                   ceil_div(N, block_size / 32)});
            int rows_per_block = ceil_div(N, blocks);
            blocks = ceil_div(N, rows_per_block);
            layer_norm_backward_kernel3<<<blocks, block_size, smem>>>(dy, x, w, mean, rstd, dx, scratch.dw_partial,
                                                                     scratch.db_partial, N, C, rows_per_block);
            CUDA_CHECK_LAUNCH();
            layer_norm_backward_reduce_partials<<<ceil_div(C, 256), 256>>>(scratch.dw_partial, scratch.db_partial,
                                                                          dw, db, blocks, C);
            break;
        }
    }
    CUDA_CHECK_LAUNCH();
}

int main(int argc, char** argv) {
    require_cuda_device_or_exit("layer_norm_backward");
    const int variant = selected_variant(argc, argv);
    const int n_variants = 3;
    bool ok = true;
    Scratch scratch;
    scratch.max_chunks = 4096;
    const size_t max_C = 8192;
    scratch.dw_partial = device_alloc<float>(scratch.max_chunks * max_C);
    scratch.db_partial = device_alloc<float>(scratch.max_chunks * max_C);

    struct Shape { int N, C; };
    const Shape shapes[] = {{1, 1}, {7, 3}, {33, 129}, {300, 768}, {1000, 1024}, {9, 5000}};
    const int block_sizes[] = {32, 64, 128, 256, 512, 1024};
    for (const Shape& s : shapes) {
        size_t NC = size_t(s.N) * s.C;
        std::vector<float> dy = random_normal(NC, 11), x = random_normal(NC, 12, 2.0f), w = random_normal(s.C, 13);
        std::vector<float> mean(s.N), rstd(s.N);
        for (int n = 0; n < s.N; n++) {  // the statistics the forward would have saved
            double m = 0, v = 0;
            for (int c = 0; c < s.C; c++) m += x[size_t(n) * s.C + c];
            m /= s.C;
            for (int c = 0; c < s.C; c++) v += (x[size_t(n) * s.C + c] - m) * (x[size_t(n) * s.C + c] - m);
            mean[n] = float(m);
            rstd[n] = float(1.0 / std::sqrt(v / s.C + 1e-5));
        }
        std::vector<float> dx(NC), dw(s.C), db(s.C);
        layer_norm_backward_cpu(dy.data(), x.data(), w.data(), mean.data(), rstd.data(), dx.data(), dw.data(),
                               db.data(), s.N, s.C);
        float *d_dy = device_from_host(dy), *d_x = device_from_host(x), *d_w = device_from_host(w);
        float *d_mean = device_from_host(mean), *d_rstd = device_from_host(rstd);
        float *d_dx = device_alloc<float>(NC), *d_dw = device_alloc<float>(s.C), *d_db = device_alloc<float>(s.C);
        float* d_dw2 = device_alloc<float>(s.C);
        // dw sums N products: its rounding error grows like sqrt(N)
        float dw_atol = 1e-5f * std::sqrt(float(s.N)) * 4;
        for (int v = 1; v <= n_variants; v++) {
            if (variant && v != variant) continue;
            for (int bs : block_sizes) {
                if (!variant_supports(v, s.C, bs)) continue;
                CUDA_CHECK(cudaMemset(d_dx, 0, NC * sizeof(float)));
                layer_norm_backward(v, d_dy, d_x, d_w, d_mean, d_rstd, d_dx, d_dw, d_db, s.N, s.C, bs, scratch);
                CUDA_CHECK(cudaDeviceSynchronize());
                bool good = validate_device("dx", d_dx, dx.data(), NC, 1e-4f, 1e-3f) &&
                            validate_device("dw", d_dw, dw.data(), s.C, dw_atol, 1e-4f) &&
                            validate_device("db", d_db, db.data(), s.C, dw_atol, 1e-4f);
                // determinism: the same launch again gives the same bits
                layer_norm_backward(v, d_dy, d_x, d_w, d_mean, d_rstd, d_dx, d_dw2, d_db, s.N, s.C, bs, scratch);
                CUDA_CHECK(cudaDeviceSynchronize());
                good &= same_bits("dw", d_dw, d_dw2, s.C);
                if (!good) std::printf("kernel%d failed at N=%d C=%d block=%d\n", v, s.N, s.C, bs);
                ok &= good;
            }
        }
        for (float* p : {d_dy, d_x, d_w, d_mean, d_rstd, d_dx, d_dw, d_db, d_dw2}) CUDA_CHECK(cudaFree(p));
    }
    std::printf("correctness: %s\n", ok ? "ok" : "FAILED");

    const Shape bench_shapes[] = {{64 * 197, 768}, {8192, 4096}};
    for (const Shape& s : bench_shapes) {
        size_t NC = size_t(s.N) * s.C;
        float *d_dy = device_from_host(random_uniform(NC, 14, -1.0f, 1.0f)), *d_x = device_from_host(random_uniform(NC, 15, -3.0f, 3.0f));
        float *d_w = device_from_host(random_normal(s.C, 16));
        float *d_mean = device_from_host(random_normal(s.N, 17)), *d_rstd = device_from_host(random_uniform(s.N, 18, 0.5f, 2.0f));
        float *d_dx = device_alloc<float>(NC), *d_dw = device_alloc<float>(s.C), *d_db = device_alloc<float>(s.C);
        double bytes = 3.0 * NC * sizeof(float);  // dy, x read once; dx written
        std::printf("benchmark N=%d C=%d (F32)\n", s.N, s.C);
        for (int v = 1; v <= n_variants; v++) {
            if (variant && v != variant) continue;
            for (int bs : {128, 256, 512}) {
                if ((v == 1 && bs != 256) || !variant_supports(v, s.C, bs)) continue;
                float ms = benchmark_ms(v == 1 ? 3 : 20, [&] {
                    layer_norm_backward(v, d_dy, d_x, d_w, d_mean, d_rstd, d_dx, d_dw, d_db, s.N, s.C, bs, scratch);
                });
                char what[64];
                std::snprintf(what, sizeof what, "kernel%d block %d", v, bs);
                report_bandwidth(what, ms, bytes);
            }
        }
        for (float* p : {d_dy, d_x, d_w, d_mean, d_rstd, d_dx, d_dw, d_db}) CUDA_CHECK(cudaFree(p));
    }
    CUDA_CHECK(cudaFree(scratch.dw_partial));
    CUDA_CHECK(cudaFree(scratch.db_partial));
    return finish("layer_norm_backward", ok);
}
