// engine/cpu/dev/gemm.cpp
// The GEMM playground: C (M, N) = A (M, K) @ B (K, N), row-major, with B given either as (K, N)
// or as its transpose (N, K) — the layout of a Linear weight (out, in). Our own micro-kernels
// beside the libraries the engine could call, on the shapes the CLIP models run.
//
//   fp32 variants                                  bf16 variants (fp32 accumulation)
//   1  reference: triple loop, double accumulator  7  reference on bf16-rounded inputs (= 1)
//   2  Eigen                                       8  oneDNN matmul (AMX where the CPU has it)
//   3  OpenBLAS cblas_sgemm                        9  ours: AMX tiles, 32x32 block per step
//   4  oneDNN matmul (f32)                         10 ours: AVX512-BF16 vdpbf16ps, 12x32 block
//   5  ours: AVX-512, packed panels, 12x32 block   11 oneDNN matmul f32 with a bias row
//   6  ours: 5 without packing A (broadcast loads straight from A)
//                                                  12 oneDNN dnnl_sgemm (its BLAS-style API)
//   13 oneDNN inner product f32 (B^T only)         14 oneDNN inner product bf16 (B^T only)
//
// Checks every variant on awkward shapes (1x1x1, odd M/N/K, K not a multiple of the tile), then
// times the model's shapes (tiny ViT: M = 128 images x 65 tokens = 8320; forward x @ W^T, the
// input gradient dY @ W and the weight gradient dY^T @ X) as % of the measured peaks.
// The engine uses oneDNN (variants 4 and 8): engine/cpu/cpu_matmul.cpp; see README.md.
#include <cblas.h>

#include <Eigen/Core>
#include <dnnl.hpp>
#include <functional>
#include <unordered_map>
#include <memory>
#include <string>

#include "common.h"

using bf16 = uint16_t;

struct Problem {
    int M, N, K;
    bool b_transposed;  // B stored as (N, K)
    const char* what;
};

// ---------------------------------------------------------------------------------------------
// 1: the reference. B(k, n) reads the stored layout.

static float b_at(const float* B, const Problem& p, int k, int n) {
    return p.b_transposed ? B[size_t(n) * p.K + k] : B[size_t(k) * p.N + n];
}

static void gemm_reference(const Problem& p, const float* A, const float* B, float* C) {
#pragma omp parallel for schedule(static)
    for (int m = 0; m < p.M; m++)
        for (int n = 0; n < p.N; n++) {
            double s = 0;
            for (int k = 0; k < p.K; k++) s += double(A[size_t(m) * p.K + k]) * b_at(B, p, k, n);
            C[size_t(m) * p.N + n] = float(s);
        }
}

// ---------------------------------------------------------------------------------------------
// 2-4: the libraries

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

static void gemm_eigen(const Problem& p, const float* A, const float* B, float* C) {
    Eigen::Map<const RowMatrix> a(A, p.M, p.K);
    Eigen::Map<RowMatrix> c(C, p.M, p.N);
    if (p.b_transposed) c.noalias() = a * Eigen::Map<const RowMatrix>(B, p.N, p.K).transpose();
    else c.noalias() = a * Eigen::Map<const RowMatrix>(B, p.K, p.N);
}

static void gemm_openblas(const Problem& p, const float* A, const float* B, float* C) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, p.b_transposed ? CblasTrans : CblasNoTrans, p.M, p.N, p.K, 1.0f, A, p.K,
                B, p.b_transposed ? p.K : p.N, 0.0f, C, p.N);
}

// oneDNN matmul, built once per problem and dtype (as the engine caches them).
// A built oneDNN primitive for one problem: run(A, B, C); impl names the kernel oneDNN chose.
struct OnednnPrimitive {
    std::string impl;
    virtual ~OnednnPrimitive() = default;
    virtual void run(const void* A, const void* B, void* C) = 0;
};

struct OnednnGemm : OnednnPrimitive {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};
    dnnl::memory::desc a, b, c;
    dnnl::matmul primitive;
    dnnl::memory::desc bias;
    std::vector<float> bias_row;
    OnednnGemm(const Problem& p, dnnl::memory::data_type in, dnnl::memory::data_type out, bool with_bias = false) {
        a = dnnl::memory::desc({p.M, p.K}, in, dnnl::memory::dims{p.K, 1});
        b = dnnl::memory::desc({p.K, p.N}, in, p.b_transposed ? dnnl::memory::dims{1, p.K} : dnnl::memory::dims{p.N, 1});
        c = dnnl::memory::desc({p.M, p.N}, out, dnnl::memory::dims{p.N, 1});
        if (with_bias) {
            bias = dnnl::memory::desc({1, p.N}, out, dnnl::memory::dims{p.N, 1});
            bias_row.assign(size_t(p.N), 0.0f);  // zeros: the product is unchanged, the checks still hold
        }
        dnnl::matmul::primitive_desc pd(with_bias ? dnnl::matmul::desc(a, b, bias, c) : dnnl::matmul::desc(a, b, c),
                                        engine);
        impl = pd.impl_info_str();
        primitive = dnnl::matmul(pd);
    }
    void run(const void* A, const void* B, void* C) override {
        dnnl::memory ma(a, engine, const_cast<void*>(A)), mb(b, engine, const_cast<void*>(B)), mc(c, engine, C);
        std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
        if (!bias_row.empty()) args.emplace(DNNL_ARG_BIAS, dnnl::memory(bias, engine, bias_row.data()));
        primitive.execute(stream, args);
        stream.wait();
    }
};

// 13-14: oneDNN's inner product, forward, plain row-major layouts and a zero bias: the same
// product for B given as a Linear weight (N, K), on the kernels oneDNN picks for that primitive
// (its gemm driver) rather than the matmul primitive's.
struct OnednnInnerProduct : OnednnPrimitive {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};
    dnnl::memory::desc a, b, bias, c;
    dnnl::inner_product_forward primitive;
    std::vector<float> bias_values;
    OnednnInnerProduct(const Problem& p, dnnl::memory::data_type in) {
        using tag = dnnl::memory::format_tag;
        const auto f32 = dnnl::memory::data_type::f32;
        a = dnnl::memory::desc({p.M, p.K}, in, tag::ab);
        b = dnnl::memory::desc({p.N, p.K}, in, tag::ab);
        c = dnnl::memory::desc({p.M, p.N}, f32, tag::ab);
        bias = dnnl::memory::desc({p.N}, f32, tag::a);
        bias_values.assign(size_t(p.N), 0.0f);
        dnnl::inner_product_forward::primitive_desc pd(
            dnnl::inner_product_forward::desc(dnnl::prop_kind::forward_training, a, b, bias, c), engine);
        impl = pd.impl_info_str();
        primitive = dnnl::inner_product_forward(pd);
    }
    void run(const void* A, const void* B, void* C) override {
        dnnl::memory ma(a, engine, const_cast<void*>(A)), mb(b, engine, const_cast<void*>(B)), mc(c, engine, C);
        primitive.execute(stream, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc},
                                   {DNNL_ARG_BIAS, dnnl::memory(bias, engine, bias_values.data())}});
        stream.wait();
    }
};

// ---------------------------------------------------------------------------------------------
// 5-6: our AVX-512 fp32 GEMM. B is packed once into panels of NR = 32 columns, (K, 32) each, so
// the micro-kernel reads it with two aligned 16-float loads per k; A is packed per block of MR =
// 12 rows into (K, 12) so each k broadcasts 12 consecutive floats. The 12x32 block of C lives in
// 24 zmm accumulators (of 32), which covers the FMA latency (4 cycles x 2 ports = 8 in flight).

constexpr int MR = 12, NR = 32;

static std::vector<float> pack_b_panels(const Problem& p, const float* B) {
    int panels = (p.N + NR - 1) / NR;
    std::vector<float> packed(size_t(panels) * p.K * NR, 0.0f);
#pragma omp parallel for schedule(static)
    for (int j = 0; j < panels; j++)
        for (int k = 0; k < p.K; k++)
            for (int c = 0; c < NR && j * NR + c < p.N; c++)
                packed[(size_t(j) * p.K + k) * NR + c] = b_at(B, p, k, j * NR + c);
    return packed;
}

// acc (rows x 32) += A rows (stride a_step between rows of one k, a_k between k) x the panel.
template <int ROWS>
static inline void micro_kernel(int K, const float* a, long a_row, long a_k, const float* panel, float* c, long ldc,
                                __mmask16 m0, __mmask16 m1) {
    __m512 acc[ROWS][2];
    for (int i = 0; i < ROWS; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m512 b0 = _mm512_loadu_ps(panel + size_t(k) * NR), b1 = _mm512_loadu_ps(panel + size_t(k) * NR + 16);
#pragma GCC unroll 12
        for (int i = 0; i < ROWS; i++) {
            __m512 av = _mm512_set1_ps(a[i * a_row + k * a_k]);
            acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
        }
    }
    for (int i = 0; i < ROWS; i++) {
        _mm512_mask_storeu_ps(c + i * ldc, m0, acc[i][0]);
        _mm512_mask_storeu_ps(c + i * ldc + 16, m1, acc[i][1]);
    }
}

template <int ROWS>
static void micro_kernel_rows(int rows, int K, const float* a, long a_row, long a_k, const float* panel, float* c,
                              long ldc, __mmask16 m0, __mmask16 m1) {
    if constexpr (ROWS > 1) {
        if (rows < ROWS) return micro_kernel_rows<ROWS - 1>(rows, K, a, a_row, a_k, panel, c, ldc, m0, m1);
    }
    micro_kernel<ROWS>(K, a, a_row, a_k, panel, c, ldc, m0, m1);
}

static void gemm_ours_avx512(const Problem& p, const float* A, const float* B, float* C, bool pack_a) {
    std::vector<float> panels = pack_b_panels(p, B);  // in the engine: once per weight per step
    int npanels = (p.N + NR - 1) / NR, mblocks = (p.M + MR - 1) / MR;
#pragma omp parallel
    {
        std::vector<float> apack(size_t(MR) * p.K);
#pragma omp for schedule(static)
        for (int mb = 0; mb < mblocks; mb++) {
            int m0 = mb * MR, rows = std::min(MR, p.M - m0);
            const float* a = A + size_t(m0) * p.K;
            long a_row = p.K, a_k = 1;
            if (pack_a) {  // (K, 12): the 12 values of one k side by side
                for (int k = 0; k < p.K; k++)
                    for (int i = 0; i < rows; i++) apack[size_t(k) * MR + i] = a[size_t(i) * p.K + k];
                a = apack.data(), a_row = 1, a_k = MR;
            }
            for (int j = 0; j < npanels; j++) {
                int cols = std::min(NR, p.N - j * NR);
                __mmask16 lo = cols >= 16 ? 0xFFFF : __mmask16((1u << cols) - 1);
                __mmask16 hi = cols <= 16 ? 0 : cols >= 32 ? 0xFFFF : __mmask16((1u << (cols - 16)) - 1);
                micro_kernel_rows<MR>(rows, p.K, a, a_row, a_k, panels.data() + size_t(j) * p.K * NR,
                                      C + size_t(m0) * p.N + j * NR, p.N, lo, hi);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 9: our AMX bf16 GEMM. A tile holds 16 rows x 32 bf16 (64 bytes a row); a B tile holds 16
// "VNNI" rows, row r = the pairs (B[2r][n], B[2r+1][n]) for 16 columns n; TDPBF16PS adds the
// 16x16 fp32 product of an A tile and a B tile into a C tile. The kernel keeps a 32x32 block of C
// in four tiles (2 A tiles x 2 B tiles: 4 products per 4 loads). B is packed into VNNI panels,
// zero-padded, so any N, K works with one tile configuration.

#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
static void amx_configure() {
    AmxTileConfig cfg;
    for (int t = 0; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;
    _tile_loadconfig(&cfg);
}

// B packed into VNNI panels: [N/16][K/32][16 pairs][16 columns][2], zero-padded to 32s.
static std::vector<bf16> amx_pack_b(const Problem& p, const bf16* B, int Np, int Kp) {
    std::vector<bf16> packed(size_t(Np) * Kp, 0);
    int kt = Kp / 32;
    for (int n = 0; n < p.N; n++)
        for (int k = 0; k < p.K; k++) {
            bf16 v = p.b_transposed ? B[size_t(n) * p.K + k] : B[size_t(k) * p.N + n];
            packed[((size_t(n / 16) * kt + k / 32) * 16 + (k % 32) / 2) * 32 + (n % 16) * 2 + k % 2] = v;
        }
    return packed;
}

// A is read in place (row stride K) when K is a multiple of 32; blocks of rows past M and any
// K remainder go through a zero-padded copy of the 32-row block. Each thread owns whole 32-row
// blocks of C and walks every column block, so its two A tiles stay in L1.
static void gemm_ours_amx(const Problem& p, const bf16* A, const bf16* B, float* C) {
    int Np = (p.N + 31) / 32 * 32, Kp = (p.K + 31) / 32 * 32, kt = Kp / 32;
    std::vector<bf16> bpack = amx_pack_b(p, B, Np, Kp);
    int mblocks = (p.M + 31) / 32, nblocks = Np / 32;
#pragma omp parallel
    {
        amx_configure();
        alignas(64) float tile[16 * 16];
        std::vector<bf16> apad(size_t(32) * Kp);
#pragma omp for schedule(static)
        for (int mb = 0; mb < mblocks; mb++) {
            int m0 = mb * 32;
            const bf16* a = A + size_t(m0) * p.K;
            long lda = p.K;
            if (m0 + 32 > p.M || p.K % 32) {
                std::fill(apad.begin(), apad.end(), bf16(0));
                for (int r = 0; r < 32 && m0 + r < p.M; r++)
                    std::memcpy(&apad[size_t(r) * Kp], A + size_t(m0 + r) * p.K, size_t(p.K) * sizeof(bf16));
                a = apad.data(), lda = Kp;
            }
            for (int nb = 0; nb < nblocks; nb++) {
                const bf16* b0 = bpack.data() + size_t(2 * nb) * kt * 512;
                const bf16* b1 = b0 + size_t(kt) * 512;
                _tile_zero(0);
                _tile_zero(1);
                _tile_zero(2);
                _tile_zero(3);
                for (int k = 0; k < kt; k++) {
                    _tile_loadd(4, a + k * 32, lda * 2);
                    _tile_loadd(5, a + 16 * lda + k * 32, lda * 2);
                    _tile_loadd(6, b0 + k * 512, 64);
                    _tile_loadd(7, b1 + k * 512, 64);
                    _tile_dpbf16ps(0, 4, 6);
                    _tile_dpbf16ps(1, 4, 7);
                    _tile_dpbf16ps(2, 5, 6);
                    _tile_dpbf16ps(3, 5, 7);
                }
                bool full = m0 + 32 <= p.M && nb * 32 + 32 <= p.N;
                float* c = C + size_t(m0) * p.N + nb * 32;
                if (full) {  // straight into C
                    _tile_stored(0, c, p.N * 4);
                    _tile_stored(1, c + 16, p.N * 4);
                    _tile_stored(2, c + 16 * p.N, p.N * 4);
                    _tile_stored(3, c + 16 * p.N + 16, p.N * 4);
                    continue;
                }
                for (int t = 0; t < 4; t++) {  // edges: through a buffer
                    switch (t) {
                        case 0: _tile_stored(0, tile, 64); break;
                        case 1: _tile_stored(1, tile, 64); break;
                        case 2: _tile_stored(2, tile, 64); break;
                        default: _tile_stored(3, tile, 64); break;
                    }
                    int r0 = m0 + (t / 2) * 16, c0 = nb * 32 + (t % 2) * 16;
                    for (int r = 0; r < 16 && r0 + r < p.M; r++)
                        for (int col = 0; col < 16 && c0 + col < p.N; col++)
                            C[size_t(r0 + r) * p.N + c0 + col] = tile[r * 16 + col];
                }
            }
        }
        _tile_release();
    }
}
#endif

// ---------------------------------------------------------------------------------------------
// 10: AVX512-BF16 (vdpbf16ps: 16 lanes, each the dot product of one bf16 pair plus the fp32
// accumulator). B packed as VNNI pairs in panels of 32 columns; A read as bf16 pairs broadcast.

#if defined(__AVX512BF16__)
static std::vector<bf16> pack_b_pairs(const Problem& p, const bf16* B) {
    int panels = (p.N + NR - 1) / NR, K2 = (p.K + 1) / 2;
    std::vector<bf16> packed(size_t(panels) * K2 * NR * 2, 0);
    for (int j = 0; j < panels; j++)
        for (int k = 0; k < p.K; k++)
            for (int c = 0; c < NR && j * NR + c < p.N; c++) {
                int n = j * NR + c;
                packed[((size_t(j) * K2 + k / 2) * NR + c) * 2 + k % 2] = p.b_transposed ? B[size_t(n) * p.K + k]
                                                                                          : B[size_t(k) * p.N + n];
            }
    return packed;
}

static void gemm_ours_avx512bf16(const Problem& p, const bf16* A, const std::vector<bf16>& panels, float* C) {
    int npanels = (p.N + NR - 1) / NR, mblocks = (p.M + MR - 1) / MR, K2 = (p.K + 1) / 2;
#pragma omp parallel
    {
        std::vector<uint32_t> apairs(size_t(MR) * K2);  // (K/2, 12) pairs of A
#pragma omp for schedule(static)
        for (int mb = 0; mb < mblocks; mb++) {
            int m0 = mb * MR, rows = std::min(MR, p.M - m0);
            std::fill(apairs.begin(), apairs.end(), 0u);
            for (int i = 0; i < rows; i++)
                for (int k = 0; k < p.K; k++) {
                    uint32_t v = A[size_t(m0 + i) * p.K + k];
                    apairs[size_t(k / 2) * MR + i] |= v << (16 * (k % 2));
                }
            for (int j = 0; j < npanels; j++) {
                __m512 acc[MR][2];
                for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
                const bf16* panel = panels.data() + size_t(j) * K2 * NR * 2;
                for (int k2 = 0; k2 < K2; k2++) {
                    __m512bh b0 = (__m512bh)_mm512_loadu_si512(panel + size_t(k2) * NR * 2);
                    __m512bh b1 = (__m512bh)_mm512_loadu_si512(panel + size_t(k2) * NR * 2 + 32);
#pragma GCC unroll 12
                    for (int i = 0; i < MR; i++) {
                        __m512bh av = (__m512bh)_mm512_set1_epi32(int(apairs[size_t(k2) * MR + i]));
                        acc[i][0] = _mm512_dpbf16_ps(acc[i][0], av, b0);
                        acc[i][1] = _mm512_dpbf16_ps(acc[i][1], av, b1);
                    }
                }
                int cols = std::min(NR, p.N - j * NR);
                __mmask16 lo = cols >= 16 ? 0xFFFF : __mmask16((1u << cols) - 1);
                __mmask16 hi = cols <= 16 ? 0 : cols >= 32 ? 0xFFFF : __mmask16((1u << (cols - 16)) - 1);
                for (int i = 0; i < rows; i++) {
                    float* c = C + size_t(m0 + i) * p.N + j * NR;
                    _mm512_mask_storeu_ps(c, lo, acc[i][0]);
                    _mm512_mask_storeu_ps(c + 16, hi, acc[i][1]);
                }
            }
        }
    }
}
#endif

// ---------------------------------------------------------------------------------------------

struct Inputs {
    std::vector<float> A, B;       // fp32
    std::vector<float> Ab, Bb;     // the same rounded to bf16, as floats (for the bf16 reference)
    std::vector<bf16> A16, B16;    // bf16 bits
};

static Inputs make_inputs(const Problem& p, uint64_t seed) {
    Inputs in;
    in.A = random_normal(size_t(p.M) * p.K, seed, 1.0f);
    in.B = random_normal(size_t(p.K) * p.N, seed + 1, 1.0f / std::sqrt(float(std::max(p.K, 1))));
    in.Ab = round_to_bf16(in.A), in.Bb = round_to_bf16(in.B);
    in.A16 = to_bf16(in.A), in.B16 = to_bf16(in.B);
    return in;
}

// Runs variant v once into C; false when it is not available on this CPU / build.
static bool run_variant(int v, const Problem& p, const Inputs& in, std::vector<float>& C,
                        std::unique_ptr<OnednnPrimitive>& onednn) {
    switch (v) {
        case 1: gemm_reference(p, in.A.data(), in.B.data(), C.data()); return true;
        case 2: gemm_eigen(p, in.A.data(), in.B.data(), C.data()); return true;
        case 3: gemm_openblas(p, in.A.data(), in.B.data(), C.data()); return true;
        case 4:
            if (!onednn) onednn = std::make_unique<OnednnGemm>(p, dnnl::memory::data_type::f32, dnnl::memory::data_type::f32);
            onednn->run(in.A.data(), in.B.data(), C.data());
            return true;
        case 5: gemm_ours_avx512(p, in.A.data(), in.B.data(), C.data(), true); return true;
        case 6: gemm_ours_avx512(p, in.A.data(), in.B.data(), C.data(), false); return true;
        case 7: gemm_reference(p, in.Ab.data(), in.Bb.data(), C.data()); return true;
        case 8:
            if (!onednn) onednn = std::make_unique<OnednnGemm>(p, dnnl::memory::data_type::bf16, dnnl::memory::data_type::f32);
            onednn->run(in.A16.data(), in.B16.data(), C.data());
            return true;
#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
        case 9: {
            if (!amx_available()) return false;
            gemm_ours_amx(p, in.A16.data(), in.B16.data(), C.data());
            return true;
        }
#endif
#if defined(__AVX512BF16__)
        case 10: {
            std::vector<bf16> panels = pack_b_pairs(p, in.B16.data());
            gemm_ours_avx512bf16(p, in.A16.data(), panels, C.data());
            return true;
        }
#endif
        case 11:
            if (!onednn) onednn = std::make_unique<OnednnGemm>(p, dnnl::memory::data_type::f32, dnnl::memory::data_type::f32, true);
            onednn->run(in.A.data(), in.B.data(), C.data());
            return true;
        case 13:
        case 14:
            if (!p.b_transposed) return false;
            if (!onednn) onednn = std::make_unique<OnednnInnerProduct>(p, v == 13 ? dnnl::memory::data_type::f32 : dnnl::memory::data_type::bf16);
            onednn->run(v == 13 ? static_cast<const void*>(in.A.data()) : in.A16.data(),
                        v == 13 ? static_cast<const void*>(in.B.data()) : in.B16.data(), C.data());
            return true;
        case 12:
            dnnl_sgemm('N', p.b_transposed ? 'T' : 'N', p.M, p.N, p.K, 1.0f, in.A.data(), p.K, in.B.data(),
                       p.b_transposed ? p.K : p.N, 0.0f, C.data(), p.N);
            return true;
        default: return false;
    }
}

static const char* variant_name(int v) {
    static const char* names[] = {"",         "reference",     "eigen",       "openblas sgemm", "onednn f32",
                                  "ours avx512 12x32", "ours avx512, A unpacked", "reference bf16", "onednn bf16",
                                  "ours amx 32x32", "ours avx512-bf16 12x32", "onednn f32 + bias row",
                                  "onednn dnnl_sgemm", "onednn inner product f32", "onednn inner product bf16"};
    return names[v];
}

int main(int argc, char** argv) {
    int only = selected_variant(argc, argv);
    int threads = playground_threads();
    std::printf("gemm: %d threads\n", threads);
    print_rooflines();
    bool ok = true;

    // correctness: awkward shapes against the reference of the same precision
    const Problem checks[] = {{1, 1, 1, false, "1x1x1"},       {1, 1, 1, true, "1x1x1 B^T"},
                              {13, 17, 19, false, "odd"},      {13, 17, 19, true, "odd B^T"},
                              {33, 45, 70, true, "K not x32"}, {100, 64, 128, false, "tiles"},
                              {65, 129, 33, true, "edges"}};
    for (const Problem& p : checks) {
        Inputs in = make_inputs(p, 7);
        std::vector<float> ref(size_t(p.M) * p.N), ref16(ref.size());
        gemm_reference(p, in.A.data(), in.B.data(), ref.data());
        gemm_reference(p, in.Ab.data(), in.Bb.data(), ref16.data());
        for (int v = 2; v <= 14; v++) {
            if (only && v != only) continue;
            std::unique_ptr<OnednnPrimitive> onednn;
            std::vector<float> C(ref.size(), NAN);
            if (!run_variant(v, p, in, C, onednn)) continue;
            bool bf = (v >= 7 && v <= 10) || v == 14;
            // fp32: a K-long sum of unit-scale products, reordered; bf16: same inputs, fp32 sums
            std::string name = std::string(variant_name(v)) + " " + p.what;
            ok &= validate(name.c_str(), C, bf ? ref16 : ref, 1e-4f * std::sqrt(float(p.K)), 1e-4f);
        }
    }
    std::printf("checks: %s\n", ok ? "ok" : "FAILED");

    // benchmark: the tiny ViT's linear layers at batch 128 (M = 8320 tokens), two of small's at 64 (4160)
    const Problem shapes[] = {{8320, 384, 128, true, "qkv   x @ W^T   8320x384x128"},
                              {8320, 512, 128, true, "c_fc  x @ W^T   8320x512x128"},
                              {8320, 128, 512, true, "c_proj x @ W^T  8320x128x512"},
                              {8320, 128, 384, false, "qkv dX = dY @ W 8320x128x384"},
                              {384, 128, 8320, false, "K-long (weight-gradient size) 384x128x8320"},
                              {4160, 1024, 256, true, "small c_fc x @ W^T 4160x1024x256"},
                              {4160, 256, 1024, true, "small c_proj x @ W^T 4160x256x1024"}};
    for (const Problem& p : shapes) {
        std::printf("%s\n", p.what);
        Inputs in = make_inputs(p, 11);
        std::vector<float> C(size_t(p.M) * p.N);
        double flops = 2.0 * p.M * p.N * p.K;
        for (int v = 2; v <= 14; v++) {
            if (only && v != only) continue;
            if (v == 7) continue;  // the reference is for checks only
            std::unique_ptr<OnednnPrimitive> onednn;
            if (!run_variant(v, p, in, C, onednn)) continue;
            Timing t = time_it([&] { run_variant(v, p, in, C, onednn); });
            bool bf = (v >= 7 && v <= 10) || v == 14;
            std::string label = std::string(variant_name(v)) + (onednn ? " [" + onednn->impl + "]" : "");
            report_flops(label.c_str(), t, flops, bf ? measured_bf16_peak_gflops() : measured_fp32_peak_gflops());
        }
    }
    std::printf("the engine uses: onednn f32 (4) and onednn bf16 (8) — engine/cpu/cpu_matmul.cpp\n");
    return finish("gemm", ok);
}
