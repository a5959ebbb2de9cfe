// engine/cpu/cpu_matmul.cpp
// defines: the CPU GEMM behind every matmul. F32 and BF16 run on oneDNN's matmul primitive:
// AVX-512 fp32 kernels, and bf16 with fp32 accumulation on AMX tiles where the CPU has them
// (AVX512-BF16, or AVX-512 conversions, where it does not: oneDNN reads CPUID at run time, so a
// binary built here runs on a CPU without AMX). F64 (the gradient-check dtype) runs on Eigen, and
// so do F32 and BF16 when oneDNN has no kernel for the CPU (BF16 then widened to F32).
//
// Why oneDNN, measured on the model's shapes (docs/ARCHITECTURE.md, engine/cpu/dev/gemm.cpp):
// its fp32 GEMM reaches ~70% of the FMA peak where Eigen and OpenBLAS reach ~50-55%, and its AMX
// bf16 GEMM 1.5-3.5 TFLOP/s on 2 cores, 6-10x the fp32 peak.
//
// Transposed operands never get copied: the transpose flags become strides of oneDNN's memory
// descriptors. CpuBackend::linear hands the bias to the same primitive, which adds it as it
// writes the output. On CPUs without AMX a bf16 layer runs on oneDNN's inner product instead
// (forward, and the weight and bias gradients in one primitive; below), and so do the fp32
// weight and bias gradients of layers with no more outputs than inputs. Primitives are
// built once per (shape, flags, bias, dtype, thread count) and cached.
// Results are bit-identical run to run for a given thread count (oneDNN's CPU matmul and inner
// product split work in a fixed way and have no atomics).
#include <Eigen/Core>
#include <array>
#include <dnnl.hpp>
#include <mutex>
#include <unordered_map>

#include "engine/cpu/cpu_backend.h"
#include "engine/ops.h"

namespace rankclip {

// ---- the reference path: Eigen maps over our row-major buffers, one matrix at a time ----

template <typename T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <typename T>
static void eigen_gemm_one(const T* a, const T* b, T* c, int64_t M, int64_t N, int64_t K, bool ta, bool tb) {
    Eigen::Map<const RowMatrix<T>> A(a, ta ? K : M, ta ? M : K);
    Eigen::Map<const RowMatrix<T>> B(b, tb ? N : K, tb ? K : N);
    Eigen::Map<RowMatrix<T>> C(c, M, N);
    if (!ta && !tb) C.noalias() = A * B;
    else if (ta && !tb) C.noalias() = A.transpose() * B;
    else if (!ta && tb) C.noalias() = A * B.transpose();
    else C.noalias() = A.transpose() * B.transpose();
}

// a (batch or 1, M, K) or its transpose, b likewise, out (batch, M, N); a batch of 1 broadcasts.
template <typename T>
static void eigen_gemm(const Tensor& a, const Tensor& b, Tensor& out, bool ta, bool tb) {
    int64_t batch = out.size(0), M = out.size(1), N = out.size(2);
    int64_t K = ta ? a.size(1) : a.size(2);
    const T* as = static_cast<const T*>(a.raw_data());
    const T* bs = static_cast<const T*>(b.raw_data());
    T* cs = static_cast<T*>(out.raw_data());
    int64_t sa = a.size(0) == 1 ? 0 : M * K, sb = b.size(0) == 1 ? 0 : K * N, sc = M * N;
    if (batch > 1 && M * N * K < 128 * 128 * 128) {  // small matrices: one per thread
#pragma omp parallel for schedule(static) if (batch * M * N * K > 32768)
        for (int64_t i = 0; i < batch; i++) eigen_gemm_one(as + i * sa, bs + i * sb, cs + i * sc, M, N, K, ta, tb);
    } else {  // large ones: Eigen splits each matrix over the threads
        for (int64_t i = 0; i < batch; i++) eigen_gemm_one(as + i * sa, bs + i * sb, cs + i * sc, M, N, K, ta, tb);
    }
}

// ---- oneDNN ----

namespace {

// A plan cache's key lists its fields as integers (fields()): compared and hashed (KeyHash)
// together.
struct KeyHash {
    template <typename Key>
    size_t operator()(const Key& k) const {
        size_t h = 0;
        for (int64_t v : k.fields()) h = h * 1000003u ^ size_t(v);
        return h;
    }
};

struct GemmKey {
    DType dtype;
    int64_t batch, batch_a, batch_b, M, N, K;
    bool ta, tb, bias;
    int threads;
    std::array<int64_t, 11> fields() const {
        return {int64_t(dtype), batch, batch_a, batch_b, M, N, K, ta, tb, bias, threads};
    }
    bool operator==(const GemmKey& o) const { return fields() == o.fields(); }
};

// A built primitive with its memory descriptors, or `ok` false when oneDNN has no kernel for
// this dtype on this CPU (then the Eigen path runs).
struct GemmPlan {
    bool ok = false;
    dnnl::memory::desc a, b, c, bias, scratchpad;
    dnnl::matmul primitive;
};

dnnl::engine& onednn_engine() {
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

// A (batch, rows, cols) operand stored row-major, or stored as its transpose (cols, rows).
dnnl::memory::desc operand_desc(dnnl::memory::data_type type, int64_t batch, int64_t rows, int64_t cols,
                                bool transposed) {
    dnnl::memory::dims strides = transposed ? dnnl::memory::dims{rows * cols, 1, rows}
                                            : dnnl::memory::dims{rows * cols, cols, 1};
    return dnnl::memory::desc({batch, rows, cols}, type, strides);
}

GemmPlan build_plan(const GemmKey& k) {
    using dt = dnnl::memory::data_type;
    dt type = k.dtype == DType::BF16 ? dt::bf16 : dt::f32;
    GemmPlan plan;
    plan.a = operand_desc(type, k.batch_a, k.M, k.K, k.ta);
    plan.b = operand_desc(type, k.batch_b, k.K, k.N, k.tb);
    plan.c = operand_desc(type, k.batch, k.M, k.N, false);
    if (k.bias) plan.bias = operand_desc(type, 1, 1, k.N, false);  // one row, broadcast over batch and M
    try {
        dnnl::matmul::desc desc = k.bias ? dnnl::matmul::desc(plan.a, plan.b, plan.bias, plan.c)
                                         : dnnl::matmul::desc(plan.a, plan.b, plan.c);
        dnnl::primitive_attr attr;  // the scratchpad is ours (execute)
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        dnnl::matmul::primitive_desc pd(desc, attr, onednn_engine());
        plan.scratchpad = pd.scratchpad_desc();
        plan.primitive = dnnl::matmul(pd);
        plan.ok = true;
    } catch (const dnnl::error&) {
        plan.ok = false;  // e.g. bf16 on a CPU without AVX-512: Eigen takes over
    }
    return plan;
}

// The plan for key, built on first use and kept (never erased: the reference stays valid).
template <typename Key, typename Plan>
const Plan& cached(const Key& key, Plan (*build)(const Key&)) {
    static std::mutex mutex;
    static std::unordered_map<Key, Plan, KeyHash> plans;
    std::lock_guard<std::mutex> lock(mutex);
    auto it = plans.find(key);
    if (it == plans.end()) it = plans.emplace(key, build(key)).first;
    return it->second;
}

// Runs a built primitive on args, with its scratchpad (where oneDNN packs operands) from our
// caching allocator: left to oneDNN it is malloc'd per call, fresh pages the kernel zeroes every
// step.
void execute(const dnnl::primitive& primitive, const dnnl::memory::desc& scratchpad,
             std::unordered_map<int, dnnl::memory> args) {
    static dnnl::stream stream(onednn_engine());
    Tensor scratch;
    if (size_t bytes = scratchpad.get_size()) {
        scratch = empty({int64_t((bytes + 3) / 4)}, DType::I32);  // any 4-byte dtype: raw bytes
        args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(scratchpad, onednn_engine(), scratch.raw_data()));
    }
    primitive.execute(stream, args);
    stream.wait();
}

// out = a @ b (+ bias, a row added to every row of out) through oneDNN; false when it has no
// kernel for this dtype here. Shapes as CpuBackend::matmul; bias (N) or undefined.
bool onednn_gemm(const Tensor& a, const Tensor& b, const Tensor& bias, Tensor& out, bool ta, bool tb) {
    GemmKey key{a.dtype(), out.size(0), a.size(0), b.size(0), out.size(1), out.size(2),
                ta ? a.size(1) : a.size(2), ta, tb, bias.defined(), omp_get_max_threads()};
    const GemmPlan& plan = cached(key, build_plan);
    if (!plan.ok) return false;
    const dnnl::engine& engine = onednn_engine();
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, dnnl::memory(plan.a, engine, a.raw_data())},
                                               {DNNL_ARG_WEIGHTS, dnnl::memory(plan.b, engine, b.raw_data())},
                                               {DNNL_ARG_DST, dnnl::memory(plan.c, engine, out.raw_data())}};
    if (bias.defined()) args.emplace(DNNL_ARG_BIAS, dnnl::memory(plan.bias, engine, bias.raw_data()));
    execute(plan.primitive, plan.scratchpad, std::move(args));
    return true;
}

// ---- bf16 linear layers without AMX: oneDNN's inner product ----
// A Linear layer is oneDNN's inner product: y (M, N) = x (M, K) w (N, K)^T + b, and its
// backward-weights primitive gives gw (N, K) = g (M, N)^T x and gb (N) = g's column sums in one
// call, all row-major. Measured on an AVX512-BF16 CPU (engine/cpu/dev/weight_grad.cpp,
// gemm.cpp): in bf16 the forward is 5-13% faster than the matmul primitive on the CLIP layers,
// and the weight gradient is as fast as the matmul's alone with the bias sum nearly free, where
// the separate column sum, a second pass over g, cost 5-28% of the pair. fp32 keeps the matmul
// primitive for the forward and for most weight gradients (weight_grad_on_inner_product below),
// and so do CPUs with AMX, where the matmul runs on the tiles and the inner product has not been
// measured.

struct InnerProductKey {
    bool backward;  // backward weights (else forward)
    DType dtype;
    int64_t M, N, K;
    bool bias;
    int threads;
    std::array<int64_t, 7> fields() const { return {backward, int64_t(dtype), M, N, K, bias, threads}; }
    bool operator==(const InnerProductKey& o) const { return fields() == o.fields(); }
};

struct InnerProductPlan {
    bool ok = false;
    dnnl::memory::desc x, w, b, y, scratchpad;  // y: the output, or the output's gradient
    dnnl::primitive primitive;
};

InnerProductPlan build_inner_product_plan(const InnerProductKey& k) {
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    dt type = k.dtype == DType::BF16 ? dt::bf16 : dt::f32;
    InnerProductPlan plan;
    plan.x = dnnl::memory::desc({k.M, k.K}, type, tag::ab);  // the layer's input
    plan.w = dnnl::memory::desc({k.N, k.K}, type, tag::ab);  // (out, in)
    plan.y = dnnl::memory::desc({k.M, k.N}, type, tag::ab);
    if (k.bias) plan.b = dnnl::memory::desc({k.N}, type, tag::a);
    try {
        using forward = dnnl::inner_product_forward;
        using backward = dnnl::inner_product_backward_weights;
        dnnl::primitive_attr attr;  // the scratchpad is ours (execute)
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        forward::desc fd = k.bias ? forward::desc(dnnl::prop_kind::forward_training, plan.x, plan.w, plan.b, plan.y)
                                  : forward::desc(dnnl::prop_kind::forward_training, plan.x, plan.w, plan.y);
        forward::primitive_desc fpd(fd, attr, onednn_engine());
        if (k.backward) {  // the forward primitive descriptor is the backward one's hint
            backward::primitive_desc bpd(k.bias ? backward::desc(plan.x, plan.w, plan.b, plan.y)
                                                : backward::desc(plan.x, plan.w, plan.y),
                                         attr, onednn_engine(), fpd);
            plan.scratchpad = bpd.scratchpad_desc();
            plan.primitive = backward(bpd);
        } else {
            plan.scratchpad = fpd.scratchpad_desc();
            plan.primitive = forward(fpd);
        }
        plan.ok = true;
    } catch (const dnnl::error&) {
        plan.ok = false;  // no kernel for this dtype here: the matmul primitive's path
    }
    return plan;
}

// Runs the inner product for (x, w, b, y) of a layer: forward (y = x w^T + b) or backward weights
// (w, b = the gradients from y = g and x); false when oneDNN has no kernel for it here.
bool onednn_inner_product(bool backward, const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y) {
    InnerProductKey key{backward, x.dtype(), x.size(0), w.size(0), x.size(1), b.defined(), omp_get_max_threads()};
    const InnerProductPlan& plan = cached(key, build_inner_product_plan);
    if (!plan.ok) return false;
    const dnnl::engine& engine = onednn_engine();
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC, dnnl::memory(plan.x, engine, x.raw_data())},
        {backward ? DNNL_ARG_DIFF_WEIGHTS : DNNL_ARG_WEIGHTS, dnnl::memory(plan.w, engine, w.raw_data())},
        {backward ? DNNL_ARG_DIFF_DST : DNNL_ARG_DST, dnnl::memory(plan.y, engine, y.raw_data())}};
    if (b.defined())
        args.emplace(backward ? DNNL_ARG_DIFF_BIAS : DNNL_ARG_BIAS, dnnl::memory(plan.b, engine, b.raw_data()));
    execute(plan.primitive, plan.scratchpad, std::move(args));
    return true;
}

// (M, K) or (M, N) as a batch of one, the layout oneDNN's plans and Eigen's path take.
Tensor as_batch_of_one(const Tensor& t) {
    return make_view(t, {1, t.size(0), t.size(1)}, {0, t.size(1), 1}, t.offset());
}

// Whether a layer of this dtype runs on the inner product: bf16 where oneDNN has no AMX tiles
// (see "bf16 linear layers without AMX" above).
bool inner_product_applies(DType dtype) {
    static const bool amx = dnnl::get_effective_cpu_isa() == dnnl::cpu_isa::avx512_core_amx;
    return dtype == DType::BF16 && !amx;
}

// Whether a layer's weight and bias gradients gw (N, K), gb (N) run on the inner product's
// backward weights: where the forward does, and in fp32 when gw has no more rows than columns
// (N <= K: the attention output projections, c_proj), where oneDNN's matmul primitive on g^T is
// slow; measured on the AMD machine (engine/cpu/dev/weight_grad.cpp, 2026-12-05): tiny's c_proj
// 2.86 against 4.49 ms with the column sum, small's c_proj and out projections 5-8% faster, while
// the N > K layers (qkv, c_fc) are 2-14% slower on it. A fixed rule, not a timing at run time:
// which kernel runs must not depend on the machine's load, or the bits would.
bool weight_grad_on_inner_product(DType dtype, int64_t N, int64_t K) {
    return inner_product_applies(dtype) || (dtype == DType::F32 && N <= K);
}

}  // namespace

void CpuBackend::matmul(const Tensor& a, const Tensor& b, Tensor& out, bool ta, bool tb) {
    if (out.numel() == 0) return;
    int64_t K = ta ? a.size(1) : a.size(2);
    if (K == 0) {  // an empty sum: oneDNN and Eigen would leave out untouched
        fill(out, 0.0);
        return;
    }
    switch (a.dtype()) {
        case DType::F64: eigen_gemm<double>(a, b, out, ta, tb); break;
        case DType::F32:
            if (!onednn_gemm(a, b, Tensor(), out, ta, tb)) eigen_gemm<float>(a, b, out, ta, tb);
            break;
        case DType::BF16:
            if (!onednn_gemm(a, b, Tensor(), out, ta, tb)) {  // widened to F32
                Tensor af = empty(a.shape(), DType::F32), bf = empty(b.shape(), DType::F32);
                Tensor of = empty(out.shape(), DType::F32);
                copy(a, af);
                copy(b, bf);
                eigen_gemm<float>(af, bf, of, ta, tb);
                copy(of, out);
            }
            break;
        default: missing("matmul", a);
    }
}

void CpuBackend::linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out) {
    if (x.size(1) > 0) {  // K = 0: oneDNN would leave out untouched
        if (inner_product_applies(x.dtype()) && onednn_inner_product(false, x, w, bias, out)) return;
        Tensor out3 = as_batch_of_one(out);
        if ((x.dtype() == DType::F32 || x.dtype() == DType::BF16) &&
            onednn_gemm(as_batch_of_one(x), as_batch_of_one(w), bias, out3, false, true))
            return;
    }
    Backend::linear(x, w, bias, out);  // GEMM, then the bias as a broadcast add
}

void CpuBackend::linear_weight_grad(const Tensor& g, const Tensor& x, Tensor& gw, Tensor& gb) {
    if (weight_grad_on_inner_product(g.dtype(), gw.size(0), gw.size(1)) && onednn_inner_product(true, x, gw, gb, g))
        return;
    Backend::linear_weight_grad(g, x, gw, gb);  // matmul (g^T as a flag), then reduce_cols
}

}  // namespace rankclip
