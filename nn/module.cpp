// nn/module.cpp
// defines: Module's registration, traversal (named parameters, children), train/eval,
// zero_grad, state_dict / load_state_dict and to(device). See nn/module.h.
#include "nn/module.h"

#include <set>
#include <sstream>
#include <vector>

#include "engine/autograd.h"

namespace rankclip {

// The paths a registration occupies in this module's namespace: its own name, or, for a child
// registered under the empty name, the names of the child's parameters.
static std::vector<std::string> occupied_paths(const std::string& name, const std::shared_ptr<Module>& child) {
    if (!name.empty() || !child) return {name};
    std::vector<std::string> paths;
    for (const auto& [child_name, p] : child->named_parameters()) paths.push_back(child_name);
    return paths;
}

// True when two dotted paths would clash: equal, or one a prefix of the other ("a" and "a.b").
static bool paths_clash(const std::string& a, const std::string& b) {
    const std::string& shorter = a.size() <= b.size() ? a : b;
    const std::string& longer = a.size() <= b.size() ? b : a;
    return longer.compare(0, shorter.size(), shorter) == 0 &&
           (longer.size() == shorter.size() || longer[shorter.size()] == '.');
}

void Module::check_new_name(const std::string& name, const char* what) const {
    for (const Entry& e : entries_)
        for (const std::string& taken : occupied_paths(e.name, e.child))
            RC_CHECK(!paths_clash(name, taken), "Module::", what, ": name '", name, "' clashes with '", taken,
                     "', already registered in this module");
}

Tensor Module::register_parameter(const std::string& name, Tensor value) {
    RC_CHECK(!name.empty() && name.find('.') == std::string::npos, "Module::register_parameter: invalid name '", name,
             "' (one non-empty path component without '.')");
    RC_CHECK(value.defined(), "Module::register_parameter: '", name, "' is an undefined tensor");
    RC_CHECK(is_floating(value.dtype()), "Module::register_parameter: '", name, "' must be floating, got ",
             value.str());
    RC_CHECK(value.is_leaf(), "Module::register_parameter: '", name, "' must be a leaf tensor (detach it first)");
    check_new_name(name, "register_parameter");
    value.set_requires_grad(true);
    entries_.push_back({name, value, nullptr});
    return value;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> child) {
    RC_CHECK(child != nullptr, "Module::register_module: '", name, "' is null");
    RC_CHECK(child.get() != this, "Module::register_module: a module cannot be its own child");
    if (name.empty()) {
        for (const std::string& n : occupied_paths(name, child)) check_new_name(n, "register_module");
    } else {
        RC_CHECK(name.front() != '.' && name.back() != '.' && name.find("..") == std::string::npos,
                 "Module::register_module: invalid name '", name, "'");
        check_new_name(name, "register_module");
    }
    child->train(training_);
    entries_.push_back({name, Tensor(), std::move(child)});
}

void Module::collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const {
    for (const Entry& e : entries_) {
        if (e.child) {
            e.child->collect(e.name.empty() ? prefix : prefix + e.name + ".", out);
        } else {
            out.emplace_back(prefix + e.name, e.parameter);
        }
    }
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
    std::vector<std::pair<std::string, Tensor>> out;
    collect("", out);
    return out;
}

std::vector<Tensor> Module::parameters() const {
    std::vector<Tensor> out;
    for (auto& [name, p] : named_parameters()) out.push_back(p);
    return out;
}

bool Module::has_parameter(const std::string& name) const {
    for (auto& [n, p] : named_parameters())
        if (n == name) return true;
    return false;
}

Tensor Module::parameter(const std::string& name) const {
    for (auto& [n, p] : named_parameters())
        if (n == name) return p;
    RC_CHECK(false, "Module::parameter: no parameter named '", name, "'");
    return Tensor();
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::children() const {
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
    for (const Entry& e : entries_)
        if (e.child) out.emplace_back(e.name, e.child);
    return out;
}

int64_t Module::num_parameters() const {
    int64_t n = 0;
    for (auto& [name, p] : named_parameters()) n += p.numel();
    return n;
}

void Module::train(bool on) {
    training_ = on;
    for (Entry& e : entries_)
        if (e.child) e.child->train(on);
}

void Module::zero_grad() {
    for (auto& [name, p] : named_parameters()) p.zero_grad();
}

std::vector<std::pair<std::string, Tensor>> Module::state_dict() const {
    auto params = named_parameters();
    for (auto& [name, p] : params) p = p.detach();
    return params;
}

// "F32 (128, 3, 4, 4)"
static std::string describe(const Tensor& t) { return str_cat(dtype_name(t.dtype()), " ", shape_str(t.shape())); }

void Module::load_state_dict(const std::map<std::string, Tensor>& tensors, bool strict) {
    auto params = named_parameters();
    std::vector<std::string> missing, unexpected, mismatched;
    std::set<std::string> known;
    for (auto& [name, p] : params) {
        known.insert(name);
        auto it = tensors.find(name);
        if (it == tensors.end()) {
            missing.push_back(name);
        } else if (!it->second.defined()) {
            mismatched.push_back(name + ": expected " + describe(p) + ", got an undefined tensor");
        } else if (it->second.shape() != p.shape() || it->second.dtype() != p.dtype()) {
            mismatched.push_back(name + ": expected " + describe(p) + ", got " + describe(it->second));
        }
    }
    for (auto& [name, t] : tensors)
        if (!known.count(name)) unexpected.push_back(name);

    bool fail = !mismatched.empty() || (strict && (!missing.empty() || !unexpected.empty()));
    if (fail) {
        std::ostringstream msg;
        msg << "load_state_dict:";
        auto list = [&](const char* what, const std::vector<std::string>& names) {
            if (names.empty()) return;
            msg << " " << names.size() << " " << what << " (";
            for (size_t i = 0; i < names.size(); i++) msg << (i ? "; " : "") << names[i];
            msg << ");";
        };
        if (strict) {
            list("missing", missing);
            list("unexpected", unexpected);
        }
        list("mismatched", mismatched);
        std::string text = msg.str();
        text.pop_back();  // the last ';'
        throw Error(text);
    }

    NoGradGuard no_grad;
    for (auto& [name, p] : params) {
        auto it = tensors.find(name);
        if (it != tensors.end()) p.copy_(it->second);
    }
}

void Module::to(Device device) {
    for (auto& [name, p] : named_parameters()) {
        if (p.device() == device) continue;
        Tensor moved = p.detach().to(device);
        TensorImpl* impl = p.impl();  // shared by every handle to this parameter
        impl->storage = moved.impl()->storage;
        impl->shape = moved.shape();
        impl->strides = moved.strides();
        impl->offset = moved.offset();
        impl->device = device;
        impl->grad.reset();
    }
}

Device Module::device() const {
    auto params = named_parameters();
    return params.empty() ? Device::cpu() : params.front().second.device();
}

}  // namespace rankclip
