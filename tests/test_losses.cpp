// tests/test_losses.cpp
// tests: the training losses of train/losses.h against PyTorch (tests/ref/loss_reference.safetensors,
// written by tools/gen_loss_refs.py from the formulas of docs/RANKCLIP.md and the released RankCLIP listMLE):
// for every case its total, its named parts and the gradients of the total w.r.t. V, T,
// logit_scale (and logit_bias), in F64 and in F32 from the same (F32-exact) inputs, with
// rankclip::Generator seeded like the torch.Generator so that the ListMLE tie-break
// permutations are the same; and the plain ListMLE cases (value, gradient, tie-broken ranking).
// Then the behaviour around them: rankclip's draw order, the weight schedules, name parsing,
// compute_loss's dispatch, an F64 gradcheck of the whole RankCLIP loss, and sanity checks.
// The fused list_mle op itself is tested in tests/test_list_mle.cpp.
//
// Tolerances (relative to the element, plus the same fraction of the tensor's largest magnitude,
// for elements small only through cancellation): F64 1e-10, F32 1e-5 for values and parts,
// 2e-5 for gradients (and 1e-7 absolute on F32 ListMLE values, for the one-column case whose
// value is log(1 + 1e-10)).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/json.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "reference_file.h"
#include "test_util.h"
#include "train/losses.h"

using namespace rankclip;
using rankclip::test::error_of;
using rankclip::test::load_reference;
using rankclip::test::ReferenceFile;

namespace {

const char* kReferencePath = "tests/ref/loss_reference.safetensors";

// Committed; missing, it is a failure naming its generator.
const ReferenceFile& reference() { return load_reference(kReferencePath, "tools/gen_loss_refs.py"); }

// The cases its metadata lists, parsed once: the losses' and the plain ListMLE ones.
const Json& loss_cases() {
    static const Json cases = reference().meta("cases");
    return cases;
}
const Json& listmle_cases() {
    static const Json cases = reference().meta("listmle_cases");
    return cases;
}

struct Tol {
    double value, grad, atol;
};
// atol: F32 cannot hold log(1 + 1e-10) (a one-column ListMLE), which F64 keeps
Tol tol_for(DType dtype) { return dtype == DType::F64 ? Tol{1e-10, 1e-10, 0.0} : Tol{1e-5, 2e-5, 1e-7}; }

// |got - want| <= atol + rtol (|want| + max|want|) elementwise, the worst element reported.
void expect_near_ref(const Tensor& got, const Tensor& want, double rtol, const std::string& what, double atol = 0.0) {
    ASSERT_TRUE(got.defined()) << what << ": undefined";
    ASSERT_EQ(got.shape(), want.shape()) << what << ": " << got.str() << " vs " << want.str();
    auto g = got.to_vector<double>(), w = want.to_vector<double>();
    double scale = 0;
    for (double v : w) scale = std::max(scale, std::abs(v));
    size_t bad = 0, worst = 0;
    double worst_err = -1;
    for (size_t i = 0; i < g.size(); i++) {
        double err = std::abs(g[i] - w[i]);
        if (!(err <= atol + rtol * (std::abs(w[i]) + scale))) {
            bad++;
            if (!(err <= worst_err)) worst_err = err, worst = i;
        }
    }
    EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << g.size() << " elements off; worst at flat index " << worst
                       << ": got " << (bad ? g[worst] : 0) << ", want " << (bad ? w[worst] : 0) << " (rtol " << rtol
                       << ")";
}

LossOptions options_of(const Json& c) {
    LossOptions o;
    o.kind = parse_loss_kind(c["kind"].as_string());
    const Json& j = c["options"];
    o.rank_cross = j["rank_cross"].as_bool();
    o.rank_in = j["rank_in"].as_bool();
    if (!j["lambda_cross"].is_null()) o.lambda_cross = j["lambda_cross"].as_double();
    if (!j["lambda_in"].is_null()) o.lambda_in = j["lambda_in"].as_double();
    const std::string& pw = j["position_weighting"].as_string();
    RC_CHECK(pw == "none" || pw == "log", kReferencePath, ": bad position_weighting ", pw);
    o.position_weighting = pw == "log" ? PositionWeighting::Log : PositionWeighting::None;
    o.cyclip_lambda_in = j["cyclip_lambda_in"].as_double();
    o.cyclip_lambda_cross = j["cyclip_lambda_cross"].as_double();
    return o;
}

Tensor leaf(const Tensor& t, DType dtype) {
    Tensor x = t.to(dtype).detach().clone();
    x.set_requires_grad(true);
    return x;
}

// One reference case in one dtype: total, parts (names, order, values), gradients.
void check_loss_case(const Json& c, DType dtype) {
    const ReferenceFile& ref = reference();
    std::string name = c["name"].as_string();
    SCOPED_TRACE(name + " " + dtype_name(dtype));
    Tol tol = tol_for(dtype);
    LossOptions o = options_of(c);
    Tensor V = leaf(ref.get(name + ".V"), dtype), T = leaf(ref.get(name + ".T"), dtype);
    Tensor ls = leaf(ref.get(name + ".logit_scale"), dtype);
    bool has_bias = ref.has(name + ".logit_bias");
    Tensor lb = has_bias ? leaf(ref.get(name + ".logit_bias"), dtype) : Tensor();
    Generator gen(uint64_t(c["seed"].as_int()));
    LossOutput out = compute_loss(o, V, T, ls, lb, c["rank_weight"].as_double(), gen);

    ASSERT_TRUE(out.loss.defined());
    EXPECT_EQ(out.loss.dim(), 0) << out.loss.str();
    EXPECT_EQ(out.loss.dtype(), dtype) << "the total should keep the features' dtype";
    expect_near_ref(out.loss, ref.get(name + ".loss"), tol.value, "loss");
    const Json& parts = c["parts"];
    ASSERT_EQ(out.parts.size(), parts.size()) << "number of parts";
    for (size_t k = 0; k < parts.size(); k++) {
        const std::string& part = parts.at(k).as_string();
        EXPECT_EQ(out.parts[k].first, part) << "part " << k;
        EXPECT_FALSE(out.parts[k].second.requires_grad()) << "part " << part << " should be detached";
        expect_near_ref(out.parts[k].second.reshape({}), ref.get(name + ".part." + part), tol.value, "part " + part);
    }

    out.loss.backward();
    expect_near_ref(V.grad(), ref.get(name + ".grad.V"), tol.grad, "grad V");
    expect_near_ref(T.grad(), ref.get(name + ".grad.T"), tol.grad, "grad T");
    expect_near_ref(ls.grad().reshape({}), ref.get(name + ".grad.logit_scale"), tol.grad, "grad logit_scale");
    if (has_bias) expect_near_ref(lb.grad().reshape({}), ref.get(name + ".grad.logit_bias"), tol.grad, "grad logit_bias");
}

void check_all_cases_of_kind(const std::string& kind) {
    int n = 0;
    for (const Json& c : loss_cases().as_array())
        if (c["kind"].as_string() == kind) {
            n++;
            for (DType dtype : {DType::F64, DType::F32}) check_loss_case(c, dtype);
        }
    EXPECT_GE(n, 4) << "reference cases of " << kind;
}

TEST(LossesTorch, Clip) { check_all_cases_of_kind("clip"); }
TEST(LossesTorch, RankCLIP) { check_all_cases_of_kind("rankclip"); }
TEST(LossesTorch, CyCLIP) { check_all_cases_of_kind("cyclip"); }
TEST(LossesTorch, SigLIP) { check_all_cases_of_kind("siglip"); }

// Plain ListMLE: the tie-broken ranking exactly, then value and gradient, fused and composite.
TEST(LossesTorch, ListMLE) {
    const ReferenceFile& ref = reference();
    ASSERT_GE(listmle_cases().size(), 4u);
    for (const Json& c : listmle_cases().as_array()) {
        std::string p = "listmle." + c["name"].as_string();
        uint64_t seed = uint64_t(c["seed"].as_int());
        LossOptions o;
        o.position_weighting = c["position_weighting"].as_string() == "log" ? PositionWeighting::Log
                                                                            : PositionWeighting::None;
        for (DType dtype : {DType::F64, DType::F32}) {
            Tensor targets = ref.get(p + ".targets").to(dtype);
            {
                Generator gen(seed);
                Tensor order = ranking_with_tie_break(targets, gen);
                EXPECT_EQ(order.dtype(), DType::I64);
                EXPECT_EQ(order.to_vector<int64_t>(), ref.get(p + ".order").to_vector<int64_t>())
                    << p << " " << dtype_name(dtype) << ": tie-broken ranking differs from torch's";
            }
            for (bool fused : {true, false}) {
                SCOPED_TRACE(p + " " + dtype_name(dtype) + (fused ? " fused" : " composite"));
                Tensor scores = leaf(ref.get(p + ".scores"), dtype);
                Generator gen(seed);
                Tensor value = list_mle_loss(scores, targets, gen, o, fused);
                EXPECT_EQ(value.dim(), 0) << value.str();
                expect_near_ref(value, ref.get(p + ".value"), tol_for(dtype).value, "value", tol_for(dtype).atol);
                value.backward();
                expect_near_ref(scores.grad(), ref.get(p + ".grad"), tol_for(dtype).grad, "grad");
            }
        }
    }
}

// The tie cases must depend on the tie-break: two seeds, two results (else they test nothing).
TEST(LossesTorch, TieCasesDependOnTheSeed) {
    const ReferenceFile& ref = reference();
    EXPECT_NE(ref.get("rankclip_ties.part.rank_cross").item(), ref.get("rankclip_ties_seed2.part.rank_cross").item());
    Tensor V = ref.get("rankclip_ties.V").to(DType::F64), T = ref.get("rankclip_ties.T").to(DType::F64);
    Tensor ls = ref.get("rankclip_ties.logit_scale").to(DType::F64);
    LossOptions o;
    o.kind = LossKind::RankCLIP;
    Generator g1(21), g2(22);
    double a = rankclip_loss(V, T, ls, o, 2.0, g1).loss.item(), b = rankclip_loss(V, T, ls, o, 2.0, g2).loss.item();
    EXPECT_NE(a, b);
}

// ---- rankclip's draws, weights and switches ----

Tensor random_features(int64_t B, int64_t D, uint64_t seed, DType dtype = DType::F64) {
    Generator gen(seed);
    return l2_normalize(randn({B, D}, gen, dtype), -1);
}

TEST(RankCLIPLoss, DrawsOneRandpermPerListMLEInTheDocumentedOrder) {
    const int64_t B = 6;
    Tensor V = random_features(B, 8, 1), T = random_features(B, 8, 2);
    Tensor ls = scalar_tensor(std::log(1 / 0.07), DType::F64);
    auto next_word_after = [&](bool cross, bool in) {
        LossOptions o;
        o.kind = LossKind::RankCLIP;
        o.rank_cross = cross;
        o.rank_in = in;
        Generator gen(5);
        rankclip_loss(V, T, ls, o, 1.0, gen);
        return gen.random();
    };
    auto word_after_randperms = [&](int n) {
        Generator gen(5);
        std::vector<int64_t> perm(B);
        for (int k = 0; k < n; k++) gen.randperm(perm.data(), B);
        return gen.random();
    };
    EXPECT_EQ(next_word_after(true, true), word_after_randperms(4));
    EXPECT_EQ(next_word_after(true, false), word_after_randperms(2));
    EXPECT_EQ(next_word_after(false, true), word_after_randperms(2));
    EXPECT_EQ(next_word_after(false, false), word_after_randperms(0));
}

TEST(RankCLIPLoss, BothTermsOffOrZeroWeightIsClip) {
    Tensor V = random_features(9, 12, 3), T = random_features(9, 12, 4);
    Tensor ls = scalar_tensor(std::log(1 / 0.07), DType::F64);
    double clip = clip_loss(V, T, ls).loss.item();
    LossOptions o;
    o.kind = LossKind::RankCLIP;
    Generator gen(1);
    EXPECT_NEAR(rankclip_loss(V, T, ls, o, 0.0, gen).loss.item(), clip, 1e-12 * std::abs(clip));
    o.rank_cross = o.rank_in = false;
    LossOutput out = rankclip_loss(V, T, ls, o, 1.0, gen);
    EXPECT_NEAR(out.loss.item(), clip, 1e-12 * std::abs(clip));
    ASSERT_EQ(out.parts.size(), 3u);
    EXPECT_EQ(out.parts[1].second.item(), 0.0);
    EXPECT_EQ(out.parts[2].second.item(), 0.0);
}

// Central differences through the whole loss: a fresh generator of the same seed per
// evaluation, so each sees the same tie-break (random features: no ties to cross).
TEST(RankCLIPLoss, GradcheckF64) {
    Tensor V = random_features(5, 6, 7), T = random_features(5, 6, 8);
    Tensor ls = scalar_tensor(std::log(1 / 0.07), DType::F64);
    for (PositionWeighting pw : {PositionWeighting::None, PositionWeighting::Log}) {
        LossOptions o;
        o.kind = LossKind::RankCLIP;
        o.position_weighting = pw;
        o.lambda_in = 3.0;
        test::gradcheck(
            [&](const std::vector<Tensor>& in) {
                Generator gen(77);
                // a larger weight than training's so the rank terms dominate the check
                return rankclip_loss(in[0], in[1], in[2], o, 5.0, gen).loss;
            },
            {V.clone(), T.clone(), ls.clone()}, 1e-6, 1e-8, 1e-6);
    }
}

TEST(Losses, GradcheckF64CyclipAndSiglip) {
    Tensor V = random_features(4, 5, 9), T = random_features(4, 5, 10);
    Tensor ls = scalar_tensor(std::log(10.0), DType::F64), lb = scalar_tensor(-3.0, DType::F64);
    LossOptions o;
    test::gradcheck([&](const std::vector<Tensor>& in) { return cyclip_loss(in[0], in[1], in[2], o).loss; },
                    {V.clone(), T.clone(), ls.clone()}, 1e-6, 1e-8, 1e-6);
    test::gradcheck([&](const std::vector<Tensor>& in) { return siglip_loss(in[0], in[1], in[2], in[3]).loss; },
                    {V.clone(), T.clone(), ls.clone(), lb.clone()}, 1e-6, 1e-8, 1e-6);
}

// ---- schedules and names ----

TEST(RankWeight, EpochRampStartsAtZeroRisesAndIsCapped) {
    LossOptions o;
    o.rank_schedule = RankWeightSchedule::EpochRamp;
    const int64_t E = 10;
    EXPECT_EQ(rank_weight_at(o, 1, E, 0, 1000), 0.0);                    // the first epoch
    EXPECT_NEAR(rank_weight_at(o, 2, E, 0, 1000), 3.0 / 9.0, 1e-15);
    EXPECT_NEAR(rank_weight_at(o, 4, E, 0, 1000), 1.0, 1e-15);
    EXPECT_NEAR(rank_weight_at(o, 6, E, 0, 1000), 5.0 / 3.0, 1e-15);     // 15/9, under the cap
    EXPECT_EQ(rank_weight_at(o, 7, E, 0, 1000), 2.0);                    // 18/9 = 2
    EXPECT_EQ(rank_weight_at(o, 10, E, 0, 1000), 2.0);                   // capped
    EXPECT_NEAR(rank_weight_at(o, 4, E, 123, 1000), 1.0, 1e-15);         // the step is not read
    o.rank_ramp_slope = 1.0;
    o.rank_ramp_cap = 0.5;
    EXPECT_NEAR(rank_weight_at(o, 3, 5, 0, 1), 0.5, 1e-15);              // min(2/4, 0.5)
    EXPECT_NEAR(rank_weight_at(o, 2, 5, 0, 1), 0.25, 1e-15);
}

TEST(RankWeight, StepRampAndConstant) {
    LossOptions o;
    o.rank_schedule = RankWeightSchedule::StepRamp;
    EXPECT_EQ(rank_weight_at(o, 1, 1, 0, 100), 0.0);
    EXPECT_NEAR(rank_weight_at(o, 1, 1, 33, 100), 1.0, 1e-15);           // 3 * 33 / 99
    EXPECT_NEAR(rank_weight_at(o, 5, 9, 11, 100), 1.0 / 3.0, 1e-15);     // the epoch is not read
    EXPECT_EQ(rank_weight_at(o, 1, 1, 99, 100), 2.0);
    EXPECT_EQ(rank_weight_at(o, 1, 1, 70, 100), 2.0);
    o.rank_schedule = RankWeightSchedule::Constant;
    o.rank_weight = 0.7;
    for (int64_t e : {1, 2, 64}) EXPECT_EQ(rank_weight_at(o, e, 64, e * 10, 1000), 0.7);
}

// The fix for the epoch-ramp's 1/(E - 1) at the fix point E = 1 is up to the implementation;
// it must not be NaN or infinite (a NaN weight would poison the loss).
TEST(RankWeight, SingleEpochOrStepRunIsFinite) {
    LossOptions o;
    EXPECT_TRUE(std::isfinite(rank_weight_at(o, 1, 1, 0, 1)));
    o.rank_schedule = RankWeightSchedule::StepRamp;
    EXPECT_TRUE(std::isfinite(rank_weight_at(o, 1, 1, 0, 1)));
}

TEST(LossNames, ParseAndNameRoundTripAndUnknownNamesAreErrors) {
    for (LossKind k : {LossKind::Clip, LossKind::RankCLIP, LossKind::CyCLIP, LossKind::SigLIP})
        EXPECT_EQ(parse_loss_kind(loss_kind_name(k)), k);
    EXPECT_EQ(parse_loss_kind("clip"), LossKind::Clip);
    EXPECT_EQ(parse_loss_kind("rankclip"), LossKind::RankCLIP);
    EXPECT_EQ(parse_loss_kind("cyclip"), LossKind::CyCLIP);
    EXPECT_EQ(parse_loss_kind("siglip"), LossKind::SigLIP);
    std::string err = error_of([] { parse_loss_kind("ranknet"); });
    EXPECT_NE(err.find("ranknet"), std::string::npos) << err;
    for (RankWeightSchedule s : {RankWeightSchedule::EpochRamp, RankWeightSchedule::StepRamp, RankWeightSchedule::Constant})
        EXPECT_EQ(parse_rank_weight_schedule(rank_weight_schedule_name(s)), s);
    EXPECT_EQ(parse_rank_weight_schedule("epoch-ramp"), RankWeightSchedule::EpochRamp);
    EXPECT_EQ(parse_rank_weight_schedule("step-ramp"), RankWeightSchedule::StepRamp);
    EXPECT_EQ(parse_rank_weight_schedule("constant"), RankWeightSchedule::Constant);
    err = error_of([] { parse_rank_weight_schedule("cosine"); });
    EXPECT_NE(err.find("cosine"), std::string::npos) << err;
}

// ---- dispatch and sanity on random data ----

TEST(Losses, ComputeLossDispatchesToEachLoss) {
    Tensor V = random_features(7, 10, 11), T = random_features(7, 10, 12);
    Tensor ls = scalar_tensor(std::log(1 / 0.07), DType::F64), lb = scalar_tensor(-10.0, DType::F64);
    LossOptions o;
    auto via = [&](LossKind k) {
        o.kind = k;
        Generator gen(3);
        return compute_loss(o, V, T, ls, lb, 1.5, gen);
    };
    Generator gen(3);
    EXPECT_EQ(via(LossKind::Clip).loss.item(), clip_loss(V, T, ls).loss.item());
    EXPECT_EQ(via(LossKind::RankCLIP).loss.item(), rankclip_loss(V, T, ls, o, 1.5, gen).loss.item());
    EXPECT_EQ(via(LossKind::CyCLIP).loss.item(), cyclip_loss(V, T, ls, o).loss.item());
    EXPECT_EQ(via(LossKind::SigLIP).loss.item(), siglip_loss(V, T, ls, lb).loss.item());
    // and the parts name what was computed
    EXPECT_EQ(via(LossKind::Clip).parts.at(0).first, "contrastive");
    EXPECT_EQ(via(LossKind::RankCLIP).parts.at(1).first, "rank_cross");
    EXPECT_EQ(via(LossKind::CyCLIP).parts.at(2).first, "cyclip_cross");
    EXPECT_EQ(via(LossKind::SigLIP).parts.at(0).first, "sigmoid");
}

TEST(Losses, EveryLossIsFiniteWithANonZeroGradientOnRandomF32Data) {
    for (LossKind k : {LossKind::Clip, LossKind::RankCLIP, LossKind::CyCLIP, LossKind::SigLIP}) {
        SCOPED_TRACE(loss_kind_name(k));
        Tensor V = random_features(16, 32, 21, DType::F32), T = random_features(16, 32, 22, DType::F32);
        V.set_requires_grad(true);
        T.set_requires_grad(true);
        Tensor ls = scalar_tensor(std::log(1 / 0.07), DType::F32).set_requires_grad(true);
        Tensor lb = scalar_tensor(-10.0, DType::F32).set_requires_grad(true);
        LossOptions o;
        o.kind = k;
        Generator gen(4);
        LossOutput out = compute_loss(o, V, T, ls, lb, 1.0, gen);
        ASSERT_TRUE(std::isfinite(out.loss.item())) << out.loss.item();
        for (auto& [name, part] : out.parts) EXPECT_TRUE(std::isfinite(part.item())) << name;
        out.loss.backward();
        std::vector<Tensor> leaves = {V, T, ls};
        if (k == LossKind::SigLIP) leaves.push_back(lb);
        for (const Tensor& x : leaves) {
            ASSERT_TRUE(x.grad().defined()) << x.str();
            auto g = x.grad().to_vector<double>();
            bool finite = std::all_of(g.begin(), g.end(), [](double v) { return std::isfinite(v); });
            bool nonzero = std::any_of(g.begin(), g.end(), [](double v) { return v != 0.0; });
            EXPECT_TRUE(finite && nonzero) << x.str();
        }
    }
}

// ListMLE is the negative log-likelihood of the target order: scores that agree with the
// targets give a smaller loss than scores ranked against them.
TEST(ListMLELoss, AgreeingScoresScoreBetterThanReversed) {
    Generator g(31);
    Tensor scores = randn({6, 20}, g, DType::F64);
    LossOptions o;
    for (PositionWeighting pw : {PositionWeighting::None, PositionWeighting::Log}) {
        o.position_weighting = pw;
        Generator g1(1), g2(1);
        double agree = list_mle_loss(scores, scores, g1, o).item();
        double reversed = list_mle_loss(scores, -scores, g2, o).item();
        EXPECT_LT(agree, reversed);
        EXPECT_GT(agree, 0.0);
    }
    // and the gradient points the right way: descending along it lowers the loss
    Tensor x = scores.clone();
    x.set_requires_grad(true);
    Tensor targets = randn({6, 20}, g, DType::F64);
    Generator g3(2);
    Tensor before = list_mle_loss(x, targets, g3, o);
    before.backward();
    Tensor stepped = (x.detach() - x.grad() * 0.01);
    Generator g4(2);
    EXPECT_LT(list_mle_loss(stepped, targets, g4, o).item(), before.item());
}

TEST(ListMLELoss, MismatchedShapesAreAnError) {
    Generator g(1);
    LossOptions o;
    std::string err = error_of([&] { list_mle_loss(zeros({3, 4}, DType::F64), zeros({3, 5}, DType::F64), g, o); });
    EXPECT_FALSE(err.empty());
}

}  // namespace
