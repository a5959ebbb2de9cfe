// cuda/dev/adamw.cu
// defines: fused AdamW update kernels over a flat slab of n parameters (F32 params, grads and
// moments), as torch.optim.AdamW:
//   p -= lr * wd * p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// a CPU reference, the correctness check over sizes and block sizes, and the benchmark against
// the copy roofline (28 bytes moved per parameter: p, g, m, v read; p, m, v written).
//   kernel1: one thread per parameter.
//   kernel2: four parameters per thread with 128-bit loads and stores (scalar tail).
//   kernel3: kernel2 that also writes a bf16 copy of the updated parameters (the mixed-precision
//            weights the forward reads), saving a separate cast pass.
// Usage: ./adamw [variant]   (no argument: all variants)
#include "common.h"

struct AdamWParams {
    float lr, beta1, beta2, eps, weight_decay;
    int step;
};

// ---------------------------------------------------------------------------------------------
// CPU reference (double math)

void adamw_cpu(float* p, const float* g, float* m, float* v, size_t n, const AdamWParams& h) {
    double bc1 = 1.0 - std::pow(double(h.beta1), h.step), bc2 = 1.0 - std::pow(double(h.beta2), h.step);
    for (size_t i = 0; i < n; i++) {
        double pi = p[i] * (1.0 - double(h.lr) * h.weight_decay);
        double mi = h.beta1 * double(m[i]) + (1.0 - h.beta1) * g[i];
        double vi = h.beta2 * double(v[i]) + (1.0 - h.beta2) * double(g[i]) * g[i];
        pi -= h.lr / bc1 * mi / (std::sqrt(vi) / std::sqrt(bc2) + h.eps);
        p[i] = float(pi);
        m[i] = float(mi);
        v[i] = float(vi);
    }
}

// ---------------------------------------------------------------------------------------------
// kernels. step_size = lr / (1 - b1^t) and inv_sqrt_bc2 = 1 / sqrt(1 - b2^t) come from the host.

struct AdamWScalars {
    float lr, beta1, beta2, eps, weight_decay, step_size, inv_sqrt_bc2;
};

__device__ __forceinline__ void adamw_one(float& p, float g, float& m, float& v, const AdamWScalars& s) {
    p -= s.lr * s.weight_decay * p;
    m = s.beta1 * m + (1.0f - s.beta1) * g;
    v = s.beta2 * v + (1.0f - s.beta2) * g * g;
    p -= s.step_size * m / (sqrtf(v) * s.inv_sqrt_bc2 + s.eps);
}

__global__ void adamw_kernel1(float* p, const float* g, float* m, float* v, size_t n, AdamWScalars s) {
    size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float pi = p[i], mi = m[i], vi = v[i];
    adamw_one(pi, g[i], mi, vi, s);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
}

// Requires 16-byte aligned slabs (cudaMalloc gives 256); the last n % 4 by the first threads.
template <bool kWriteBf16>
__global__ void adamw_kernel_vec4(float* p, const float* g, float* m, float* v, __nv_bfloat16* p_bf16, size_t n,
                                  AdamWScalars s) {
    size_t n4 = n / 4;
    size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n4) {
        float4 pv = reinterpret_cast<float4*>(p)[i], gv = __ldcs(reinterpret_cast<const float4*>(g) + i);
        float4 mv = reinterpret_cast<float4*>(m)[i], vv = reinterpret_cast<float4*>(v)[i];
        adamw_one(pv.x, gv.x, mv.x, vv.x, s);
        adamw_one(pv.y, gv.y, mv.y, vv.y, s);
        adamw_one(pv.z, gv.z, mv.z, vv.z, s);
        adamw_one(pv.w, gv.w, mv.w, vv.w, s);
        reinterpret_cast<float4*>(p)[i] = pv;
        reinterpret_cast<float4*>(m)[i] = mv;
        reinterpret_cast<float4*>(v)[i] = vv;
        if constexpr (kWriteBf16) {
            __nv_bfloat162 lo = __floats2bfloat162_rn(pv.x, pv.y), hi = __floats2bfloat162_rn(pv.z, pv.w);
            reinterpret_cast<__nv_bfloat162*>(p_bf16)[2 * i] = lo;
            reinterpret_cast<__nv_bfloat162*>(p_bf16)[2 * i + 1] = hi;
        }
    }
    if (i < n % 4) {
        size_t j = n4 * 4 + i;
        float pj = p[j], mj = m[j], vj = v[j];
        adamw_one(pj, g[j], mj, vj, s);
        p[j] = pj;
        m[j] = mj;
        v[j] = vj;
        if constexpr (kWriteBf16) p_bf16[j] = __float2bfloat16_rn(pj);
    }
}

// ---------------------------------------------------------------------------------------------

AdamWScalars scalars_of(const AdamWParams& h) {
    AdamWScalars s;
    s.lr = h.lr;
    s.beta1 = h.beta1;
    s.beta2 = h.beta2;
    s.eps = h.eps;
    s.weight_decay = h.weight_decay;
    s.step_size = float(h.lr / (1.0 - std::pow(double(h.beta1), h.step)));
    s.inv_sqrt_bc2 = float(1.0 / std::sqrt(1.0 - std::pow(double(h.beta2), h.step)));
    return s;
}

void adamw(int variant, float* p, const float* g, float* m, float* v, __nv_bfloat16* p_bf16, size_t n,
           const AdamWParams& h, int block_size) {
    AdamWScalars s = scalars_of(h);
    switch (variant) {
        case 1:
            adamw_kernel1<<<unsigned(ceil_div<size_t>(n, block_size)), block_size>>>(p, g, m, v, n, s);
            break;
        case 2:
            adamw_kernel_vec4<false><<<unsigned(ceil_div<size_t>(std::max<size_t>(n / 4, 1), block_size)), block_size>>>(
                p, g, m, v, nullptr, n, s);
            break;
        case 3:
            adamw_kernel_vec4<true><<<unsigned(ceil_div<size_t>(std::max<size_t>(n / 4, 1), block_size)), block_size>>>(
                p, g, m, v, p_bf16, n, s);
            break;
    }
    CUDA_CHECK_LAUNCH();
}

int main(int argc, char** argv) {
    require_cuda_device_or_exit("adamw");
    const int variant = selected_variant(argc, argv);
    const int n_variants = 3;
    bool ok = true;
    AdamWParams h{1e-3f, 0.9f, 0.98f, 1e-6f, 0.2f, 7};

    const size_t sizes[] = {1, 3, 1000, 4099, (size_t(1) << 20) + 3};
    const int block_sizes[] = {32, 64, 128, 256, 512, 1024};
    for (size_t n : sizes) {
        std::vector<float> p0 = random_normal(n, 51), g = random_normal(n, 52, 0.1f);
        std::vector<float> m0 = random_normal(n, 53, 0.01f), v0 = random_uniform(n, 54, 0.0f, 1e-3f);
        std::vector<float> p = p0, m = m0, v = v0;
        adamw_cpu(p.data(), g.data(), m.data(), v.data(), n, h);
        std::vector<float> p_rounded(n);
        for (size_t i = 0; i < n; i++) p_rounded[i] = host_bf16_to_float(host_float_to_bf16(p[i]));
        float *dp = device_alloc<float>(n), *dm = device_alloc<float>(n), *dv = device_alloc<float>(n);
        float* dg = device_from_host(g);
        __nv_bfloat16* dp_bf16 = device_alloc<__nv_bfloat16>(n);
        for (int var = 1; var <= n_variants; var++) {
            if (variant && var != variant) continue;
            for (int bs : block_sizes) {
                CUDA_CHECK(cudaMemcpy(dp, p0.data(), n * sizeof(float), cudaMemcpyHostToDevice));
                CUDA_CHECK(cudaMemcpy(dm, m0.data(), n * sizeof(float), cudaMemcpyHostToDevice));
                CUDA_CHECK(cudaMemcpy(dv, v0.data(), n * sizeof(float), cudaMemcpyHostToDevice));
                adamw(var, dp, dg, dm, dv, dp_bf16, n, h, bs);
                CUDA_CHECK(cudaDeviceSynchronize());
                bool good = validate_device("p", dp, p.data(), n, 1e-6f, 1e-5f) &&
                            validate_device("m", dm, m.data(), n, 1e-7f, 1e-5f) &&
                            validate_device("v", dv, v.data(), n, 1e-9f, 1e-5f);
                // one bf16 ulp: p itself may differ from the reference in its last float bit
                if (var == 3) good &= validate_device_bf16("p_bf16", dp_bf16, p_rounded.data(), n, 1e-6f, 8e-3f);
                if (!good) std::printf("kernel%d failed at n=%zu block=%d\n", var, n, bs);
                ok &= good;
            }
        }
        for (float* ptr : {dp, dm, dv, dg}) CUDA_CHECK(cudaFree(ptr));
        CUDA_CHECK(cudaFree(dp_bf16));
    }
    std::printf("correctness: %s\n", ok ? "ok" : "FAILED");

    // benchmark: a ViT-B/16 CLIP, about 150M parameters
    const size_t n = 150u * 1000 * 1000;
    // contents do not matter for the timing; bytes 0x3c make every float about 0.0115
    float *dp = device_alloc<float>(n), *dg = device_alloc<float>(n), *dm = device_alloc<float>(n), *dv = device_alloc<float>(n);
    for (float* ptr : {dp, dg, dm, dv}) CUDA_CHECK(cudaMemset(ptr, 0x3c, n * sizeof(float)));
    __nv_bfloat16* dp_bf16 = device_alloc<__nv_bfloat16>(n);
    std::printf("benchmark n=%zu parameters\n", n);
    for (int var = 1; var <= n_variants; var++) {
        if (variant && var != variant) continue;
        for (int bs : {128, 256, 512}) {
            float ms = benchmark_ms(10, [&] { adamw(var, dp, dg, dm, dv, dp_bf16, n, h, bs); });
            char what[64];
            std::snprintf(what, sizeof what, "kernel%d block %d", var, bs);
            report_bandwidth(what, ms, double(n) * (var == 3 ? 30.0 : 28.0));
        }
    }
    for (float* ptr : {dp, dm, dv, dg}) CUDA_CHECK(cudaFree(ptr));
    CUDA_CHECK(cudaFree(dp_bf16));
    return finish("adamw", ok);
}
