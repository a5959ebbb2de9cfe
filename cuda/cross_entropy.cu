// cuda/cross_entropy.cu
// defines: CudaBackend::cross_entropy (per-row loss = logsumexp(logits) - logits[target], the
// row logsumexp saved in Acc precision) and cross_entropy_backward, the fused
// glogits = grad_loss * (softmax(logits) - onehot(target)) computed from the saved logsumexp.
// Rows whose target is ignore_index get loss 0 and gradient 0. Targets are I64 or I32.
//
// Forward: one warp per row when C <= 1024, else one 512-thread block per row; one read of the
// row (online max / sum-of-exp). A target out of range is an Error, as on the CPU: the kernel
// records the first bad row in a device word, and the host reads it back after the launch (one
// small copy and a stream synchronisation per call).
// Backward: one block per row (grid-stride over rows), one read of the row, one write.
#include <algorithm>
#include <climits>

#include "cuda/cuda_backend.h"
#include "cuda/fused_common.cuh"

namespace rankclip {

namespace {

using namespace fused;

constexpr int64_t kWarpRowLimit = 1024;
constexpr int kBlockRowThreads = 512;
constexpr unsigned long long kNoBadRow = ULLONG_MAX;

// logits: (N, C), target: (N) -> losses: (N), lse: (N). bad_row: min of the rows whose target
// is neither ignore_index nor in [0, C) (their loss is NaN); left at kNoBadRow if none.
template <typename T, typename I, int kThreads>
__global__ void cross_entropy_forward_kernel(const T* __restrict__ logits, const I* __restrict__ target,
                                             T* __restrict__ losses, Acc<T>* __restrict__ lse, int64_t N,
                                             int64_t C, int64_t ignore_index, unsigned long long* bad_row) {
    using A = Acc<T>;
    __shared__ A shared_m[kThreads > 32 ? kThreads / 32 : 1], shared_s[kThreads > 32 ? kThreads / 32 : 1];
    int64_t row;
    int tid;
    group_row_position<kThreads>(row, tid);
    if (row >= N) return;
    const T* xr = logits + row * C;
    A m = neg_inf<A>(), s = A(0);
    for (int64_t c = tid; c < C; c += kThreads) online_add(m, s, A(load(xr + c)));
    group_online_merge<kThreads>(m, s, shared_m, shared_s);
    if (tid == 0) {
        A row_lse = m + acc_log(s);
        lse[row] = row_lse;
        int64_t t = int64_t(target[row]);
        A loss;
        if (t == ignore_index) {
            loss = A(0);
        } else if (t < 0 || t >= C) {
            loss = A(NAN);
            atomicMin(bad_row, (unsigned long long)row);
        } else {
            loss = row_lse - A(load(xr + t));
        }
        store(losses + row, loss);
    }
}

// forward: loss = lse(x) - x[t]  =>  gx = g * (softmax(x) - onehot(t)), softmax(x) = exp(x - lse)
template <typename T, typename I>
__global__ void cross_entropy_backward_kernel(const T* __restrict__ logits, const I* __restrict__ target,
                                              const Acc<T>* __restrict__ lse, const T* __restrict__ grad_losses,
                                              T* __restrict__ glogits, int64_t N, int64_t C, int64_t ignore_index) {
    using A = Acc<T>;
    for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
        int64_t t = int64_t(target[row]);
        const T* xr = logits + row * C;
        T* gr = glogits + row * C;
        if (t == ignore_index) {
            for (int64_t c = threadIdx.x; c < C; c += blockDim.x) store(gr + c, A(0));
            continue;
        }
        A g = A(load(grad_losses + row)), row_lse = lse[row];
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
            A p = acc_exp(A(load(xr + c)) - row_lse);
            store(gr + c, g * (p - A(c == t ? 1 : 0)));
        }
    }
}

template <typename T, typename I>
void cross_entropy_forward_launch(const T* logits, const I* target, T* losses, Acc<T>* lse, int64_t N,
                                  int64_t C, int64_t ignore_index, int device) {
    cudaStream_t stream = cuda_stream(device);
    DeviceScratch flag(cuda_context(device), sizeof(unsigned long long));
    auto* bad_row = flag.as<unsigned long long>();
    RC_CUDA_CHECK(cudaMemsetAsync(bad_row, 0xff, sizeof(unsigned long long), stream));  // kNoBadRow
    if (C <= kWarpRowLimit)
        cross_entropy_forward_kernel<T, I, 32><<<unsigned((N + 3) / 4), 128, 0, stream>>>(
            logits, target, losses, lse, N, C, ignore_index, bad_row);
    else
        cross_entropy_forward_kernel<T, I, kBlockRowThreads><<<unsigned(N), kBlockRowThreads, 0, stream>>>(
            logits, target, losses, lse, N, C, ignore_index, bad_row);
    RC_CUDA_CHECK_LAUNCH("cross_entropy_forward_kernel");
    unsigned long long first_bad = kNoBadRow;
    RC_CUDA_CHECK(cudaMemcpyAsync(&first_bad, bad_row, sizeof first_bad, cudaMemcpyDeviceToHost, stream));
    RC_CUDA_CHECK(cudaStreamSynchronize(stream));
    if (first_bad != kNoBadRow) {
        I t = 0;
        RC_CUDA_CHECK(cudaMemcpy(&t, target + first_bad, sizeof(I), cudaMemcpyDeviceToHost));
        throw Error(str_cat("cross_entropy: target ", int64_t(t), " at row ", first_bad,
                            " is out of range for ", C, " classes"));
    }
}

template <typename T, typename I>
void cross_entropy_backward_launch(const T* logits, const I* target, const Acc<T>* lse, const T* grad_losses,
                                   T* glogits, int64_t N, int64_t C, int64_t ignore_index, int device) {
    CudaContext& ctx = cuda_context(device);
    int threads = int(std::min<int64_t>(256, (C + 31) / 32 * 32));
    int64_t blocks = std::min<int64_t>(N, int64_t(ctx.num_sms) * (2048 / threads));
    cross_entropy_backward_kernel<T, I><<<unsigned(blocks), threads, 0, ctx.stream>>>(
        logits, target, lse, grad_losses, glogits, N, C, ignore_index);
    RC_CUDA_CHECK_LAUNCH("cross_entropy_backward_kernel");
}

}  // namespace

void CudaBackend::cross_entropy(const Tensor& logits, const Tensor& target, Tensor& losses, Tensor& lse,
                                int64_t ignore_index) {
    int64_t N, C;
    rows_of(logits, N, C);
    if (N == 0) return;
    RC_CHECK(target.dtype() == DType::I64 || target.dtype() == DType::I32,
             "cross_entropy: target must be I64 or I32, got ", target.str());
    RC_CHECK(C > 0, "cross_entropy: logits ", logits.str(), " have no classes");
    int device = logits.device().index;
    RC_GPU_FLOAT_TYPES(logits.dtype(), "cross_entropy", logits, {
        using A = Acc<T>;
        const T* xs = static_cast<const T*>(logits.raw_data());
        T* ls = static_cast<T*>(losses.raw_data());
        A* lses = static_cast<A*>(lse.raw_data());
        if (target.dtype() == DType::I64)
            cross_entropy_forward_launch<T>(xs, static_cast<const int64_t*>(target.raw_data()), ls, lses, N, C,
                                            ignore_index, device);
        else
            cross_entropy_forward_launch<T>(xs, static_cast<const int32_t*>(target.raw_data()), ls, lses, N, C,
                                            ignore_index, device);
    });
}

void CudaBackend::cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& lse,
                                         const Tensor& grad_losses, Tensor& glogits, int64_t ignore_index) {
    int64_t N, C;
    rows_of(logits, N, C);
    if (N == 0 || C == 0) return;
    RC_CHECK(target.dtype() == DType::I64 || target.dtype() == DType::I32,
             "cross_entropy_backward: target must be I64 or I32, got ", target.str());
    int device = logits.device().index;
    RC_GPU_FLOAT_TYPES(logits.dtype(), "cross_entropy_backward", logits, {
        using A = Acc<T>;
        const T* xs = static_cast<const T*>(logits.raw_data());
        const A* lses = static_cast<const A*>(lse.raw_data());
        const T* gl = static_cast<const T*>(grad_losses.raw_data());
        T* gx = static_cast<T*>(glogits.raw_data());
        if (target.dtype() == DType::I64)
            cross_entropy_backward_launch<T>(xs, static_cast<const int64_t*>(target.raw_data()), lses, gl, gx, N,
                                             C, ignore_index, device);
        else
            cross_entropy_backward_launch<T>(xs, static_cast<const int32_t*>(target.raw_data()), lses, gl, gx, N,
                                             C, ignore_index, device);
    });
}

}  // namespace rankclip
