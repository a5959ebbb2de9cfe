// cuda/device.cpp
// defines: cuda_device_count / cuda_available (0 devices on any CUDA error, e.g. no driver),
// cuda_backend() (the one CudaBackend) and its registration with the engine at start-up, and the
// per-device contexts of cuda/device.h (stream, allocator, cuBLAS and cuBLASLt handles + workspace).
#include <array>
#include <atomic>
#include <mutex>
#include <string>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/device.h"

namespace rankclip {

int cuda_device_count() {
    // Asked once: the answer does not change while the process runs, and a machine without a
    // driver answers with an error (cudaErrorInsufficientDriver, cudaErrorNoDevice, ...) that
    // means "no GPU" here. cudaGetLastError() clears it so later CUDA calls do not see it.
    static const int count = [] {
        int n = 0;
        cudaError_t err = cudaGetDeviceCount(&n);
        if (err != cudaSuccess) {
            cudaGetLastError();
            return 0;
        }
        return n;
    }();
    return count;
}

bool cuda_available() { return cuda_device_count() > 0; }

int CudaBackend::device_count() const { return cuda_device_count(); }

Backend* cuda_backend() {
    // Created once and never destroyed: tensors freed during static destruction still need it.
    static Backend* backend = new CudaBackend();
    return backend;
}

namespace {

constexpr int kMaxDevices = 64;
constexpr size_t kCublasWorkspaceBytes = size_t(32) << 20;  // what cuBLAS asks for on Hopper

std::array<std::atomic<CudaContext*>, kMaxDevices> g_contexts{};
std::mutex g_contexts_mutex;

// The calling thread's current device as far as this file set it (-1: not set yet).
thread_local int t_current_device = -1;

void make_current(int device) {
    if (t_current_device != device) {
        RC_CUDA_CHECK(cudaSetDevice(device));
        t_current_device = device;
    }
}

CudaContext* create_context(int device) {
    std::lock_guard<std::mutex> lock(g_contexts_mutex);
    if (CudaContext* ctx = g_contexts[device].load()) return ctx;
    auto* ctx = new CudaContext();  // lives for the whole process
    ctx->device = device;
    RC_CUDA_CHECK(cudaStreamCreate(&ctx->stream));
    RC_CUDA_CHECK(cudaDeviceGetAttribute(&ctx->num_sms, cudaDevAttrMultiProcessorCount, device));
    ctx->allocator = &cuda_allocator(device);
    RC_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&ctx->error_flags), sizeof(unsigned),
                                cudaHostAllocMapped));
    *ctx->error_flags = 0;
    g_contexts[device].store(ctx);
    return ctx;
}

}  // namespace

CudaContext& cuda_context(int device) {
    int count = cuda_device_count();
    RC_CHECK(device >= 0 && device < count && device < kMaxDevices, "cuda: device cuda:", device,
             " does not exist (", count, " CUDA devices visible)");
    make_current(device);
    CudaContext* ctx = g_contexts[device].load(std::memory_order_acquire);
    if (ctx == nullptr) ctx = create_context(device);
    return *ctx;
}

int cuda_current_device() {
    if (t_current_device < 0) {
        int device = 0;
        RC_CUDA_CHECK(cudaGetDevice(&device));
        t_current_device = device;
    }
    return t_current_device;
}

cublasHandle_t cuda_cublas(int device) {
    CudaContext& ctx = cuda_context(device);
    std::lock_guard<std::mutex> lock(g_contexts_mutex);  // cheap next to a GEMM
    if (ctx.cublas == nullptr) {
        cublasHandle_t handle = nullptr;
        RC_CUBLAS_CHECK(cublasCreate(&handle));
        // cublasSetStream resets the workspace to the default pool, so the workspace comes after.
        RC_CUBLAS_CHECK(cublasSetStream(handle, ctx.stream));
        RC_CUDA_CHECK(cudaMalloc(&ctx.cublas_workspace, kCublasWorkspaceBytes));
        ctx.cublas_workspace_bytes = kCublasWorkspaceBytes;
        RC_CUBLAS_CHECK(cublasSetWorkspace(handle, ctx.cublas_workspace, kCublasWorkspaceBytes));
        // Default math: no TF32 unless asked for per call (cuda/matmul.cu picks the compute type).
        RC_CUBLAS_CHECK(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH));
        ctx.cublas = handle;
    }
    return ctx.cublas;
}

cublasLtHandle_t cuda_cublaslt(int device) {
    CudaContext& ctx = cuda_context(device);
    cuda_cublas(device);  // the shared workspace
    std::lock_guard<std::mutex> lock(g_contexts_mutex);
    if (ctx.cublaslt == nullptr) {
        cublasLtHandle_t handle = nullptr;
        RC_CUBLAS_CHECK(cublasLtCreate(&handle));
        ctx.cublaslt = handle;
    }
    return ctx.cublaslt;
}

void cuda_synchronize_all() {
    for (int d = 0; d < kMaxDevices; d++) {
        if (CudaContext* ctx = g_contexts[d].load()) {
            make_current(d);
            RC_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
            cuda_check_kernel_errors(*ctx);
        }
    }
}

void cuda_check_kernel_errors(CudaContext& ctx) {
    volatile unsigned* flags = ctx.error_flags;
    unsigned bits = *flags;
    if (bits == 0) return;
    *flags = 0;
    std::string ops;
    auto add = [&](unsigned bit, const char* name) {
        if (bits & bit) ops += ops.empty() ? name : std::string(", ") + name;
    };
    add(kBadIndexSelect, "index_select");
    add(kBadIndexAdd, "index_add");
    add(kBadGather, "gather");
    add(kBadScatterAdd, "scatter_add");
    throw Error(str_cat("cuda:", ctx.device, ": an index was out of range in ", ops,
                        " (found by the kernel; reported at the next synchronization). The out-of-"
                        "range entries were skipped, the results of those ops are wrong"));
}

}  // namespace rankclip

// Registration. The engine knows no backend but the CPU's (engine/backend.h): this initialiser
// hands it the CUDA one before main. It stores a pointer and makes no CUDA call, so the driver is
// first asked when something asks about CUDA (has_backend -> cuda_device_count) and a device's
// context is created only when that device is used; without a GPU the program runs as a CPU-only
// build does.
// Kept in the link on purpose: this object sits in a static library (librankclip.a), and the
// linker takes an archive member only when something references it. Nothing does (the engine
// reaches the backend through the registry), so the initialiser would be dropped with the object.
// The Makefile therefore links every program with
//     -Wl,--undefined=rankclip_cuda_backend_registered
// (tools/gpu-check.sh's shell build too), which pulls in this object and its initialiser. Unlike
// --whole-archive it takes nothing else; unlike a register call in each main() it cannot be
// forgotten by a new program, and neither the mains nor the engine need to know about CUDA.
extern "C" const bool rankclip_cuda_backend_registered = [] {
    rankclip::register_backend(rankclip::DeviceType::CUDA, rankclip::cuda_backend());
    return true;
}();
