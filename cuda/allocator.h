// cuda/allocator.h
// defines: CachingAllocator (the size-bucketed caching allocator behind CUDA tensors, with its
// stats), AllocatorStats, PinnedBuffer (page-locked host staging memory), and the accessors of
// each device's allocator and of the pinned host allocator (the same cache over cudaHostAlloc).
//
// Why a cache: cudaMalloc/cudaFree cost tens of microseconds and cudaFree synchronizes the whole
// device, while a training step frees and re-allocates the same sizes every iteration. Freed
// blocks go to a free list of their size bucket and the next request of that bucket reuses one
// without calling the driver.
//
// Buckets: a request is rounded up to a multiple of 512 B below 1 MiB and to a multiple of
// 2 MiB from 1 MiB on (so a 1 MiB + 1 B request takes a 2 MiB block, and a 5 MiB one 6 MiB).
// A cached block is reused only for a request of exactly its bucket (no splitting, no
// best-fit): steady-state training repeats the same sizes, and exact reuse keeps the code small
// and the waste bounded (< 512 B, or < 2 MiB for blocks that are at least 1 MiB).
//
// Reusing a block right after it was freed is safe because every kernel and copy of a device
// runs on that device's one stream (cuda/device.h): later work is ordered after earlier work.
//
// Out of memory: when the raw allocation fails, every cached block is released and the
// allocation is tried once more; if it fails again an Error names the size and the stats.
//
// The class holds no CUDA types: the raw malloc/free are injected, so tests/test_cuda_allocator
// exercises it on the CPU with a fake malloc. The cudaMalloc binding lives in cuda/allocator.cu.
// RANKCLIP_CUDA_NO_CACHE=1 turns caching off (every allocate/deallocate goes to the driver,
// exact size), which lets compute-sanitizer catch out-of-bounds accesses.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/error.h"

namespace rankclip {

struct AllocatorStats {
    size_t allocated_bytes = 0;  // bytes of the blocks now handed out (bucket sizes)
    size_t peak_bytes = 0;       // highest allocated_bytes since creation or reset_peak()
    size_t cached_bytes = 0;     // bytes of the free blocks kept for reuse
    uint64_t num_allocs = 0;     // successful allocate() calls
    uint64_t num_cudamalloc = 0; // successful raw allocations (cache misses)
    uint64_t num_cudafree = 0;   // raw frees (empty_cache, no-cache mode, OOM retry)
};

inline std::string stats_str(const AllocatorStats& s) {
    return str_cat("allocated ", s.allocated_bytes, " B, peak ", s.peak_bytes, " B, cached ",
                   s.cached_bytes, " B, ", s.num_allocs, " allocations, ", s.num_cudamalloc,
                   " cudaMalloc calls");
}

class CachingAllocator {
public:
    // raw_malloc returns nullptr when the memory is not there (it may throw on other errors);
    // raw_free releases a pointer raw_malloc returned.
    using RawMalloc = std::function<void*(size_t nbytes)>;
    using RawFree = std::function<void(void* ptr)>;

    static constexpr size_t kSmallLimit = size_t(1) << 20;  // 1 MiB
    static constexpr size_t kSmallRound = 512;
    static constexpr size_t kLargeRound = size_t(2) << 20;  // 2 MiB

    CachingAllocator(RawMalloc raw_malloc, RawFree raw_free, bool caching = true,
                     std::string name = "cuda")
        : raw_malloc_(std::move(raw_malloc)), raw_free_(std::move(raw_free)), caching_(caching),
          name_(std::move(name)) {}

    // Returns any cached blocks to the raw free. Blocks still handed out are not touched (the
    // device allocators live for the whole process, so this only matters for tests).
    ~CachingAllocator() { empty_cache(); }

    CachingAllocator(const CachingAllocator&) = delete;
    CachingAllocator& operator=(const CachingAllocator&) = delete;

    // The bucket size of a request: 512 B multiples below 1 MiB, 2 MiB multiples above. A
    // zero-byte request still gets the smallest block, so every pointer is distinct and non-null.
    static size_t round_size(size_t nbytes) {
        if (nbytes == 0) return kSmallRound;
        if (nbytes < kSmallLimit) return (nbytes + kSmallRound - 1) / kSmallRound * kSmallRound;
        return (nbytes + kLargeRound - 1) / kLargeRound * kLargeRound;
    }

    // True unless the environment sets RANKCLIP_CUDA_NO_CACHE to something other than "0".
    static bool caching_from_env() {
        const char* v = std::getenv("RANKCLIP_CUDA_NO_CACHE");
        return v == nullptr || v[0] == '\0' || std::strcmp(v, "0") == 0;
    }

    void* allocate(size_t nbytes) {
        std::lock_guard<std::mutex> lock(mutex_);
        size_t size = caching_ ? round_size(nbytes) : (nbytes == 0 ? 1 : nbytes);
        void* ptr = nullptr;
        if (caching_) {
            auto it = free_.find(size);
            if (it != free_.end() && !it->second.empty()) {
                ptr = it->second.back();
                it->second.pop_back();
                stats_.cached_bytes -= size;
            }
        }
        if (ptr == nullptr) ptr = raw_allocate(nbytes, size);
        live_[ptr] = size;
        stats_.num_allocs++;
        stats_.allocated_bytes += size;
        if (stats_.allocated_bytes > stats_.peak_bytes) stats_.peak_bytes = stats_.allocated_bytes;
        return ptr;
    }

    void deallocate(void* ptr) {
        if (ptr == nullptr) return;
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = live_.find(ptr);
        RC_CHECK(it != live_.end(), name_, " allocator: deallocate of a pointer it did not hand out (",
                 ptr, "), or a double free");
        size_t size = it->second;
        live_.erase(it);
        stats_.allocated_bytes -= size;
        if (caching_) {
            free_[size].push_back(ptr);
            stats_.cached_bytes += size;
        } else {
            stats_.num_cudafree++;
            raw_free_(ptr);
        }
    }

    // Whether `ptr` is a block this allocator handed out and that is not freed yet.
    bool owns(void* ptr) const {
        std::lock_guard<std::mutex> lock(mutex_);
        return live_.count(ptr) != 0;
    }

    // Releases every cached (free) block to the raw free.
    void empty_cache() {
        std::lock_guard<std::mutex> lock(mutex_);
        release_cached();
    }

    void reset_peak() {
        std::lock_guard<std::mutex> lock(mutex_);
        stats_.peak_bytes = stats_.allocated_bytes;
    }

    AllocatorStats stats() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return stats_;
    }

    bool caching() const { return caching_; }
    const std::string& name() const { return name_; }

private:
    // Called with the mutex held.
    void* raw_allocate(size_t requested, size_t size) {
        void* ptr = raw_malloc_(size);
        if (ptr == nullptr && stats_.cached_bytes > 0) {
            release_cached();  // the memory may be sitting in blocks of other sizes
            ptr = raw_malloc_(size);
        }
        if (ptr == nullptr) {
            throw Error(str_cat(name_, " allocator: out of memory allocating ", requested,
                                " bytes (block of ", size, " bytes) after releasing the cache; ",
                                stats_str(stats_)));
        }
        stats_.num_cudamalloc++;
        return ptr;
    }

    void release_cached() {
        for (auto& [size, blocks] : free_) {
            for (void* p : blocks) {
                stats_.num_cudafree++;
                raw_free_(p);
            }
            stats_.cached_bytes -= size * blocks.size();
        }
        free_.clear();
    }

    RawMalloc raw_malloc_;
    RawFree raw_free_;
    bool caching_;
    std::string name_;
    mutable std::mutex mutex_;
    std::unordered_map<size_t, std::vector<void*>> free_;  // bucket size -> free blocks
    std::unordered_map<void*, size_t> live_;                // handed-out block -> bucket size
    AllocatorStats stats_;
};

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
