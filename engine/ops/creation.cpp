// engine/ops/creation.cpp
// defines: tensor creation — zeros/ones/full/arange, from_vector, scalar_tensor — and the
// random creators randn/rand/randint/randperm, which draw on the CPU from a Generator (the
// PyTorch-identical MT19937 of engine/random.h) and then move to the requested device.
#include <cmath>

#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/random.h"

namespace rankclip {

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
    Tensor t = empty(shape, dtype, device);
    backend_for(device).fill(t, value);
    return t;
}
Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }
Tensor scalar_tensor(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor arange(double start, double end, double step, DType dtype, Device device) {
    RC_CHECK(step != 0, "arange: step must be non-zero");
    int64_t n = std::max<int64_t>(0, int64_t(std::ceil((end - start) / step)));
    std::vector<double> values(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; i++) values[i] = start + double(i) * step;
    return from_vector(values, {n}, dtype, device);
}

template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, DType dtype, Device device) {
    RC_CHECK(int64_t(values.size()) == numel(shape), "from_vector: ", values.size(), " values for shape ",
             shape_str(shape));
    Tensor host = empty(shape, dtype);
    void* p = host.raw_data();
    for (size_t i = 0; i < values.size(); i++) {
        switch (dtype) {
            case DType::F32: static_cast<float*>(p)[i] = float(values[i]); break;
            case DType::F64: static_cast<double*>(p)[i] = double(values[i]); break;
            case DType::BF16: static_cast<bf16*>(p)[i] = float_to_bf16(float(values[i])); break;
            case DType::I32: static_cast<int32_t*>(p)[i] = int32_t(values[i]); break;
            case DType::I64: static_cast<int64_t*>(p)[i] = int64_t(values[i]); break;
        }
    }
    return host.to(device);
}
template Tensor from_vector(const std::vector<float>&, const Shape&, DType, Device);
template Tensor from_vector(const std::vector<double>&, const Shape&, DType, Device);
template Tensor from_vector(const std::vector<int32_t>&, const Shape&, DType, Device);
template Tensor from_vector(const std::vector<int64_t>&, const Shape&, DType, Device);

Tensor from_vector(const std::vector<float>& values, const Shape& shape) {
    return from_vector<float>(values, shape, DType::F32, Device::cpu());
}

// F32 and F64 are drawn exactly as PyTorch draws them; BF16 is drawn as F32 and rounded.
template <typename Fill>
static Tensor random_tensor(const Shape& shape, DType dtype, Device device, const char* op, Fill fill) {
    RC_CHECK(is_floating(dtype), op, ": needs a floating dtype, got ", dtype_name(dtype));
    Tensor host = empty(shape, dtype == DType::F64 ? DType::F64 : DType::F32);
    if (dtype == DType::F64) fill(host.data<double>(), host.numel());
    else fill(host.data<float>(), host.numel());
    if (dtype == DType::BF16) host = host.to(DType::BF16);
    return host.to(device);
}

Tensor randn(const Shape& shape, Generator& gen, DType dtype, Device device) {
    return random_tensor(shape, dtype, device, "randn", [&](auto* p, int64_t n) { gen.fill_normal(p, n); });
}

Tensor rand(const Shape& shape, Generator& gen, DType dtype, Device device) {
    return random_tensor(shape, dtype, device, "rand", [&](auto* p, int64_t n) { gen.fill_uniform(p, n); });
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen, DType dtype, Device device) {
    RC_CHECK(high > low, "randint: empty range [", low, ", ", high, ")");
    Tensor host = empty(shape, DType::I64);
    gen.fill_randint(host.data<int64_t>(), host.numel(), low, high);
    if (dtype != DType::I64) host = host.to(dtype);
    return host.to(device);
}

Tensor randperm(int64_t n, Generator& gen, Device device) {
    Tensor host = empty({n}, DType::I64);
    gen.randperm(host.data<int64_t>(), n);
    return host.to(device);
}

}  // namespace rankclip
