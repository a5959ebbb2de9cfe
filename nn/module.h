// nn/module.h
// defines: Module, the base of every layer and model. A Module owns named parameters (leaf
// tensors that require grad) and named child modules, both kept in registration order.
// Parameter names are dotted paths ("transformer.resblocks.0.attn.in_proj_weight"), exactly the
// keys of a PyTorch state_dict of the same architecture, so checkpoints interoperate by name.
//
// Order: named_parameters() walks the registrations in the order they were made, expanding a
// child in place. Layers register in the order PyTorch constructs (and so initialises) them,
// which makes this order also the initialisation order. PyTorch's own state_dict lists a
// module's direct parameters before its children, so the *order* can differ from torch's for a
// module that registers both (CLIP); the *names* are the same, and names are what files match.
//
// A child registered under the empty name lends its parameters to this module's namespace:
// OpenAI's CLIP keeps the text tower's parameters at the top level (token_embedding.weight, ...)
// while our TextTransformer is still a module of its own.
//
// Modules are neither copyable nor movable (children are held by shared_ptr); build them with
// std::make_shared or as members owned by a parent.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/device.h"
#include "engine/tensor.h"

namespace rankclip {

class Module {
public:
    Module() = default;
    virtual ~Module() = default;
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    // Every parameter of this module and its descendants, with dotted names, in registration order.
    std::vector<std::pair<std::string, Tensor>> named_parameters() const;
    std::vector<Tensor> parameters() const;
    // The parameter with this dotted name; an Error naming it when there is none.
    Tensor parameter(const std::string& name) const;
    bool has_parameter(const std::string& name) const;
    // Direct children with their names, in registration order.
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children() const;
    // Total number of parameter elements.
    int64_t num_parameters() const;

    // Training mode, set recursively on all children. CLIP has no dropout or batch norm, so the
    // mode changes nothing in our layers today; it is kept for losses and layers that need it.
    void train(bool on = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }

    // Drops the accumulated gradient of every parameter (backward() accumulates with +=).
    void zero_grad();

    // (name, tensor) for every parameter: detached handles that share the parameters' storage
    // (no copy). Save them with save_safetensors.
    std::vector<std::pair<std::string, Tensor>> state_dict() const;

    // Copies tensors into the parameters of the same name. Every problem is found before anything
    // is copied, and one Error lists all of them: the missing names (parameters absent from
    // `tensors`), the unexpected names (entries that are not parameters), and the mismatched
    // ones, with both shapes and dtypes. strict = false tolerates missing and unexpected names,
    // never a shape or dtype mismatch. Dtypes must match exactly: cast a BF16 file to F32 first.
    // The tensors may live on any device; they are copied to the parameters' device.
    void load_state_dict(const std::map<std::string, Tensor>& tensors, bool strict = true);

    // Moves every parameter to `device` in place: handles held elsewhere (an optimizer, the
    // layer's own members) see the move. Accumulated gradients are dropped.
    void to(Device device);
    // The device of the first parameter (the CPU for a module without parameters).
    Device device() const;

protected:
    // Registers a leaf parameter (marked requires_grad) and returns the same handle. `name` is
    // one path component: non-empty, without '.', unique within this module.
    Tensor register_parameter(const std::string& name, Tensor value);

    // Registers a child. `name` may be dotted ("resblocks.0", as nn.Sequential inside a
    // module names its items) or empty (see the top of this file).
    template <typename M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
        add_child(name, std::static_pointer_cast<Module>(module));
        return module;
    }

private:
    // One registration: a parameter or a child, never both.
    struct Entry {
        std::string name;
        Tensor parameter;
        std::shared_ptr<Module> child;
    };

    void add_child(const std::string& name, std::shared_ptr<Module> child);
    void check_new_name(const std::string& name, const char* what) const;
    void collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const;

    std::vector<Entry> entries_;
    bool training_ = true;
};

}  // namespace rankclip
