// engine/tensor.h
// defines: Storage (a device buffer), TensorImpl (storage + shape/strides/offset + autograd
// fields) and Tensor, the user-facing handle. Views (reshape, permute, narrow, expand, ...)
// share storage and only change shape, strides and offset; kernels ask for contiguous()
// inputs explicitly. The ops themselves are free functions in engine/ops.h.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/dtype.h"
#include "engine/error.h"
#include "engine/shape.h"

namespace rankclip {

struct Node;

// A buffer on one device, freed through that device's backend allocator. A CPU buffer may be
// page-locked ("pinned", from the CUDA backend's Backend::allocate_pinned_host) so that copies
// to the GPU read it directly; it is then freed through free_pinned_host, not the CPU allocator.
struct Storage {
    void* data = nullptr;
    size_t nbytes = 0;
    Device device;
    bool pinned = false;  // page-locked host memory (device is the CPU)
    Storage(size_t nbytes, Device device);
    // try_pin (CPU only): page-locked when the CUDA backend is there and can pin nbytes, plain
    // CPU memory otherwise (never an error; `pinned` says which it got).
    Storage(size_t nbytes, Device device, bool try_pin);
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;
};

struct TensorImpl {
    std::shared_ptr<Storage> storage;
    Shape shape;
    Shape strides;    // in elements; 0 for broadcast (expanded) dims
    int64_t offset = 0;  // in elements
    DType dtype = DType::F32;
    Device device;
    bool requires_grad = false;
    std::shared_ptr<TensorImpl> grad;  // accumulated with += by backward(); leaves only
    std::shared_ptr<Node> grad_fn;     // the op that produced this tensor (null for leaves)
};

class Tensor {
public:
    Tensor() = default;
    explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

    bool defined() const { return impl_ != nullptr; }
    TensorImpl* impl() const { return impl_.get(); }
    const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

    const Shape& shape() const { return impl_->shape; }
    const Shape& strides() const { return impl_->strides; }
    int64_t offset() const { return impl_->offset; }
    int64_t dim() const { return int64_t(impl_->shape.size()); }
    int64_t size(int64_t d) const;
    int64_t numel() const { return rankclip::numel(impl_->shape); }
    DType dtype() const { return impl_->dtype; }
    Device device() const { return impl_->device; }
    bool is_contiguous() const;
    std::string str() const;  // "F32 (2, 3) cpu" for error messages

    // Raw pointer to the first element (storage + offset). data<T>() checks T against dtype.
    void* raw_data() const;
    template <typename T> T* data() const;

    // --- autograd ---
    bool requires_grad() const { return impl_->requires_grad; }
    Tensor& set_requires_grad(bool on = true);
    Tensor grad() const { return Tensor(impl_->grad); }
    void zero_grad() { impl_->grad.reset(); }
    const std::shared_ptr<Node>& grad_fn() const { return impl_->grad_fn; }
    bool is_leaf() const { return impl_->grad_fn == nullptr; }
    // Backpropagates from this scalar (or with an explicit gradient of the same shape).
    void backward(const Tensor& grad_output = Tensor()) const;
    // Same storage, no history, requires_grad false.
    Tensor detach() const;

    // --- conversion ---
    Tensor to(DType dtype) const;
    Tensor to(Device device) const;
    Tensor contiguous() const;
    Tensor clone() const;  // contiguous copy with no history (of the data; grad flows through)
    double item() const;   // the value of a one-element tensor, as double
    template <typename T> std::vector<T> to_vector() const;  // contiguous CPU copy, cast to T

    // --- views (share storage) ---
    Tensor view(const Shape& shape) const;     // needs a compatible layout
    Tensor reshape(const Shape& shape) const;  // view when possible, else a copy
    Tensor permute(const std::vector<int64_t>& dims) const;
    Tensor transpose(int64_t d0, int64_t d1) const;
    Tensor t() const { return transpose(0, 1); }
    Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
    Tensor slice(int64_t dim, int64_t start, int64_t end) const { return narrow(dim, start, end - start); }
    Tensor select(int64_t dim, int64_t index) const;  // narrow + squeeze
    Tensor expand(const Shape& shape) const;
    Tensor squeeze(int64_t dim) const;
    Tensor unsqueeze(int64_t dim) const;
    Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;

    // --- in-place (not recorded; refused on tensors that are part of a graph) ---
    Tensor& copy_(const Tensor& src);  // broadcasts src to this shape, casts dtype, any device
    Tensor& fill_(double value);
    Tensor& zero_() { return fill_(0.0); }
    Tensor& add_(const Tensor& other, double alpha = 1.0);
    Tensor& mul_(double value);

private:
    std::shared_ptr<TensorImpl> impl_;
};

// Makes a tensor that views `base`'s storage with the given layout (no history).
Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset);
// A new contiguous tensor with uninitialised contents.
Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
// empty() on the CPU in page-locked memory when a working CUDA backend can pin it (what the data
// loader's pin_memory asks for); plain CPU memory otherwise, e.g. on a machine without a GPU.
// The tensor is an ordinary CPU tensor either way; is_pinned tells which memory it got.
Tensor empty_pinned(const Shape& shape, DType dtype = DType::F32);
bool is_pinned(const Tensor& t);

}  // namespace rankclip
