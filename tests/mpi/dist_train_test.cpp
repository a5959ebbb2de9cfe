// tests/mpi/dist_train_test.cpp
// defines: the data-parallel training tests, linked with tests/mpi/dist_mpi_test.cpp (its main)
// and run by `make test` under `mpirun --oversubscribe -np 2`: each loss on 2 ranks x 16 pairs
// equals one process x 32 pairs in value and gradient (F64 and F32); every parameter's gradient
// of a model equals one process's (with and without GradCache accumulation); 20 training steps on
// 2 ranks log one process's losses and keep the parameters bit-identical across ranks; a resume on
// 2 ranks is exact and one on another number of processes is an error. The one-process references
// run inside each rank under dist::LocalScope.
//
// Also the `--scenario=train-die` run: rank 1 is killed after its third training step, and rank 0
// must end the job non-zero within the timeout (tools/run-tests.sh checks).
#include <csignal>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "dist/comm.h"
#include "engine/json.h"
#include "engine/ops.h"
#include "models/clip.h"
#include "train/global_losses.h"
#include "train/losses.h"
#include "train/train_step.h"
#include "train/trainer.h"
#include "tests/test_util.h"

using namespace rankclip;
using namespace rankclip::test;

namespace {

constexpr int64_t kGlobal = 32, kDim = 8;

// The global batch's features, the same on every rank. `ties`: entries in {-1, -1/2, 0, 1/2, 1}
// (not normalised), whose dot products are exact in any summation order, so that RankCLIP's
// targets hold many exact ties on every rank and in one process alike, and the tie-break decides
// the ranking; used with logit_scale 0 (s = 1, exact). Otherwise unit rows of Gaussian draws.
std::pair<Tensor, Tensor> global_features(DType dtype, bool ties) {
    Tensor v = randn64({kGlobal, kDim}, 11), t = randn64({kGlobal, kDim}, 12);
    if (!ties) return {l2_normalize(v, -1).to(dtype), l2_normalize(t, -1).to(dtype)};
    auto halves = [&](const Tensor& x) {
        std::vector<double> h = x.to_vector<double>();
        for (double& e : h) e = std::round(std::clamp(e, -1.0, 1.0) * 2.0) * 0.5;
        return from_vector(h, {kGlobal, kDim}, dtype);
    };
    return {halves(v), halves(t)};
}

// This rank's rows of a global batch of n.
int64_t rows_per_rank(int64_t n) { return n / dist::world_size(); }
int64_t first_row(int64_t n) { return rows_per_rank(n) * dist::rank(); }

Tensor summed_over_ranks(const Tensor& x) {
    Tensor s = x.detach().contiguous().clone();
    dist::all_reduce_(s, dist::Reduce::Sum);
    return s;
}

struct LossCase {
    std::string name;
    LossOptions options;
};

std::vector<LossCase> loss_cases() {
    LossOptions clip, rankclip, rankclip_log, cyclip, siglip;
    clip.kind = LossKind::Clip;
    rankclip.kind = LossKind::RankCLIP;  // both consistency terms
    rankclip_log = rankclip;
    rankclip_log.position_weighting = PositionWeighting::Log;
    cyclip.kind = LossKind::CyCLIP;
    siglip.kind = LossKind::SigLIP;
    return {{"clip", clip}, {"rankclip", rankclip}, {"rankclip (log position weights)", rankclip_log},
            {"cyclip", cyclip}, {"siglip", siglip}};
}

void check_loss(const LossCase& lc, DType dtype, double rtol, bool ties) {
    const auto [V0, T0] = global_features(dtype, ties);
    const double log_s = ties ? 0.0 : std::log(10.0);
    const int64_t b = rows_per_rank(kGlobal), start = first_row(kGlobal);
    const double atol = rtol * 1e-2;
    const std::string what = lc.name + " " + dtype_name(dtype) + (ties ? " (ties)" : "");
    // one process, the whole batch
    Tensor V = V0.clone().set_requires_grad(true), T = T0.clone().set_requires_grad(true);
    Tensor scale = full({}, log_s, dtype).set_requires_grad(true);
    Tensor bias = full({}, -2.0, dtype).set_requires_grad(true);
    Generator one_gen(5);
    LossOutput one;
    {
        dist::LocalScope local;
        one = compute_loss(lc.options, V, T, scale, bias, 1.5, one_gen);
        one.loss.backward();
    }
    // this rank's share
    Tensor v = V0.narrow(0, start, b).contiguous().set_requires_grad(true);
    Tensor t = T0.narrow(0, start, b).contiguous().set_requires_grad(true);
    Tensor my_scale = full({}, log_s, dtype).set_requires_grad(true);
    Tensor my_bias = full({}, -2.0, dtype).set_requires_grad(true);
    Generator gen(5);
    LossOutput share = global_loss_share(lc.options, v, t, my_scale, my_bias, 1.5, gen);
    share.loss.backward();

    expect_close(summed_over_ranks(share.loss), one.loss.detach(), rtol, atol, what + ": loss");
    ASSERT_EQ(share.parts.size(), one.parts.size());
    for (size_t i = 0; i < one.parts.size(); i++) {
        EXPECT_EQ(share.parts[i].first, one.parts[i].first);
        expect_close(summed_over_ranks(share.parts[i].second), one.parts[i].second, rtol, atol,
                     what + ": part " + one.parts[i].first);
    }
    expect_close(v.grad(), V.grad().narrow(0, start, b), rtol, atol, what + ": image features' gradient");
    expect_close(t.grad(), T.grad().narrow(0, start, b), rtol, atol, what + ": text features' gradient");
    expect_close(summed_over_ranks(my_scale.grad()), scale.grad(), rtol, atol, what + ": logit_scale's gradient");
    if (lc.options.kind == LossKind::SigLIP)
        expect_close(summed_over_ranks(my_bias.grad()), bias.grad(), rtol, atol, what + ": logit_bias's gradient");
    EXPECT_EQ(gen.get_state(), one_gen.get_state()) << what << ": the tie-break draws differ";
}

// The micro model of the trainer tests.
CLIPConfig micro_config() {
    CLIPConfig m = clip_config("tiny");
    m.image_size = 16, m.vision_width = 32, m.vision_layers = 1, m.vision_heads = 2;
    m.context_length = 12, m.vocab_size = 674;  // the synthetic default vocabulary
    m.text_width = 32, m.text_layers = 1, m.text_heads = 2, m.embed_dim = 16;
    return m;
}

// The micro model as a JSON file, written once by rank 0 into `dir`.
std::string micro_model(const std::string& dir) {
    const std::string path = dir + "/micro.json";
    if (dist::is_main()) std::ofstream(path) << micro_config().to_json().dump();
    dist::barrier();
    return path;
}

// A directory every rank sees: made by rank 0, its name broadcast; removed by rank 0 at the end.
struct SharedTempDir {
    std::string path;
    SharedTempDir() {
        Tensor name = zeros({256}, DType::I64);
        if (dist::is_main()) {
            std::string pattern = "/tmp/rankclip_dist_XXXXXX";
            if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
            for (size_t i = 0; i < pattern.size(); i++) name.data<int64_t>()[i] = pattern[i];
        }
        dist::broadcast_(name, 0);
        for (int64_t i = 0; i < 256 && name.data<int64_t>()[i]; i++) path += char(name.data<int64_t>()[i]);
    }
    ~SharedTempDir() {
        dist::barrier();
        if (dist::is_main()) std::filesystem::remove_all(path);
    }
    std::string file(const std::string& name) const { return path + "/" + name; }
};

TrainConfig micro_run(const std::string& model, const std::string& out, int64_t batch, int64_t steps) {
    TrainConfig c;
    c.model = model;
    c.data = "synthetic:train:256";
    c.batch_size = batch;
    c.steps = steps;
    c.workers = 1;
    c.threads = 1;
    c.lr = 1e-3;
    c.log_every = 1;
    c.out = out;
    c.loss.kind = LossKind::RankCLIP;
    return c;
}

std::vector<double> logged_losses(const std::string& run_dir) {
    std::vector<double> out;
    std::ifstream in(run_dir + "/metrics.jsonl");
    for (std::string line; std::getline(in, line);) {
        Json j = Json::parse(line);
        if (j.at("type").as_string() == "train") out.push_back(j.at("loss").as_double());
    }
    return out;
}

std::string file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// FNV-1a of every parameter's bytes
uint64_t parameter_hash(const CLIP& model) {
    uint64_t h = 1469598103934665603ull;
    for (const Tensor& p : model.parameters()) {
        Tensor c = p.to(Device::cpu()).contiguous();
        const auto* bytes = static_cast<const unsigned char*>(c.raw_data());
        for (int64_t i = 0; i < c.numel() * int64_t(dtype_size(c.dtype())); i++) h = (h ^ bytes[i]) * 1099511628211ull;
    }
    return h;
}

}  // namespace

TEST(DistTrain, EachLossOnTwoRanksEqualsOneBigBatch) {
    ASSERT_EQ(kGlobal % dist::world_size(), 0);
    for (const LossCase& lc : loss_cases()) {
        for (bool ties : {false, true}) {
            check_loss(lc, DType::F64, 1e-10, ties);
            check_loss(lc, DType::F32, 1e-5, ties);
        }
    }
}

TEST(DistTrain, EveryParameterGradientEqualsOneBigBatch) {
    const CLIPConfig m = micro_config();
    Tensor images = randn64({kGlobal, 3, 16, 16}, 31).to(DType::F32);
    std::vector<int64_t> ids(kGlobal * 12);
    for (int64_t i = 0; i < kGlobal; i++)
        for (int64_t j = 0; j < 12; j++) ids[i * 12 + j] = j == 11 ? 673 : (i * 7 + j * 13) % 600 + 1;
    Tensor text = from_vector(ids, {kGlobal, 12}, DType::I64);
    const int64_t b = rows_per_rank(kGlobal), start = first_row(kGlobal);
    for (int accum : {1, 2}) {
        for (LossKind kind : {LossKind::RankCLIP, LossKind::Clip}) {
            const std::string what = std::string(loss_kind_name(kind)) + ", accum " + std::to_string(accum);
            Generator init(3);
            CLIP model(m, init);
            StepOptions so;
            so.loss.kind = kind;
            so.accum = accum;
            std::vector<Tensor> one_grads;
            Generator one_gen(9);
            {
                dist::LocalScope local;
                compute_gradients(model, images, text, so, 1.5, one_gen);
                for (const Tensor& p : model.parameters()) one_grads.push_back(p.grad().clone());
            }
            Generator gen(9);
            StepStats s = compute_gradients(model, images.narrow(0, start, b).contiguous(),
                                            text.narrow(0, start, b).contiguous(), so, 1.5, gen);
            const auto named = model.named_parameters();
            ASSERT_EQ(named.size(), one_grads.size());
            for (size_t i = 0; i < named.size(); i++) {
                const Tensor& g = named[i].second.grad();
                ASSERT_TRUE(g.defined()) << what << ": " << named[i].first << " has no gradient";
                const double ref = global_norm({one_grads[i].to(DType::F64)}).item();
                const double diff = global_norm({(g - one_grads[i]).to(DType::F64)}).item();
                EXPECT_GT(ref, 0.0) << what << ": " << named[i].first << "'s one-process gradient is zero";
                EXPECT_LE(diff, 1e-5 * ref) << what << ": " << named[i].first << " differs from one process's by "
                                            << diff / ref << " relative";
            }
            EXPECT_TRUE(std::isfinite(s.loss));
        }
    }
}

TEST(DistTrain, TwentyStepsLogOneProcessLossesAndRanksStayBitIdentical) {
    SharedTempDir shared;
    const std::string model = micro_model(shared.path);
    TempDir mine("rankclip_dist_one");
    TrainConfig one = micro_run(model, mine.file("one"), kGlobal, 20);
    {
        dist::LocalScope local;
        ASSERT_EQ(train(one).steps_done, 20);
    }
    TrainConfig two = micro_run(model, shared.file("two"), kGlobal / dist::world_size(), 20);
    std::vector<int64_t> hashes;
    TrainHooks hooks;
    hooks.after_step = [&](const CLIP& m, int64_t) { hashes.push_back(int64_t(parameter_hash(m))); };
    ASSERT_EQ(train(two, "", hooks).steps_done, 20);
    ASSERT_EQ(hashes.size(), 20u);

    // the parameters after every step, the same bits on every rank
    Tensor all = dist::all_gather(from_vector(hashes, {1, 20}, DType::I64));
    for (int r = 1; r < dist::world_size(); r++)
        for (int64_t k = 0; k < 20; k++)
            EXPECT_EQ(all.data<int64_t>()[r * 20 + k], all.data<int64_t>()[k]) << "rank " << r << " after step " << k + 1;
    // the losses of one process with the same global batch
    const std::vector<double> a = logged_losses(one.out), b = logged_losses(two.out);
    ASSERT_EQ(a.size(), 20u);
    ASSERT_EQ(b.size(), 20u);
    for (size_t k = 0; k < a.size(); k++) EXPECT_NEAR(b[k], a[k], 1e-4 * std::abs(a[k])) << "step " << k + 1;
    dist::barrier();  // rank 0 keeps reading the shared run until here
}

TEST(DistTrain, ResumeOnTwoRanksIsExactAndOtherWorldSizesAreRefused) {
    SharedTempDir shared;
    const std::string micro = micro_model(shared.path);
    const int64_t b = kGlobal / dist::world_size();
    TrainConfig whole = micro_run(micro, shared.file("whole"), b, 8);
    const TrainResult w = train(whole);
    TrainConfig part = micro_run(micro, shared.file("part"), b, 8);
    part.stop_at = 4;
    ASSERT_EQ(train(part).steps_done, 4);
    dist::barrier();  // rank 0's checkpoint is on disk before any rank reads it
    TrainConfig again;
    again.out = part.out;
    again.workers = 1;
    again.threads = 1;
    again.log_every = 1;
    const TrainResult r = train(again, part.out);
    EXPECT_EQ(r.steps_done, 8);
    dist::barrier();
    if (dist::is_main()) {
        const std::string x = file_bytes(w.checkpoint), y = file_bytes(r.checkpoint);
        ASSERT_GT(x.size(), 1000u);
        EXPECT_TRUE(x == y) << "the resumed run's last checkpoint differs from the uninterrupted run's";
        EXPECT_EQ(logged_losses(whole.out), logged_losses(part.out));
    }
    // one process cannot continue a run of two
    dist::LocalScope local;
    const std::string msg = error_of([&] { train(again, part.out); });
    EXPECT_NE(msg.find("trained on 2 processes"), std::string::npos) << msg;
}

// rank 1 dies after its third step; rank 0 must not hang (tools/run-tests.sh times it)
int run_training_scenario(const std::string& scenario) {
    if (scenario != "train-die") return -1;
    SharedTempDir shared;
    TrainConfig c = micro_run(micro_model(shared.path), shared.file("run"), 16, 50);
    TrainHooks hooks;
    hooks.after_step = [](const CLIP&, int64_t step) {
        if (dist::rank() == 1 && step == 3) std::raise(SIGKILL);
    };
    train(c, "", hooks);
    std::fprintf(stderr, "rank %d: training finished although rank 1 died\n", dist::rank());
    return 0;
}
