// tests/cuda_test_util.h
// defines: what the CUDA test suites share — whether the CPU stands in for the GPU
// (RANKCLIP_CUDA_TESTS_ON_CPU=1, to check the suites themselves on a machine without one) and
// the one skip message every CUDA test gives when it cannot run.
#pragma once
#include <cstdlib>
#include <cstring>
#include <string>

#ifdef RANKCLIP_CUDA
#include "cuda/cuda_backend.h"
#endif

namespace rankclip::test {

inline bool cpu_stands_in_for_cuda() {
    const char* v = std::getenv("RANKCLIP_CUDA_TESTS_ON_CPU");
    return v != nullptr && std::strcmp(v, "1") == 0;
}

// "" when a real GPU is there; otherwise why not (the skip message, the same for every test).
// Real-device tests (allocator, TF32 switch) use this one: the CPU cannot stand in for them.
inline std::string no_real_cuda_reason() {
#ifdef RANKCLIP_CUDA
    if (cuda_available()) return "";
    return "no CUDA device: the CUDA runtime sees no GPU on this machine";
#else
    return "no CUDA device: built without CUDA (build with CUDA=1 on a machine with nvcc)";
#endif
}

// "" when the suite can run (a GPU, or the CPU standing in for it); otherwise why not.
inline std::string no_cuda_reason() { return cpu_stands_in_for_cuda() ? "" : no_real_cuda_reason(); }

}  // namespace rankclip::test
