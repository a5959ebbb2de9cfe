// engine/autograd.h
// defines: Node (one recorded op on the tape), Edge, record() which ops call to attach their
// backward to an output, GradMode / NoGradGuard, and run_backward().
//
// The tape is dynamic (PyTorch's design): each differentiable op that sees an input requiring
// grad creates a Node holding (a) one Edge per input — the producer's Node, or the leaf tensor
// whose .grad receives the gradient — and (b) a backward closure that captured the tensors
// it needs. backward() sorts the graph topologically once and runs the closures in reverse.
// After a node has run, its closure (and so every saved tensor) is released: memory does not
// grow across steps, and a second backward through the same graph is an error, not a crash.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace rankclip {

// Gradients for each input, in order; an undefined Tensor means "no gradient".
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Edge {
    std::shared_ptr<Node> fn;           // producer of the input, or
    std::shared_ptr<TensorImpl> leaf;   // the leaf that accumulates the gradient, or neither
    Shape shape;                        // the input's shape, to check what backward returns
    DType dtype = DType::F32;
};

struct Node {
    std::string name;
    std::vector<Edge> inputs;
    BackwardFn backward;  // empty once released
};

struct GradMode {
    static bool enabled();
    static void set_enabled(bool on);
};

// Disables recording in its scope (evaluation, optimizer updates, backward itself).
class NoGradGuard {
public:
    NoGradGuard() : previous_(GradMode::enabled()) { GradMode::set_enabled(false); }
    ~NoGradGuard() { GradMode::set_enabled(previous_); }
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool previous_;
};

// True when grad mode is on and some input requires grad: the op should record.
bool needs_grad(const std::vector<Tensor>& inputs);

// Attaches `backward` to `out` (which then requires grad) when needs_grad(inputs).
// Save tensors in the closure with .detach() so the graph holds no cycles.
void record(const char* name, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn backward);

void run_backward(const Tensor& root, const Tensor& grad_root);

}  // namespace rankclip
