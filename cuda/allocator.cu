// cuda/allocator.cu
// defines: the binding of CachingAllocator (cuda/allocator.h) to cudaMalloc/cudaFree, one
// allocator per device; the pinned host allocator (CachingAllocator over cudaHostAlloc /
// cudaFreeHost); and PinnedBuffer over cudaMallocHost/cudaFreeHost.
#include <array>
#include <memory>
#include <mutex>

#include "cuda/allocator.h"
#include "cuda/cuda_check.h"

namespace rankclip {

namespace {

// Runs `fn` with `device` current, restoring the previous device afterwards.
template <typename Fn>
auto on_device(int device, Fn fn) {
    int previous = 0;
    RC_CUDA_CHECK(cudaGetDevice(&previous));
    if (previous != device) RC_CUDA_CHECK(cudaSetDevice(device));
    struct Restore {
        int previous, device;
        ~Restore() {
            if (previous != device) cudaSetDevice(previous);
        }
    } restore{previous, device};
    return fn();
}

void* device_malloc(int device, size_t nbytes) {
    return on_device(device, [&]() -> void* {
        void* ptr = nullptr;
        cudaError_t err = cudaMalloc(&ptr, nbytes);
        if (err == cudaErrorMemoryAllocation) {
            cudaGetLastError();  // not sticky: clear it, the allocator frees its cache and retries
            return nullptr;
        }
        RC_CUDA_CHECK(err);
        return ptr;
    });
}

// Never throws: it runs from tensor destructors, also after a kernel fault left the context
// unusable or while the runtime shuts down at exit, when the memory is lost anyway.
void device_free(int device, void* ptr) noexcept {
    int previous = 0;
    if (cudaGetDevice(&previous) != cudaSuccess) previous = device;
    if (previous != device) cudaSetDevice(device);
    if (cudaFree(ptr) != cudaSuccess) cudaGetLastError();
    if (previous != device) cudaSetDevice(previous);
}

constexpr int kMaxDevices = 64;

}  // namespace

CachingAllocator& cuda_allocator(int device) {
    RC_CHECK(device >= 0 && device < kMaxDevices, "cuda allocator: bad device index ", device);
    // Never destroyed: blocks may be freed during static destruction, after the CUDA runtime
    // has started to shut down; leaking the cache at exit is harmless.
    static std::array<CachingAllocator*, kMaxDevices> allocators{};
    static std::mutex mutex;
    std::lock_guard<std::mutex> lock(mutex);
    if (allocators[device] == nullptr) {
        allocators[device] = new CachingAllocator(
            [device](size_t n) { return device_malloc(device, n); },
            [device](void* p) { device_free(device, p); }, CachingAllocator::caching_from_env("RANKCLIP_CUDA_NO_CACHE"),
            "cuda:" + std::to_string(device));
    }
    return *allocators[device];
}

CachingAllocator& pinned_host_allocator() {
    // Never destroyed, like the device allocators: pinned tensors may die during static
    // destruction, after the CUDA runtime has begun to shut down.
    static CachingAllocator* allocator = new CachingAllocator(
        [](size_t n) -> void* {
            void* ptr = nullptr;
            cudaError_t err = cudaHostAlloc(&ptr, n, cudaHostAllocPortable);
            if (err == cudaErrorMemoryAllocation) {
                cudaGetLastError();  // not sticky: the allocator frees its cache and retries
                return nullptr;
            }
            RC_CUDA_CHECK(err);
            return ptr;
        },
        [](void* p) {
            if (cudaFreeHost(p) != cudaSuccess) cudaGetLastError();  // never throws (destructors)
        },
        CachingAllocator::caching_from_env("RANKCLIP_CUDA_NO_CACHE"), "cuda pinned host");
    return *allocator;
}

PinnedBuffer::PinnedBuffer(size_t nbytes) : nbytes_(nbytes) {
    if (nbytes == 0) return;
    cudaError_t err = cudaMallocHost(&data_, nbytes);
    if (err != cudaSuccess) {
        cudaGetLastError();
        data_ = nullptr;
        nbytes_ = 0;
        throw Error(str_cat("PinnedBuffer: cudaMallocHost of ", nbytes, " bytes failed: ",
                            cudaGetErrorString(err)));
    }
}

PinnedBuffer::~PinnedBuffer() {
    if (data_ != nullptr) cudaFreeHost(data_);  // no throwing from a destructor
}

}  // namespace rankclip
