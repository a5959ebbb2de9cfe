// tests/test_pinned.cpp
// Tests pinned host memory: empty_pinned (engine/tensor.h) gives an ordinary, usable CPU tensor,
// plain memory without a GPU (never an error) and page-locked memory from the CUDA backend's
// pinned_host_allocator (cuda/allocator.h) with one; pinned tensors allocated and freed from many
// threads (as the loader's workers do); and, on a GPU (suite CudaPinned, skipped without one), a
// pinned tensor of every dtype copied to the device and back bit for bit, freed blocks reused by
// the pinned cache, and pin_memory loader batches moved to the device unchanged.
// The loader's own pin_memory test (identical batches either way) is in tests/test_loader.cpp.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "data/loader.h"
#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "tests/cuda_test_util.h"
#include "tests/test_util.h"
#ifdef RANKCLIP_CUDA
#include "cuda/allocator.h"
#endif

using namespace rankclip;

namespace {

// Raw bytes of a contiguous CPU tensor.
std::vector<uint8_t> bytes_of(const Tensor& t) {
    Tensor c = t.contiguous();
    const size_t n = size_t(c.numel()) * dtype_size(c.dtype());
    std::vector<uint8_t> out(n);
    if (n) std::memcpy(out.data(), c.raw_data(), n);
    return out;
}

// Fills a contiguous CPU tensor with random bits (NaN payloads, denormals and all for floats).
void fill_random_bits(Tensor& t, uint64_t seed) {
    Generator gen(seed);
    uint8_t* p = static_cast<uint8_t*>(t.raw_data());
    const size_t n = size_t(t.numel()) * dtype_size(t.dtype());
    for (size_t i = 0; i < n; i += 4) {
        uint32_t w = gen.random();
        std::memcpy(p + i, &w, std::min<size_t>(4, n - i));
    }
}

// Whether empty_pinned should give page-locked memory here: a CUDA build on a machine with a GPU.
bool expect_pinned() { return has_backend(DeviceType::CUDA); }

}  // namespace

TEST(Pinned, EmptyPinnedIsAnOrdinaryCpuTensor) {
    for (DType dt : {DType::F32, DType::F64, DType::BF16, DType::I32, DType::I64}) {
        SCOPED_TRACE(dtype_name(dt));
        Tensor t = empty_pinned({5, 7}, dt);
        EXPECT_TRUE(t.device().is_cpu());
        EXPECT_EQ(t.shape(), (Shape{5, 7}));
        EXPECT_EQ(t.dtype(), dt);
        EXPECT_TRUE(t.is_contiguous());
        // page-locked with a GPU; plain (64-byte aligned) CPU memory without one, not an error
        EXPECT_EQ(is_pinned(t), expect_pinned());
        EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 64, 0u);
        // usable like any CPU tensor: fill, arithmetic, copies, views sharing the storage
        t.fill_(3.0);
        EXPECT_EQ(sum(t.to(DType::F64)).item(), 3.0 * 35);
        Tensor u = t.to(DType::F32) * 2.0;
        EXPECT_EQ(u.to_vector<float>(), std::vector<float>(35, 6.0f));
        Tensor row = t.select(0, 2);
        row.fill_(1.0);
        EXPECT_EQ(t.to_vector<double>()[2 * 7 + 3], 1.0);
        Tensor c = t.clone();
        EXPECT_FALSE(is_pinned(c));   // a copy is ordinary memory
        EXPECT_EQ(bytes_of(c), bytes_of(t));
    }
    // empty shapes have no memory at all
    Tensor none = empty_pinned({0, 4}, DType::F32);
    EXPECT_EQ(none.numel(), 0);
    EXPECT_FALSE(is_pinned(none));
    EXPECT_FALSE(is_pinned(Tensor()));
    EXPECT_FALSE(is_pinned(empty({2}, DType::F32)));
}

TEST(Pinned, AllocatedAndFreedFromManyThreads) {
    // The loader's workers allocate batches while the consumer frees earlier ones.
    std::vector<std::thread> threads;
    std::vector<int> bad(6, 0);
    for (int w = 0; w < 6; w++) {
        threads.emplace_back([w, &bad] {
            for (int k = 0; k < 40; k++) {
                Tensor t = empty_pinned({int64_t(1 + (k * 37 + w) % 300), 17}, DType::I64);
                int64_t* p = t.data<int64_t>();
                for (int64_t i = 0; i < t.numel(); i++) p[i] = w * 1000003 + k * 7 + i;
                for (int64_t i = 0; i < t.numel(); i++) bad[w] += p[i] != w * 1000003 + k * 7 + i;
                bad[w] += is_pinned(t) != expect_pinned();
            }
        });
    }
    for (auto& t : threads) t.join();
    for (int w = 0; w < 6; w++) EXPECT_EQ(bad[w], 0) << "thread " << w;
}

// ---- on a GPU ----

#define SKIP_WITHOUT_CUDA()                                   \
    do {                                                      \
        std::string reason_ = rankclip::test::no_cuda_reason(); \
        if (!reason_.empty()) GTEST_SKIP() << reason_;        \
    } while (0)

namespace {
Device device_under_test() {
    return rankclip::test::cpu_stands_in_for_cuda() ? Device::cpu() : Device::cuda(0);
}
}  // namespace

TEST(CudaPinned, RoundTripToTheDeviceIsBitExact) {
    SKIP_WITHOUT_CUDA();
    const Device dev = device_under_test();
    uint64_t seed = 1;
    for (DType dt : {DType::F32, DType::F64, DType::BF16, DType::I32, DType::I64}) {
        for (Shape shape : {Shape{1}, Shape{257, 33}, Shape{3, 1, 4097}}) {   // odd byte counts
            SCOPED_TRACE(std::string(dtype_name(dt)) + " " + shape_str(shape));
            Tensor host = empty_pinned(shape, dt);
            EXPECT_EQ(is_pinned(host), expect_pinned());
#ifdef RANKCLIP_CUDA
            if (dev.is_cuda()) EXPECT_TRUE(pinned_host_allocator().owns(host.raw_data()));
#endif
            fill_random_bits(host, seed++);
            Tensor on_dev = host.to(dev);
            EXPECT_EQ(on_dev.device(), dev);
            Tensor back = on_dev.to(Device::cpu());
            EXPECT_EQ(bytes_of(back), bytes_of(host)) << "host -> device -> host changed bits";
            // into another pinned tensor, through copy_
            Tensor into = empty_pinned(shape, dt);
            into.copy_(on_dev);
            EXPECT_EQ(bytes_of(into), bytes_of(host));
            // a strided view of pinned memory goes through a contiguous copy first
            if (shape.size() == 2) {
                Tensor tv = host.t().to(dev).to(Device::cpu());
                EXPECT_EQ(bytes_of(tv), bytes_of(host.t()));
            }
        }
    }
}

TEST(CudaPinned, FreedBlocksAreReusedByThePinnedCache) {
    std::string reason = rankclip::test::no_real_cuda_reason();
    if (!reason.empty()) GTEST_SKIP() << reason;
#ifdef RANKCLIP_CUDA
    CachingAllocator& pinned = pinned_host_allocator();
    const Shape shape{64, 3, 32, 32};   // 768 KiB of F32, a small batch
    { Tensor warm = empty_pinned(shape, DType::F32); }
    AllocatorStats before = pinned.stats();
    for (int k = 0; k < 5; k++) {
        Tensor t = empty_pinned(shape, DType::F32);
        ASSERT_TRUE(is_pinned(t));
        t.fill_(double(k));
        EXPECT_EQ(t.to(Device::cuda(0)).to(Device::cpu()).to_vector<float>()[12345], float(k));
    }
    AllocatorStats after = pinned.stats();
    EXPECT_EQ(after.num_allocs - before.num_allocs, 5u);
    if (pinned.caching()) {
        EXPECT_EQ(after.num_raw_allocs, before.num_raw_allocs) << "the same size should come from the cache";
    } else {   // RANKCLIP_CUDA_NO_CACHE=1: every block straight from and back to the driver
        EXPECT_EQ(after.num_raw_frees - before.num_raw_frees, 5u);
    }
    EXPECT_EQ(after.allocated_bytes, before.allocated_bytes);
#endif
}

TEST(CudaPinned, PinnedLoaderBatchesCopyToTheDeviceUnchanged) {
    SKIP_WITHOUT_CUDA();
    const Device dev = device_under_test();
    struct Squares : Dataset {
        size_t size() const override { return 10; }
        Sample get(size_t i) const override {
            Sample s;
            s.image.width = 9 + int(i);
            s.image.height = 8;
            s.image.rgb.resize(size_t(s.image.width) * 8 * 3);
            for (size_t k = 0; k < s.image.rgb.size(); k++) s.image.rgb[k] = uint8_t(k * 7 + i * 13);
            s.label = int64_t(i);
            return s;
        }
        std::string describe() const override { return "squares"; }
    } data;
    LoaderOptions opt;
    opt.batch_size = 4;
    opt.image_size = 8;
    opt.num_workers = 2;
    opt.pin_memory = true;
    DataLoader dl(data, opt);
    Batch b;
    int batches = 0;
    while (dl.next(b)) {
        EXPECT_EQ(is_pinned(b.images), expect_pinned());
        EXPECT_EQ(is_pinned(b.labels), expect_pinned());
        EXPECT_EQ(bytes_of(b.images.to(dev).to(Device::cpu())), bytes_of(b.images));
        EXPECT_EQ(b.labels.to(dev).to(Device::cpu()).to_vector<int64_t>(), b.indices);
        batches++;
    }
    EXPECT_EQ(batches, 2);
}
