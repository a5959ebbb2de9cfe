// tests/test_autograd.cpp
// Tests the tape: accumulation (+=) into leaves, zero_grad, detach, NoGradGuard, the scalar
// check, the error for a second backward through a freed graph, release of saved tensors,
// gradients reaching a leaf through several paths, and the adoption of a leaf's first gradient
// (kept without a copy only when nothing else holds it).
#include "tests/test_util.h"

using namespace rankclip;
using namespace rankclip::test;

TEST(Autograd, TwoBackwardCallsDoubleTheGradient) {
    Tensor x = randn64({3, 4}, 1).set_requires_grad();
    sum(x * x).backward();
    Tensor first = x.grad().clone();
    sum(x * x).backward();
    expect_close(x.grad(), first * 2.0, 1e-15);
    x.zero_grad();
    EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, GradientOfSquareIsTwoX) {
    Tensor x = randn64({5}, 2).set_requires_grad();
    sum(x * x).backward();
    expect_close(x.grad(), x.detach() * 2.0, 1e-15);
}

TEST(Autograd, MultiplePathsSum) {
    Tensor x = randn64({4}, 3).set_requires_grad();
    Tensor y = x * 3.0;
    Tensor z = y + y * y;  // dz/dx = 3 + 18 x
    sum(z).backward();
    expect_close(x.grad(), x.detach() * 18.0 + 3.0, 1e-14);
}

TEST(Autograd, NoGradGuardRecordsNothing) {
    Tensor x = randn64({3}, 4).set_requires_grad();
    Tensor y;
    {
        NoGradGuard no_grad;
        y = x * 2.0;
        EXPECT_FALSE(GradMode::enabled());
    }
    EXPECT_TRUE(GradMode::enabled());
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
    EXPECT_THROW(sum(y).backward(), Error);
}

TEST(Autograd, DetachCutsTheGraph) {
    Tensor x = randn64({3}, 5).set_requires_grad();
    Tensor y = (x * 2.0).detach();
    EXPECT_FALSE(y.requires_grad());
    Tensor z = x * y;  // y is a constant now: dz/dx = y
    sum(z).backward();
    expect_close(x.grad(), y, 0.0);
}

TEST(Autograd, NonScalarNeedsAGradient) {
    Tensor x = randn64({3}, 6).set_requires_grad();
    Tensor y = x * 2.0;
    try {
        y.backward();
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("scalar"), std::string::npos) << e.what();
    }
    y.backward(ones({3}, DType::F64));  // an explicit gradient works
    expect_close(x.grad(), full({3}, 2.0, DType::F64), 0.0);
}

TEST(Autograd, SecondBackwardThroughFreedGraphIsAnError) {
    Tensor x = randn64({3}, 7).set_requires_grad();
    Tensor loss = sum(exp(x));
    loss.backward();
    try {
        loss.backward();
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("second time"), std::string::npos) << e.what();
    }
}

TEST(Autograd, SavedTensorsAreReleasedAfterBackward) {
    Tensor x = randn64({64}, 8).set_requires_grad();
    Tensor y = exp(x);  // saves its output
    std::weak_ptr<Storage> saved = y.impl()->storage;
    Tensor loss = sum(y * 3.0);
    y = Tensor();  // only the graph holds y's storage now
    EXPECT_FALSE(saved.expired());
    loss.backward();
    EXPECT_TRUE(saved.expired()) << "the graph still holds a saved tensor after backward";
}

TEST(Autograd, GraphIsFreedWithTheLoss) {
    Tensor x = randn64({16}, 9).set_requires_grad();
    std::weak_ptr<Node> node;
    {
        Tensor loss = sum(tanh(x));
        node = loss.grad_fn();
        EXPECT_FALSE(node.expired());
    }
    EXPECT_TRUE(node.expired()) << "a graph outlived its output (reference cycle?)";
}

TEST(Autograd, RequiresGradOnlyOnFloatingLeaves) {
    Tensor ids = zeros({3}, DType::I64);
    EXPECT_THROW(ids.set_requires_grad(), Error);
    Tensor x = randn64({3}, 10).set_requires_grad();
    Tensor y = x * 2.0;
    EXPECT_THROW(y.set_requires_grad(), Error);
}

TEST(Autograd, InPlaceOnAGradTensorIsRefused) {
    Tensor x = randn64({3}, 11).set_requires_grad();
    EXPECT_THROW(x.add_(ones({3}, DType::F64)), Error);
    NoGradGuard no_grad;
    x.add_(ones({3}, DType::F64));  // allowed for optimizer updates
}

TEST(Autograd, GradientsFlowAcrossDtypes) {
    Tensor x = randn64({4}, 12).set_requires_grad();
    Tensor y = cast(x, DType::F32);
    sum(y * y).backward();
    ASSERT_EQ(x.grad().dtype(), DType::F64);
    expect_close(x.grad(), x.detach() * 2.0, 1e-6);
}

TEST(Autograd, DeepChainDoesNotOverflowTheStack) {
    Tensor x = randn64({2}, 13).set_requires_grad();
    Tensor y = x;
    for (int i = 0; i < 20000; i++) y = y * 1.0;
    sum(y).backward();
    expect_close(x.grad(), ones({2}, DType::F64), 0.0);
}

TEST(Autograd, LeafAdoptsAFreshGradientWithoutACopy) {
    Tensor x = randn64({1000}, 5).set_requires_grad();
    sum(exp(x)).backward();  // exp's backward makes one new tensor g * exp(x): nothing else holds it
    expect_close(x.grad(), exp(x.detach()), 1e-15);
    // a second backward accumulates into the adopted buffer
    sum(exp(x)).backward();
    expect_close(x.grad(), exp(x.detach()) * 2.0, 1e-15);
}

TEST(Autograd, TwoLeavesGivenTheSameGradientDoNotShareIt) {
    // add's backward hands the same tensor to both inputs: neither leaf may adopt it
    Tensor a = randn64({4}, 6).set_requires_grad(), b = randn64({4}, 7).set_requires_grad();
    Tensor w = randn64({4}, 8);
    sum((a + b) * w).backward();
    a.grad().add_(ones({4}, DType::F64));
    expect_close(b.grad(), w, 1e-15);  // untouched by the change to a's gradient
    expect_close(a.grad(), w + 1.0, 1e-15);
}

TEST(Autograd, AGradientStillUsedElsewhereIsCopied) {
    // y = x * 1 feeds both the loss and z; x's gradient must not alias the tensor flowing to z
    Tensor x = randn64({3}, 9).set_requires_grad();
    Tensor y = x + 0.0;
    sum(y * 2.0 + y * y).backward();  // dy = 2 + 2y, dx = dy
    expect_close(x.grad(), x.detach() * 2.0 + 2.0, 1e-15);
}
