// cuda/dev/layer_norm_forward.cu
// defines: LayerNorm forward kernel variants over rows x (N, C) -> out (N, C), mean, rstd (N),
// a CPU reference, the correctness check over shapes and block sizes, and the benchmark.
//   kernel1: one thread per row, two passes (the naive baseline).
//   kernel2: one warp per row, two-pass statistics; rows re-read from L1/L2.
//   kernel3: one block per row, the row staged once in shared memory.
//   kernel4: one warp per row, float4 loads (C % 4 == 0): the library's choice (cuda/layer_norm.cu
//            uses kernel2's structure, with this vectorisation for F32 when it applies).
// Usage: ./layer_norm_forward [variant]   (no argument: all variants)
#include "common.h"

// ---------------------------------------------------------------------------------------------
// CPU reference, double accumulation

void layer_norm_forward_cpu(const float* x, const float* w, const float* b, float* out, float* mean,
                           float* rstd, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float* xn = x + size_t(n) * C;
        double m = 0.0, v = 0.0;
        for (int c = 0; c < C; c++) m += xn[c];
        m /= C;
        for (int c = 0; c < C; c++) v += (xn[c] - m) * (xn[c] - m);
        v /= C;
        double s = 1.0 / std::sqrt(v + eps);
        for (int c = 0; c < C; c++) out[size_t(n) * C + c] = float((xn[c] - m) * s * w[c] + b[c]);
        mean[n] = float(m);
        rstd[n] = float(s);
    }
}

// ---------------------------------------------------------------------------------------------
// kernels

__global__ void layer_norm_forward_kernel1(const float* __restrict__ x, const float* __restrict__ w,
                                          const float* __restrict__ b, float* __restrict__ out,
                                          float* __restrict__ mean, float* __restrict__ rstd, int N,
                                          int C, float eps) {
    int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const float* xn = x + size_t(n) * C;
    float m = 0.0f;
    for (int c = 0; c < C; c++) m += xn[c];
    m /= C;
    float v = 0.0f;
    for (int c = 0; c < C; c++) v += (xn[c] - m) * (xn[c] - m);
    float s = 1.0f / sqrtf(v / C + eps);
    for (int c = 0; c < C; c++) out[size_t(n) * C + c] = (xn[c] - m) * s * w[c] + b[c];
    mean[n] = m;
    rstd[n] = s;
}

__global__ void layer_norm_forward_kernel2(const float* __restrict__ x, const float* __restrict__ w,
                                          const float* __restrict__ b, float* __restrict__ out,
                                          float* __restrict__ mean, float* __restrict__ rstd, int N,
                                          int C, float eps) {
    int warps_per_block = blockDim.x / 32;
    int n = blockIdx.x * warps_per_block + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (n >= N) return;
    const float* xn = x + size_t(n) * C;
    float sum = 0.0f;
    for (int c = lane; c < C; c += 32) sum += xn[c];
    float m = warp_sum(sum) / C;
    float var = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float d = xn[c] - m;
        var += d * d;
    }
    float s = 1.0f / sqrtf(warp_sum(var) / C + eps);
    float* on = out + size_t(n) * C;
    for (int c = lane; c < C; c += 32) on[c] = (__ldcs(xn + c) - m) * s * w[c] + b[c];
    if (lane == 0) {
        mean[n] = m;
        rstd[n] = s;
    }
}

// Block-wide sum; every thread gets the result. `shared` holds at least 32 floats.
__device__ float block_sum(float v, float* shared) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_sum(v);
    __syncthreads();  // shared may still be read by a previous call
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    float total = 0.0f;
    for (int i = 0; i < warps; i++) total += shared[i];  // fixed order: deterministic
    return total;
}

__global__ void layer_norm_forward_kernel3(const float* __restrict__ x, const float* __restrict__ w,
                                          const float* __restrict__ b, float* __restrict__ out,
                                          float* __restrict__ mean, float* __restrict__ rstd, int N,
                                          int C, float eps) {
    extern __shared__ float row[];  // (C) then 32 floats of reduction scratch
    float* scratch = row + C;
    int n = blockIdx.x;
    const float* xn = x + size_t(n) * C;
    float sum = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float xv = __ldcs(xn + c);
        row[c] = xv;
        sum += xv;
    }
    float m = block_sum(sum, scratch) / C;
    float var = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float d = row[c] - m;
        var += d * d;
    }
    float s = 1.0f / sqrtf(block_sum(var, scratch) / C + eps);
    float* on = out + size_t(n) * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) on[c] = (row[c] - m) * s * w[c] + b[c];
    if (threadIdx.x == 0) {
        mean[n] = m;
        rstd[n] = s;
    }
}

__global__ void layer_norm_forward_kernel4(const float* __restrict__ x, const float* __restrict__ w,
                                          const float* __restrict__ b, float* __restrict__ out,
                                          float* __restrict__ mean, float* __restrict__ rstd, int N,
                                          int C, float eps) {
    int warps_per_block = blockDim.x / 32;
    int n = blockIdx.x * warps_per_block + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (n >= N) return;
    int C4 = C / 4;
    const float4* xn = reinterpret_cast<const float4*>(x + size_t(n) * C);
    float sum = 0.0f;
    for (int c = lane; c < C4; c += 32) {
        float4 v = xn[c];
        sum += (v.x + v.y) + (v.z + v.w);
    }
    float m = warp_sum(sum) / C;
    float var = 0.0f;
    for (int c = lane; c < C4; c += 32) {
        float4 v = xn[c];
        var += (v.x - m) * (v.x - m) + (v.y - m) * (v.y - m) + (v.z - m) * (v.z - m) + (v.w - m) * (v.w - m);
    }
    float s = 1.0f / sqrtf(warp_sum(var) / C + eps);
    const float4* w4 = reinterpret_cast<const float4*>(w);
    const float4* b4 = reinterpret_cast<const float4*>(b);
    float4* on = reinterpret_cast<float4*>(out + size_t(n) * C);
    for (int c = lane; c < C4; c += 32) {
        float4 v = __ldcs(xn + c), wv = w4[c], bv = b4[c], o;
        o.x = (v.x - m) * s * wv.x + bv.x;
        o.y = (v.y - m) * s * wv.y + bv.y;
        o.z = (v.z - m) * s * wv.z + bv.z;
        o.w = (v.w - m) * s * wv.w + bv.w;
        __stcs(on + c, o);
    }
    if (lane == 0) {
        mean[n] = m;
        rstd[n] = s;
    }
}

// ---------------------------------------------------------------------------------------------
// launchers

bool variant_supports(int variant, int C) { return variant != 4 || C % 4 == 0; }

void layer_norm_forward(int variant, const float* x, const float* w, const float* b, float* out,
                       float* mean, float* rstd, int N, int C, float eps, int block_size) {
    switch (variant) {
        case 1:
            layer_norm_forward_kernel1<<<ceil_div(N, block_size), block_size>>>(x, w, b, out, mean, rstd, N, C, eps);
            break;
        case 2:
            layer_norm_forward_kernel2<<<ceil_div(N, block_size / 32), block_size>>>(x, w, b, out, mean, rstd, N, C, eps);
            break;
        case 3: {
            size_t smem = (size_t(C) + 32) * sizeof(float);
            if (smem > 48 * 1024)
                CUDA_CHECK(cudaFuncSetAttribute(layer_norm_forward_kernel3,
                                                cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
            layer_norm_forward_kernel3<<<N, block_size, smem>>>(x, w, b, out, mean, rstd, N, C, eps);
            break;
        }
        case 4:
            layer_norm_forward_kernel4<<<ceil_div(N, block_size / 32), block_size>>>(x, w, b, out, mean, rstd, N, C, eps);
            break;
    }
    CUDA_CHECK_LAUNCH();
}

int main(int argc, char** argv) {
    require_cuda_device_or_exit("layer_norm_forward");
    const int variant = selected_variant(argc, argv);
    const int n_variants = 4;
    const float eps = 1e-5f;
    bool ok = true;

    // correctness: awkward shapes on purpose, every block size
    struct Shape { int N, C; };
    const Shape shapes[] = {{1, 1}, {7, 3}, {33, 129}, {64, 768}, {257, 1024}, {5, 3000}};
    const int block_sizes[] = {32, 64, 128, 256, 512, 1024};
    for (const Shape& s : shapes) {
        size_t NC = size_t(s.N) * s.C;
        std::vector<float> x = random_normal(NC, 1, 2.0f), w = random_normal(s.C, 2), b = random_normal(s.C, 3);
        for (auto& v : x) v += 3.0f;  // an offset: two-pass variance must not lose it
        std::vector<float> out(NC), mean(s.N), rstd(s.N);
        layer_norm_forward_cpu(x.data(), w.data(), b.data(), out.data(), mean.data(), rstd.data(), s.N, s.C, eps);
        float *dx = device_from_host(x), *dw = device_from_host(w), *db = device_from_host(b);
        float *dout = device_alloc<float>(NC), *dmean = device_alloc<float>(s.N), *drstd = device_alloc<float>(s.N);
        for (int v = 1; v <= n_variants; v++) {
            if ((variant && v != variant) || !variant_supports(v, s.C)) continue;
            for (int bs : block_sizes) {
                CUDA_CHECK(cudaMemset(dout, 0, NC * sizeof(float)));
                layer_norm_forward(v, dx, dw, db, dout, dmean, drstd, s.N, s.C, eps, bs);
                CUDA_CHECK(cudaDeviceSynchronize());
                bool good = validate_device("out", dout, out.data(), NC, 1e-5f, 1e-4f) &&
                            validate_device("mean", dmean, mean.data(), s.N, 1e-5f, 1e-5f) &&
                            validate_device("rstd", drstd, rstd.data(), s.N, 1e-5f, 1e-4f);
                if (!good) std::printf("kernel%d failed at N=%d C=%d block=%d\n", v, s.N, s.C, bs);
                ok &= good;
            }
        }
        CUDA_CHECK(cudaFree(dx)); CUDA_CHECK(cudaFree(dw)); CUDA_CHECK(cudaFree(db));
        CUDA_CHECK(cudaFree(dout)); CUDA_CHECK(cudaFree(dmean)); CUDA_CHECK(cudaFree(drstd));
    }
    std::printf("correctness: %s\n", ok ? "ok" : "FAILED");

    // benchmark: a ViT-B/16 batch of activations, (B*T, C) = (64*197, 768), and a wide one
    const Shape bench_shapes[] = {{64 * 197, 768}, {8192, 4096}};
    for (const Shape& s : bench_shapes) {
        size_t NC = size_t(s.N) * s.C;
        float *dx = device_from_host(random_uniform(NC, 4, -3.0f, 3.0f)), *dw = device_from_host(random_normal(s.C, 5));
        float *db = device_from_host(random_normal(s.C, 6));
        float *dout = device_alloc<float>(NC), *dmean = device_alloc<float>(s.N), *drstd = device_alloc<float>(s.N);
        double bytes = 2.0 * NC * sizeof(float) + 2.0 * s.N * sizeof(float);  // x read once, out written
        std::printf("benchmark N=%d C=%d (F32)\n", s.N, s.C);
        for (int v = 1; v <= n_variants; v++) {
            if ((variant && v != variant) || !variant_supports(v, s.C)) continue;
            for (int bs : {128, 256, 512}) {
                if (v == 1 && bs != 256) continue;  // the naive one is only a baseline
                float ms = benchmark_ms(v == 1 ? 3 : 20, [&] {
                    layer_norm_forward(v, dx, dw, db, dout, dmean, drstd, s.N, s.C, eps, bs);
                });
                char what[64];
                std::snprintf(what, sizeof what, "kernel%d block %d", v, bs);
                report_bandwidth(what, ms, bytes);
            }
        }
        CUDA_CHECK(cudaFree(dx)); CUDA_CHECK(cudaFree(dw)); CUDA_CHECK(cudaFree(db));
        CUDA_CHECK(cudaFree(dout)); CUDA_CHECK(cudaFree(dmean)); CUDA_CHECK(cudaFree(drstd));
    }
    return finish("layer_norm_forward", ok);
}
