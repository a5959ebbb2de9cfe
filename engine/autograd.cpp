// engine/autograd.cpp
// defines: grad mode, record() (attaching a Node to an op's output) and run_backward(), the
// reverse pass: one topological sort, then each node's backward closure in reverse order,
// summing gradients per node and accumulating (+=) into the .grad of leaves.
#include "engine/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "engine/ops.h"

namespace rankclip {

static thread_local bool grad_mode_enabled = true;
bool GradMode::enabled() { return grad_mode_enabled; }
void GradMode::set_enabled(bool on) { grad_mode_enabled = on; }

bool needs_grad(const std::vector<Tensor>& inputs) {
    if (!GradMode::enabled()) return false;
    for (const Tensor& t : inputs)
        if (t.defined() && t.requires_grad()) return true;
    return false;
}

void record(const char* name, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn backward) {
    if (!needs_grad(inputs)) return;
    auto node = std::make_shared<Node>();
    node->name = name;
    node->inputs.reserve(inputs.size());
    for (const Tensor& t : inputs) {
        Edge e;
        if (t.defined() && t.requires_grad()) {
            if (t.grad_fn()) e.fn = t.grad_fn();
            else e.leaf = t.impl_ptr();
            e.shape = t.shape();
            e.dtype = t.dtype();
        }
        node->inputs.push_back(std::move(e));
    }
    node->backward = std::move(backward);
    out.impl()->grad_fn = std::move(node);
    out.impl()->requires_grad = true;
}

// True when nothing but the handle `g` refers to its tensor or its memory, and that memory is
// exactly a dense tensor of the leaf's layout: the leaf may then keep it as its .grad.
static bool can_adopt(const TensorImpl* leaf, const Tensor& g) {
    const TensorImpl* t = g.impl();
    return g.impl_ptr().use_count() == 1 && t->storage.use_count() == 1 && t->offset == 0 && !t->grad_fn &&
           t->dtype == leaf->dtype && t->device == leaf->device && t->shape == leaf->shape && g.is_contiguous() &&
           t->storage->nbytes == size_t(g.numel()) * dtype_size(t->dtype);
}

// Adds g into the leaf's .grad. The first gradient to arrive is adopted when nothing else holds
// it (PyTorch does the same: no copy of every parameter's gradient each step); otherwise the
// .grad starts as a fresh contiguous copy, so later += never writes into someone else's memory.
static void accumulate_into_leaf(TensorImpl* leaf, Tensor g) {
    if (leaf->grad) {
        Tensor(leaf->grad).add_(g);
    } else if (can_adopt(leaf, g)) {
        g.impl()->requires_grad = false;
        leaf->grad = g.impl_ptr();
    } else {
        Tensor copy = empty(leaf->shape, leaf->dtype, leaf->device);
        copy.copy_(g);
        leaf->grad = copy.impl_ptr();
    }
}

void run_backward(const Tensor& root, const Tensor& grad_root) {
    RC_CHECK(root.defined(), "backward: undefined tensor");
    RC_CHECK(root.requires_grad(), "backward: the tensor does not require grad (no input of the ",
             "computation has requires_grad set, or it was computed under NoGradGuard): ", root.str());
    Tensor seed = grad_root;
    if (!seed.defined()) {
        RC_CHECK(root.numel() == 1, "backward: a gradient can be implied only for a scalar; the output is ",
                 root.str(), " — reduce it to a scalar (e.g. mean) or pass a gradient");
        seed = ones(root.shape(), root.dtype(), root.device());
    }
    RC_CHECK(seed.shape() == root.shape(), "backward: gradient shape ", shape_str(seed.shape()),
             " does not match output shape ", shape_str(root.shape()));
    NoGradGuard no_grad;  // the backward pass itself is not recorded

    if (!root.grad_fn()) {  // backward on a leaf: its gradient is the seed
        accumulate_into_leaf(root.impl(), seed);
        return;
    }

    // Topological order by iterative depth-first search (graphs can be deep: no recursion).
    std::vector<Node*> order;
    std::unordered_set<Node*> seen;
    std::vector<std::pair<Node*, size_t>> stack{{root.grad_fn().get(), 0}};
    seen.insert(root.grad_fn().get());
    while (!stack.empty()) {
        auto& [node, next] = stack.back();
        if (next < node->inputs.size()) {
            Node* child = node->inputs[next++].fn.get();
            if (child && seen.insert(child).second) stack.push_back({child, 0});
        } else {
            order.push_back(node);
            stack.pop_back();
        }
    }

    std::unordered_map<Node*, Tensor> grads;
    grads[root.grad_fn().get()] = seed;
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
        Node* node = *it;
        auto found = grads.find(node);
        if (found == grads.end()) continue;  // no gradient reached this node
        Tensor g = found->second;
        grads.erase(found);
        RC_CHECK(node->backward, "backward: trying to backward through the graph a second time (op '",
                 node->name, "'): its saved tensors were freed after the first backward");
        std::vector<Tensor> input_grads = node->backward(g);
        node->backward = nullptr;  // release saved tensors now
        RC_CHECK(input_grads.size() == node->inputs.size(), "backward of '", node->name, "' returned ",
                 input_grads.size(), " gradients for ", node->inputs.size(), " inputs");
        for (size_t i = 0; i < input_grads.size(); i++) {
            const Edge& e = node->inputs[i];
            Tensor gi = std::move(input_grads[i]);  // moved: a leaf may adopt it (see can_adopt)
            if (!gi.defined() || (!e.fn && !e.leaf)) continue;
            RC_CHECK(gi.shape() == e.shape, "backward of '", node->name, "': gradient for input ", i,
                     " has shape ", shape_str(gi.shape()), ", expected ", shape_str(e.shape));
            if (gi.dtype() != e.dtype) gi = gi.to(e.dtype);
            if (e.leaf) {
                accumulate_into_leaf(e.leaf.get(), std::move(gi));
            } else {
                auto slot = grads.find(e.fn.get());
                if (slot == grads.end()) grads.emplace(e.fn.get(), gi);
                else slot->second = slot->second + gi;
            }
        }
    }
}

}  // namespace rankclip
