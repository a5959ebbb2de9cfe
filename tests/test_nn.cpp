// tests/test_nn.cpp
// tests: nn/ — Module (registration, dotted names and their order, name clashes, children,
// train/eval, zero_grad, parameter count, state_dict / load_state_dict with the exact lists of
// missing / unexpected / mismatched names, to(device)), the layers' shapes and input checks,
// and the layers against PyTorch through tests/ref/clip_mha.safetensors (written by
// tools/gen_clip_refs.py): Linear, Embedding and MultiheadAttention initialised from the same
// seed are equal to torch's bit for bit; MultiheadAttention's output and gradients (with and
// without the causal mask) and LayerNorm's output match torch.nn's to fp32 rounding.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/ops.h"
#include "nn/nn.h"
#include "reference_file.h"
#include "test_util.h"

using namespace rankclip;
using rankclip::test::load_reference;

namespace {

// Runs `f`, expecting an Error whose message contains every one of `parts`; returns the message.
template <typename F>
std::string expect_error(F f, const std::vector<std::string>& parts) {
    try {
        f();
    } catch (const Error& e) {
        std::string msg = e.what();
        for (const std::string& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
        return msg;
    }
    ADD_FAILURE() << "expected an Error";
    return "";
}

// Same bits, element for element (F32).
void expect_bitwise_equal(const Tensor& a, const Tensor& b, const std::string& what) {
    ASSERT_EQ(a.shape(), b.shape()) << what;
    ASSERT_EQ(a.dtype(), DType::F32) << what;
    ASSERT_EQ(b.dtype(), DType::F32) << what;
    Tensor ac = a.contiguous(), bc = b.contiguous();
    int64_t differ = 0;
    for (int64_t i = 0; i < a.numel(); i++)
        differ += std::memcmp(ac.data<float>() + i, bc.data<float>() + i, sizeof(float)) != 0;
    EXPECT_EQ(differ, 0) << what << ": " << differ << " of " << a.numel() << " elements differ";
}

// max |a - b| <= rtol * max |b|: relative to the tensor's scale, so near-zero elements do not
// dominate.
void expect_close_to_max(const Tensor& a, const Tensor& b, double rtol, const std::string& what) {
    ASSERT_EQ(a.shape(), b.shape()) << what;
    auto av = a.to_vector<double>(), bv = b.to_vector<double>();
    double worst = 0, scale = 0;
    for (size_t i = 0; i < av.size(); i++) {
        worst = std::max(worst, std::abs(av[i] - bv[i]));
        scale = std::max(scale, std::abs(bv[i]));
    }
    EXPECT_LE(worst, rtol * scale) << what << ": max error " << worst << ", max |ref| " << scale;
}

// A module with its own parameters and children, to test the traversal.
class Toy : public Module {
public:
    explicit Toy(Generator& gen) {
        scale = register_parameter("scale", ones({3}));
        first = register_module("first", std::make_shared<Linear>(3, 4, gen));
        offset = register_parameter("offset", zeros({4}));
        second = register_module("blocks.0", std::make_shared<Linear>(4, 2, gen, /*bias=*/false));
    }
    Tensor forward(const Tensor& x) const { return second->forward(first->forward(x * scale) + offset); }

    Tensor scale, offset;
    std::shared_ptr<Linear> first, second;
};

// Lends a child's names to the parent (registered under the empty name), as CLIP does with its
// text tower.
class Flattened : public Module {
public:
    explicit Flattened(Generator& gen) {
        inner = register_module("", std::make_shared<Toy>(gen));
        extra = register_parameter("extra", zeros({1}));
    }
    std::shared_ptr<Toy> inner;
    Tensor extra;
};

std::vector<std::string> names_of(const Module& m) {
    std::vector<std::string> names;
    for (auto& [n, p] : m.named_parameters()) names.push_back(n);
    return names;
}

// ---- Module ----

TEST(Module, NamesAreDottedAndInRegistrationOrder) {
    Generator gen(0);
    Toy toy(gen);
    EXPECT_EQ(names_of(toy), (std::vector<std::string>{"scale", "first.weight", "first.bias", "offset",
                                                       "blocks.0.weight"}));
    EXPECT_EQ(toy.num_parameters(), 3 + 12 + 4 + 4 + 8);
    auto children = toy.children();
    ASSERT_EQ(children.size(), 2u);
    EXPECT_EQ(children[0].first, "first");
    EXPECT_EQ(children[1].first, "blocks.0");
    EXPECT_EQ(children[0].second.get(), toy.first.get());
    // the registry holds the same tensors as the members (one TensorImpl)
    EXPECT_EQ(toy.parameter("first.weight").impl(), toy.first->weight.impl());
    EXPECT_TRUE(toy.has_parameter("blocks.0.weight"));
    EXPECT_FALSE(toy.has_parameter("blocks.0.bias"));
    for (const Tensor& p : toy.parameters()) EXPECT_TRUE(p.requires_grad());
    expect_error([&] { toy.parameter("nope.weight"); }, {"no parameter named 'nope.weight'"});
}

TEST(Module, ChildUnderTheEmptyNameLendsItsNames) {
    Generator gen(0);
    Flattened f(gen);
    EXPECT_EQ(names_of(f), (std::vector<std::string>{"scale", "first.weight", "first.bias", "offset",
                                                     "blocks.0.weight", "extra"}));
}

class Clashing : public Module {
public:
    explicit Clashing(int which) {
        Generator gen(0);
        register_parameter("w", zeros({1}));
        if (which == 0) register_parameter("w", zeros({1}));
        if (which == 1) register_parameter("a.b", zeros({1}));
        if (which == 2) register_parameter("", zeros({1}));
        if (which == 3) register_module("w", std::make_shared<Linear>(1, 1, gen));
        if (which == 4) register_module("w.x", std::make_shared<Linear>(1, 1, gen));
        if (which == 5) {
            register_module("m", std::make_shared<Linear>(1, 1, gen));
            register_module("", std::make_shared<Toy>(gen));
            register_parameter("scale", zeros({1}));  // taken by the flattened Toy
        }
        if (which == 6) register_parameter("i", zeros({2}, DType::I64));
    }
};

TEST(Module, RegistrationRejectsClashesAndBadNames) {
    expect_error([] { Clashing c(0); }, {"register_parameter", "'w'", "clashes"});
    expect_error([] { Clashing c(1); }, {"register_parameter", "invalid name 'a.b'"});
    expect_error([] { Clashing c(2); }, {"register_parameter", "invalid name ''"});
    expect_error([] { Clashing c(3); }, {"register_module", "'w'", "clashes"});
    expect_error([] { Clashing c(4); }, {"register_module", "'w.x'", "clashes with 'w'"});
    expect_error([] { Clashing c(5); }, {"register_parameter", "'scale'", "clashes"});
    expect_error([] { Clashing c(6); }, {"register_parameter", "'i'", "must be floating"});
}

TEST(Module, TrainEvalIsRecursive) {
    Generator gen(0);
    Toy toy(gen);
    EXPECT_TRUE(toy.is_training());
    EXPECT_TRUE(toy.first->is_training());
    toy.eval();
    EXPECT_FALSE(toy.is_training());
    EXPECT_FALSE(toy.first->is_training());
    EXPECT_FALSE(toy.second->is_training());
    toy.train();
    EXPECT_TRUE(toy.second->is_training());
}

TEST(Module, ZeroGradDropsEveryGradient) {
    Generator gen(0);
    Toy toy(gen);
    Tensor x = randn({5, 3}, gen);
    sum(toy.forward(x)).backward();
    for (auto& [n, p] : toy.named_parameters()) EXPECT_TRUE(p.grad().defined()) << n;
    // a second backward accumulates (+=): the gradient doubles
    Tensor g1 = toy.first->weight.grad().clone();
    sum(toy.forward(x)).backward();
    expect_close_to_max(toy.first->weight.grad(), g1 * 2.0, 1e-6, "accumulated gradient");
    toy.zero_grad();
    for (auto& [n, p] : toy.named_parameters()) EXPECT_FALSE(p.grad().defined()) << n;
}

TEST(Module, StateDictRoundTripGivesIdenticalOutputs) {
    Generator gen_a(1), gen_b(2), gen_x(3);
    Toy a(gen_a), b(gen_b);
    Tensor x = randn({4, 3}, gen_x);
    NoGradGuard no_grad;
    Tensor ya = a.forward(x), yb = b.forward(x);
    EXPECT_GT(amax(abs(ya - yb)).item(), 0.0);  // different seeds, different models

    auto state = a.state_dict();
    ASSERT_EQ(state.size(), 5u);
    EXPECT_EQ(state[1].first, "first.weight");
    EXPECT_FALSE(state[1].second.requires_grad());                      // detached ...
    EXPECT_EQ(state[1].second.raw_data(), a.first->weight.raw_data());  // ... sharing the storage
    std::map<std::string, Tensor> tensors(state.begin(), state.end());
    b.load_state_dict(tensors);
    expect_bitwise_equal(b.forward(x), ya, "output after load_state_dict");
    // a copy, not an alias: changing a afterwards leaves b alone
    a.first->weight.detach().fill_(0.0);
    expect_bitwise_equal(b.forward(x), ya, "output after changing the source");
    EXPECT_TRUE(b.first->weight.requires_grad());
}

TEST(Module, LoadStateDictListsEveryProblem) {
    Generator gen(0);
    Toy toy(gen);
    std::map<std::string, Tensor> tensors;
    for (auto& [n, p] : toy.state_dict()) tensors[n] = p.clone();
    Tensor before = toy.first->weight.clone();

    auto bad = tensors;
    bad.erase("scale");
    bad.erase("blocks.0.weight");
    bad["first.extra"] = zeros({1});
    bad["first.bias"] = zeros({5});                  // shape
    bad["offset"] = zeros({4}, DType::F64);          // dtype
    bad["first.weight"] = zeros({4, 3});             // fine, but must not be copied: the load fails
    std::string msg = expect_error([&] { toy.load_state_dict(bad); },
                                   {"2 missing (scale; blocks.0.weight)", "1 unexpected (first.extra)",
                                    "2 mismatched", "first.bias: expected F32 (4), got F32 (5)",
                                    "offset: expected F32 (4), got F64 (4)"});
    EXPECT_EQ(msg.find("first.weight"), std::string::npos) << msg;
    expect_bitwise_equal(toy.first->weight, before, "weights after a failed load");

    // strict = false tolerates missing and unexpected names, never mismatches
    auto partial = tensors;
    partial.erase("scale");
    partial["unused"] = zeros({2});
    partial["first.weight"] = full({4, 3}, 0.5);
    toy.load_state_dict(partial, /*strict=*/false);
    expect_bitwise_equal(toy.first->weight, full({4, 3}, 0.5), "partially loaded weight");
    partial["offset"] = zeros({3});
    expect_error([&] { toy.load_state_dict(partial, false); }, {"1 mismatched", "offset: expected F32 (4), got F32 (3)"});
    expect_error([&] { toy.load_state_dict(partial); }, {"missing (scale)", "unexpected (unused)"});
}

TEST(Module, ToDeviceMovesParametersInPlace) {
    Generator gen(0);
    Toy toy(gen);
    Tensor handle = toy.first->weight;
    toy.to(Device::cpu());  // a no-op
    EXPECT_EQ(handle.impl(), toy.parameter("first.weight").impl());
    EXPECT_TRUE(toy.device().is_cpu());
    if (!has_backend(DeviceType::CUDA)) GTEST_SKIP() << "no CUDA device: the CPU -> CUDA move is not tested here";
    Tensor x = randn({2, 3}, gen);
    Tensor y_cpu = toy.forward(x).detach();
    toy.to(Device::cuda());
    EXPECT_TRUE(handle.device().is_cuda());  // the member handle saw the move
    EXPECT_TRUE(toy.device().is_cuda());
    Tensor y_gpu = toy.forward(x.to(Device::cuda())).to(Device::cpu());
    expect_close_to_max(y_gpu, y_cpu, 1e-5, "output on CUDA");
    toy.to(Device::cpu());
    EXPECT_TRUE(handle.device().is_cpu());
}

// ---- layers: shapes and input checks ----

TEST(Layers, ShapesAndParameterNames) {
    Generator gen(0);
    Linear linear(6, 10, gen);
    EXPECT_EQ(linear.forward(randn({2, 3, 6}, gen)).shape(), (Shape{2, 3, 10}));
    EXPECT_EQ(names_of(linear), (std::vector<std::string>{"weight", "bias"}));
    EXPECT_EQ(linear.weight.shape(), (Shape{10, 6}));
    Linear no_bias(6, 10, gen, false);
    EXPECT_EQ(names_of(no_bias), (std::vector<std::string>{"weight"}));

    LayerNorm ln(6);
    EXPECT_EQ(ln.forward(randn({4, 6}, gen)).shape(), (Shape{4, 6}));
    expect_bitwise_equal(ln.weight, ones({6}), "LayerNorm weight");
    expect_bitwise_equal(ln.bias, zeros({6}), "LayerNorm bias");

    Embedding emb(11, 5, gen);
    Tensor ids = from_vector(std::vector<int64_t>{0, 10, 3, 3, 7, 1}, {2, 3}, DType::I64);
    Tensor e = emb.forward(ids);
    EXPECT_EQ(e.shape(), (Shape{2, 3, 5}));
    expect_bitwise_equal(e.select(0, 1).select(0, 0), emb.weight.select(0, 3), "embedding row");

    MLP mlp(8, 32, Activation::QuickGELU, gen);
    EXPECT_EQ(mlp.forward(randn({2, 3, 8}, gen)).shape(), (Shape{2, 3, 8}));
    EXPECT_EQ(names_of(mlp), (std::vector<std::string>{"c_fc.weight", "c_fc.bias", "c_proj.weight", "c_proj.bias"}));

    Transformer tr(8, 2, 2, Activation::GELU, true, gen);
    EXPECT_EQ(tr.forward(randn({2, 5, 8}, gen)).shape(), (Shape{2, 5, 8}));
    std::vector<std::string> block = {"attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
                                      "attn.out_proj.bias", "ln_1.weight", "ln_1.bias", "mlp.c_fc.weight",
                                      "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias", "ln_2.weight",
                                      "ln_2.bias"};
    std::vector<std::string> expected;
    for (int i = 0; i < 2; i++)
        for (const auto& n : block) expected.push_back("resblocks." + std::to_string(i) + "." + n);
    EXPECT_EQ(names_of(tr), expected);
    EXPECT_EQ(tr.num_parameters(), 2 * (12 * 64 + 13 * 8));
}

TEST(Layers, BadInputsNameTheProblem) {
    Generator gen(0);
    Linear linear(6, 10, gen);
    expect_error([&] { linear.forward(randn({2, 5}, gen)); }, {"Linear(6 -> 10)", "(2, 5)"});
    LayerNorm ln(6);
    expect_error([&] { ln.forward(randn({2, 5}, gen)); }, {"LayerNorm(6)", "(2, 5)"});
    Embedding emb(11, 5, gen);
    expect_error([&] { emb.forward(randn({2}, gen)); }, {"Embedding(11, 5)", "I64 or I32"});
    MultiheadAttention mha(8, 2, gen);
    expect_error([&] { mha.forward(randn({2, 8}, gen)); }, {"MultiheadAttention", "(B, T, 8)", "(2, 8)"});
    expect_error([&] { MultiheadAttention bad(10, 3, gen); }, {"width 10", "heads 3"});
}

TEST(Layers, CausalAttentionIgnoresTheFuture) {
    Generator gen(5);
    MultiheadAttention mha(8, 2, gen, /*causal=*/true);
    Tensor x = randn({1, 6, 8}, gen);
    Tensor y = mha.forward(x).detach();
    Tensor x2 = x.clone();
    x2.narrow(1, 4, 2).fill_(3.0);  // change positions 4 and 5 only
    Tensor y2 = mha.forward(x2).detach();
    expect_bitwise_equal(y2.narrow(1, 0, 4), y.narrow(1, 0, 4), "positions before the change");
    EXPECT_GT(amax(abs(y2 - y)).item(), 0.0);
}

// ---- layers against torch.nn ----

// tests/ref/clip_mha.safetensors (committed; missing, it is a failure naming its generator).
const Tensor& layer_ref(const std::string& name) {
    return load_reference("tests/ref/clip_mha.safetensors", "tools/gen_clip_refs.py").get(name);
}

TEST(TorchLayers, LinearAndEmbeddingInitialiseAsTorch) {
    Generator gen2(2);
    Linear linear(7, 5, gen2);
    expect_bitwise_equal(linear.weight, layer_ref("linear.weight"), "Linear weight (seed 2)");
    expect_bitwise_equal(linear.bias, layer_ref("linear.bias"), "Linear bias (seed 2)");
    expect_close_to_max(linear.forward(layer_ref("linear.x")), layer_ref("linear.out"), 1e-6, "Linear output");

    Generator gen3(3);
    Embedding emb(11, 6, gen3);
    expect_bitwise_equal(emb.weight, layer_ref("embedding.weight"), "Embedding weight (seed 3)");

    LayerNorm ln(8);
    expect_close_to_max(ln.forward(layer_ref("layer_norm.x")), layer_ref("layer_norm.out"), 1e-6, "LayerNorm output");
}

TEST(TorchLayers, MultiheadAttentionMatchesTorch) {
    Generator gen(1);
    MultiheadAttention mha(16, 4, gen);
    // initialisation: out_proj draws first, then xavier in_proj, zero biases, as torch
    for (auto& [name, p] : mha.named_parameters()) expect_bitwise_equal(p, layer_ref("mha." + name), "init of " + name);

    for (const std::string variant : {"full", "causal"}) {
        MultiheadAttention layer(16, 4, gen, variant == "causal");
        std::map<std::string, Tensor> weights;
        for (auto& [name, p] : mha.named_parameters()) weights[name] = p;
        layer.load_state_dict(weights);
        Tensor x = layer_ref("mha.x").clone().set_requires_grad(true);
        Tensor out = layer.forward(x);
        expect_close_to_max(out, layer_ref("mha." + variant + ".out"), 1e-5, variant + " output");
        sum(out * layer_ref("mha.go")).backward();
        expect_close_to_max(x.grad(), layer_ref("mha." + variant + ".grad.x"), 1e-4, variant + " grad x");
        for (auto& [name, p] : layer.named_parameters())
            expect_close_to_max(p.grad(), layer_ref("mha." + variant + ".grad." + name), 1e-4, variant + " grad " + name);
    }
}

}  // namespace
