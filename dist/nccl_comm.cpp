// dist/nccl_comm.cpp
// defines: the NCCL transport of dist/transport.h (CUDA memory), built when CUDA=1 and NCCL=1:
// one communicator per process, created on the first collective from a unique id that rank 0
// makes and MPI broadcasts (as llm.c does), on the device of that first tensor — one GPU per
// local rank, so tensors live on Device::cuda(dist::local_rank()).
//
// Collectives are queued on the engine's stream of the device (cuda/device.h), ordered with
// every kernel. The communicator is non-blocking (ncclConfig_t::blocking = 0): its set-up and
// each call are polled, and so is the stream after each call, against dist::timeout_seconds();
// past it the communicator is aborted and the job ended (dist::abort). Each collective thus
// returns with its result computed (a synchronisation per call; overlapping communication with
// the backward pass is for later).
#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "cuda/device.h"
#include "dist/comm.h"
#include "dist/transport.h"
#include "engine/error.h"

namespace rankclip::dist::transport {

namespace {

using clock = std::chrono::steady_clock;

ncclComm_t g_comm = nullptr;
int g_device = -1;

ncclDataType_t nccl_type(DType dtype) {
    switch (dtype) {
        case DType::F32: return ncclFloat32;
        case DType::F64: return ncclFloat64;
        case DType::BF16: return ncclBfloat16;
        case DType::I32: return ncclInt32;
        case DType::I64: return ncclInt64;
    }
    return ncclFloat32;
}

[[noreturn]] void fail(const char* what, const std::string& why) {
    if (g_comm) ncclCommAbort(g_comm);
    g_comm = nullptr;
    dist::abort(str_cat("NCCL ", what, ": ", why));
}

void check(ncclResult_t r, const char* what) {
    if (r != ncclSuccess && r != ncclInProgress) fail(what, ncclGetErrorString(r));
}

void poll_sleep(int& polls) {
    if (++polls > 100) std::this_thread::sleep_for(std::chrono::microseconds(std::min(polls - 100, 1000)));
}

std::string timed_out() {
    return str_cat("did not complete within ", dist::timeout_seconds(),
                   " s (RANKCLIP_DIST_TIMEOUT): another rank died, hangs, or is not making the same collective "
                   "calls; ending all ranks");
}

// Until the communicator has taken the last call (non-blocking mode answers ncclInProgress).
void wait_comm(const char* what, clock::time_point deadline) {
    int polls = 0;
    while (true) {
        ncclResult_t state;
        check(ncclCommGetAsyncError(g_comm, &state), what);
        if (state == ncclSuccess) return;
        if (state != ncclInProgress) fail(what, ncclGetErrorString(state));
        if (clock::now() > deadline) fail(what, timed_out());
        poll_sleep(polls);
    }
}

// Until the device's stream (the collective and everything queued before it) has run.
void wait_stream(const char* what, int device, clock::time_point deadline) {
    cudaStream_t stream = cuda_stream(device);
    int polls = 0;
    while (true) {
        cudaError_t e = cudaStreamQuery(stream);
        if (e == cudaSuccess) return;
        if (e != cudaErrorNotReady) fail(what, cudaGetErrorString(e));
        ncclResult_t state;
        ncclCommGetAsyncError(g_comm, &state);
        if (state != ncclSuccess && state != ncclInProgress) fail(what, ncclGetErrorString(state));
        if (clock::now() > deadline) fail(what, timed_out());
        poll_sleep(polls);
    }
}

clock::time_point deadline() { return clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(dist::timeout_seconds())); }

ncclComm_t comm_for(int device) {
    if (g_comm) {
        RC_CHECK(device == g_device, "dist (NCCL): this process communicates on cuda:", g_device,
                 " (one GPU per rank), got a tensor on cuda:", device);
        return g_comm;
    }
    cuda_context(device);  // makes `device` current
    ncclUniqueId id;
    if (dist::rank() == 0) check(ncclGetUniqueId(&id), "unique id");
    if (dist::world_size() > 1) mpi_broadcast(&id, sizeof id, 0);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    check(ncclCommInitRankConfig(&g_comm, dist::world_size(), id, dist::rank(), &config), "init");
    g_device = device;
    wait_comm("init", deadline());
    return g_comm;
}

}  // namespace

bool nccl_built() { return true; }

void nccl_all_reduce(void* data, int64_t count, DType dtype, bool mean, int device) {
    ncclComm_t comm = comm_for(device);
    auto until = deadline();
    check(ncclAllReduce(data, data, static_cast<size_t>(count), nccl_type(dtype), mean ? ncclAvg : ncclSum, comm,
                        cuda_stream(device)),
          "all_reduce");
    wait_comm("all_reduce", until);
    wait_stream("all_reduce", device, until);
}

void nccl_all_gather(const void* send, void* recv, const std::vector<int64_t>& counts, DType dtype, int device) {
    ncclComm_t comm = comm_for(device);
    auto until = deadline();
    cudaStream_t stream = cuda_stream(device);
    ncclDataType_t type = nccl_type(dtype);
    bool equal = true;
    for (int64_t c : counts) equal = equal && c == counts[0];
    if (equal) {
        check(ncclAllGather(send, recv, static_cast<size_t>(counts[0]), type, comm, stream), "all_gather");
    } else {  // ranks' shares differ: one broadcast per rank into its place, as one group
        check(ncclGroupStart(), "all_gather");
        char* out = static_cast<char*>(recv);
        int64_t offset = 0;
        for (size_t r = 0; r < counts.size(); r++) {
            char* place = out + offset * dtype_size(dtype);
            const void* src = static_cast<int>(r) == dist::rank() ? send : place;
            check(ncclBroadcast(src, place, static_cast<size_t>(counts[r]), type, static_cast<int>(r), comm, stream),
                  "all_gather");
            offset += counts[r];
        }
        check(ncclGroupEnd(), "all_gather");
    }
    wait_comm("all_gather", until);
    wait_stream("all_gather", device, until);
}

void nccl_broadcast(void* data, int64_t count, DType dtype, int root, int device) {
    ncclComm_t comm = comm_for(device);
    auto until = deadline();
    check(ncclBroadcast(data, data, static_cast<size_t>(count), nccl_type(dtype), root, comm, cuda_stream(device)),
          "broadcast");
    wait_comm("broadcast", until);
    wait_stream("broadcast", device, until);
}

}  // namespace rankclip::dist::transport
