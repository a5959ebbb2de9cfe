// dist/no_mpi.cpp
// defines: the MPI transport of a build without MPI (MPI=0, or libopenmpi-dev absent): nothing
// but one process exists, which dist/comm.cpp checks at init, so none of these is ever reached
// with more than one rank; they say so if they are.
#include <cstdlib>

#include "dist/transport.h"
#include "engine/error.h"

namespace rankclip::dist::transport {

namespace {
[[noreturn]] void no_mpi(const char* what) {
    throw Error(str_cat("dist: ", what, " across processes needs MPI; this build has none (make MPI=1)"));
}
}  // namespace

bool mpi_built() { return false; }
Group mpi_init() { no_mpi("init"); }
void mpi_all_reduce_sum(void*, int64_t, DType) { no_mpi("all_reduce"); }
void mpi_all_gather(const void*, int64_t, void*, const std::vector<int64_t>&) { no_mpi("all_gather"); }
void mpi_broadcast(void*, int64_t, int) { no_mpi("broadcast"); }
void mpi_barrier() { no_mpi("barrier"); }
void mpi_abort(int status) { std::_Exit(status); }

}  // namespace rankclip::dist::transport
