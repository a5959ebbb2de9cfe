// cuda/dev/common.h
// defines: the helpers every playground program shares: error checks, the "no CUDA device"
// exit, host random data, bf16 conversion, result validation, and the benchmark harness
// (warm-up, L2 flushed before every timed run, median of many runs, CUDA events) with the
// device-to-device copy bandwidth used as the memory roofline.
// Standalone on purpose: the playground does not link the library, so a kernel can be tried
// here in one file and promoted into cuda/ once it wins.
#pragma once
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

// ---------------------------------------------------------------------------------------------
// error checks: any failure prints where and exits non-zero

inline void cuda_check(cudaError_t err, const char* file, int line) {
    if (err != cudaSuccess) {
        std::fprintf(stderr, "[CUDA ERROR] %s:%d: %s\n", file, line, cudaGetErrorString(err));
        std::exit(EXIT_FAILURE);
    }
}
#define CUDA_CHECK(call) cuda_check((call), __FILE__, __LINE__)
// after a kernel launch: reports launch-configuration errors at the launch site
#define CUDA_CHECK_LAUNCH() cuda_check(cudaGetLastError(), __FILE__, __LINE__)

inline void cublas_check(cublasStatus_t status, const char* file, int line) {
    if (status != CUBLAS_STATUS_SUCCESS) {
        std::fprintf(stderr, "[cuBLAS ERROR] %s:%d: status %d\n", file, line, int(status));
        std::exit(EXIT_FAILURE);
    }
}
#define CUBLAS_CHECK(call) cublas_check((call), __FILE__, __LINE__)

template <typename T>
__host__ __device__ constexpr T ceil_div(T a, T b) { return (a + b - 1) / b; }

// Exits 0 with "no CUDA device" when there is no usable GPU (any error counts as none), so
// `make run` passes on a machine without one. Prints the device otherwise.
inline void require_cuda_device_or_exit(const char* program) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count == 0) {
        std::printf("%s: no CUDA device, skipping\n", program);
        std::exit(0);
    }
    CUDA_CHECK(cudaSetDevice(0));
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("%s on %s (sm_%d%d, %d SMs, L2 %d MiB)\n", program, prop.name, prop.major,
                prop.minor, prop.multiProcessorCount, prop.l2CacheSize >> 20);
}

// Which variant to run: argv[1] if given (0 = all).
inline int selected_variant(int argc, char** argv) { return argc > 1 ? std::atoi(argv[1]) : 0; }

// ---------------------------------------------------------------------------------------------
// host data

// A small deterministic generator (xorshift64*), so every run checks the same numbers.
struct HostRng {
    uint64_t state;
    explicit HostRng(uint64_t seed) : state(seed * 0x9E3779B97F4A7C15ull + 1) {}
    uint64_t next() {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        return state * 0x2545F4914F6CDD1Dull;
    }
    float uniform() { return float(next() >> 40) / float(1 << 24); }  // [0, 1)
    float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
    float normal() {  // Box-Muller
        float u1 = std::max(uniform(), 1e-7f), u2 = uniform();
        return std::sqrt(-2.0f * std::log(u1)) * std::cos(6.2831853f * u2);
    }
};

inline std::vector<float> random_normal(size_t n, uint64_t seed, float scale = 1.0f) {
    HostRng rng(seed);
    std::vector<float> v(n);
    for (auto& x : v) x = scale * rng.normal();
    return v;
}

inline std::vector<float> random_uniform(size_t n, uint64_t seed, float lo, float hi) {
    HostRng rng(seed);
    std::vector<float> v(n);
    for (auto& x : v) x = rng.uniform(lo, hi);
    return v;
}

// bf16 with round-to-nearest-even, as the library and PyTorch do
inline uint16_t host_float_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
    return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline float host_bf16_to_float(uint16_t h) {
    uint32_t u = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// ---------------------------------------------------------------------------------------------
// device buffers

template <typename T>
T* device_alloc(size_t n) {
    T* p = nullptr;
    CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)));
    return p;
}

template <typename T>
T* device_from_host(const std::vector<T>& host) {
    T* p = device_alloc<T>(host.size());
    CUDA_CHECK(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
    return p;
}

template <typename T>
std::vector<T> host_from_device(const T* device, size_t n) {
    std::vector<T> host(n);
    CUDA_CHECK(cudaMemcpy(host.data(), device, n * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
}

// ---------------------------------------------------------------------------------------------
// validation: |got - ref| <= atol + rtol * |ref| everywhere; prints the first mismatches.
// Returns false on a mismatch (the caller records it and exits non-zero at the end).

inline bool validate(const char* name, const float* got, const float* ref, size_t n, float atol,
                     float rtol) {
    size_t bad = 0;
    double max_err = 0.0;
    for (size_t i = 0; i < n; i++) {
        float diff = std::fabs(got[i] - ref[i]);
        bool ok = diff <= atol + rtol * std::fabs(ref[i]);
        if (std::isnan(ref[i]) && std::isnan(got[i])) ok = true;
        if (std::isinf(ref[i]) && got[i] == ref[i]) ok = true;
        if (!ok) {
            if (bad < 5)
                std::printf("  MISMATCH %s[%zu]: got %.7g, expected %.7g\n", name, i, got[i], ref[i]);
            bad++;
        }
        if (std::isfinite(diff)) max_err = std::max(max_err, double(diff));
    }
    if (bad) std::printf("  %s: %zu of %zu values wrong (max abs err %.3g)\n", name, bad, n, max_err);
    return bad == 0;
}

inline bool validate_device(const char* name, const float* device, const float* ref, size_t n,
                            float atol, float rtol) {
    std::vector<float> got = host_from_device(device, n);
    return validate(name, got.data(), ref, n, atol, rtol);
}

inline bool validate_device_bf16(const char* name, const __nv_bfloat16* device, const float* ref,
                                 size_t n, float atol, float rtol) {
    std::vector<__nv_bfloat16> raw = host_from_device(device, n);
    std::vector<float> got(n);
    for (size_t i = 0; i < n; i++) {
        uint16_t bits;
        std::memcpy(&bits, &raw[i], 2);
        got[i] = host_bf16_to_float(bits);
    }
    return validate(name, got.data(), ref, n, atol, rtol);
}

// Bitwise equality of two device buffers: the determinism check (same launch, run twice).
template <typename T>
bool same_bits(const char* name, const T* a, const T* b, size_t n) {
    std::vector<T> ha = host_from_device(a, n), hb = host_from_device(b, n);
    bool same = std::memcmp(ha.data(), hb.data(), n * sizeof(T)) == 0;
    if (!same) std::printf("  NOT DETERMINISTIC: %s differs between two identical runs\n", name);
    return same;
}

// ---------------------------------------------------------------------------------------------
// benchmarking

// A buffer larger than L2, written before every timed run so no run finds its data cached.
struct L2Flusher {
    void* buffer = nullptr;
    size_t nbytes = 0;
    L2Flusher() {
        int l2 = 0;
        CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0));
        nbytes = std::max<size_t>(size_t(l2) * 2, 64u << 20);
        CUDA_CHECK(cudaMalloc(&buffer, nbytes));
    }
    ~L2Flusher() { cudaFree(buffer); }
    void flush() { CUDA_CHECK(cudaMemsetAsync(buffer, 0, nbytes)); }
};

// Median time in milliseconds of `runs` launches of `launch` (a callable that enqueues the
// kernel on the default stream), after `warmup` untimed launches; L2 flushed before each.
template <typename Launch>
float benchmark_ms(int runs, Launch launch, int warmup = 3) {
    static L2Flusher flusher;
    for (int i = 0; i < warmup; i++) launch();
    CUDA_CHECK(cudaDeviceSynchronize());
    cudaEvent_t start, stop;
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&stop));
    std::vector<float> times(runs);
    for (int i = 0; i < runs; i++) {
        flusher.flush();
        CUDA_CHECK(cudaEventRecord(start));
        launch();
        CUDA_CHECK(cudaEventRecord(stop));
        CUDA_CHECK(cudaEventSynchronize(stop));
        CUDA_CHECK_LAUNCH();
        CUDA_CHECK(cudaEventElapsedTime(&times[i], start, stop));
    }
    CUDA_CHECK(cudaEventDestroy(start));
    CUDA_CHECK(cudaEventDestroy(stop));
    std::sort(times.begin(), times.end());
    return times[runs / 2];
}

// The memory roofline: bytes read + written per second by a large device-to-device copy.
// Measured once per program (256 MiB copied, median of 10).
inline double copy_bandwidth_gbs() {
    static double gbs = 0.0;
    if (gbs > 0.0) return gbs;
    const size_t nbytes = size_t(256) << 20;
    void *src, *dst;
    CUDA_CHECK(cudaMalloc(&src, nbytes));
    CUDA_CHECK(cudaMalloc(&dst, nbytes));
    CUDA_CHECK(cudaMemset(src, 1, nbytes));
    float ms = benchmark_ms(10, [&] { CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice)); });
    CUDA_CHECK(cudaFree(src));
    CUDA_CHECK(cudaFree(dst));
    gbs = 2.0 * double(nbytes) / (double(ms) * 1e6);
    std::printf("memory roofline (device-to-device copy): %.0f GB/s\n", gbs);
    return gbs;
}

// One benchmark line for a memory-bound kernel: time, GB/s, fraction of the copy roofline.
inline void report_bandwidth(const char* what, float ms, double bytes) {
    double gbs = bytes / (double(ms) * 1e6);
    std::printf("  %-44s %9.4f ms %8.0f GB/s  %5.1f%% of roofline\n", what, ms, gbs,
                100.0 * gbs / copy_bandwidth_gbs());
}

// One benchmark line for a compute-bound kernel: time, TFLOP/s, and the ratio to a reference.
inline void report_flops(const char* what, float ms, double flops, float reference_ms) {
    double tflops = flops / (double(ms) * 1e9);
    std::printf("  %-44s %9.4f ms %8.2f TFLOP/s", what, ms, tflops);
    if (reference_ms > 0) std::printf("  %.2fx the reference's speed", reference_ms / ms);
    std::printf("\n");
}

// Exit status of a program: prints the verdict and returns non-zero if any check failed.
inline int finish(const char* program, bool all_ok) {
    std::printf("%s: %s\n", program, all_ok ? "all checks passed" : "SOME CHECKS FAILED");
    return all_ok ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// device helpers shared by the kernels

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Merges two online-softmax states (running max m, sum of exp(x - m) s). -inf-safe.
__device__ __forceinline__ void online_merge(float& m, float& s, float m2, float s2) {
    float mn = fmaxf(m, m2);
    if (mn == -INFINITY) return;  // both empty
    s = s * expf(m - mn) + s2 * expf(m2 - mn);
    m = mn;
}

__device__ __forceinline__ void warp_online_merge(float& m, float& s) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        float m2 = __shfl_xor_sync(0xffffffffu, m, offset);
        float s2 = __shfl_xor_sync(0xffffffffu, s, offset);
        online_merge(m, s, m2, s2);
    }
}
