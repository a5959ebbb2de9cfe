// tests/test_backend_registry.cpp
// Tests the backend registry (engine/backend.h): a backend other than the CPU's is found only
// when registered and when it sees a device, and autocast asks it whether bf16 runs there. A
// stand-in backend takes the CUDA slot for the test; the slot's previous holder comes back after.
#include "engine/autocast.h"
#include "engine/backend.h"
#include "tests/test_util.h"
#ifdef RANKCLIP_CUDA
#include "cuda/cuda_backend.h"
#endif

using namespace rankclip;
using namespace rankclip::test;

namespace {

struct StandInBackend : Backend {
    int count = 0;
    const char* name() const override { return "stand-in"; }
    void* allocate(size_t) override { return nullptr; }
    void deallocate(void*, size_t) override {}
    int device_count() const override { return count; }
    bool supports_bf16(int index, std::string* why) const override {
        if (why) *why = str_cat("stand-in:", index, " has no bf16");
        return false;
    }
};

// Registers `b` in the CUDA slot; puts back what a build has there (the CUDA backend, or nothing).
struct CudaSlotGuard {
    explicit CudaSlotGuard(Backend* b) { register_backend(DeviceType::CUDA, b); }
    ~CudaSlotGuard() {
#ifdef RANKCLIP_CUDA
        register_backend(DeviceType::CUDA, cuda_backend());
#else
        register_backend(DeviceType::CUDA, nullptr);
#endif
    }
};

}  // namespace

TEST(BackendRegistry, CpuIsAlwaysThere) {
    EXPECT_TRUE(has_backend(DeviceType::CPU));
    EXPECT_STREQ(backend_for(Device::cpu()).name(), "cpu");
    EXPECT_EQ(backend_for(Device::cpu()).device_count(), 1);
    std::string why;
    EXPECT_TRUE(backend_for(Device::cpu()).supports_bf16(0, &why));
}

TEST(BackendRegistry, CudaAsTheBuildAndMachineHaveIt) {
#ifdef RANKCLIP_CUDA
    // registered at start-up (cuda/device.cpp); present exactly when the runtime sees a GPU
    EXPECT_EQ(has_backend(DeviceType::CUDA), cuda_available());
    if (!cuda_available())
        EXPECT_NE(error_of([] { backend_for(Device::cuda()); }).find("no cuda device is available"),
                  std::string::npos);
#else
    EXPECT_FALSE(has_backend(DeviceType::CUDA));
    EXPECT_NE(error_of([] { backend_for(Device::cuda()); }).find("this build has no backend"),
              std::string::npos);
#endif
}

TEST(BackendRegistry, RegisteredBackendIsAskedWhatTheMachineHas) {
    StandInBackend stand_in;
    CudaSlotGuard guard(&stand_in);
    // registered, but no device: as if absent
    EXPECT_FALSE(has_backend(DeviceType::CUDA));
    EXPECT_NE(error_of([] { backend_for(Device::cuda()); }).find("cuda:0: no stand-in device is available"),
              std::string::npos);
    stand_in.count = 1;
    EXPECT_TRUE(has_backend(DeviceType::CUDA));
    EXPECT_EQ(&backend_for(Device::cuda()), &stand_in);
    // autocast refuses with the backend's reason, and stays off; a disabled guard asks nothing
    EXPECT_NE(error_of([] { AutocastGuard on(Device::cuda()); }).find("autocast: stand-in:0 has no bf16"),
              std::string::npos);
    EXPECT_FALSE(autocast_enabled());
    AutocastGuard off(Device::cuda(), false);
    EXPECT_FALSE(autocast_enabled());
}
