// engine/cpu/cpu_allocator.cpp
// defines: the CPU tensors' memory: cpu_allocator(), a CachingAllocator (engine/caching_allocator.h)
// over 64-byte aligned host memory, and CpuBackend::allocate / deallocate through it.
// Blocks of 2 MiB and more are 2 MiB aligned and marked MADV_HUGEPAGE, so the kernel backs them
// with transparent huge pages where it allows (fewer TLB misses on the large activations).
// RANKCLIP_CPU_NO_CACHE=1 turns caching off (every tensor gets fresh memory, exact size), so
// valgrind and sanitizers see each buffer's true bounds and lifetime.
#include <sys/mman.h>

#include <cstdlib>

#include "engine/caching_allocator.h"
#include "engine/cpu/cpu_backend.h"

namespace rankclip {

static void* host_malloc(size_t nbytes) {
    const size_t huge = size_t(2) << 20;
    size_t align = nbytes >= huge ? huge : 64;
    void* p = std::aligned_alloc(align, (nbytes + align - 1) / align * align);
    if (p && nbytes >= huge) madvise(p, nbytes, MADV_HUGEPAGE);  // a hint: failure is harmless
    return p;
}

CachingAllocator& cpu_allocator() {
    // Never destroyed: tensors may be freed during static destruction.
    static CachingAllocator* allocator = new CachingAllocator(
        host_malloc, [](void* p) { std::free(p); }, CachingAllocator::caching_from_env("RANKCLIP_CPU_NO_CACHE"),
        "cpu");
    return *allocator;
}

void* CpuBackend::allocate(size_t nbytes) { return cpu_allocator().allocate(nbytes); }

void CpuBackend::deallocate(void* ptr, size_t) { cpu_allocator().deallocate(ptr); }

}  // namespace rankclip
