// bench/bench_engine.cpp
// defines: the engine benchmark program (`make bench` runs it, then tools/bench_torch.py, its
// PyTorch twin, with the same cases, shapes and method). It prints one JSON line per case:
//   {"impl":"rankclip","device":"cpu","case":"gemm","shape":"512x512x512","threads":2,
//    "runs":...,"median_ms":...,"gflops":...,"fraction_of_peak":...}
// and, first, one line with the machine's fp32 peak measured by an FMA loop (CPU only).
//
// Method (shared with the twin): one untimed warm-up call, then timed calls until at least
// 10 calls and 0.3 s, or at least 3 calls and 1.5 s (slow cases); the median is reported.
// Every call goes through the public ops (allocation, dispatch and autograd included), as a
// user's program would, and ends with backend_for(device).synchronize().
//
// Usage: bench_engine [--threads N] [--quick] [--device cpu|cuda]
#include <omp.h>

#if defined(__AVX512F__) || defined(__AVX2__) || defined(__FMA__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_timing.h"
#include "engine/backend.h"
#include "engine/json.h"
#include "engine/ops.h"
#include "engine/random.h"

using namespace rankclip;
using namespace rankclip::bench;

namespace {

struct Options {
    int threads = 0;      // 0: all cores (or RANKCLIP_THREADS)
    bool quick = false;   // CI smoke: smaller shapes, shorter timing
    Device device = Device::cpu();
};


std::string shape_name(std::initializer_list<int64_t> dims) {
    std::string s;
    for (int64_t d : dims) s += (s.empty() ? "" : "x") + std::to_string(d);
    return s;
}

Json case_line(const Options& opt, const char* name, const std::string& shape, const Timing& t) {
    Json line = Json::object();
    line.set("impl", "rankclip");
    line.set("device", opt.device.str());
    line.set("case", name);
    line.set("shape", shape);
    line.set("threads", get_num_threads());
    line.set("runs", t.runs);
    line.set("median_ms", round4(t.median_ms));
    return line;
}

// ---- fp32 peak: a tight loop of independent FMAs on every thread ----

#if defined(__AVX512F__)
constexpr int kLanes = 16;
constexpr const char* kIsa = "AVX-512";
using Vec = __m512;
inline Vec vec_set(float x) { return _mm512_set1_ps(x); }
inline Vec vec_fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline Vec vec_add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
inline float vec_first(Vec a) { return _mm512_cvtss_f32(a); }
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kLanes = 8;
constexpr const char* kIsa = "AVX2+FMA";
using Vec = __m256;
inline Vec vec_set(float x) { return _mm256_set1_ps(x); }
inline Vec vec_fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec vec_add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
inline float vec_first(Vec a) { return _mm256_cvtss_f32(a); }
#else
constexpr int kLanes = 1;
constexpr const char* kIsa = "scalar";
using Vec = float;
inline Vec vec_set(float x) { return x; }
inline Vec vec_fma(Vec a, Vec b, Vec c) { return std::fma(a, b, c); }
inline Vec vec_add(Vec a, Vec b) { return a + b; }
inline float vec_first(Vec a) { return a; }
#endif

// 12 independent accumulator chains hide the FMA latency (4 cycles) on two FMA ports (needs 8).
constexpr int kChains = 12;

// Runs `iters` rounds of kChains vector FMAs; returns a value that depends on all of them, so
// the compiler cannot drop the loop. acc <- acc * a + b converges to b / (1 - a): no overflow,
// no denormals.
float fma_loop(int64_t iters) {
    Vec acc[kChains];
    for (int i = 0; i < kChains; i++) acc[i] = vec_set(float(i));
    const Vec a = vec_set(0.999999f), b = vec_set(1e-3f);
    for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 12  // fully unrolled, so the chains live in registers (not in acc[] in memory)
        for (int i = 0; i < kChains; i++) acc[i] = vec_fma(acc[i], a, b);
    }
    Vec sum = acc[0];
    for (int i = 1; i < kChains; i++) sum = vec_add(sum, acc[i]);
    return vec_first(sum);
}

// All threads run the loop at once, each timing its own share; the machine's GFLOP/s is the
// sum of the threads' rates (so one thread that starts late or is preempted by the hypervisor
// lowers only its own term). Best of 5 trials: a peak is the best the hardware does.
double measure_peak_gflops(int threads, bool quick, double* single_thread_gflops) {
    const double flops_per_iter = 2.0 * kLanes * kChains;  // one FMA = 2 flops per lane
    volatile float sink = 0;
    auto trial = [&](int64_t iters, int nthreads) {
        double gflops = 0;
        float total = 0;
#pragma omp parallel num_threads(nthreads) reduction(+ : gflops, total)
        {
#pragma omp barrier
            auto t0 = Clock::now();
            total += fma_loop(iters);
            gflops += flops_per_iter * double(iters) / seconds_since(t0) / 1e9;
        }
        sink = sink + total;
        return gflops;
    };
    // calibrate: about 0.1 s per trial (0.02 s with --quick)
    int64_t iters = 1 << 20;
    double rate = trial(iters, threads) * 1e9 / threads / flops_per_iter;  // iterations per second per thread
    iters = std::max<int64_t>(iters, int64_t(rate * (quick ? 0.02 : 0.1)));
    double best = 0;
    for (int t = 0; t < 5; t++) best = std::max(best, trial(iters, threads));
    // one thread alone, for comparison: all threads together should give `threads` times this
    // (less when threads share a core, or the hypervisor shares the cores)
    *single_thread_gflops = 0;
    for (int t = 0; t < 3; t++) *single_thread_gflops = std::max(*single_thread_gflops, trial(iters, 1));
    return best;
}

// ---- the cases ----

struct Context {
    Options opt;
    Generator gen{1234};
    double peak_gflops = 0;  // 0 when not measured (CUDA)

    Tensor randn(const Shape& shape) { return rankclip::randn(shape, gen).to(opt.device); }
};

// C (n, n) = A (n, n) @ B (n, n): 2 n^3 flops. gemm_bf16: A, B and C in bf16 (the twin's runs on
// oneDNN, AMX where the CPU has it); no fraction of the fp32 peak for it.
void bench_gemm(Context& ctx, int64_t n, bool bf16 = false) {
    NoGradGuard no_grad;
    Tensor a = ctx.randn({n, n}), b = ctx.randn({n, n});
    if (bf16) {
        a = a.to(DType::BF16);
        b = b.to(DType::BF16);
    }
    Timing t = time_median(ctx.opt.device, ctx.opt.quick, [&] { matmul(a, b); });
    double gflops = 2.0 * n * n * n / (t.median_ms * 1e-3) / 1e9;
    Json line = case_line(ctx.opt, bf16 ? "gemm_bf16" : "gemm", shape_name({n, n, n}), t);
    line.set("n", n);
    line.set("gflops", round4(gflops));
    if (ctx.peak_gflops > 0 && !bf16) line.set("fraction_of_peak", round4(gflops / ctx.peak_gflops));
    print_line(line);
}

void print_bandwidth(Context& ctx, const char* name, const std::string& shape, const Timing& t, double bytes) {
    Json line = case_line(ctx.opt, name, shape, t);
    line.set("bytes", bytes);
    line.set("gbps", round4(bytes / (t.median_ms * 1e-3) / 1e9));
    print_line(line);
}

// y = layer_norm(x, w, b), x (N, C).
// Minimal traffic: read x (N C) and w, b (2 C); write y (N C)  =>  4 (2 N C + 2 C) bytes.
void bench_layer_norm_forward(Context& ctx, int64_t N, int64_t C) {
    NoGradGuard no_grad;
    Tensor x = ctx.randn({N, C}), w = ctx.randn({C}), b = ctx.randn({C});
    Timing t = time_median(ctx.opt.device, ctx.opt.quick, [&] { layer_norm(x, w, b); });
    print_bandwidth(ctx, "layer_norm_fwd", shape_name({N, C}), t, 4.0 * (2 * N * C + 2 * C));
}

// forward as above, then backward from a given gy (N, C) to gx (N, C), gw, gb (C).
// Minimal traffic: forward reads x, w, b, writes y and the saved mean, rstd (2 N); backward
// reads gy, x, w, mean, rstd, writes gx, gw, gb  =>  4 (5 N C + 5 C + 4 N) bytes.
void bench_layer_norm_forward_backward(Context& ctx, int64_t N, int64_t C) {
    Tensor x = ctx.randn({N, C}).set_requires_grad(), w = ctx.randn({C}).set_requires_grad(),
           b = ctx.randn({C}).set_requires_grad();
    Tensor gy = ctx.randn({N, C});
    Timing t = time_median(ctx.opt.device, ctx.opt.quick, [&] {
        x.zero_grad(), w.zero_grad(), b.zero_grad();
        layer_norm(x, w, b).backward(gy);
    });
    print_bandwidth(ctx, "layer_norm_fwd_bwd", shape_name({N, C}), t, 4.0 * (5 * N * C + 5 * C + 4 * N));
}

// y = softmax(x, -1), x (N, C). Minimal traffic: read x, write y  =>  4 (2 N C) bytes.
void bench_softmax_forward(Context& ctx, int64_t N, int64_t C) {
    NoGradGuard no_grad;
    Tensor x = ctx.randn({N, C});
    Timing t = time_median(ctx.opt.device, ctx.opt.quick, [&] { softmax(x, -1); });
    print_bandwidth(ctx, "softmax_fwd", shape_name({N, C}), t, 4.0 * 2 * N * C);
}

// loss = mean cross_entropy(logits (N, C), target (N)), then backward to glogits (N, C).
// Minimal traffic: forward reads logits (N C) and targets (8 N), writes lse (N); backward reads
// logits, targets, lse, writes glogits  =>  4 (3 N C + 2 N) + 16 N bytes.
void bench_cross_entropy_forward_backward(Context& ctx, int64_t N, int64_t C) {
    Tensor logits = ctx.randn({N, C}).set_requires_grad();
    Tensor target = randint(0, C, {N}, ctx.gen).to(ctx.opt.device);
    Timing t = time_median(ctx.opt.device, ctx.opt.quick, [&] {
        logits.zero_grad();
        cross_entropy(logits, target).backward();
    });
    print_bandwidth(ctx, "cross_entropy_fwd_bwd", shape_name({N, C}), t, 4.0 * (3 * N * C + 2 * N) + 16.0 * N);
}

// out = attention(q, k, v), q, k, v (B, H, T, D), then backward from gout to gq, gk, gv.
// Nominal flops: forward 2 GEMMs (Q K^T, P V) = 4 B H T^2 D, backward 4 GEMMs = 8 B H T^2 D.
void bench_attention_forward_backward(Context& ctx, int64_t B, int64_t H, int64_t T, int64_t D, bool causal) {
    Tensor q = ctx.randn({B, H, T, D}).set_requires_grad(), k = ctx.randn({B, H, T, D}).set_requires_grad(),
           v = ctx.randn({B, H, T, D}).set_requires_grad();
    Tensor gout = ctx.randn({B, H, T, D});
    Timing t = time_median(ctx.opt.device, ctx.opt.quick, [&] {
        q.zero_grad(), k.zero_grad(), v.zero_grad();
        scaled_dot_product_attention(q, k, v, causal).backward(gout);
    });
    Json line = case_line(ctx.opt, causal ? "attention_causal_fwd_bwd" : "attention_fwd_bwd",
                          shape_name({B, H, T, D}), t);
    line.set("gflops", round4(12.0 * B * H * T * T * D / (t.median_ms * 1e-3) / 1e9));
    print_line(line);
}

// One SGD training step of an MLP: x (B, I) -> Linear(I, W) -> GELU -> Linear(W, W) -> GELU ->
// Linear(W, K) -> mean cross-entropy; backward; p -= lr * grad for every parameter.
// Weights are (in, out), so a layer is x @ W + b, the same in the PyTorch twin.
void bench_mlp_train_step(Context& ctx, int64_t B, int64_t I, int64_t W, int64_t K) {
    Tensor x = ctx.randn({B, I});
    Tensor target = randint(0, K, {B}, ctx.gen).to(ctx.opt.device);
    std::vector<Tensor> params;
    for (auto [fan_in, fan_out] : {std::pair{I, W}, {W, W}, {W, K}}) {
        params.push_back((ctx.randn({fan_in, fan_out}) * (1.0 / std::sqrt(double(fan_in)))).detach().set_requires_grad());
        params.push_back(zeros({fan_out}, DType::F32, ctx.opt.device).set_requires_grad());
    }
    const double lr = 1e-3;
    Timing t = time_median(ctx.opt.device, ctx.opt.quick, [&] {
        Tensor h = gelu(matmul(x, params[0]) + params[1]);
        h = gelu(matmul(h, params[2]) + params[3]);
        Tensor loss = cross_entropy(matmul(h, params[4]) + params[5], target);
        loss.backward();
        NoGradGuard no_grad;
        for (Tensor& p : params) {
            p.add_(p.grad(), -lr);
            p.zero_grad();
        }
    });
    Json line = case_line(ctx.opt, "mlp_train_step", shape_name({B, I, W, W, K}), t);
    // forward 2 B (I W + W W + W K) flops, backward twice that
    line.set("gflops", round4(6.0 * B * (I * W + W * W + W * K) / (t.median_ms * 1e-3) / 1e9));
    print_line(line);
}

Options parse_args(int argc, char** argv) {
    Options opt;
    for (int i = 1; i < argc; i++) {
        std::string arg = argv[i];
        auto value = [&]() -> std::string {
            RC_CHECK(i + 1 < argc, "bench_engine: ", arg, " needs a value");
            return argv[++i];
        };
        if (arg == "--threads") {
            opt.threads = std::atoi(value().c_str());
            RC_CHECK(opt.threads > 0, "bench_engine: --threads needs a positive count");
        } else if (arg == "--quick") {
            opt.quick = true;
        } else if (arg == "--device") {
            std::string d = value();
            RC_CHECK(d == "cpu" || d == "cuda", "bench_engine: --device is cpu or cuda, got '", d, "'");
            opt.device = d == "cpu" ? Device::cpu() : Device::cuda(0);
        } else if (arg == "--help" || arg == "-h") {
            std::printf("usage: bench_engine [--threads N] [--quick] [--device cpu|cuda]\n");
            std::exit(0);
        } else {
            throw Error(str_cat("bench_engine: unknown argument '", arg, "' (see --help)"));
        }
    }
    return opt;
}

}  // namespace

int main(int argc, char** argv) {
    use_short_openmp_spin(argv);  // our programs' OpenMP wait policy (engine/parallel.cpp)
    try {
        Context ctx;
        ctx.opt = parse_args(argc, argv);
        if (ctx.opt.threads > 0) set_num_threads(ctx.opt.threads);
        if (ctx.opt.device.is_cuda() && !has_backend(DeviceType::CUDA)) {
            print_line(Json::object({{"impl", "rankclip"}, {"skip", "no CUDA device"}}));
            return 0;
        }
        const bool quick = ctx.opt.quick, cuda = ctx.opt.device.is_cuda();

        if (!cuda) {
            double single = 0;
            ctx.peak_gflops = measure_peak_gflops(get_num_threads(), quick, &single);
            print_line(Json::object({{"impl", "rankclip"},
                                     {"case", "fp32_peak"},
                                     {"threads", get_num_threads()},
                                     {"gflops", round4(ctx.peak_gflops)},
                                     {"single_thread_gflops", round4(single)},
                                     {"method", str_cat("measured: ", kChains, " independent ", kIsa, " FMA chains (",
                                                        kLanes, " fp32 lanes) per thread on all ",
                                                        get_num_threads(), " threads, best of 5")}}));
        }

        std::vector<int64_t> gemm_sizes = quick ? std::vector<int64_t>{256, 512} : std::vector<int64_t>{256, 512, 1024, 2048};
        if (cuda && !quick) gemm_sizes.push_back(4096);
        for (int64_t n : gemm_sizes) bench_gemm(ctx, n);
        for (size_t i = 0; i < std::min<size_t>(3, gemm_sizes.size()); i++) bench_gemm(ctx, gemm_sizes[i], true);

        int64_t rows = quick ? 1024 : 8192, ce_rows = quick ? 512 : 4096;
        bench_layer_norm_forward(ctx, rows, 768);
        bench_layer_norm_forward_backward(ctx, rows, 768);
        bench_softmax_forward(ctx, ce_rows, 1000);
        bench_cross_entropy_forward_backward(ctx, ce_rows, 1000);
        bench_attention_forward_backward(ctx, quick ? 16 : 64, 4, 32, 32, /*causal=*/false);
        bench_attention_forward_backward(ctx, quick ? 16 : 64, 4, 32, 32, /*causal=*/true);
        bench_mlp_train_step(ctx, quick ? 64 : 256, 784, 512, 10);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_engine: %s\n", e.what());
        return 1;
    }
    return 0;
}
