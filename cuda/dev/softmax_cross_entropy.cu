// cuda/dev/softmax_cross_entropy.cu
// defines: cross-entropy forward and fused backward variants over logits (N, V), targets (N):
//   forward:  lse[n] = logsumexp(logits[n]), loss[n] = lse[n] - logits[n, target[n]]
//   backward: dlogits[n] = dloss[n] * (softmax(logits[n]) - onehot(target[n])), from lse
// Rows whose target is ignore_index get loss 0 and gradient 0. A CPU reference, the checks,
// and the benchmark (GB/s against the copy roofline). Variant k runs forward kernel k and
// backward kernel k:
//   1: one thread per row (forward: max pass + sum pass; backward: one thread per row).
//   2: forward one warp per row with an online max/sum (one read); backward one block per row,
//      grid-stride over rows. The design of cuda/cross_entropy.cu.
//   3: one block per row for both, float4 loads and stores (V % 4 == 0).
// Usage: ./softmax_cross_entropy [variant]   (no argument: all variants)
#include "common.h"

constexpr int kIgnore = -100;

// ---------------------------------------------------------------------------------------------
// CPU reference (double)

void cross_entropy_cpu(const float* logits, const int* target, const float* dloss, float* loss, float* lse,
                       float* dlogits, int N, int V) {
    for (int n = 0; n < N; n++) {
        const float* x = logits + size_t(n) * V;
        double m = -INFINITY, s = 0;
        for (int c = 0; c < V; c++) m = std::max(m, double(x[c]));
        for (int c = 0; c < V; c++) s += std::exp(x[c] - m);
        double l = m + std::log(s);
        lse[n] = float(l);
        int t = target[n];
        loss[n] = t == kIgnore ? 0.0f : float(l - x[t]);
        for (int c = 0; c < V; c++)
            dlogits[size_t(n) * V + c] = t == kIgnore ? 0.0f : float(dloss[n] * (std::exp(x[c] - l) - (c == t)));
    }
}

// ---------------------------------------------------------------------------------------------
// variant 1

__global__ void cross_entropy_forward_kernel1(const float* logits, const int* target, float* loss, float* lse,
                                              int N, int V) {
    int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const float* x = logits + size_t(n) * V;
    float m = -INFINITY, s = 0.0f;
    for (int c = 0; c < V; c++) m = fmaxf(m, x[c]);
    for (int c = 0; c < V; c++) s += expf(x[c] - m);
    float l = m + logf(s);
    lse[n] = l;
    int t = target[n];
    loss[n] = t == kIgnore ? 0.0f : l - x[t];
}

__global__ void cross_entropy_backward_kernel1(const float* logits, const int* target, const float* lse,
                                               const float* dloss, float* dlogits, int N, int V) {
    int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    int t = target[n];
    float g = t == kIgnore ? 0.0f : dloss[n], l = lse[n];
    for (int c = 0; c < V; c++) {
        size_t i = size_t(n) * V + c;
        dlogits[i] = t == kIgnore ? 0.0f : g * (expf(logits[i] - l) - (c == t ? 1.0f : 0.0f));
    }
}

// ---------------------------------------------------------------------------------------------
// variant 2

__global__ void cross_entropy_forward_kernel2(const float* __restrict__ logits, const int* __restrict__ target,
                                              float* __restrict__ loss, float* __restrict__ lse, int N, int V) {
    int n = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (n >= N) return;
    const float* x = logits + size_t(n) * V;
    float m = -INFINITY, s = 0.0f;
    for (int c = lane; c < V; c += 32) {
        float v = x[c];
        if (v > m) {
            s = s * expf(m - v) + 1.0f;
            m = v;
        } else {
            s += expf(v - m);
        }
    }
    warp_online_merge(m, s);
    if (lane == 0) {
        float l = m + logf(s);
        lse[n] = l;
        int t = target[n];
        loss[n] = t == kIgnore ? 0.0f : l - x[t];
    }
}

__global__ void cross_entropy_backward_kernel2(const float* __restrict__ logits, const int* __restrict__ target,
                                               const float* __restrict__ lse, const float* __restrict__ dloss,
                                               float* __restrict__ dlogits, int N, int V) {
    for (int n = blockIdx.x; n < N; n += gridDim.x) {
        int t = target[n];
        const float* x = logits + size_t(n) * V;
        float* dx = dlogits + size_t(n) * V;
        if (t == kIgnore) {
            for (int c = threadIdx.x; c < V; c += blockDim.x) dx[c] = 0.0f;
            continue;
        }
        float g = dloss[n], l = lse[n];
        for (int c = threadIdx.x; c < V; c += blockDim.x) dx[c] = g * (expf(x[c] - l) - (c == t ? 1.0f : 0.0f));
    }
}

// ---------------------------------------------------------------------------------------------
// variant 3: one block per row, float4

__global__ void cross_entropy_forward_kernel3(const float* __restrict__ logits, const int* __restrict__ target,
                                              float* __restrict__ loss, float* __restrict__ lse, int N, int V) {
    __shared__ float shared_m[32], shared_s[32];
    int n = blockIdx.x;
    const float4* x4 = reinterpret_cast<const float4*>(logits + size_t(n) * V);
    float m = -INFINITY, s = 0.0f;
    for (int c = threadIdx.x; c < V / 4; c += blockDim.x) {
        float4 v = __ldcs(x4 + c);
        float vm = fmaxf(fmaxf(v.x, v.y), fmaxf(v.z, v.w));
        if (vm > m) {
            s *= expf(m - vm);
            m = vm;
        }
        s += expf(v.x - m) + expf(v.y - m) + expf(v.z - m) + expf(v.w - m);
    }
    warp_online_merge(m, s);
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) {
        shared_m[warp] = m;
        shared_s[warp] = s;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int i = 1; i < int(blockDim.x / 32); i++) online_merge(m, s, shared_m[i], shared_s[i]);
        float l = m + logf(s);
        lse[n] = l;
        int t = target[n];
        loss[n] = t == kIgnore ? 0.0f : l - logits[size_t(n) * V + t];
    }
}

__global__ void cross_entropy_backward_kernel3(const float* __restrict__ logits, const int* __restrict__ target,
                                               const float* __restrict__ lse, const float* __restrict__ dloss,
                                               float* __restrict__ dlogits, int N, int V) {
    int n = blockIdx.x;
    int t = target[n];
    const float4* x4 = reinterpret_cast<const float4*>(logits + size_t(n) * V);
    float4* dx4 = reinterpret_cast<float4*>(dlogits + size_t(n) * V);
    float g = t == kIgnore ? 0.0f : dloss[n], l = lse[n];
    for (int c = threadIdx.x; c < V / 4; c += blockDim.x) {
        float4 v = __ldcs(x4 + c), o;
        int c0 = 4 * c;
        o.x = g * (expf(v.x - l) - (c0 == t ? 1.0f : 0.0f));
        o.y = g * (expf(v.y - l) - (c0 + 1 == t ? 1.0f : 0.0f));
        o.z = g * (expf(v.z - l) - (c0 + 2 == t ? 1.0f : 0.0f));
        o.w = g * (expf(v.w - l) - (c0 + 3 == t ? 1.0f : 0.0f));
        if (t == kIgnore) o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        __stcs(dx4 + c, o);
    }
}

// ---------------------------------------------------------------------------------------------

bool variant_supports(int variant, int V) { return variant != 3 || V % 4 == 0; }

int num_sms() {
    static int sms = 0;
    if (!sms) CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    return sms;
}

void cross_entropy_forward(int variant, const float* logits, const int* target, float* loss, float* lse, int N,
                           int V, int block_size) {
    switch (variant) {
        case 1: cross_entropy_forward_kernel1<<<ceil_div(N, block_size), block_size>>>(logits, target, loss, lse, N, V); break;
        case 2: cross_entropy_forward_kernel2<<<ceil_div(N, block_size / 32), block_size>>>(logits, target, loss, lse, N, V); break;
        case 3: cross_entropy_forward_kernel3<<<N, block_size>>>(logits, target, loss, lse, N, V); break;
    }
    CUDA_CHECK_LAUNCH();
}

void cross_entropy_backward(int variant, const float* logits, const int* target, const float* lse,
                            const float* dloss, float* dlogits, int N, int V, int block_size) {
    switch (variant) {
        case 1: cross_entropy_backward_kernel1<<<ceil_div(N, block_size), block_size>>>(logits, target, lse, dloss, dlogits, N, V); break;
        case 2: {
            int blocks = std::min(N, num_sms() * (2048 / block_size));
            cross_entropy_backward_kernel2<<<blocks, block_size>>>(logits, target, lse, dloss, dlogits, N, V);
            break;
        }
        case 3: cross_entropy_backward_kernel3<<<N, block_size>>>(logits, target, lse, dloss, dlogits, N, V); break;
    }
    CUDA_CHECK_LAUNCH();
}

int main(int argc, char** argv) {
    require_cuda_device_or_exit("softmax_cross_entropy");
    const int variant = selected_variant(argc, argv);
    const int n_variants = 3;
    bool ok = true;

    struct Shape { int N, V; };
    const Shape shapes[] = {{1, 1}, {7, 3}, {33, 129}, {64, 1000}, {300, 256}, {16, 50257}, {12, 50304}};
    const int block_sizes[] = {32, 64, 128, 256, 512, 1024};
    for (const Shape& s : shapes) {
        size_t NV = size_t(s.N) * s.V;
        std::vector<float> logits = random_normal(NV, 41, 3.0f), dloss = random_uniform(s.N, 42, 0.1f, 1.0f);
        std::vector<int> target(s.N);
        HostRng rng(43);
        for (int n = 0; n < s.N; n++) target[n] = (n % 5 == 3) ? kIgnore : int(rng.next() % uint64_t(s.V));
        std::vector<float> loss(s.N), lse(s.N), dlogits(NV);
        cross_entropy_cpu(logits.data(), target.data(), dloss.data(), loss.data(), lse.data(), dlogits.data(), s.N, s.V);
        float *d_logits = device_from_host(logits), *d_dloss = device_from_host(dloss);
        int* d_target = device_from_host(target);
        float *d_loss = device_alloc<float>(s.N), *d_lse = device_alloc<float>(s.N), *d_dlogits = device_alloc<float>(NV);
        for (int v = 1; v <= n_variants; v++) {
            if ((variant && v != variant) || !variant_supports(v, s.V)) continue;
            for (int bs : block_sizes) {
                CUDA_CHECK(cudaMemset(d_dlogits, 0xff, NV * sizeof(float)));  // NaN: unwritten values show
                cross_entropy_forward(v, d_logits, d_target, d_loss, d_lse, s.N, s.V, bs);
                CUDA_CHECK(cudaDeviceSynchronize());
                bool good = validate_device("loss", d_loss, loss.data(), s.N, 1e-5f, 1e-5f) &&
                            validate_device("lse", d_lse, lse.data(), s.N, 1e-5f, 1e-5f);
                // the backward starts from the reference lse, so its check is independent
                CUDA_CHECK(cudaMemcpy(d_lse, lse.data(), s.N * sizeof(float), cudaMemcpyHostToDevice));
                cross_entropy_backward(v, d_logits, d_target, d_lse, d_dloss, d_dlogits, s.N, s.V, bs);
                CUDA_CHECK(cudaDeviceSynchronize());
                good &= validate_device("dlogits", d_dlogits, dlogits.data(), NV, 1e-6f, 1e-4f);
                if (!good) std::printf("variant %d failed at N=%d V=%d block=%d\n", v, s.N, s.V, bs);
                ok &= good;
            }
        }
        CUDA_CHECK(cudaFree(d_logits)); CUDA_CHECK(cudaFree(d_dloss)); CUDA_CHECK(cudaFree(d_target));
        CUDA_CHECK(cudaFree(d_loss)); CUDA_CHECK(cudaFree(d_lse)); CUDA_CHECK(cudaFree(d_dlogits));
    }
    std::printf("correctness: %s\n", ok ? "ok" : "FAILED");

    // benchmark: CLIP logits of a 8192 batch (8192, 8192), and a GPT-2-vocabulary LM head
    const Shape bench_shapes[] = {{8192, 8192}, {4096, 50304}};
    for (const Shape& s : bench_shapes) {
        size_t NV = size_t(s.N) * s.V;
        float* d_logits = device_from_host(random_uniform(NV, 44, -4.0f, 4.0f));  // cheap to make
        float* d_dloss = device_from_host(random_uniform(s.N, 45, 0.1f, 1.0f));
        std::vector<int> target(s.N);
        for (int n = 0; n < s.N; n++) target[n] = n % s.V;
        int* d_target = device_from_host(target);
        float *d_loss = device_alloc<float>(s.N), *d_lse = device_alloc<float>(s.N), *d_dlogits = device_alloc<float>(NV);
        std::printf("benchmark N=%d V=%d (F32)\n", s.N, s.V);
        for (int v = 1; v <= n_variants; v++) {
            if ((variant && v != variant) || !variant_supports(v, s.V)) continue;
            for (int bs : {256, 512}) {
                if (v == 1 && bs != 256) continue;
                char what[64];
                float ms = benchmark_ms(v == 1 ? 3 : 20, [&] { cross_entropy_forward(v, d_logits, d_target, d_loss, d_lse, s.N, s.V, bs); });
                std::snprintf(what, sizeof what, "forward %d, block %d", v, bs);
                report_bandwidth(what, ms, double(NV) * sizeof(float));
                ms = benchmark_ms(v == 1 ? 3 : 20, [&] { cross_entropy_backward(v, d_logits, d_target, d_lse, d_dloss, d_dlogits, s.N, s.V, bs); });
                std::snprintf(what, sizeof what, "backward %d, block %d", v, bs);
                report_bandwidth(what, ms, 2.0 * double(NV) * sizeof(float));
            }
        }
        CUDA_CHECK(cudaFree(d_logits)); CUDA_CHECK(cudaFree(d_dloss)); CUDA_CHECK(cudaFree(d_target));
        CUDA_CHECK(cudaFree(d_loss)); CUDA_CHECK(cudaFree(d_lse)); CUDA_CHECK(cudaFree(d_dlogits));
    }
    return finish("softmax_cross_entropy", ok);
}
