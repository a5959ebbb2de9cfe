// cuda/allocator.h
// defines: PinnedBuffer (page-locked host staging memory), and the accessors of each device's
// caching allocator (engine/caching_allocator.h bound to cudaMalloc) and of the pinned host
// allocator (the same cache over cudaHostAlloc).
//
// The buckets, the reuse rule and the out-of-memory retry are CachingAllocator's
// (engine/caching_allocator.h). Reusing a device block right after it was freed is safe because
// every kernel and copy of a device runs on that device's one stream (cuda/device.h): later work
// is ordered after earlier work. RANKCLIP_CUDA_NO_CACHE=1 turns caching off (every
// allocate/deallocate goes to the driver, exact size), which lets compute-sanitizer catch
// out-of-bounds accesses.
#pragma once
#include <cstddef>
#include <utility>

#include "engine/caching_allocator.h"

namespace rankclip {

// Page-locked host memory (cudaMallocHost), for asynchronous host <-> device copies, e.g. the
// data loader's staging buffers. Move-only; freed with cudaFreeHost. CUDA builds only
// (defined in cuda/allocator.cu).
class PinnedBuffer {
public:
    PinnedBuffer() = default;
    explicit PinnedBuffer(size_t nbytes);
    ~PinnedBuffer();
    PinnedBuffer(PinnedBuffer&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), nbytes_(std::exchange(other.nbytes_, 0)) {}
    PinnedBuffer& operator=(PinnedBuffer&& other) noexcept {
        std::swap(data_, other.data_);
        std::swap(nbytes_, other.nbytes_);
        return *this;
    }
    PinnedBuffer(const PinnedBuffer&) = delete;
    PinnedBuffer& operator=(const PinnedBuffer&) = delete;

    void* data() const { return data_; }
    size_t size() const { return nbytes_; }

private:
    void* data_ = nullptr;
    size_t nbytes_ = 0;
};

// The caching allocator of CUDA device `device`, bound to cudaMalloc/cudaFree on that device and
// created on first use (caching unless RANKCLIP_CUDA_NO_CACHE=1). CUDA builds only.
CachingAllocator& cuda_allocator(int device);

// Page-locked host memory for pinned CPU tensors (empty_pinned, the loader's pin_memory), one
// allocator for the process, bound to cudaHostAlloc(portable: usable with every device) and
// cudaFreeHost, with the same buckets and cache as device memory. The cache matters more here:
// pinning costs milliseconds per MiB and cudaFreeHost synchronizes the device, while the loader
// frees and re-allocates the same batch sizes every step. Reusing a freed block at once is safe
// because every copy from or to host memory (CudaBackend::copy_from_host/copy_to_host) waits for
// its stream before returning, so no transfer still reads a block when it is freed.
// Caching unless RANKCLIP_CUDA_NO_CACHE=1. CUDA builds only.
CachingAllocator& pinned_host_allocator();

}  // namespace rankclip
