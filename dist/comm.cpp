// dist/comm.cpp
// defines: the front end of the communication layer (dist/comm.h): the process group read from
// the launcher's environment, the timeout, argument checks, and each collective dispatched to
// MPI (CPU tensors) or NCCL (CUDA tensors) through dist/transport.h.
#include "dist/comm.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unistd.h>

#include "dist/transport.h"
#include "engine/error.h"
#include "engine/parse.h"

namespace rankclip::dist {

namespace {

transport::Group g_group;
bool g_initialised = false;
bool g_use_mpi = false;  // MPI initialised: launched, and built with MPI
double g_timeout = -1;   // < 0: not read yet
int g_local_depth = 0;   // LocalScopes alive: a world of one
CommStats g_stats;

// Adds one collective's time and bytes to g_stats when it ends (a scope in each collective).
struct Counted {
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    int64_t bytes;
    explicit Counted(int64_t b) : bytes(b) {}
    ~Counted() {
        g_stats.calls++;
        g_stats.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        g_stats.bytes += bytes;
    }
};

int64_t bytes_of(const Tensor& t) { return t.numel() * static_cast<int64_t>(dtype_size(t.dtype())); }

const char* env(const char* name) {
    const char* v = std::getenv(name);
    return v && *v ? v : nullptr;
}

void require_contiguous(const Tensor& t, const char* op) {
    RC_CHECK(t.defined(), "dist::", op, ": undefined tensor");
    RC_CHECK(t.is_contiguous(), "dist::", op, ": the tensor must be contiguous, got ", t.str());
}

// Whether t goes through NCCL: CUDA tensors do when NCCL is built, also in a world of one (so a
// single GPU exercises the path); without NCCL a CUDA tensor is an error beyond one process.
bool through_nccl(const Tensor& t, const char* op) {
    if (t.device().is_cpu() || g_local_depth > 0) return false;
    if (transport::nccl_built()) return true;
    RC_CHECK(world_size() == 1, "dist::", op, ": ", t.str(), " is on ", t.device().str(),
             " but this build has no NCCL (build with CUDA=1 NCCL=1 where nccl.h and libnccl are installed)");
    return false;
}

}  // namespace

int launcher_world_size() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
        if (const char* v = env(name)) return static_cast<int>(parse_int_option(name, v, 1, 1 << 24));
    if (env("PMIX_RANK"))
        if (const char* v = env("SLURM_NTASKS")) return static_cast<int>(parse_int_option("SLURM_NTASKS", v, 1, 1 << 24));
    return 1;
}

void check_launch(int launched, bool have_mpi) {
    RC_CHECK(launched <= 1 || have_mpi, "this program was launched as one of ", launched,
             " processes (mpirun / srun), but it was built without MPI, so it can only run as one "
             "process: install libopenmpi-dev (tools/install-deps.sh) and rebuild (make MPI=1), or "
             "run a single process");
}

void init() {
    static std::once_flag once;
    std::call_once(once, [] {
        bool launched = env("OMPI_COMM_WORLD_SIZE") || env("PMI_SIZE") || env("PMIX_RANK");
        check_launch(launcher_world_size(), transport::mpi_built());
        if (launched && transport::mpi_built()) {
            g_group = transport::mpi_init();
            g_use_mpi = true;
        }
        g_initialised = true;
    });
}

int rank() { return init(), g_local_depth > 0 ? 0 : g_group.rank; }
int world_size() { return init(), g_local_depth > 0 ? 1 : g_group.world; }

LocalScope::LocalScope() { init(), g_local_depth++; }
LocalScope::~LocalScope() { g_local_depth--; }
int local_rank() { return init(), g_group.local_rank; }
int local_size() { return init(), g_group.local_size; }
bool is_main() { return rank() == 0; }
bool built_with_mpi() { return transport::mpi_built(); }
bool built_with_nccl() { return transport::nccl_built(); }

double timeout_seconds() {
    if (g_timeout < 0) {
        const char* v = env("RANKCLIP_DIST_TIMEOUT");
        g_timeout = v ? parse_positive_real_option("RANKCLIP_DIST_TIMEOUT", v) : 600.0;
    }
    return g_timeout;
}

void set_timeout_seconds(double seconds) {
    RC_CHECK(seconds > 0, "dist::set_timeout_seconds: the timeout must be positive, got ", seconds);
    g_timeout = seconds;
}

void all_reduce_(Tensor& t, Reduce op) {
    require_contiguous(t, "all_reduce_");
    RC_CHECK(op == Reduce::Sum || is_floating(t.dtype()), "dist::all_reduce_: the mean of ", t.str(),
             " (", dtype_name(t.dtype()), ") is not an integer; use Reduce::Sum");
    const bool nccl = through_nccl(t, "all_reduce_");
    if (world_size() == 1 && !nccl) return;
    if (!nccl && t.dtype() == DType::BF16) {  // no MPI type for bf16: sum in F32, round once
        Tensor wide = t.to(DType::F32);
        all_reduce_(wide, op);
        t.copy_(wide);
        return;
    }
    Counted counted(bytes_of(t));
    if (nccl) {
        transport::nccl_all_reduce(t.raw_data(), t.numel(), t.dtype(), op == Reduce::Mean, t.device().index);
        return;
    }
    transport::mpi_all_reduce_sum(t.raw_data(), t.numel(), t.dtype());
    if (op == Reduce::Mean) t.mul_(1.0 / world_size());
}

Tensor all_gather(const Tensor& t, std::vector<int64_t>* rows_out) {
    require_contiguous(t, "all_gather");
    RC_CHECK(t.dim() >= 1 && t.dim() <= 8, "dist::all_gather: gathers along dim 0 of a tensor of 1 to 8 dims, got ",
             t.str());
    int world = world_size();
    bool nccl = through_nccl(t, "all_gather");
    if (rows_out) *rows_out = {t.shape()[0]};
    if (world == 1 && !nccl) return t.clone();
    Counted counted(0);
    // Every rank's header (dtype, device type, dims, shape) on every rank: shapes are checked
    // and the dim-0 sizes learnt before any data moves.
    constexpr int kHeader = 11;
    std::vector<int64_t> mine(kHeader, -1), all(kHeader * world);
    mine[0] = static_cast<int64_t>(t.dtype());
    mine[1] = static_cast<int64_t>(t.device().type);
    mine[2] = t.dim();
    for (int64_t d = 0; d < t.dim(); d++) mine[3 + d] = t.shape()[d];
    if (world > 1)
        transport::mpi_all_gather(mine.data(), kHeader * 8, all.data(), std::vector<int64_t>(world, kHeader * 8));
    else
        all = mine;
    std::vector<int64_t> rows(world);
    Shape out_shape = t.shape();
    out_shape[0] = 0;
    for (int r = 0; r < world; r++) {
        const int64_t* h = &all[r * kHeader];
        bool same = h[0] == mine[0] && h[1] == mine[1] && h[2] == mine[2];
        for (int64_t d = 1; same && d < t.dim(); d++) same = h[3 + d] == mine[3 + d];
        RC_CHECK(same, "dist::all_gather: rank ", r, " gathers a tensor of another dtype, device or trailing shape "
                 "than rank ", rank(), "'s ", t.str(), " on ", t.device().str(), " (only dim 0 may differ)");
        rows[r] = h[3];
        out_shape[0] += h[3];
    }
    if (rows_out) *rows_out = rows;
    Tensor out = empty(out_shape, t.dtype(), t.device());
    counted.bytes = bytes_of(out);
    int64_t row_elems = 1;
    for (int64_t d = 1; d < t.dim(); d++) row_elems *= t.shape()[d];
    std::vector<int64_t> counts(world);
    for (int r = 0; r < world; r++) counts[r] = rows[r] * row_elems;
    if (nccl) {
        transport::nccl_all_gather(t.raw_data(), out.raw_data(), counts, t.dtype(), t.device().index);
        return out;
    }
    int64_t esize = static_cast<int64_t>(dtype_size(t.dtype()));
    for (int64_t& c : counts) c *= esize;
    transport::mpi_all_gather(t.raw_data(), t.numel() * esize, out.raw_data(), counts);
    return out;
}

void broadcast_(Tensor& t, int root) {
    require_contiguous(t, "broadcast_");
    RC_CHECK(root >= 0 && root < world_size(), "dist::broadcast_: root ", root, " is not a rank of a world of ",
             world_size());
    const bool nccl = through_nccl(t, "broadcast_");
    if (world_size() == 1 && !nccl) return;
    Counted counted(bytes_of(t));
    if (nccl) {
        transport::nccl_broadcast(t.raw_data(), t.numel(), t.dtype(), root, t.device().index);
        return;
    }
    transport::mpi_broadcast(t.raw_data(), t.numel() * static_cast<int64_t>(dtype_size(t.dtype())), root);
}

void barrier() {
    if (world_size() == 1) return;
    Counted counted(0);
    transport::mpi_barrier();
}

CommStats comm_stats() { return g_stats; }
void reset_comm_stats() { g_stats = CommStats(); }

void abort(const std::string& message) {
    std::fprintf(stderr, "rankclip: rank %d/%d: %s\n", g_group.rank, g_group.world, message.c_str());
    std::fflush(stderr);
    if (g_use_mpi) transport::mpi_abort(3);
    ::_exit(3);
}

}  // namespace rankclip::dist
