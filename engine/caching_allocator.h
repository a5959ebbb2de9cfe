// engine/caching_allocator.h
// defines: CachingAllocator, the size-bucketed caching allocator behind both devices' tensors
// (engine/cpu/cpu_allocator.cpp binds it to aligned host memory, cuda/allocator.cu to
// cudaMalloc), and AllocatorStats.
//
// Why a cache: a training step frees and re-allocates the same sizes every iteration. On the
// GPU cudaMalloc/cudaFree cost tens of microseconds and cudaFree synchronizes the device; on the
// CPU, large blocks come from mmap and go back with munmap, so every step would fault in fresh
// pages that the kernel must zero first (4% of a CPU training step before this cache). Freed
// blocks go to a free list of their size bucket and the next request of that bucket reuses one
// without calling the raw allocator.
//
// Buckets: a request is rounded up to a multiple of 512 B below 1 MiB and to a multiple of
// 2 MiB from 1 MiB on (so a 1 MiB + 1 B request takes a 2 MiB block, and a 5 MiB one 6 MiB).
// A cached block is reused only for a request of exactly its bucket (no splitting, no
// best-fit): steady-state training repeats the same sizes, and exact reuse keeps the code small
// and the waste bounded (< 512 B, or < 2 MiB for blocks that are at least 1 MiB).
//
// Out of memory: when the raw allocation fails, every cached block is released and the
// allocation is tried once more; if it fails again an Error names the size and the stats.
//
// The raw malloc/free are injected, so tests exercise the class with a fake malloc.
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
    uint64_t num_raw_allocs = 0; // successful raw allocations (cache misses)
    uint64_t num_raw_frees = 0;   // raw frees (empty_cache, no-cache mode, OOM retry)
};

inline std::string stats_str(const AllocatorStats& s) {
    return str_cat("allocated ", s.allocated_bytes, " B, peak ", s.peak_bytes, " B, cached ",
                   s.cached_bytes, " B, ", s.num_allocs, " allocations, ", s.num_raw_allocs,
                   " raw allocations");
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

    CachingAllocator(RawMalloc raw_malloc, RawFree raw_free, bool caching,
                     std::string name)
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

    // True unless the environment variable `no_cache_var`, named by the device's backend (e.g.
    // RANKCLIP_CPU_NO_CACHE), is set to something other than "0".
    static bool caching_from_env(const char* no_cache_var) {
        const char* v = std::getenv(no_cache_var);
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
            stats_.num_raw_frees++;
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
        stats_.num_raw_allocs++;
        return ptr;
    }

    void release_cached() {
        for (auto& [size, blocks] : free_) {
            for (void* p : blocks) {
                stats_.num_raw_frees++;
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

}  // namespace rankclip
