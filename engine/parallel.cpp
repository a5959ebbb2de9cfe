// engine/parallel.cpp
// defines: the CPU thread count, the one runtime setting for OpenMP kernels and Eigen GEMM.
// Default: RANKCLIP_THREADS if set, else all cores. Kernels split work in a fixed way for a given
// thread count (and reductions never split a row), so results are bit-identical run to run.
#include <omp.h>

#include <cstdlib>

#include "engine/error.h"
#include "engine/ops.h"

namespace rankclip {

static int initial_threads() {
    if (const char* env = std::getenv("RANKCLIP_THREADS")) {
        int n = std::atoi(env);
        RC_CHECK(n > 0, "RANKCLIP_THREADS must be a positive integer, got '", env, "'");
        return n;
    }
    return omp_get_num_procs();
}

static int num_threads = [] {
    int n = initial_threads();
    omp_set_num_threads(n);
    return n;
}();

void set_num_threads(int n) {
    RC_CHECK(n > 0, "set_num_threads: need a positive count, got ", n);
    num_threads = n;
    omp_set_num_threads(n);
}

int get_num_threads() { return num_threads; }

}  // namespace rankclip
