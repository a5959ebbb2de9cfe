// tests/test_cuda_allocator.cpp
// Tests of the caching allocator (engine/caching_allocator.h, behind CUDA and CPU tensors):
// bucketing, reuse without new raw allocations, stats, empty_cache, the no-cache switch, the
// out-of-memory retry and error, and thread safety. They run on the CPU with a fake raw malloc that has a byte budget; with a CUDA
// build and a GPU, the last tests also exercise the real device allocator and pinned buffers.
#include <gtest/gtest.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cuda/allocator.h"
#ifdef RANKCLIP_CUDA
#include "cuda/cuda_backend.h"
#endif

namespace rankclip {
namespace {

constexpr size_t KiB = 1024, MiB = 1024 * 1024;

// A pretend device: hands out host memory until `budget` bytes are in use.
struct FakeDevice {
    size_t budget = SIZE_MAX;
    size_t in_use = 0;
    int mallocs = 0, frees = 0;
    std::unordered_map<void*, size_t> blocks;
    std::vector<size_t> requested;  // sizes asked of the raw malloc, in order

    CachingAllocator make(bool caching = true) {
        return CachingAllocator([this](size_t n) { return malloc(n); },
                                [this](void* p) { free(p); }, caching, "fake");
    }
    void* malloc(size_t n) {
        requested.push_back(n);
        if (in_use + n > budget) return nullptr;
        void* p = std::malloc(n);
        blocks[p] = n;
        in_use += n;
        mallocs++;
        return p;
    }
    void free(void* p) {
        auto it = blocks.find(p);
        ASSERT_NE(it, blocks.end()) << "raw free of a pointer the fake malloc did not return";
        in_use -= it->second;
        blocks.erase(it);
        std::free(p);
        frees++;
    }
};

TEST(CudaAllocator, RoundsSmallRequestsTo512BytesAndLargeOnesTo2MiB) {
    EXPECT_EQ(CachingAllocator::round_size(0), 512u);
    EXPECT_EQ(CachingAllocator::round_size(1), 512u);
    EXPECT_EQ(CachingAllocator::round_size(512), 512u);
    EXPECT_EQ(CachingAllocator::round_size(513), 1024u);
    EXPECT_EQ(CachingAllocator::round_size(1000 * KiB + 1), 1000 * KiB + 512);
    EXPECT_EQ(CachingAllocator::round_size(MiB - 1), MiB);
    EXPECT_EQ(CachingAllocator::round_size(MiB), 2 * MiB);
    EXPECT_EQ(CachingAllocator::round_size(2 * MiB), 2 * MiB);
    EXPECT_EQ(CachingAllocator::round_size(5 * MiB), 6 * MiB);
    EXPECT_EQ(CachingAllocator::round_size(6 * MiB + 1), 8 * MiB);
    for (size_t n : {size_t(3), size_t(4097), size_t(777777), size_t(3 * MiB + 5)})
        EXPECT_GE(CachingAllocator::round_size(n), n);
}

TEST(CudaAllocator, ReusesAFreedBlockOfTheSameBucketWithoutARawMalloc) {
    FakeDevice dev;
    CachingAllocator alloc = dev.make();
    void* a = alloc.allocate(1000);
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(dev.mallocs, 1);
    EXPECT_EQ(dev.requested.back(), 1024u);  // the bucket size, not the request
    alloc.deallocate(a);
    EXPECT_EQ(dev.frees, 0);  // kept in the cache
    void* b = alloc.allocate(900);  // same 1024-byte bucket
    EXPECT_EQ(b, a);
    EXPECT_EQ(dev.mallocs, 1);
    void* c = alloc.allocate(900);  // the cached block is taken: a new one is needed
    EXPECT_NE(c, b);
    EXPECT_EQ(dev.mallocs, 2);
    alloc.deallocate(b);
    alloc.deallocate(c);
}

TEST(CudaAllocator, DoesNotReuseBlocksOfOtherBuckets) {
    FakeDevice dev;
    CachingAllocator alloc = dev.make();
    void* small = alloc.allocate(512);
    alloc.deallocate(small);
    void* bigger = alloc.allocate(4096);
    EXPECT_NE(bigger, small);
    EXPECT_EQ(dev.mallocs, 2);
    void* large = alloc.allocate(3 * MiB);
    alloc.deallocate(large);
    void* large_again = alloc.allocate(4 * MiB - 10);  // same 4 MiB bucket
    EXPECT_EQ(large_again, large);
    void* larger = alloc.allocate(5 * MiB);  // 6 MiB bucket
    EXPECT_NE(larger, large);
    EXPECT_EQ(dev.mallocs, 4);
    alloc.deallocate(bigger);
    alloc.deallocate(large_again);
    alloc.deallocate(larger);
}

TEST(CudaAllocator, KeepsStatsOfAllocatedPeakAndCachedBytes) {
    FakeDevice dev;
    CachingAllocator alloc = dev.make();
    void* a = alloc.allocate(1000);     // 1024
    void* b = alloc.allocate(3 * MiB);  // 4 MiB
    AllocatorStats s = alloc.stats();
    EXPECT_EQ(s.allocated_bytes, 1024 + 4 * MiB);
    EXPECT_EQ(s.peak_bytes, 1024 + 4 * MiB);
    EXPECT_EQ(s.cached_bytes, 0u);
    EXPECT_EQ(s.num_allocs, 2u);
    EXPECT_EQ(s.num_raw_allocs, 2u);

    alloc.deallocate(b);
    s = alloc.stats();
    EXPECT_EQ(s.allocated_bytes, 1024u);
    EXPECT_EQ(s.peak_bytes, 1024 + 4 * MiB);  // the peak stays
    EXPECT_EQ(s.cached_bytes, 4 * MiB);

    alloc.reset_peak();
    EXPECT_EQ(alloc.stats().peak_bytes, 1024u);

    void* c = alloc.allocate(4 * MiB);  // from the cache
    s = alloc.stats();
    EXPECT_EQ(c, b);
    EXPECT_EQ(s.cached_bytes, 0u);
    EXPECT_EQ(s.num_allocs, 3u);
    EXPECT_EQ(s.num_raw_allocs, 2u);
    EXPECT_EQ(s.peak_bytes, 1024 + 4 * MiB);
    alloc.deallocate(a);
    alloc.deallocate(c);
    EXPECT_EQ(alloc.stats().allocated_bytes, 0u);
    EXPECT_EQ(alloc.stats().cached_bytes, 1024 + 4 * MiB);
}

TEST(CudaAllocator, EmptyCacheReleasesOnlyFreeBlocks) {
    FakeDevice dev;
    CachingAllocator alloc = dev.make();
    void* kept = alloc.allocate(100);
    std::vector<void*> freed;
    for (int i = 0; i < 5; i++) freed.push_back(alloc.allocate(size_t(i + 1) * 1000));
    for (void* p : freed) alloc.deallocate(p);
    EXPECT_EQ(dev.blocks.size(), 6u);
    alloc.empty_cache();
    EXPECT_EQ(dev.frees, 5);
    EXPECT_EQ(dev.blocks.size(), 1u);
    EXPECT_EQ(dev.blocks.count(kept), 1u);
    EXPECT_EQ(alloc.stats().cached_bytes, 0u);
    EXPECT_EQ(alloc.stats().allocated_bytes, 512u);
    EXPECT_EQ(alloc.stats().num_raw_frees, 5u);
    alloc.deallocate(kept);
}

TEST(CudaAllocator, DestructorReturnsTheCacheToTheRawFree) {
    FakeDevice dev;
    {
        CachingAllocator alloc = dev.make();
        alloc.deallocate(alloc.allocate(10));
        alloc.deallocate(alloc.allocate(5 * MiB));
        EXPECT_EQ(dev.blocks.size(), 2u);
    }
    EXPECT_TRUE(dev.blocks.empty());
}

TEST(CudaAllocator, NoCacheModeCallsTheRawFunctionsEveryTimeWithExactSizes) {
    FakeDevice dev;
    CachingAllocator alloc = dev.make(/*caching=*/false);
    EXPECT_FALSE(alloc.caching());
    void* a = alloc.allocate(1000);
    EXPECT_EQ(dev.requested.back(), 1000u);  // not rounded: sanitizers see the real extent
    EXPECT_EQ(alloc.stats().allocated_bytes, 1000u);
    alloc.deallocate(a);
    EXPECT_EQ(dev.frees, 1);
    EXPECT_TRUE(dev.blocks.empty());
    void* b = alloc.allocate(1000);
    EXPECT_EQ(dev.mallocs, 2);
    EXPECT_EQ(alloc.stats().cached_bytes, 0u);
    EXPECT_EQ(alloc.stats().num_raw_allocs, 2u);
    alloc.deallocate(b);
}

TEST(CudaAllocator, EnvironmentSwitchDisablesCaching) {
    const char* old = std::getenv("RANKCLIP_CUDA_NO_CACHE");
    std::string saved = old ? old : "";
    unsetenv("RANKCLIP_CUDA_NO_CACHE");
    EXPECT_TRUE(CachingAllocator::caching_from_env("RANKCLIP_CUDA_NO_CACHE"));
    setenv("RANKCLIP_CUDA_NO_CACHE", "1", 1);
    EXPECT_FALSE(CachingAllocator::caching_from_env("RANKCLIP_CUDA_NO_CACHE"));
    setenv("RANKCLIP_CUDA_NO_CACHE", "0", 1);
    EXPECT_TRUE(CachingAllocator::caching_from_env("RANKCLIP_CUDA_NO_CACHE"));
    if (old) setenv("RANKCLIP_CUDA_NO_CACHE", saved.c_str(), 1);
    else unsetenv("RANKCLIP_CUDA_NO_CACHE");
}

TEST(CudaAllocator, OutOfMemoryReleasesTheCacheAndRetriesOnce) {
    FakeDevice dev;
    dev.budget = 10 * MiB;
    CachingAllocator alloc = dev.make();
    void* a = alloc.allocate(3 * MiB);  // 4 MiB block
    void* b = alloc.allocate(3 * MiB);  // 4 MiB block: the budget is full
    alloc.deallocate(a);                // cached, still held from the fake device
    void* c = alloc.allocate(6 * MiB);  // 6 MiB: fails, cache released, retry succeeds
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(dev.frees, 1);
    EXPECT_EQ(alloc.stats().cached_bytes, 0u);
    EXPECT_EQ(alloc.stats().allocated_bytes, 10 * MiB);
    // A second failure is an error naming the request and the state of the allocator.
    try {
        alloc.allocate(20 * MiB);
        FAIL() << "expected an out-of-memory error";
    } catch (const Error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("out of memory"), std::string::npos) << msg;
        EXPECT_NE(msg.find(std::to_string(20 * MiB)), std::string::npos) << msg;
        EXPECT_NE(msg.find("allocated " + std::to_string(10 * MiB)), std::string::npos) << msg;
    }
    EXPECT_EQ(alloc.stats().num_allocs, 3u);  // the failed call handed nothing out
    alloc.deallocate(b);
    alloc.deallocate(c);
}

TEST(CudaAllocator, RejectsForeignPointersAndDoubleFrees) {
    FakeDevice dev;
    CachingAllocator alloc = dev.make();
    int on_stack = 0;
    EXPECT_THROW(alloc.deallocate(&on_stack), Error);
    void* a = alloc.allocate(64);
    EXPECT_TRUE(alloc.owns(a));
    alloc.deallocate(a);
    EXPECT_FALSE(alloc.owns(a));
    EXPECT_THROW(alloc.deallocate(a), Error);
    alloc.deallocate(nullptr);  // a no-op, like free(nullptr)
}

TEST(CudaAllocator, IsSafeToUseFromManyThreads) {
    FakeDevice dev;
    std::mutex dev_mutex;  // the fake device itself is not thread-safe
    CachingAllocator alloc(
        [&](size_t n) {
            std::lock_guard<std::mutex> lock(dev_mutex);
            return dev.malloc(n);
        },
        [&](void* p) {
            std::lock_guard<std::mutex> lock(dev_mutex);
            dev.free(p);
        },
        true, "fake");
    const int threads = 8, rounds = 2000;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; t++) {
        pool.emplace_back([&, t] {
            std::vector<void*> held;
            for (int r = 0; r < rounds; r++) {
                held.push_back(alloc.allocate(size_t(1 + (r * 37 + t) % 5) * 700));
                if (held.size() > 4) {
                    alloc.deallocate(held.front());
                    held.erase(held.begin());
                }
            }
            for (void* p : held) alloc.deallocate(p);
        });
    }
    for (auto& th : pool) th.join();
    AllocatorStats s = alloc.stats();
    EXPECT_EQ(s.allocated_bytes, 0u);
    EXPECT_EQ(s.num_allocs, uint64_t(threads) * rounds);
    EXPECT_EQ(s.cached_bytes, dev.in_use);  // everything the device holds is in the cache
    EXPECT_LE(s.num_raw_allocs, uint64_t(threads) * 5 * 5);  // reuse, not one malloc per round
}

#ifdef RANKCLIP_CUDA

TEST(CudaAllocator, DeviceAllocatorReusesRealDeviceMemory) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device on this machine";
    CachingAllocator& alloc = cuda_allocator(0);
    if (!alloc.caching()) GTEST_SKIP() << "RANKCLIP_CUDA_NO_CACHE is set";
    AllocatorStats before = alloc.stats();
    void* a = alloc.allocate(12345);
    alloc.deallocate(a);
    void* b = alloc.allocate(12500);  // same 12800-byte bucket
    EXPECT_EQ(a, b);
    AllocatorStats after = alloc.stats();
    EXPECT_LE(after.num_raw_allocs, before.num_raw_allocs + 1);
    alloc.deallocate(b);
    alloc.empty_cache();
    EXPECT_EQ(alloc.stats().cached_bytes, 0u);
    // A request far beyond the device's memory fails with an Error, not a crash.
    EXPECT_THROW(alloc.allocate(size_t(1) << 50), Error);
}

TEST(CudaAllocator, PinnedBufferIsWritableHostMemory) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device on this machine";
    PinnedBuffer buf(1 << 20);
    ASSERT_NE(buf.data(), nullptr);
    EXPECT_EQ(buf.size(), size_t(1) << 20);
    auto* bytes = static_cast<unsigned char*>(buf.data());
    for (size_t i = 0; i < buf.size(); i++) bytes[i] = static_cast<unsigned char>(i * 7);
    PinnedBuffer moved = std::move(buf);
    EXPECT_EQ(buf.data(), nullptr);
    EXPECT_EQ(static_cast<unsigned char*>(moved.data())[1000], static_cast<unsigned char>(7000));
}

#endif  // RANKCLIP_CUDA

}  // namespace
}  // namespace rankclip
