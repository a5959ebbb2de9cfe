// dist/mpi_comm.cpp
// defines: the MPI transport of dist/transport.h (host memory), built when MPI=1: the group from
// MPI_COMM_WORLD and its shared-memory split, and each collective as a non-blocking MPI call
// polled against the deadline dist::timeout_seconds() — past it, a message and MPI_Abort, so a
// rank that died or hangs never leaves the others waiting forever.
#define OMPI_SKIP_MPICXX 1  // the C API only (the deprecated C++ bindings warn)
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <thread>

#include "dist/comm.h"
#include "dist/transport.h"
#include "engine/error.h"

namespace rankclip::dist::transport {

namespace {

MPI_Comm g_world = MPI_COMM_NULL;

// Waits for `request`, polling MPI_Test (which also drives MPI's progress) with a growing sleep
// (0 to 1 ms) so a waiting rank leaves the cores to the others; aborts the job past the timeout.
void wait(MPI_Request& request, const char* what) {
    using clock = std::chrono::steady_clock;
    double timeout = dist::timeout_seconds();
    auto start = clock::now();
    auto deadline = start + std::chrono::duration<double>(timeout);
    int done = 0, polls = 0;
    while (true) {
        MPI_Test(&request, &done, MPI_STATUS_IGNORE);
        if (done) return;
        if (clock::now() > deadline)
            dist::abort(str_cat(what, " did not complete within ", timeout,
                                " s (RANKCLIP_DIST_TIMEOUT): another rank died, hangs, or is not making the same "
                                "collective calls; ending all ranks"));
        if (++polls > 100) std::this_thread::sleep_for(std::chrono::microseconds(std::min(polls - 100, 1000)));
    }
}

MPI_Datatype mpi_type(DType dtype) {
    switch (dtype) {
        case DType::F32: return MPI_FLOAT;
        case DType::F64: return MPI_DOUBLE;
        case DType::I32: return MPI_INT32_T;
        case DType::I64: return MPI_INT64_T;
        default: break;
    }
    throw Error(str_cat("dist (MPI): no MPI reduction for dtype ", dtype_name(dtype)));
}

int as_int(int64_t n, const char* what) {
    RC_CHECK(n <= INT_MAX, "dist (MPI): ", what, " of ", n, " exceeds MPI's int counts (2^31 - 1)");
    return static_cast<int>(n);
}

}  // namespace

bool mpi_built() { return true; }

Group mpi_init() {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
        int provided = 0;  // only the main thread calls MPI (OpenMP workers never do)
        MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
        // Finalised at exit. A rank whose peers are gone waits in MPI_Finalize until mpirun ends the
        // job, or a waiting peer times out and aborts it: bounded either way.
        std::atexit([] {
            int finalised = 0;
            MPI_Finalized(&finalised);
            if (!finalised) MPI_Finalize();
        });
    }
    g_world = MPI_COMM_WORLD;
    Group g;
    MPI_Comm_rank(g_world, &g.rank);
    MPI_Comm_size(g_world, &g.world);
    MPI_Comm local;
    MPI_Comm_split_type(g_world, MPI_COMM_TYPE_SHARED, g.rank, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &g.local_rank);
    MPI_Comm_size(local, &g.local_size);
    MPI_Comm_free(&local);
    return g;
}

void mpi_all_reduce_sum(void* data, int64_t count, DType dtype) {
    MPI_Datatype type = mpi_type(dtype);
    char* p = static_cast<char*>(data);
    constexpr int64_t kChunk = int64_t(1) << 30;  // MPI counts are ints
    for (int64_t done = 0; done < count; done += kChunk) {
        int n = static_cast<int>(std::min(kChunk, count - done));
        MPI_Request request;
        MPI_Iallreduce(MPI_IN_PLACE, p + done * dtype_size(dtype), n, type, MPI_SUM, g_world, &request);
        wait(request, "all_reduce");
    }
}

void mpi_all_gather(const void* send, int64_t bytes, void* recv, const std::vector<int64_t>& counts) {
    std::vector<int> n(counts.size()), displ(counts.size());
    int64_t total = 0;
    for (size_t r = 0; r < counts.size(); r++) {
        n[r] = as_int(counts[r], "a rank's share of all_gather (bytes)");
        displ[r] = as_int(total, "all_gather's output (bytes)");
        total += counts[r];
    }
    as_int(total, "all_gather's output (bytes)");
    MPI_Request request;
    MPI_Iallgatherv(send, as_int(bytes, "all_gather's input (bytes)"), MPI_BYTE, recv, n.data(), displ.data(),
                    MPI_BYTE, g_world, &request);
    wait(request, "all_gather");
}

void mpi_broadcast(void* data, int64_t bytes, int root) {
    char* p = static_cast<char*>(data);
    constexpr int64_t kChunk = int64_t(1) << 30;
    for (int64_t done = 0; done < bytes; done += kChunk) {
        MPI_Request request;
        MPI_Ibcast(p + done, static_cast<int>(std::min(kChunk, bytes - done)), MPI_BYTE, root, g_world, &request);
        wait(request, "broadcast");
    }
}

void mpi_barrier() {
    MPI_Request request;
    MPI_Ibarrier(g_world, &request);
    wait(request, "barrier");
}

void mpi_abort(int status) { MPI_Abort(MPI_COMM_WORLD, status); std::_Exit(status); }

}  // namespace rankclip::dist::transport
