// engine/cpu/dev/weight_grad.cpp
// The weight-gradient playground: a Linear layer's backward for its parameters,
//   dW (N, K) = dY (M, N)^T X (M, K)        db (N) = the sums down dY's columns
// in fp32 and in bf16 (bf16 inputs and outputs, fp32 accumulation), on the shapes the CLIP
// models run (M = batch x tokens). Every linear layer pays this once per step; the bias sum is a
// full extra pass over dY unless the GEMM does it.
//
//   1  reference: double sums (bf16: on the bf16-rounded inputs)
//   2  the engine today: oneDNN matmul with dY^T as strides, then the column sums (rows in order,
//      double accumulators, 16 columns per task: engine/cpu/cpu_reduce.cpp's reduce_cols)
//   3  oneDNN inner_product backward_weights with the bias, plain row-major layouts
//   4  = 3 with the layouts oneDNN prefers (format any), reorders to and from plain included
//   5  = 2 without the bias (the GEMM alone; timing only)
//
// Checks every variant on awkward shapes, twice for bit-identical repeats, then times the tiny
// and small models' layers. See README.md.
#include <dnnl.hpp>
#include <memory>
#include <string>
#include <unordered_map>

#include "common.h"

using bf16 = uint16_t;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

struct Problem {
    int M, N, K;
    const char* what;
};

struct Inputs {
    std::vector<float> dy, x;   // fp32
    std::vector<bf16> dy16, x16;  // the same as bf16 bits
};

static Inputs make_inputs(const Problem& p, uint64_t seed) {
    Inputs in;
    in.dy = random_normal(size_t(p.M) * p.N, seed, 0.1f);
    in.x = random_normal(size_t(p.M) * p.K, seed + 1, 1.0f);
    in.dy16 = to_bf16(in.dy), in.x16 = to_bf16(in.x);
    return in;
}

// ---------------------------------------------------------------------------------------------
// 1: the reference, on fp32 values (the bf16 check passes the rounded inputs)

static void reference(const Problem& p, const float* dy, const float* x, std::vector<float>& dw, std::vector<float>& db) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < p.N; n++) {
        for (int k = 0; k < p.K; k++) {
            double s = 0;
            for (int m = 0; m < p.M; m++) s += double(dy[size_t(m) * p.N + n]) * x[size_t(m) * p.K + k];
            dw[size_t(n) * p.K + k] = float(s);
        }
        double b = 0;
        for (int m = 0; m < p.M; m++) b += dy[size_t(m) * p.N + n];
        db[n] = float(b);
    }
}

// ---------------------------------------------------------------------------------------------
// 2: oneDNN matmul (dY^T through its strides) + the engine's column sum

static __m512 load16(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
static __m512 load16(const bf16* p, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

// Columns [c0, c1): rows in order, each column's sum in a double (the engine's reduce_cols,
// engine/cpu/cpu_reduce.cpp: every thread one contiguous range of 16-column blocks, its sums in
// an L1-resident array, so each row is read once, in order).
template <typename T>
static void column_sums(const T* g, float* out, int M, int N, int c0, int c1) {
    const int vecs = (c1 - c0 + 15) / 16;
    const __mmask16 last = c1 - c0 - 16 * (vecs - 1) >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (c1 - c0 - 16 * (vecs - 1))) - 1);
    std::vector<double> acc(size_t(16) * vecs, 0.0);
    for (int r = 0; r < M; r++)
        for (int j = 0; j < vecs; j++) {
            __m512 v = load16(g + size_t(r) * N + c0 + 16 * j, j == vecs - 1 ? last : __mmask16(0xFFFF));
            double* s = acc.data() + 16 * j;
            _mm512_storeu_pd(s, _mm512_add_pd(_mm512_loadu_pd(s), _mm512_cvtps_pd(_mm512_castps512_ps256(v))));
            __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
            _mm512_storeu_pd(s + 8, _mm512_add_pd(_mm512_loadu_pd(s + 8), _mm512_cvtps_pd(high)));
        }
    for (int c = c0; c < c1; c++) out[c] = float(acc[c - c0]);
}

template <typename T>
static void bias_sums(const T* g, float* out, int M, int N) {
    const int blocks = (N + 15) / 16;
#pragma omp parallel
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int b0 = blocks * t / n, b1 = blocks * (t + 1) / n;
        if (b1 > b0) column_sums(g, out, M, N, 16 * b0, std::min(N, 16 * b1));
    }
}

struct MatmulThenSum {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};
    dnnl::memory::desc a, b, c;
    dnnl::matmul primitive;
    std::string impl;
    MatmulThenSum(const Problem& p, dt type) {
        a = dnnl::memory::desc({p.N, p.M}, type, dnnl::memory::dims{1, p.N});  // dY^T: dY read by columns
        b = dnnl::memory::desc({p.M, p.K}, type, dnnl::memory::dims{p.K, 1});
        c = dnnl::memory::desc({p.N, p.K}, type, dnnl::memory::dims{p.K, 1});
        dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), engine);
        impl = pd.impl_info_str();
        primitive = dnnl::matmul(pd);
    }
    template <typename T>
    void run(const Problem& p, const T* dy, const T* x, T* dw, float* db) {
        dnnl::memory ma(a, engine, const_cast<T*>(dy)), mb(b, engine, const_cast<T*>(x)), mc(c, engine, dw);
        primitive.execute(stream, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
        stream.wait();
        if (db) bias_sums(dy, db, p.M, p.N);
    }
};

// ---------------------------------------------------------------------------------------------
// 3 and 4: oneDNN's inner product, weights gradient with the bias in the same primitive. The
// forward primitive descriptor is only the hint the backward one needs.

struct InnerProduct {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};
    dnnl::memory::desc src, ddst, dw, db;              // plain: what the caller holds
    dnnl::memory::desc src_p, ddst_p, dw_p, db_p;      // the primitive's
    dnnl::inner_product_backward_weights primitive;
    dnnl::reorder to_src, to_ddst, from_dw;
    std::vector<uint8_t> src_buf, ddst_buf, dw_buf;
    bool reorder_src = false, reorder_ddst = false, reorder_dw = false;
    std::string impl;
    InnerProduct(const Problem& p, dt type, bool any) {
        src = dnnl::memory::desc({p.M, p.K}, type, tag::ab);
        ddst = dnnl::memory::desc({p.M, p.N}, type, tag::ab);
        dw = dnnl::memory::desc({p.N, p.K}, type, tag::ab);
        db = dnnl::memory::desc({p.N}, type, tag::a);
        dnnl::memory::desc s = any ? dnnl::memory::desc({p.M, p.K}, type, tag::any) : src;
        dnnl::memory::desc d = any ? dnnl::memory::desc({p.M, p.N}, type, tag::any) : ddst;
        dnnl::memory::desc w = any ? dnnl::memory::desc({p.N, p.K}, type, tag::any) : dw;
        dnnl::inner_product_forward::primitive_desc hint(
            dnnl::inner_product_forward::desc(dnnl::prop_kind::forward_training, s, w, db, d), engine);
        dnnl::inner_product_backward_weights::primitive_desc pd(dnnl::inner_product_backward_weights::desc(s, w, db, d),
                                                               engine, hint);
        impl = pd.impl_info_str();
        src_p = pd.src_desc(), ddst_p = pd.diff_dst_desc(), dw_p = pd.diff_weights_desc(), db_p = pd.diff_bias_desc();
        primitive = dnnl::inner_product_backward_weights(pd);
        if ((reorder_src = src_p != src)) src_buf.resize(src_p.get_size()), to_src = dnnl::reorder(dnnl::reorder::primitive_desc(engine, src, engine, src_p));
        if ((reorder_ddst = ddst_p != ddst)) ddst_buf.resize(ddst_p.get_size()), to_ddst = dnnl::reorder(dnnl::reorder::primitive_desc(engine, ddst, engine, ddst_p));
        if ((reorder_dw = dw_p != dw)) dw_buf.resize(dw_p.get_size()), from_dw = dnnl::reorder(dnnl::reorder::primitive_desc(engine, dw_p, engine, dw));
        if (reorder_src || reorder_ddst || reorder_dw) impl += std::string(" + reorders") + (reorder_src ? " x" : "") + (reorder_ddst ? " dY" : "") + (reorder_dw ? " dW" : "");
    }
    void run(const void* dy, const void* x, void* dwv, void* dbv) {
        dnnl::memory ms(src, engine, const_cast<void*>(x)), md(ddst, engine, const_cast<void*>(dy)), mw(dw, engine, dwv);
        dnnl::memory ps = ms, pd = md, pw = mw;
        if (reorder_src) ps = dnnl::memory(src_p, engine, src_buf.data()), to_src.execute(stream, ms, ps);
        if (reorder_ddst) pd = dnnl::memory(ddst_p, engine, ddst_buf.data()), to_ddst.execute(stream, md, pd);
        if (reorder_dw) pw = dnnl::memory(dw_p, engine, dw_buf.data());
        primitive.execute(stream, {{DNNL_ARG_SRC, ps}, {DNNL_ARG_DIFF_DST, pd}, {DNNL_ARG_DIFF_WEIGHTS, pw},
                                   {DNNL_ARG_DIFF_BIAS, dnnl::memory(db_p, engine, dbv)}});
        if (reorder_dw) from_dw.execute(stream, pw, mw);
        stream.wait();
    }
};

// ---------------------------------------------------------------------------------------------

// One variant, ready to run on one problem in one precision; run() leaves fp32 dW and db.
struct Runner {
    int variant;
    bool bf;
    const Problem& p;
    const Inputs& in;
    std::unique_ptr<MatmulThenSum> mm;
    std::unique_ptr<InnerProduct> ip;
    std::vector<bf16> dw16, db16;
    std::string impl;
    Runner(int v, bool bf16_, const Problem& p_, const Inputs& in_) : variant(v), bf(bf16_), p(p_), in(in_) {
        dt type = bf ? dt::bf16 : dt::f32;
        if (v == 2 || v == 5) mm = std::make_unique<MatmulThenSum>(p, type), impl = mm->impl;
        if (v == 3 || v == 4) ip = std::make_unique<InnerProduct>(p, type, v == 4), impl = ip->impl;
        dw16.resize(size_t(p.N) * p.K), db16.resize(size_t(p.N));
    }
    void run(std::vector<float>& dw, std::vector<float>& db) {
        if (mm) {
            float* dbp = variant == 5 ? nullptr : db.data();
            if (bf) mm->run(p, in.dy16.data(), in.x16.data(), dw16.data(), dbp);
            else mm->run(p, in.dy.data(), in.x.data(), dw.data(), dbp);
        } else if (bf) {
            ip->run(in.dy16.data(), in.x16.data(), dw16.data(), db16.data());
            for (int n = 0; n < p.N; n++) db[n] = bf16_bits_to_float(db16[n]);
        } else {
            ip->run(in.dy.data(), in.x.data(), dw.data(), db.data());
        }
    }
    void widen_outputs(std::vector<float>& dw) {
        if (bf)
            for (size_t i = 0; i < dw.size(); i++) dw[i] = bf16_bits_to_float(dw16[i]);
    }
};

static const char* variant_name(int v) {
    static const char* names[] = {"", "reference", "onednn matmul + column sum", "onednn inner product, plain",
                                  "onednn inner product, its layouts", "onednn matmul alone (no bias)"};
    return names[v];
}

int main(int argc, char** argv) {
    int only = selected_variant(argc, argv);
    int threads = playground_threads();
    std::printf("weight_grad: %d threads\n", threads);
    print_rooflines();
    bool ok = true;

    const Problem checks[] = {{1, 1, 1, "1x1x1"}, {13, 17, 19, "odd"}, {100, 33, 70, "odd N, K"},
                              {257, 64, 128, "M odd"}, {2048, 48, 40, "long M"}};
    for (const Problem& p : checks) {
        Inputs in = make_inputs(p, 7);
        std::vector<float> ref(size_t(p.N) * p.K), ref_db(size_t(p.N)), ref16(ref.size()), ref16_db(ref_db.size());
        reference(p, in.dy.data(), in.x.data(), ref, ref_db);
        std::vector<float> dyr(in.dy.size()), xr(in.x.size());
        for (size_t i = 0; i < dyr.size(); i++) dyr[i] = bf16_bits_to_float(in.dy16[i]);
        for (size_t i = 0; i < xr.size(); i++) xr[i] = bf16_bits_to_float(in.x16[i]);
        reference(p, dyr.data(), xr.data(), ref16, ref16_db);
        for (int v = 2; v <= 4; v++)
            for (bool bf : {false, true}) {
                if (only && v != only) continue;
                Runner r(v, bf, p, in);
                std::vector<float> dw(ref.size(), NAN), db(ref_db.size(), NAN), dw2(dw), db2(db);
                r.run(dw, db);
                r.widen_outputs(dw);
                r.run(dw2, db2);
                r.widen_outputs(dw2);
                std::string name = std::string(variant_name(v)) + (bf ? " bf16 " : " f32 ") + p.what;
                // sums of M products of scale 0.1 x 1: fp32 reordering error, or the bf16 output rounding
                float atol = bf ? 4e-3f * std::sqrt(float(p.M)) : 1e-5f * std::sqrt(float(p.M));
                float rtol = bf ? 8e-3f : 1e-5f;
                ok &= validate((name + " dW").c_str(), dw, bf ? ref16 : ref, atol, rtol);
                ok &= validate((name + " db").c_str(), db, bf ? ref16_db : ref_db, atol, rtol);
                ok &= same_bits((name + " dW").c_str(), dw, dw2) && same_bits((name + " db").c_str(), db, db2);
            }
    }
    std::printf("checks: %s\n", ok ? "ok" : "FAILED");

    // the layers' weight gradients: tiny ViT at batch 128 (M = 8320), small at batch 64 (vision
    // M = 64 x 65 = 4160, text M = 64 x 32 = 2048)
    const Problem shapes[] = {{8320, 384, 128, "tiny qkv     dW 384x128,  M 8320"},
                              {8320, 512, 128, "tiny c_fc    dW 512x128,  M 8320"},
                              {8320, 128, 512, "tiny c_proj  dW 128x512,  M 8320"},
                              {4160, 768, 256, "small qkv    dW 768x256,  M 4160"},
                              {4160, 1024, 256, "small c_fc   dW 1024x256, M 4160"},
                              {4160, 256, 1024, "small c_proj dW 256x1024, M 4160"},
                              {4160, 256, 256, "small out   dW 256x256,  M 4160"},
                              {2048, 768, 256, "small text qkv dW 768x256, M 2048"},
                              {2048, 1024, 256, "small text c_fc dW 1024x256, M 2048"},
                              {2048, 256, 1024, "small text c_proj dW 256x1024, M 2048"},
                              {2048, 256, 256, "small text out dW 256x256, M 2048"}};
    // bf16 against the AMX peak where there is one, else twice the fp32 FMA peak (vdpbf16ps: two
    // products per fp32 lane)
    const double bf16_peak = measured_bf16_peak_gflops();
    for (const Problem& p : shapes) {
        std::printf("%s\n", p.what);
        Inputs in = make_inputs(p, 11);
        std::vector<float> dw(size_t(p.N) * p.K), db(size_t(p.N));
        double flops = 2.0 * p.M * p.N * p.K;
        for (bool bf : {false, true})
            for (int v = 2; v <= 5; v++) {
                if (only && v != only) continue;
                Runner r(v, bf, p, in);
                Timing t = time_it([&] { r.run(dw, db); });
                std::string label = std::string(bf ? "bf16 " : "f32  ") + variant_name(v) + " [" + r.impl + "]";
                report_flops(label.c_str(), t, flops, bf ? bf16_peak : measured_fp32_peak_gflops());
            }
    }
    std::printf("the engine uses: fp32 3 where N <= K, else 2; bf16 3 without AMX, else 2 "
                "(engine/cpu/cpu_matmul.cpp, weight_grad_on_inner_product)\n");
    return finish("weight_grad", ok);
}
