// tests/test_torch_ops.cpp
// tests: every op of engine/ops.h against PyTorch 1.13, forward and backward, through the
// committed reference file tests/ref/ops_reference.safetensors (written by tools/gen_op_refs.py,
// which documents its layout). For each case: the engine runs the op on the stored inputs (some
// passed as non-contiguous views), compares each output with torch's, backpropagates torch's
// upstream gradient `go` and compares every input gradient. Fused ops with a composite
// (softmax, log_softmax, layer_norm, cross_entropy, attention) run both against the same case.
// Tolerances: F64 1e-10, F32 1e-5 (gradients 1e-4), relative to each element, plus a hundredth
// of that relative to the tensor's largest magnitude; integer outputs must be equal.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/json.h"
#include "engine/ops.h"
#include "engine/safetensors.h"
#include "reference_file.h"
#include "test_util.h"

using namespace rankclip;
using rankclip::test::load_reference;
using rankclip::test::ReferenceFile;

namespace {

const char* kReferencePath = "tests/ref/ops_reference.safetensors";

struct RefCase {
    std::string name, family, op;
    DType dtype = DType::F64;
    int64_t inputs = 0, outputs = 0;
    Json params;
};

// Loaded once; a missing or unreadable file is an Error (a test failure, never a skip): the
// file is committed, regenerate it with /usr/bin/python3 tools/gen_op_refs.py.
const ReferenceFile& reference() { return load_reference(kReferencePath, "tools/gen_op_refs.py"); }

// The cases its metadata lists, parsed once.
const std::vector<RefCase>& ref_cases() {
    static const std::vector<RefCase> cases = [] {
        const ReferenceFile& ref = reference();
        const Json listed = ref.meta("cases");
        std::vector<RefCase> out;
        for (const Json& c : listed.as_array()) {
            RefCase rc;
            rc.name = c["name"].as_string();
            rc.family = c["family"].as_string();
            rc.op = c["op"].as_string();
            RC_CHECK(parse_safetensors_dtype(c["dtype"].as_string(), &rc.dtype), ref.path, ": case ", rc.name,
                     ": bad dtype");
            rc.inputs = c["inputs"].as_int();
            rc.outputs = c["outputs"].as_int();
            rc.params = c["params"];
            out.push_back(std::move(rc));
        }
        return out;
    }();
    return cases;
}

// ---- reading case parameters ----

std::vector<int64_t> int_list(const Json& params, const char* key) {
    std::vector<int64_t> out;
    for (const Json& v : params[key].as_array()) out.push_back(v.as_int());
    return out;
}

DType dtype_param(const Json& params, const char* key) {
    DType dtype;
    RC_CHECK(parse_safetensors_dtype(params[key].as_string(), &dtype), "bad dtype parameter ", key);
    return dtype;
}

Reduction reduction_param(const Json& params) {
    const std::string& r = params["reduction"].as_string();
    if (r == "mean") return Reduction::Mean;
    if (r == "sum") return Reduction::Sum;
    RC_CHECK(r == "none", "unknown reduction '", r, "'");
    return Reduction::None;
}

// ---- the engine side of every op in the file ----

using Outputs = std::vector<Tensor>;
using OpFn = std::function<Outputs(const std::vector<Tensor>& in, const Json& p)>;
struct Impl {
    std::string name;  // "fused", "composite", "operator", ... (reported on failure)
    OpFn fn;
};

const std::map<std::string, std::vector<Impl>>& op_table() {
    using In = const std::vector<Tensor>&;
    using P = const Json&;
    static const std::map<std::string, std::vector<Impl>> table = {
        // binary elementwise, as functions and as operators
        {"add", {{"add", [](In x, P) -> Outputs { return {add(x[0], x[1])}; }},
                 {"operator+", [](In x, P) -> Outputs { return {x[0] + x[1]}; }}}},
        {"sub", {{"sub", [](In x, P) -> Outputs { return {sub(x[0], x[1])}; }},
                 {"operator-", [](In x, P) -> Outputs { return {x[0] - x[1]}; }}}},
        {"mul", {{"mul", [](In x, P) -> Outputs { return {mul(x[0], x[1])}; }},
                 {"operator*", [](In x, P) -> Outputs { return {x[0] * x[1]}; }}}},
        {"div", {{"div", [](In x, P) -> Outputs { return {div(x[0], x[1])}; }},
                 {"operator/", [](In x, P) -> Outputs { return {x[0] / x[1]}; }}}},
        {"maximum", {{"maximum", [](In x, P) -> Outputs { return {maximum(x[0], x[1])}; }}}},
        {"minimum", {{"minimum", [](In x, P) -> Outputs { return {minimum(x[0], x[1])}; }}}},
        {"eq", {{"eq", [](In x, P) -> Outputs { return {eq(x[0], x[1])}; }}}},
        {"gt", {{"gt", [](In x, P) -> Outputs { return {gt(x[0], x[1])}; }}}},
        {"lt", {{"lt", [](In x, P) -> Outputs { return {lt(x[0], x[1])}; }}}},
        // unary elementwise
        {"neg", {{"neg", [](In x, P) -> Outputs { return {neg(x[0])}; }},
                 {"unary operator-", [](In x, P) -> Outputs { return {-x[0]}; }}}},
        {"exp", {{"exp", [](In x, P) -> Outputs { return {exp(x[0])}; }}}},
        {"log", {{"log", [](In x, P) -> Outputs { return {log(x[0])}; }}}},
        {"sqrt", {{"sqrt", [](In x, P) -> Outputs { return {sqrt(x[0])}; }}}},
        {"rsqrt", {{"rsqrt", [](In x, P) -> Outputs { return {rsqrt(x[0])}; }}}},
        {"reciprocal", {{"reciprocal", [](In x, P) -> Outputs { return {reciprocal(x[0])}; }},
                        {"1.0 / x", [](In x, P) -> Outputs { return {1.0 / x[0]}; }}}},
        {"abs", {{"abs", [](In x, P) -> Outputs { return {abs(x[0])}; }}}},
        {"tanh", {{"tanh", [](In x, P) -> Outputs { return {tanh(x[0])}; }}}},
        {"sigmoid", {{"sigmoid", [](In x, P) -> Outputs { return {sigmoid(x[0])}; }}}},
        {"relu", {{"relu", [](In x, P) -> Outputs { return {relu(x[0])}; }}}},
        {"gelu", {{"gelu", [](In x, P p) -> Outputs { return {gelu(x[0], p["tanh"].as_bool())}; }}}},
        {"quick_gelu", {{"quick_gelu", [](In x, P) -> Outputs { return {quick_gelu(x[0])}; }}}},
        {"affine", {{"affine", [](In x, P p) -> Outputs {
                         return {affine(x[0], p["scale"].as_double(), p["shift"].as_double())};
                     }},
                    {"x * scale + shift", [](In x, P p) -> Outputs {
                         return {x[0] * p["scale"].as_double() + p["shift"].as_double()};
                     }}}},
        {"pow", {{"pow", [](In x, P p) -> Outputs { return {pow(x[0], p["exponent"].as_double())}; }}}},
        {"clamp", {{"clamp", [](In x, P p) -> Outputs {
                        return {clamp(x[0], p["lo"].as_double(), p["hi"].as_double())};
                    }}}},
        {"clamp_min", {{"clamp_min", [](In x, P p) -> Outputs { return {clamp_min(x[0], p["lo"].as_double())}; }}}},
        {"where", {{"where", [](In x, P) -> Outputs { return {where(x[0], x[1], x[2])}; }}}},
        {"cast", {{"cast", [](In x, P p) -> Outputs { return {cast(x[0], dtype_param(p, "to"))}; }}}},
        // reductions
        {"sum", {{"sum", [](In x, P p) -> Outputs { return {sum(x[0], int_list(p, "dims"), p["keepdim"].as_bool())}; }}}},
        {"mean", {{"mean", [](In x, P p) -> Outputs {
                       return {mean(x[0], int_list(p, "dims"), p["keepdim"].as_bool())};
                   }}}},
        {"amax", {{"amax", [](In x, P p) -> Outputs {
                       return {amax(x[0], int_list(p, "dims"), p["keepdim"].as_bool())};
                   }}}},
        {"amin", {{"amin", [](In x, P p) -> Outputs {
                       return {amin(x[0], int_list(p, "dims"), p["keepdim"].as_bool())};
                   }}}},
        {"logsumexp", {{"logsumexp", [](In x, P p) -> Outputs {
                            return {logsumexp(x[0], int_list(p, "dims"), p["keepdim"].as_bool())};
                        }}}},
        {"sum_to", {{"sum_to", [](In x, P p) -> Outputs { return {sum_to(x[0], int_list(p, "shape"))}; }}}},
        {"max", {{"max", [](In x, P p) -> Outputs {
                      auto [values, indices] = max(x[0], p["dim"].as_int(), p["keepdim"].as_bool());
                      return {values, indices};
                  }}}},
        {"argmax", {{"argmax", [](In x, P p) -> Outputs {
                         return {argmax(x[0], p["dim"].as_int(), p["keepdim"].as_bool())};
                     }}}},
        // linear algebra and shapes
        {"matmul", {{"matmul", [](In x, P) -> Outputs { return {matmul(x[0], x[1])}; }}}},
        {"cat", {{"cat", [](In x, P p) -> Outputs { return {cat(x, p["dim"].as_int())}; }}}},
        {"stack", {{"stack", [](In x, P p) -> Outputs { return {stack(x, p["dim"].as_int())}; }}}},
        {"flip", {{"flip", [](In x, P p) -> Outputs { return {flip(x[0], int_list(p, "dims"))}; }}}},
        {"cumsum", {{"cumsum", [](In x, P p) -> Outputs {
                         return {cumsum(x[0], p["dim"].as_int(), p["reverse"].as_bool())};
                     }}}},
        // indexing and sorting
        {"index_select", {{"index_select", [](In x, P p) -> Outputs {
                               return {index_select(x[0], p["dim"].as_int(), x[1])};
                           }}}},
        {"embedding", {{"embedding", [](In x, P) -> Outputs { return {embedding(x[0], x[1])}; }}}},
        {"gather", {{"gather", [](In x, P p) -> Outputs { return {gather(x[0], p["dim"].as_int(), x[1])}; }}}},
        {"sort", {{"sort", [](In x, P p) -> Outputs {
                       auto [values, indices] = sort(x[0], p["dim"].as_int(), p["descending"].as_bool());
                       return {values, indices};
                   }}}},
        {"argsort", {{"argsort", [](In x, P p) -> Outputs {
                          return {argsort(x[0], p["dim"].as_int(), p["descending"].as_bool())};
                      }}}},
        // nn: fused ops next to their composites
        {"softmax", {{"fused", [](In x, P p) -> Outputs { return {softmax(x[0], p["dim"].as_int())}; }},
                     {"composite", [](In x, P p) -> Outputs { return {softmax_composite(x[0], p["dim"].as_int())}; }}}},
        {"log_softmax", {{"fused", [](In x, P p) -> Outputs { return {log_softmax(x[0], p["dim"].as_int())}; }},
                         {"composite", [](In x, P p) -> Outputs {
                              return {log_softmax_composite(x[0], p["dim"].as_int())};
                          }}}},
        {"layer_norm", {{"fused", [](In x, P p) -> Outputs {
                             bool affine = x.size() == 3;
                             return {layer_norm(x[0], affine ? x[1] : Tensor(), affine ? x[2] : Tensor(),
                                                p["eps"].as_double())};
                         }},
                        {"composite", [](In x, P p) -> Outputs {
                             bool affine = x.size() == 3;
                             return {layer_norm_composite(x[0], affine ? x[1] : Tensor(), affine ? x[2] : Tensor(),
                                                          p["eps"].as_double())};
                         }}}},
        {"cross_entropy", {{"fused", [](In x, P p) -> Outputs {
                                return {cross_entropy(x[0], x[1], reduction_param(p), p["ignore_index"].as_int())};
                            }},
                           {"composite", [](In x, P p) -> Outputs {
                                return {cross_entropy_composite(x[0], x[1], reduction_param(p),
                                                                p["ignore_index"].as_int())};
                            }}}},
        {"l2_normalize", {{"l2_normalize", [](In x, P p) -> Outputs {
                               return {l2_normalize(x[0], p["dim"].as_int(), p["eps"].as_double())};
                           }}}},
        {"attention", {{"fused", [](In x, P p) -> Outputs {
                            return {scaled_dot_product_attention(x[0], x[1], x[2], p["causal"].as_bool(),
                                                                 p["scale"].as_double())};
                        }},
                       {"composite", [](In x, P p) -> Outputs {
                            return {attention_composite(x[0], x[1], x[2], p["causal"].as_bool(), p["scale"].as_double())};
                        }}}},
        // creation
        {"arange", {{"arange", [](In, P p) -> Outputs {
                         return {arange(p["start"].as_double(), p["end"].as_double(), p["step"].as_double(),
                                        dtype_param(p, "out_dtype"))};
                     }}}},
    };
    return table;
}

// ---- comparing ----

// Each element within rtol of torch's, or within rtol / 100 of the tensor's largest magnitude:
// elements that come out of cancellation (near zero) are judged on the tensor's scale. Measured
// worst cases on this machine use about a tenth of that scale term.
double tolerance(DType dtype, bool gradient) {
    if (dtype == DType::F64) return 1e-10;
    return gradient ? 1e-4 : 1e-5;
}

void expect_matches(const Tensor& got, const Tensor& want, bool gradient, const std::string& what) {
    ASSERT_TRUE(got.defined()) << what << ": the engine gave nothing (torch: " << want.str() << ")";
    ASSERT_EQ(got.dtype(), want.dtype()) << what << ": dtype " << got.str() << ", torch " << want.str();
    ASSERT_EQ(got.shape(), want.shape()) << what << ": shape " << got.str() << ", torch " << want.str();
    if (!is_floating(want.dtype())) {
        auto g = got.to_vector<int64_t>(), w = want.to_vector<int64_t>();
        for (size_t i = 0; i < w.size(); i++)
            ASSERT_EQ(g[i], w[i]) << what << ": differs at flat index " << i;
        return;
    }
    double scale = 0;
    for (double v : want.to_vector<double>())
        if (std::isfinite(v)) scale = std::max(scale, std::abs(v));
    double rtol = tolerance(want.dtype(), gradient);
    rankclip::test::expect_close(got, want, rtol, 0.01 * rtol * scale, what);
}

// x with the same shape and values but a transposed memory layout (a leaf, not contiguous).
Tensor noncontiguous_copy(const Tensor& x) {
    if (x.dim() < 2 || x.shape()[x.dim() - 1] == 1 || x.shape()[x.dim() - 2] == 1) return x.clone();
    Tensor t = x.transpose(-1, -2).contiguous().transpose(-1, -2);
    EXPECT_FALSE(t.is_contiguous());
    return t;
}

void run_case(const ReferenceFile& ref, const RefCase& c, const Impl& impl) {
    SCOPED_TRACE("case " + c.name + " (op " + c.op + ", engine " + impl.name + ")");
    std::set<int64_t> noncontig;
    if (const Json* nc = c.params.find("noncontig"))
        for (const Json& i : nc->as_array()) noncontig.insert(i.as_int());

    std::vector<Tensor> inputs;
    for (int64_t i = 0; i < c.inputs; i++) {
        const Tensor& stored = ref.get(c.name + ".in" + std::to_string(i));
        Tensor x = noncontig.count(i) ? noncontiguous_copy(stored) : stored.clone();
        if (is_floating(x.dtype())) x.set_requires_grad(true);
        inputs.push_back(x);
    }
    Outputs outs;
    try {
        outs = impl.fn(inputs, c.params);
    } catch (const std::exception& e) {
        ADD_FAILURE() << "the engine threw: " << e.what();
        return;
    }
    ASSERT_EQ(int64_t(outs.size()), c.outputs);

    // forward
    for (int64_t k = 0; k < c.outputs; k++)
        expect_matches(outs[k], ref.get(c.name + ".out" + std::to_string(k)), false, "output " + std::to_string(k));

    // backward: d(sum_k out_k * go_k) / d inputs, for the outputs torch differentiated
    bool torch_has_grads = false;
    for (int64_t i = 0; i < c.inputs; i++) torch_has_grads |= ref.has(c.name + ".grad" + std::to_string(i));
    if (!torch_has_grads) return;
    Tensor loss;
    for (int64_t k = 0; k < c.outputs; k++) {
        std::string go_name = c.name + ".go" + std::to_string(k);
        if (!ref.has(go_name) || !outs[k].requires_grad()) continue;
        Tensor term = sum(outs[k] * ref.get(go_name));
        loss = loss.defined() ? loss + term : term;
    }
    ASSERT_TRUE(loss.defined()) << "torch differentiated this op, the engine's output does not require grad";
    try {
        loss.backward();
    } catch (const std::exception& e) {
        ADD_FAILURE() << "backward threw: " << e.what();
        return;
    }
    for (int64_t i = 0; i < c.inputs; i++) {
        std::string grad_name = c.name + ".grad" + std::to_string(i);
        if (!ref.has(grad_name)) continue;
        expect_matches(inputs[i].grad(), ref.get(grad_name), true, "gradient of input " + std::to_string(i));
    }
}

// Runs every case of one family with every engine implementation of its op.
void run_family(const std::string& family) {
    const ReferenceFile& ref = reference();
    int ran = 0;
    for (const RefCase& c : ref_cases()) {
        if (c.family != family) continue;
        auto it = op_table().find(c.op);
        if (it == op_table().end()) {
            ADD_FAILURE() << "case " << c.name << ": op '" << c.op << "' has no engine call in op_table()";
            continue;
        }
        for (const Impl& impl : it->second) {
            run_case(ref, c, impl);
            ran++;
        }
    }
    EXPECT_GT(ran, 0) << "no cases of family " << family << " in " << kReferencePath;
}

const std::vector<std::string> kFamilies = {"Binary",  "Comparison", "Unary",    "Clamp",     "Reduce",
                                            "MaxArgmax", "Matmul",   "Shape",    "Indexing",  "Sort",
                                            "Softmax", "LayerNorm",  "CrossEntropy", "Normalize", "Attention",
                                            "Creation"};

}  // namespace

// The file, its cases and the op table agree: every case belongs to a TEST below and names an
// op the engine runs, every op of the table has cases in F64, and the inputs are all there.
TEST(TorchOps, ReferenceFileCoversEveryOp) {
    const ReferenceFile& ref = reference();
    ASSERT_FALSE(ref_cases().empty());
    std::set<std::string> ops_with_f64_cases, names;
    for (const RefCase& c : ref_cases()) {
        EXPECT_TRUE(names.insert(c.name).second) << "duplicate case " << c.name;
        EXPECT_NE(std::find(kFamilies.begin(), kFamilies.end(), c.family), kFamilies.end())
            << "case " << c.name << ": family " << c.family << " has no TEST";
        EXPECT_TRUE(op_table().count(c.op)) << "case " << c.name << ": unknown op " << c.op;
        if (c.dtype == DType::F64) ops_with_f64_cases.insert(c.op);
        for (int64_t i = 0; i < c.inputs; i++)
            EXPECT_TRUE(ref.has(c.name + ".in" + std::to_string(i))) << c.name << ": input " << i << " missing";
        for (int64_t k = 0; k < c.outputs; k++)
            EXPECT_TRUE(ref.has(c.name + ".out" + std::to_string(k))) << c.name << ": output " << k << " missing";
    }
    for (const auto& [op, impls] : op_table()) EXPECT_TRUE(ops_with_f64_cases.count(op)) << "no F64 case for " << op;
}

TEST(TorchOps, Binary) { run_family("Binary"); }
TEST(TorchOps, Comparison) { run_family("Comparison"); }
TEST(TorchOps, Unary) { run_family("Unary"); }
TEST(TorchOps, ClampWhereCast) { run_family("Clamp"); }
TEST(TorchOps, Reduce) { run_family("Reduce"); }
TEST(TorchOps, MaxArgmax) { run_family("MaxArgmax"); }
TEST(TorchOps, Matmul) { run_family("Matmul"); }
TEST(TorchOps, ShapeOps) { run_family("Shape"); }
TEST(TorchOps, Indexing) { run_family("Indexing"); }
TEST(TorchOps, Sort) { run_family("Sort"); }
TEST(TorchOps, Softmax) { run_family("Softmax"); }
TEST(TorchOps, LayerNorm) { run_family("LayerNorm"); }
TEST(TorchOps, CrossEntropy) { run_family("CrossEntropy"); }
TEST(TorchOps, Normalize) { run_family("Normalize"); }
TEST(TorchOps, Attention) { run_family("Attention"); }
TEST(TorchOps, Creation) { run_family("Creation"); }
