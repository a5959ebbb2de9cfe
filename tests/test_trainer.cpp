// tests/test_trainer.cpp
// The training loop and its step: GradCache accumulation gives the gradients of the whole batch,
// every parameter gets a gradient under every loss, a non-finite loss stops the step without
// touching the weights, the AdamW groups and schedules, exact resume (N steps straight equal
// k + resume + N - k, bit for bit), Ctrl-C saves and stops, and a short run learns.
#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <cstring>
#include <fstream>

#include "engine/safetensors.h"
#include "models/checkpoint.h"
#include "test_util.h"
#include "train/optimizer.h"
#include "train/schedule.h"
#include "train/train_step.h"
#include "train/trainer.h"

using namespace rankclip;
using namespace rankclip::test;

namespace {

// A CLIP small enough for many steps in a test: 16 px, patch 4, width 32, 1 layer each.
CLIPConfig micro_config() {
    CLIPConfig c = clip_config("tiny");
    c.image_size = 16;
    c.vision_width = 32;
    c.vision_layers = 1;
    c.vision_heads = 2;
    c.context_length = 12;
    c.vocab_size = 64;
    c.text_width = 32;
    c.text_layers = 1;
    c.text_heads = 2;
    c.embed_dim = 16;
    return c;
}

struct Batch {
    Tensor images, text;
};

Batch random_batch(const CLIPConfig& c, int64_t B, uint64_t seed) {
    Generator g(seed);
    Tensor images = randn({B, 3, c.image_size, c.image_size}, g);
    Tensor text = randint(1, c.vocab_size - 1, {B, c.context_length}, g);
    // the end-of-text token (the largest id) at a different position in each row
    Tensor eot = full({1}, double(c.vocab_size - 1), DType::I64);
    for (int64_t i = 0; i < B; i++) text.select(0, i).narrow(0, 2 + i % (c.context_length - 2), 1).copy_(eot);
    return {images, text};
}

std::map<std::string, Tensor> gradients(const CLIP& model) {
    std::map<std::string, Tensor> out;
    for (auto& [name, p] : model.named_parameters()) out[name] = p.grad().defined() ? p.grad().clone() : Tensor();
    return out;
}

// for runs on the synthetic data: its default vocabulary has 674 tokens
std::string write_micro_config(const TempDir& dir) {
    std::string path = dir.file("micro.json");
    CLIPConfig c = micro_config();
    c.vocab_size = 674;
    std::ofstream(path) << c.to_json().dump();
    return path;
}

TrainConfig micro_run(const TempDir& dir, const std::string& out) {
    TrainConfig c;
    c.model = write_micro_config(dir);
    c.data = "synthetic:train:256";
    c.batch_size = 16;
    c.steps = 8;
    c.workers = 1;
    c.lr = 1e-3;
    c.warmup = 2;
    c.log_every = 1;
    c.out = dir.file(out);
    c.loss.kind = LossKind::RankCLIP;
    return c;
}

std::vector<double> logged_losses(const std::string& run_dir) {
    std::vector<double> out;
    std::ifstream in(run_dir + "/metrics.jsonl");
    std::string line;
    while (std::getline(in, line)) {
        Json j = Json::parse(line);
        if (j.at("type").as_string() == "train") out.push_back(j.at("loss").as_double());
    }
    return out;
}

}  // namespace

TEST(TrainStep, AccumulationEqualsOneBatch) {
    for (LossKind kind : {LossKind::Clip, LossKind::RankCLIP, LossKind::CyCLIP, LossKind::SigLIP}) {
        SCOPED_TRACE(loss_kind_name(kind));
        CLIPConfig cfg = micro_config();
        if (kind == LossKind::SigLIP) cfg.logit_bias = true, cfg.init_logit_scale = std::log(10.0);
        Generator init(3);
        CLIP model(cfg, init);
        Batch b = random_batch(cfg, 12, 7);
        StepOptions o;
        o.loss.kind = kind;
        o.loss.rank_schedule = RankWeightSchedule::Constant;
        Generator g1(11), g4(11);
        StepStats whole = compute_gradients(model, b.images, b.text, o, 1.0, g1);
        auto expected = gradients(model);
        o.accum = 4;
        StepStats split = compute_gradients(model, b.images, b.text, o, 1.0, g4);
        auto got = gradients(model);
        EXPECT_NEAR(whole.loss, split.loss, 1e-6 * std::abs(whole.loss));
        for (auto& [name, g] : expected) {
            ASSERT_TRUE(g.defined()) << name;
            ASSERT_TRUE(got[name].defined()) << name;
            double scale = amax(abs(g)).item() + 1e-12;
            double diff = amax(abs(got[name] - g)).item();
            EXPECT_LE(diff, 2e-5 * scale) << name << " differs by " << diff << " (max |g| " << scale << ")";
        }
    }
}

TEST(TrainStep, AccumulationMustDivideTheBatch) {
    CLIPConfig cfg = micro_config();
    Generator init(0);
    CLIP model(cfg, init);
    Batch b = random_batch(cfg, 6, 1);
    StepOptions o;
    o.accum = 4;
    Generator g(0);
    EXPECT_NE(error_of([&] { compute_gradients(model, b.images, b.text, o, 1.0, g); }).find("--accum 4"),
              std::string::npos);
}

TEST(TrainStep, EveryParameterGetsAGradientUnderEveryLoss) {
    for (LossKind kind : {LossKind::Clip, LossKind::RankCLIP, LossKind::CyCLIP, LossKind::SigLIP}) {
        SCOPED_TRACE(loss_kind_name(kind));
        CLIPConfig cfg = micro_config();
        if (kind == LossKind::SigLIP) cfg.logit_bias = true;
        Generator init(5);
        CLIP model(cfg, init);
        Batch b = random_batch(cfg, 8, 2);
        StepOptions o;
        o.loss.kind = kind;
        Generator g(1);
        compute_gradients(model, b.images, b.text, o, 1.0, g);
        for (auto& [name, p] : model.named_parameters()) {
            ASSERT_TRUE(p.grad().defined()) << name;
            EXPECT_GT(sum(abs(p.grad())).item(), 0.0) << name;
        }
    }
}

TEST(TrainStep, NonFiniteLossStopsBeforeUpdating) {
    CLIPConfig cfg = micro_config();
    Generator init(0);
    CLIP model(cfg, init);
    Batch b = random_batch(cfg, 4, 1);
    b.images.select(0, 1).fill_(NAN);
    AdamW opt(model.named_parameters(), {});
    Tensor before = model.visual->parameters()[0].clone();
    StepOptions o;
    Generator g(0);
    std::string err = error_of([&] { train_step(model, opt, b.images, b.text, o, 1e-3, 0.0, g, 7); });
    EXPECT_NE(err.find("step 7"), std::string::npos) << err;
    EXPECT_NE(err.find("not finite"), std::string::npos) << err;
    EXPECT_EQ(opt.steps_taken(), 0);
    EXPECT_EQ(amax(abs(model.visual->parameters()[0] - before)).item(), 0.0);
}

TEST(TrainStep, LogitScaleIsClampedAfterTheStep) {
    CLIPConfig cfg = micro_config();
    cfg.init_logit_scale = 4.6;  // just under ln 100; a large lr pushes it over
    Generator init(0);
    CLIP model(cfg, init);
    Batch b = random_batch(cfg, 8, 3);
    AdamW opt(model.named_parameters(), {});
    StepOptions o;
    Generator g(0);
    for (int i = 1; i <= 3; i++) train_step(model, opt, b.images, b.text, o, 0.5, 0.0, g, i);
    EXPECT_LE(model.logit_scale.item(), float(std::log(100.0)));
    EXPECT_GE(model.logit_scale.item(), 0.0);
}

TEST(Optimizer, NoDecayGroupFollowsTheRankCLIPCode) {
    EXPECT_TRUE(decays_weight("visual.conv1.weight"));
    EXPECT_TRUE(decays_weight("transformer.resblocks.0.attn.in_proj_weight"));
    EXPECT_TRUE(decays_weight("visual.class_embedding"));
    EXPECT_TRUE(decays_weight("text_projection"));
    EXPECT_FALSE(decays_weight("visual.ln_pre.weight"));
    EXPECT_FALSE(decays_weight("transformer.resblocks.3.ln_2.weight"));
    EXPECT_FALSE(decays_weight("transformer.resblocks.0.mlp.c_fc.bias"));
    EXPECT_FALSE(decays_weight("logit_scale"));
    EXPECT_FALSE(decays_weight("logit_bias"));
    Generator init(0);
    CLIP model(micro_config(), init);
    AdamW opt(model.named_parameters(), {});
    EXPECT_EQ(opt.decayed_names().size() + opt.undecayed_names().size(), model.named_parameters().size());
}

TEST(Optimizer, ClipGradNormScalesOnlyAboveTheMax) {
    Tensor p = zeros({2}).set_requires_grad(true);
    sum(p * from_vector(std::vector<float>{3, 4}, {2})).backward();  // grad (3, 4), norm 5
    EXPECT_NEAR(clip_grad_norm({p}, 10.0), 5.0, 1e-6);
    EXPECT_NEAR(p.grad().to_vector<float>()[0], 3.0, 1e-6);
    EXPECT_NEAR(clip_grad_norm({p}, 1.0), 5.0, 1e-6);
    EXPECT_NEAR(p.grad().to_vector<float>()[1], 4.0 / (5.0 + 1e-6), 1e-6);
}

TEST(Schedule, WarmupThenCosineAsOpenCLIP) {
    LrScheduleOptions o{LrSchedule::Cosine, 1.0, 4, 14};
    EXPECT_DOUBLE_EQ(learning_rate_at(o, 0), 0.25);
    EXPECT_DOUBLE_EQ(learning_rate_at(o, 3), 1.0);
    EXPECT_DOUBLE_EQ(learning_rate_at(o, 4), 1.0);                                // cosine at e = 0
    EXPECT_NEAR(learning_rate_at(o, 9), 0.5, 1e-12);                              // half way
    EXPECT_NEAR(learning_rate_at(o, 13), 0.5 * (1 + std::cos(M_PI * 0.9)), 1e-12);
    o.kind = LrSchedule::Constant;
    EXPECT_DOUBLE_EQ(learning_rate_at(o, 1), 0.5);
    EXPECT_DOUBLE_EQ(learning_rate_at(o, 13), 1.0);
    EXPECT_NE(error_of([] { parse_lr_schedule("linear"); }).find("cosine, constant"), std::string::npos);
}

TEST(Trainer, ResumeIsBitExact) {
    TempDir dir("rankclip_resume");
    TrainConfig straight = micro_run(dir, "straight");
    TrainResult a = train(straight);
    ASSERT_EQ(a.steps_done, 8);

    TrainConfig first = micro_run(dir, "resumed");
    first.stop_at = 3;
    TrainResult b1 = train(first);
    ASSERT_EQ(b1.steps_done, 3);
    ASSERT_FALSE(b1.interrupted);
    TrainConfig later;  // only output settings: the numbers come from the checkpoint
    later.out = first.out;
    later.log_every = 1;
    later.workers = 2;  // a different worker count must not change the batches
    TrainResult b2 = train(later, first.out);
    ASSERT_EQ(b2.steps_done, 8);

    std::vector<double> la = logged_losses(straight.out), lb = logged_losses(first.out);
    ASSERT_EQ(la.size(), 8u);
    ASSERT_EQ(lb.size(), 8u);
    for (size_t i = 0; i < la.size(); i++) EXPECT_EQ(la[i], lb[i]) << "step " << i + 1;

    SafetensorsFile fa(a.checkpoint), fb(b2.checkpoint);
    ASSERT_EQ(fa.names(), fb.names());
    for (const std::string& name : fa.names()) {
        const auto& ta = fa.entry(name);
        const auto& tb = fb.entry(name);
        ASSERT_EQ(ta.nbytes, tb.nbytes) << name;
        EXPECT_EQ(std::memcmp(ta.data, tb.data, ta.nbytes), 0) << name << " differs after resume";
    }
}

TEST(Trainer, RefusesToOverwriteARunAndExplainsResume) {
    TempDir dir("rankclip_overwrite");
    TrainConfig c = micro_run(dir, "run");
    c.steps = 1;
    train(c);
    std::string err = error_of([&] { train(c); });
    EXPECT_NE(err.find("--resume"), std::string::npos) << err;
    EXPECT_NE(error_of([&] { train(c, dir.file("nothing")); }).find("no such run"), std::string::npos);
    EXPECT_NE(error_of([&] { train(c, dir.path); }).find("no checkpoints"), std::string::npos);
}

TEST(Trainer, InterruptSavesACheckpointAndStops) {
    TempDir dir("rankclip_sigint");
    TrainConfig c = micro_run(dir, "run");
    c.eval_every = 2;
    TrainHooks hooks;
    int evaluations = 0;
    hooks.evaluate = [&](const CLIP&, const Tokenizer&, int64_t step) -> Metrics {
        evaluations++;
        if (step == 4) std::raise(SIGINT);  // as if Ctrl-C arrived during step 4
        return {{"probe", double(step)}};
    };
    TrainResult r = train(c, "", hooks);
    EXPECT_TRUE(r.interrupted);
    EXPECT_EQ(r.steps_done, 4);
    EXPECT_EQ(evaluations, 2);
    EXPECT_EQ(latest_checkpoint(c.out), r.checkpoint);
    ClipCheckpoint ck = load_clip(r.checkpoint);
    EXPECT_EQ(ck.metadata.at("step"), "4");
    // the run continues from there
    TrainConfig later;
    later.out = c.out;
    TrainResult r2 = train(later, c.out);
    EXPECT_EQ(r2.steps_done, 8);
    EXPECT_FALSE(r2.interrupted);
}

TEST(Trainer, ShortRunLearnsTheSyntheticData) {
    // The `tiny` preset on the synthetic captions: the contrastive loss must fall well below its
    // chance value log(B) within a few hundred steps (a generous bound on the mean of the last
    // five logged steps; about a minute on 2 cores).
    TempDir dir("rankclip_learn");
    TrainConfig c = micro_run(dir, "run");
    c.model = "tiny";
    c.data = "synthetic:train:2048";
    c.loss.kind = LossKind::Clip;
    c.batch_size = 32;
    c.steps = 200;
    c.warmup = 20;
    c.log_every = 10;
    TrainResult r = train(c);
    ASSERT_FALSE(r.interrupted);
    std::vector<double> losses = logged_losses(c.out);
    ASSERT_EQ(losses.size(), 20u);
    EXPECT_NEAR(losses.front(), std::log(32.0), 0.6);
    double last = 0;
    for (size_t i = 15; i < 20; i++) last += losses[i] / 5;  // one batch is noisy
    EXPECT_LT(last, 0.75 * std::log(32.0)) << "the loss did not fall: " << last;
}

TEST(TrainStep, Bf16AutocastStepIsCloseToFp32) {
    CLIPConfig cfg = micro_config();
    Generator init(4);
    CLIP model(cfg, init);
    Batch b = random_batch(cfg, 8, 9);
    StepOptions o;
    o.loss.kind = LossKind::RankCLIP;
    Generator g1(2), g2(2);
    StepStats full = compute_gradients(model, b.images, b.text, o, 1.0, g1);
    auto expected = gradients(model);
    o.bf16 = true;
    StepStats half = compute_gradients(model, b.images, b.text, o, 1.0, g2);
    EXPECT_NEAR(half.loss, full.loss, 2e-2 * std::abs(full.loss));
    for (auto& [name, p] : model.named_parameters()) {
        ASSERT_TRUE(p.grad().defined()) << name;
        EXPECT_EQ(p.grad().dtype(), DType::F32) << name << ": fp32 master weights get fp32 gradients";
        EXPECT_TRUE(std::isfinite(sum(abs(p.grad())).item())) << name;
    }
    // the temperature's gradient comes from the fp32 loss: close to the fp32 one
    double want = expected["logit_scale"].item(), got = model.logit_scale.grad().item();
    EXPECT_NEAR(got, want, 0.1 * std::abs(want) + 1e-3);
}
