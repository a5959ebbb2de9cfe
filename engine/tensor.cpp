// engine/tensor.cpp
// defines: Storage allocation (device memory, or page-locked host memory for empty_pinned),
// Tensor accessors, conversion (dtype, device, contiguous) and the in-place helpers. The
// differentiable views (reshape, permute, ...) are in engine/ops/views.cpp.
#include "engine/tensor.h"

#include <cstring>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace rankclip {

Storage::Storage(size_t nbytes_, Device device_) : Storage(nbytes_, device_, false) {}

Storage::Storage(size_t nbytes_, Device device_, bool try_pin) : nbytes(nbytes_), device(device_) {
    RC_CHECK(!try_pin || device.is_cpu(), "Storage: only CPU memory can be pinned, not ", device.str());
    if (nbytes == 0) return;
    // has_backend(CUDA) is false without a GPU (or in a CPU-only build): plain memory then.
    if (try_pin && has_backend(DeviceType::CUDA)) {
        data = backend_for(Device::cuda()).allocate_pinned_host(nbytes);
        pinned = data != nullptr;
    }
    if (!data) data = backend_for(device).allocate(nbytes);
}

Storage::~Storage() {
    if (!data) return;
    if (pinned) backend_for(Device::cuda()).free_pinned_host(data, nbytes);
    else backend_for(device).deallocate(data, nbytes);
}

static Tensor new_tensor(const Shape& shape, DType dtype, Device device, bool try_pin) {
    for (int64_t d : shape) RC_CHECK(d >= 0, "empty: negative dimension in shape ", shape_str(shape));
    auto impl = std::make_shared<TensorImpl>();
    size_t nbytes = 0;
    RC_CHECK(!__builtin_mul_overflow(size_t(numel(shape)), dtype_size(dtype), &nbytes), "empty: shape ",
             shape_str(shape), " of ", dtype_name(dtype), " needs more than 2^64 bytes");
    impl->storage = std::make_shared<Storage>(nbytes, device, try_pin);
    impl->shape = shape;
    impl->strides = contiguous_strides(shape);
    impl->dtype = dtype;
    impl->device = device;
    return Tensor(impl);
}

Tensor empty(const Shape& shape, DType dtype, Device device) { return new_tensor(shape, dtype, device, false); }

Tensor empty_pinned(const Shape& shape, DType dtype) { return new_tensor(shape, dtype, Device::cpu(), true); }

bool is_pinned(const Tensor& t) { return t.defined() && t.impl()->storage && t.impl()->storage->pinned; }

Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = base.impl()->storage;
    impl->shape = std::move(shape);
    impl->strides = std::move(strides);
    impl->offset = offset;
    impl->dtype = base.dtype();
    impl->device = base.device();
    return Tensor(impl);
}

int64_t Tensor::size(int64_t d) const {
    RC_CHECK(dim() > 0, "size: tensor ", str(), " has no dims");
    return impl_->shape[wrap_dim(d, dim(), "size")];
}

bool Tensor::is_contiguous() const {
    int64_t expected = 1;
    for (int64_t i = dim() - 1; i >= 0; i--) {
        if (impl_->shape[i] == 1) continue;
        if (impl_->strides[i] != expected) return false;
        expected *= impl_->shape[i];
    }
    return true;
}

std::string Tensor::str() const {
    if (!defined()) return "undefined tensor";
    return std::string(dtype_name(dtype())) + " " + shape_str(shape()) + " " + device().str();
}

void* Tensor::raw_data() const {
    RC_CHECK(defined(), "raw_data: undefined tensor");
    if (!impl_->storage->data) return nullptr;
    return static_cast<char*>(impl_->storage->data) + impl_->offset * int64_t(dtype_size(impl_->dtype));
}

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<double>() { return DType::F64; }
template <> constexpr DType dtype_of<bf16>() { return DType::BF16; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::I64; }

template <typename T> T* Tensor::data() const {
    RC_CHECK(dtype() == dtype_of<T>(), "data<", dtype_name(dtype_of<T>()), ">: tensor is ", str());
    return static_cast<T*>(raw_data());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template bf16* Tensor::data<bf16>() const;
template int32_t* Tensor::data<int32_t>() const;
template int64_t* Tensor::data<int64_t>() const;

Tensor& Tensor::set_requires_grad(bool on) {
    RC_CHECK(!on || is_floating(dtype()), "requires_grad: only floating tensors can require grad, got ", str());
    RC_CHECK(is_leaf(), "requires_grad: can only be set on leaf tensors (this one was made by ",
             impl_->grad_fn->name, ")");
    impl_->requires_grad = on;
    return *this;
}

void Tensor::backward(const Tensor& grad_output) const { run_backward(*this, grad_output); }

Tensor Tensor::detach() const { return make_view(*this, shape(), strides(), offset()); }

Tensor Tensor::contiguous() const {
    if (is_contiguous()) return *this;
    return clone();
}

Tensor Tensor::clone() const {
    Tensor out = empty(shape(), dtype(), device());
    backend_for(device()).copy(*this, out);
    record("clone", out, {*this}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
    return out;
}

Tensor Tensor::to(DType target) const { return cast(*this, target); }

Tensor Tensor::to(Device target) const {
    if (target == device()) return *this;
    Tensor src = contiguous().detach();
    Tensor out = empty(shape(), dtype(), target);
    size_t nbytes = size_t(numel()) * dtype_size(dtype());
    if (nbytes) {
        if (src.device().is_cpu()) {
            backend_for(target).copy_from_host(src.raw_data(), out.raw_data(), nbytes);
        } else if (target.is_cpu()) {
            backend_for(src.device()).copy_to_host(src.raw_data(), out.raw_data(), nbytes);
        } else {  // device to device through the host: simple, and rare
            Tensor host = src.to(Device::cpu());
            backend_for(target).copy_from_host(host.raw_data(), out.raw_data(), nbytes);
        }
    }
    Device from = device();
    record("to_device", out, {*this}, [from](const Tensor& g) -> std::vector<Tensor> { return {g.to(from)}; });
    return out;
}

double Tensor::item() const {
    RC_CHECK(numel() == 1, "item: tensor must have one element, got ", str());
    return to_vector<double>()[0];
}

template <typename T> std::vector<T> Tensor::to_vector() const {
    NoGradGuard no_grad;
    Tensor host = to(Device::cpu()).contiguous();
    int64_t n = host.numel();
    std::vector<T> out(size_t(n), T(0));
    const void* p = host.raw_data();
    for (int64_t i = 0; i < n; i++) {
        switch (host.dtype()) {
            case DType::F32: out[i] = T(static_cast<const float*>(p)[i]); break;
            case DType::F64: out[i] = T(static_cast<const double*>(p)[i]); break;
            case DType::BF16: out[i] = T(bf16_to_float(static_cast<const bf16*>(p)[i])); break;
            case DType::I32: out[i] = T(static_cast<const int32_t*>(p)[i]); break;
            case DType::I64: out[i] = T(static_cast<const int64_t*>(p)[i]); break;
        }
    }
    return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

static void check_inplace(const Tensor& t, const char* op) {
    RC_CHECK(!(GradMode::enabled() && t.requires_grad()), op,
             ": in-place change of a tensor that requires grad; wrap it in NoGradGuard (", t.str(), ")");
}

Tensor& Tensor::copy_(const Tensor& src) {
    check_inplace(*this, "copy_");
    Tensor s = src.detach();
    if (s.device() != device()) s = s.to(device());
    if (s.shape() != shape()) s = s.expand(shape());
    backend_for(device()).copy(s, *this);
    return *this;
}

Tensor& Tensor::fill_(double value) {
    check_inplace(*this, "fill_");
    backend_for(device()).fill(*this, value);
    return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
    check_inplace(*this, "add_");
    NoGradGuard no_grad;
    Tensor o = other.device() == device() ? other : other.to(device());
    if (alpha != 1.0) o = o * alpha;
    if (o.dtype() != dtype()) o = o.to(dtype());
    Tensor b = o.shape() == shape() ? o : o.expand(shape());
    backend_for(device()).binary(BinaryOp::Add, *this, b, *this);
    return *this;
}

Tensor& Tensor::mul_(double value) {
    check_inplace(*this, "mul_");
    backend_for(device()).unary(UnaryOp::Affine, *this, *this, value, 0.0);
    return *this;
}

}  // namespace rankclip
