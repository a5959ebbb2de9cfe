// engine/profiler.cpp
// defines: the op profiler's table (start, stop, entries, report) and ProfilingBackend, the
// Backend that times each kernel of the backend it wraps. See engine/profiler.h.
#include "engine/profiler.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>

#include "engine/backend.h"
#include "engine/strings.h"

namespace rankclip {
namespace profiler {

static std::atomic<bool> g_active{false};
static std::mutex g_mutex;                       // guards g_table and g_wrappers
static std::map<std::string, Entry> g_table;

static void record(const std::string& op, double seconds, double flops) {
    std::lock_guard<std::mutex> lock(g_mutex);
    Entry& e = g_table[op];
    e.op = op;
    e.calls++;
    e.seconds += seconds;
    e.flops += flops;
}

static const char* dt(const Tensor& t) { return dtype_name(t.dtype()); }

// "(2,3,4)"
static std::string dims(std::initializer_list<int64_t> sizes) {
    std::string s = "(";
    for (int64_t v : sizes) s += (s.size() > 1 ? "," : "") + std::to_string(v);
    return s + ")";
}

// Times every kernel of `inner`: drain, run, drain, record under the kernel's key.
class ProfilingBackend final : public Backend {
public:
    explicit ProfilingBackend(Backend& inner) : inner_(inner) {}

    const char* name() const override { return inner_.name(); }
    int device_count() const override { return inner_.device_count(); }
    bool supports_bf16(int index, std::string* why) const override { return inner_.supports_bf16(index, why); }
    bool binary_mixes_float_dtypes() const override { return inner_.binary_mixes_float_dtypes(); }
    void synchronize() override { inner_.synchronize(); }

    void* allocate(size_t nbytes) override {
        void* p = nullptr;
        timed("allocate", [&] { p = inner_.allocate(nbytes); }, /*drain=*/false);
        return p;
    }
    void deallocate(void* ptr, size_t nbytes) override { inner_.deallocate(ptr, nbytes); }
    void* allocate_pinned_host(size_t nbytes) override { return inner_.allocate_pinned_host(nbytes); }
    void free_pinned_host(void* ptr, size_t nbytes) override { inner_.free_pinned_host(ptr, nbytes); }

    void copy(const Tensor& src, Tensor& dst) override {
        const bool strided = !src.is_contiguous() || !dst.is_contiguous();
        timed(str_cat("copy ", dt(src), src.dtype() == dst.dtype() ? "" : str_cat("->", dt(dst)),
                      strided ? " strided" : ""),
              [&] { inner_.copy(src, dst); });
    }
    void copy_to_host(const void* src, void* dst, size_t nbytes) override {
        timed("copy_to_host", [&] { inner_.copy_to_host(src, dst, nbytes); });
    }
    void copy_from_host(const void* src, void* dst, size_t nbytes) override {
        timed("copy_from_host", [&] { inner_.copy_from_host(src, dst, nbytes); });
    }
    void fill(Tensor& dst, double value) override {
        timed(str_cat("fill ", dt(dst)), [&] { inner_.fill(dst, value); });
    }

    void unary(UnaryOp op, const Tensor& x, Tensor& out, double p0, double p1) override {
        timed(str_cat("unary ", unary_op_name(op), " ", dt(x)), [&] { inner_.unary(op, x, out, p0, p1); });
    }
    void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) override {
        timed(str_cat("binary ", binary_op_name(op), " ", dt(a), a.dtype() == b.dtype() ? "" : str_cat(",", dt(b))),
              [&] { inner_.binary(op, a, b, out); });
    }
    void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) override {
        timed(str_cat("where ", dt(a)), [&] { inner_.where(cond, a, b, out); });
    }

    void reduce_rows(ReduceOp op, const Tensor& x, Tensor& out) override {
        timed(str_cat("reduce_rows ", dt(x)), [&] { inner_.reduce_rows(op, x, out); });
    }
    void reduce_cols(ReduceOp op, const Tensor& x, Tensor& out) override {
        timed(str_cat("reduce_cols ", dt(x)), [&] { inner_.reduce_cols(op, x, out); });
    }
    void argmax_rows(const Tensor& x, Tensor& out) override {
        timed(str_cat("argmax_rows ", dt(x)), [&] { inner_.argmax_rows(x, out); });
    }
    void cumsum_rows(const Tensor& x, Tensor& out, bool reverse) override {
        timed(str_cat("cumsum_rows ", dt(x)), [&] { inner_.cumsum_rows(x, out, reverse); });
    }
    void sort_rows(const Tensor& x, Tensor& values, Tensor& indices, bool descending) override {
        timed(str_cat("sort_rows ", dt(x)), [&] { inner_.sort_rows(x, values, indices, descending); });
    }

    // out (batch, M, N) = a (batch, M, K) @ b (batch, K, N), either operand transposed
    void matmul(const Tensor& a, const Tensor& b, Tensor& out, bool trans_a, bool trans_b) override {
        const int64_t k = trans_a ? a.size(1) : a.size(2);
        timed(str_cat("matmul ", dt(a), " ", dims({out.size(0), out.size(1), out.size(2), k}), trans_a ? " tA" : "",
                      trans_b ? " tB" : ""),
              [&] { inner_.matmul(a, b, out, trans_a, trans_b); }, true, 2.0 * double(out.numel()) * double(k));
    }
    // out (M, N) = x (M, K) @ w (N, K)^T + bias
    void linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out) override {
        timed(str_cat("linear ", dt(x), " ", dims({x.size(0), w.size(0), x.size(1)})),
              [&] { inner_.linear(x, w, bias, out); }, true, 2.0 * double(out.numel()) * double(x.size(1)));
    }
    // gw (N, K) = g (M, N)^T @ x (M, K), gb (N) = g's column sums
    void linear_weight_grad(const Tensor& g, const Tensor& x, Tensor& gw, Tensor& gb) override {
        timed(str_cat("linear_weight_grad ", dt(g), " ", dims({g.size(0), g.size(1), x.size(1)}), gb.defined() ? " bias" : ""),
              [&] { inner_.linear_weight_grad(g, x, gw, gb); }, true, 2.0 * double(g.numel()) * double(x.size(1)));
    }

    void softmax_rows(const Tensor& x, Tensor& out, bool log) override {
        timed(str_cat(log ? "log_softmax " : "softmax ", dt(x)), [&] { inner_.softmax_rows(x, out, log); });
    }
    void softmax_rows_backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log) override {
        timed(str_cat(log ? "log_softmax_backward " : "softmax_backward ", dt(y)),
              [&] { inner_.softmax_rows_backward(y, gy, gx, log); });
    }
    void layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& out, Tensor& mean, Tensor& rstd,
                    double eps) override {
        timed(str_cat("layer_norm ", dt(x)), [&] { inner_.layer_norm(x, w, b, out, mean, rstd, eps); });
    }
    void layer_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& w, const Tensor& mean,
                             const Tensor& rstd, Tensor& gx, Tensor& gw, Tensor& gb) override {
        timed(str_cat("layer_norm_backward ", dt(x)),
              [&] { inner_.layer_norm_backward(gy, x, w, mean, rstd, gx, gw, gb); });
    }
    void cross_entropy(const Tensor& logits, const Tensor& target, Tensor& losses, Tensor& lse,
                       int64_t ignore_index) override {
        timed(str_cat("cross_entropy ", dt(logits)),
              [&] { inner_.cross_entropy(logits, target, losses, lse, ignore_index); });
    }
    void cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& lse,
                                const Tensor& grad_losses, Tensor& glogits, int64_t ignore_index) override {
        timed(str_cat("cross_entropy_backward ", dt(logits)),
              [&] { inner_.cross_entropy_backward(logits, target, lse, grad_losses, glogits, ignore_index); });
    }

    void index_select(const Tensor& x, const Tensor& index, Tensor& out, int64_t outer, int64_t n,
                      int64_t inner) override {
        timed(str_cat("index_select ", dt(x)), [&] { inner_.index_select(x, index, out, outer, n, inner); });
    }
    void index_add(const Tensor& g, const Tensor& index, Tensor& gx, int64_t outer, int64_t n,
                   int64_t inner) override {
        timed(str_cat("index_add ", dt(g)), [&] { inner_.index_add(g, index, gx, outer, n, inner); });
    }
    void gather(const Tensor& x, const Tensor& index, Tensor& out, int64_t outer, int64_t n, int64_t m,
                int64_t inner) override {
        timed(str_cat("gather ", dt(x)), [&] { inner_.gather(x, index, out, outer, n, m, inner); });
    }
    void scatter_add(const Tensor& g, const Tensor& index, Tensor& gx, int64_t outer, int64_t n, int64_t m,
                     int64_t inner) override {
        timed(str_cat("scatter_add ", dt(g)), [&] { inner_.scatter_add(g, index, gx, outer, n, m, inner); });
    }

    void dropout_mask(Tensor& out, double p, uint64_t seed, uint64_t offset) override {
        timed(str_cat("dropout_mask ", dt(out)), [&] { inner_.dropout_mask(out, p, seed, offset); });
    }
    void adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWScalars& s) override {
        timed(str_cat("adamw ", dt(param)), [&] { inner_.adamw(param, grad, m, v, s); });
    }

    void list_mle(const Tensor& x, const Tensor& order, const Tensor& w, Tensor& losses, Tensor& maxpos,
                  Tensor& suffix, double eps) override {
        timed(str_cat("list_mle ", dt(x)), [&] { inner_.list_mle(x, order, w, losses, maxpos, suffix, eps); });
    }
    void list_mle_backward(const Tensor& x, const Tensor& order, const Tensor& w, const Tensor& maxpos,
                           const Tensor& suffix, const Tensor& grad_losses, Tensor& gx, double eps) override {
        timed(str_cat("list_mle_backward ", dt(x)),
              [&] { inner_.list_mle_backward(x, order, w, maxpos, suffix, grad_losses, gx, eps); });
    }

    // q (B, H, Tq, D), k, v (B, H, Tk, D)
    void attention(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse, bool causal,
                   double scale) override {
        timed(str_cat("attention ", dt(q), " ", attention_dims(q, k), causal ? " causal" : ""),
              [&] { inner_.attention(q, k, v, out, lse, causal, scale); }, true, 2 * attention_product_flops(q, k));
    }
    void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                            const Tensor& lse, const Tensor& gout, Tensor& gq, Tensor& gk, Tensor& gv, bool causal,
                            double scale) override {
        timed(str_cat("attention_backward ", dt(q), " ", attention_dims(q, k), causal ? " causal" : ""),
              [&] { inner_.attention_backward(q, k, v, out, lse, gout, gq, gk, gv, causal, scale); }, true,
              4 * attention_product_flops(q, k));
    }

private:
    using Clock = std::chrono::steady_clock;
    static double seconds_since(Clock::time_point t0) {
        return std::chrono::duration<double>(Clock::now() - t0).count();
    }
    // "(B,H,Tq,D)" or "(B,H,Tq,Tk,D)" when keys and queries differ in length
    static std::string attention_dims(const Tensor& q, const Tensor& k) {
        return q.size(2) == k.size(2) ? dims({q.size(0), q.size(1), q.size(2), q.size(3)})
                                      : dims({q.size(0), q.size(1), q.size(2), k.size(2), q.size(3)});
    }

    // One (Tq x D) by (D x Tk) product per head: 2 B H Tq Tk D. The forward runs two such
    // products (S = Q K^T, O = P V), the backward four (dV, dP, dQ, dK), as PyTorch's composite
    // attention does; a kernel that recomputes S, or skips the masked half, is billed the same.
    static double attention_product_flops(const Tensor& q, const Tensor& k) {
        return 2.0 * double(q.size(0) * q.size(1)) * double(q.size(2)) * double(k.size(2)) * double(q.size(3));
    }

    // Records the call's own time: a kernel that goes through backend_for() itself (the default
    // reduce_cols copies its input first; a kernel allocates a workspace) has those calls in
    // their own rows, not twice. `flops`: the call's nominal floating-point work, if any.
    template <typename F>
    void timed(const std::string& op, F&& run, bool drain = true, double flops = 0) {
        if (drain) inner_.synchronize();  // work queued outside the table (none, normally) is not billed here
        const double outer_nested = t_nested, outer_flops = f_nested;
        t_nested = 0, f_nested = 0;
        const auto t0 = Clock::now();
        run();
        if (drain) inner_.synchronize();
        const double total = seconds_since(t0), own = total - t_nested;
        // the nested calls' work is theirs (an attention made of GEMM calls bills them, not itself)
        const double own_flops = std::max(0.0, flops - f_nested);
        t_nested = outer_nested + total;
        f_nested = outer_flops + std::max(flops, f_nested);
        record(op, own, own_flops);
    }
    static thread_local double t_nested;  // seconds of the timed calls inside the one running
    static thread_local double f_nested;  // and their floating-point work

    Backend& inner_;
};

thread_local double ProfilingBackend::t_nested = 0;
thread_local double ProfilingBackend::f_nested = 0;

static std::map<Backend*, std::unique_ptr<ProfilingBackend>> g_wrappers;

void start() {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_table.clear();
    g_active = true;
}

void stop() { g_active = false; }

bool active() { return g_active; }

Backend& wrap(Backend& inner) {
    if (!g_active) return inner;
    std::lock_guard<std::mutex> lock(g_mutex);
    std::unique_ptr<ProfilingBackend>& w = g_wrappers[&inner];
    if (!w) w = std::make_unique<ProfilingBackend>(inner);
    return *w;
}

std::vector<Entry> entries() {
    std::vector<Entry> rows;
    {
        std::lock_guard<std::mutex> lock(g_mutex);
        for (const auto& kv : g_table) rows.push_back(kv.second);
    }
    std::stable_sort(rows.begin(), rows.end(), [](const Entry& a, const Entry& b) { return a.seconds > b.seconds; });
    return rows;
}

std::string report(int64_t steps, double wall_seconds, size_t top) {
    const std::vector<Entry> rows = entries();
    const double per_step = 1e3 / double(std::max<int64_t>(steps, 1));  // seconds in all -> ms per step
    const double wall_ms = wall_seconds * per_step;
    double kernels_ms = 0;
    std::map<std::string, Entry> families;
    for (const Entry& e : rows) {
        kernels_ms += e.seconds * per_step;
        Entry& f = families[e.op.substr(0, e.op.find(' '))];
        f.op = e.op.substr(0, e.op.find(' '));
        f.calls += e.calls;
        f.seconds += e.seconds;
        f.flops += e.flops;
    }
    std::string out;
    char line[256];
    auto gflops = [](double flops, double seconds) { return seconds > 0 ? flops / seconds / 1e9 : 0.0; };
    auto row = [&](const Entry& e) {
        const double ms = e.seconds * per_step;
        std::snprintf(line, sizeof line, "%9.3f %6.1f%% %9.1f  %s", ms, wall_ms > 0 ? 100 * ms / wall_ms : 0.0,
                      double(e.calls) / double(std::max<int64_t>(steps, 1)), e.op.c_str());
        out += line;
        if (e.flops > 0) {
            std::snprintf(line, sizeof line, "  [%.0f GFLOP/s]", gflops(e.flops, e.seconds));
            out += line;
        }
        out += "\n";
    };
    std::snprintf(line, sizeof line, "profile: %lld step(s), %.3f ms per step with every kernel timed alone\n",
                  (long long)steps, wall_ms);
    out += line;
    out += "  ms/step  % step  calls/step  kernel\n";
    for (size_t i = 0; i < rows.size() && i < top; i++) row(rows[i]);
    if (rows.size() > top) {
        std::snprintf(line, sizeof line, "  (%zu more kernels)\n", rows.size() - top);
        out += line;
    }
    out += "by family:\n";
    std::vector<Entry> fam;
    for (const auto& kv : families) fam.push_back(kv.second);
    std::stable_sort(fam.begin(), fam.end(), [](const Entry& a, const Entry& b) { return a.seconds > b.seconds; });
    for (const Entry& e : fam) row(e);
    std::snprintf(line, sizeof line, "%9.3f %6.1f%%             kernels in all\n%9.3f %6.1f%%             "
                  "between kernels (host: autograd, bookkeeping)\n",
                  kernels_ms, wall_ms > 0 ? 100 * kernels_ms / wall_ms : 0.0, wall_ms - kernels_ms,
                  wall_ms > 0 ? 100 * (wall_ms - kernels_ms) / wall_ms : 0.0);
    out += line;
    double flops = 0, flop_seconds = 0;  // the rows with floating-point work
    for (const Entry& e : rows)
        if (e.flops > 0) flops += e.flops, flop_seconds += e.seconds;
    if (flops > 0) {
        std::snprintf(line, sizeof line, "%9.3f %6.1f%%             GEMMs and attention: %.2f GFLOP per step, %.0f GFLOP/s\n",
                      flop_seconds * per_step, wall_ms > 0 ? 100 * flop_seconds * per_step / wall_ms : 0.0,
                      flops / double(std::max<int64_t>(steps, 1)) / 1e9, gflops(flops, flop_seconds));
        out += line;
    }
    return out;
}

}  // namespace profiler
}  // namespace rankclip
