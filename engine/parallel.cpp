// engine/parallel.cpp
// defines: the CPU thread count, the one runtime setting for OpenMP kernels and oneDNN's GEMM,
// and use_short_openmp_spin, the OpenMP wait policy of our programs.
// Default: RANKCLIP_THREADS if set, else all cores. Kernels split work in a fixed way for a given
// thread count (and reductions never split a row), so results are bit-identical run to run.
//
// The wait policy. An OpenMP worker waiting for the next parallel region spins, by libgomp's
// default, for about 300,000 iterations before it sleeps. On a quiet machine that is the
// fastest; but when any other process wants a core, a spinning thread holds the core while its
// partner, descheduled, is what everyone waits for. Measured on 2 cores (tiny, batch 128, ms per
// step, fp32 / bf16): quiet: libgomp's default 365 / 202, GOMP_SPINCOUNT=3000 380 / 208,
// OMP_WAIT_POLICY=passive 385 / 235; with one busy process beside us: default 1100 / 500, 3000
// 757 / 400, passive 720 / 390. A short spin keeps nearly all of the quiet speed and nearly
// all of passive's robustness. libgomp reads the setting once, when it loads, before main, so
// the only way for a program to choose it is to start again with it in the environment.
#include <omp.h>
#include <unistd.h>

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

void use_short_openmp_spin(char** argv) {
    if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;  // the caller chose
    setenv("GOMP_SPINCOUNT", "3000", 1);
    setenv("RANKCLIP_GOMP_SPINCOUNT_SET", "1", 1);  // ours, not the user's: a PyTorch twin we start may retune it
    execv("/proc/self/exe", argv);  // returns only if the restart fails: then run as we are
}

}  // namespace rankclip
