// dist/gradients.cpp
// defines: all_reduce_gradients (dist/gradients.h).
#include "dist/gradients.h"

#include "dist/comm.h"
#include "engine/autograd.h"
#include "engine/ops.h"

namespace rankclip::dist {

void all_reduce_gradients(const std::vector<Tensor>& parameters, int64_t bucket_bytes) {
    if (world_size() == 1) return;
    NoGradGuard no_grad;
    std::vector<Tensor> bucket;  // gradients of one dtype and device, their bytes below bucket_bytes
    int64_t bytes = 0;
    auto flush = [&] {
        if (bucket.empty()) return;
        std::vector<Tensor> flat_parts;
        for (const Tensor& g : bucket) flat_parts.push_back(g.reshape({g.numel()}));
        Tensor flat = cat(flat_parts, 0);  // (sum of numel)
        all_reduce_(flat, Reduce::Sum);
        int64_t offset = 0;
        for (Tensor& g : bucket) {
            g.copy_(flat.narrow(0, offset, g.numel()).reshape(g.shape()));
            offset += g.numel();
        }
        bucket.clear();
        bytes = 0;
    };
    for (const Tensor& p : parameters) {
        Tensor g = p.grad();
        if (!g.defined()) continue;
        const int64_t g_bytes = g.numel() * int64_t(dtype_size(g.dtype()));
        if (!bucket.empty() && (g.dtype() != bucket[0].dtype() || g.device() != bucket[0].device() ||
                                bytes + g_bytes > bucket_bytes))
            flush();
        bucket.push_back(g);
        bytes += g_bytes;
    }
    flush();
}

}  // namespace rankclip::dist
