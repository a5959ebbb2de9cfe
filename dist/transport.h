// dist/transport.h
// defines: the interface between the front end (dist/comm.cpp) and the two transports: MPI for
// host memory (dist/mpi_comm.cpp; dist/no_mpi.cpp when built without MPI) and NCCL for CUDA
// memory (dist/nccl_comm.cpp; dist/no_nccl.cpp when built without NCCL). Internal to dist/.
//
// Buffers are raw and contiguous; the front end has checked shapes, dtypes and devices. Every
// wait is bounded by dist::timeout_seconds(): past it, the transport calls dist::abort().
#pragma once
#include <cstdint>
#include <vector>

#include "engine/dtype.h"

namespace rankclip::dist::transport {

struct Group {
    int rank = 0, world = 1, local_rank = 0, local_size = 1;
};

// ---- MPI (host memory) ----
bool mpi_built();
Group mpi_init();  // MPI_Init_thread, world communicator, the shared-memory split for local rank
void mpi_all_reduce_sum(void* data, int64_t count, DType dtype);  // F32, F64, I32, I64
// Each rank sends `bytes` bytes; recv receives counts[r] bytes from each rank r, in rank order.
void mpi_all_gather(const void* send, int64_t bytes, void* recv, const std::vector<int64_t>& counts);
void mpi_broadcast(void* data, int64_t bytes, int root);
void mpi_barrier();
[[noreturn]] void mpi_abort(int status);

// ---- NCCL (CUDA memory of device `device`, queued on the engine's stream of that device) ----
bool nccl_built();
void nccl_all_reduce(void* data, int64_t count, DType dtype, bool mean, int device);
void nccl_all_gather(const void* send, void* recv, const std::vector<int64_t>& counts, DType dtype, int device);
void nccl_broadcast(void* data, int64_t count, DType dtype, int root, int device);

}  // namespace rankclip::dist::transport
