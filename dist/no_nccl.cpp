// dist/no_nccl.cpp
// defines: the NCCL transport of a build without NCCL (CUDA=0, NCCL=0, or nccl.h absent):
// dist/comm.cpp then keeps CUDA tensors of a world of one as they are and refuses them beyond
// one process, so none of these is reached.
#include "dist/transport.h"
#include "engine/error.h"

namespace rankclip::dist::transport {

namespace {
[[noreturn]] void no_nccl() { throw Error("dist: collectives on CUDA tensors need NCCL; this build has none (make CUDA=1 NCCL=1)"); }
}  // namespace

bool nccl_built() { return false; }
void nccl_all_reduce(void*, int64_t, DType, bool, int) { no_nccl(); }
void nccl_all_gather(const void*, void*, const std::vector<int64_t>&, DType, int) { no_nccl(); }
void nccl_broadcast(void*, int64_t, DType, int, int) { no_nccl(); }

}  // namespace rankclip::dist::transport
