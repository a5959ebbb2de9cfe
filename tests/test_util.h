// tests/test_util.h
// defines: helpers shared by the test suites — paths to the repo and to the optional test data,
// closeness checks, and the F64 central-difference gradient check used for every op.
#pragma once
#include <cstdint>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <sys/stat.h>

#include "engine/ops.h"
#include "engine/random.h"

namespace rankclip::test {

// The repo root: RANKCLIP_ROOT if set, else the working directory (make test runs from the root).
inline std::string repo_root() {
    const char* env = std::getenv("RANKCLIP_ROOT");
    return env ? env : ".";
}

// A fresh directory under /tmp, removed with everything in it when the object goes away.
struct TempDir {
    std::string path;
    explicit TempDir(const std::string& prefix = "rankclip_test") {
        std::string pattern = "/tmp/" + prefix + "_XXXXXX";
        char* p = ::mkdtemp(pattern.data());
        if (!p) throw std::runtime_error("mkdtemp failed for " + pattern);
        path = p;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string file(const std::string& name) const { return path + "/" + name; }
};

// The message of the rankclip::Error that fn() throws, or "" when it does not throw.
template <typename Fn>
std::string error_of(Fn fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

inline bool path_exists(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0;
}

// The optional test-data folder (docs/ARCHITECTURE.md, "Testing": CLIP's merges file and its
// golden tokenizations, too large or not ours to commit): $RANKCLIP_TEST_DATA, else shared/data
// beside the checkout; "" when absent (tests that need it skip, saying so).
inline std::string shared_data_dir() {
    const char* env = std::getenv("RANKCLIP_TEST_DATA");
    std::string p = env && *env ? std::string(env) : repo_root() + "/../shared/data";
    return path_exists(p) ? p : "";
}

// Max |a - b| <= atol + rtol * |b| elementwise, with the worst element reported.
inline void expect_close(const Tensor& a, const Tensor& b, double rtol, double atol = 0.0,
                         const std::string& what = "") {
    ASSERT_EQ(a.shape(), b.shape()) << what << ": shapes differ: " << a.str() << " vs " << b.str();
    auto av = a.to_vector<double>(), bv = b.to_vector<double>();
    double worst = 0;
    size_t worst_i = 0;
    bool ok = true;
    for (size_t i = 0; i < av.size(); i++) {
        double err = std::abs(av[i] - bv[i]);
        double tol = atol + rtol * std::abs(bv[i]);
        if (!(err <= tol) && !(std::isnan(av[i]) && std::isnan(bv[i])) && !(av[i] == bv[i])) {
            ok = false;
            if (!(err <= worst)) { worst = err; worst_i = i; }
        }
    }
    EXPECT_TRUE(ok) << what << ": worst error " << worst << " at flat index " << worst_i << ": " << av[worst_i]
                    << " vs " << bv[worst_i] << " (rtol " << rtol << ", atol " << atol << ")";
}

inline Tensor randn64(const Shape& shape, uint64_t seed) {
    Generator gen(seed);
    return randn(shape, gen, DType::F64);
}

using TensorFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Storage offset of flat (row-major) element i of t, following its strides.
inline int64_t element_offset(const Tensor& t, int64_t i) {
    int64_t off = t.offset();
    for (int64_t d = t.dim() - 1; d >= 0; d--) {
        off += (i % t.shape()[d]) * t.strides()[d];
        i /= t.shape()[d];
    }
    return off;
}

// Checks f's analytic gradients against central differences, in F64. The output is reduced
// with fixed random weights so every output element matters. Inputs may be non-contiguous
// views; every floating input gets requires_grad and is checked.
inline void gradcheck(const TensorFn& f, std::vector<Tensor> inputs, double eps = 1e-6, double atol = 1e-7,
                      double rtol = 1e-5) {
    for (Tensor& x : inputs)
        if (x.defined() && is_floating(x.dtype())) {
            ASSERT_EQ(x.dtype(), DType::F64) << "gradcheck runs in F64";
            x.zero_grad();
            x.set_requires_grad(true);
        }
    Tensor out = f(inputs);
    Tensor weights = randn64(out.shape(), 1234);
    auto loss_of = [&](const std::vector<Tensor>& in) {
        NoGradGuard no_grad;
        return sum(f(in) * weights).item();
    };
    sum(out * weights).backward();
    for (size_t k = 0; k < inputs.size(); k++) {
        Tensor x = inputs[k];
        if (!x.defined() || !is_floating(x.dtype())) continue;
        ASSERT_TRUE(x.grad().defined()) << "input " << k << " got no gradient";
        auto analytic = x.grad().to_vector<double>();
        double* base = static_cast<double*>(x.impl()->storage->data);
        for (int64_t i = 0; i < x.numel(); i++) {
            double* p = base + element_offset(x, i);
            double saved = *p;
            *p = saved + eps;
            double plus = loss_of(inputs);
            *p = saved - eps;
            double minus = loss_of(inputs);
            *p = saved;
            double numeric = (plus - minus) / (2 * eps);
            EXPECT_NEAR(analytic[i], numeric, atol + rtol * std::abs(numeric))
                << "input " << k << " " << x.str() << ", element " << i;
        }
    }
}

// The gradients of two implementations (fused vs composite) agree, for the same inputs.
inline void expect_gradients_match(const TensorFn& f, const TensorFn& g, std::vector<Tensor> inputs, double rtol,
                                   double atol = 1e-12) {
    auto grads_of = [&](const TensorFn& fn) {
        std::vector<Tensor> leaves;
        for (const Tensor& x : inputs) {
            Tensor l = x.detach();
            if (is_floating(l.dtype())) l.set_requires_grad(true);
            leaves.push_back(l);
        }
        Tensor out = fn(leaves);
        sum(out * randn64(out.shape(), 99).to(out.dtype())).backward();
        std::vector<Tensor> grads;
        for (const Tensor& l : leaves) grads.push_back(is_floating(l.dtype()) ? l.grad() : Tensor());
        return grads;
    };
    auto a = grads_of(f), b = grads_of(g);
    for (size_t k = 0; k < a.size(); k++)
        if (a[k].defined() || b[k].defined()) {
            ASSERT_TRUE(a[k].defined() && b[k].defined()) << "input " << k << ": one side has no gradient";
            expect_close(a[k], b[k], rtol, atol, "gradient of input " + std::to_string(k));
        }
}

}  // namespace rankclip::test
