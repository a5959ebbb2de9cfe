// tests/test_models.cpp
// tests: models/ — every parameter of tiny, small and a QuickGELU variant receives a non-zero
// gradient from one CLIP-loss step; parameter names, shapes and counts are OpenAI's (ViT-B/32:
// 151,277,313, ViT-B/16: 149,620,737, the counts of OpenAI's released models); the presets hold
// the shapes of issue 4; configs round-trip through JSON; bad configs and bad inputs raise
// errors that name the problem; the features are normalised and the logits are their scaled
// cosines; text pooling is at the end-of-text token; the same seed builds the same model; and,
// with a GPU, the model on CUDA matches the CPU.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/ops.h"
#include "models/clip.h"
#include "test_util.h"

using namespace rankclip;

namespace {

template <typename F>
void expect_error(F f, const std::vector<std::string>& parts) {
    try {
        f();
    } catch (const Error& e) {
        std::string msg = e.what();
        for (const std::string& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
        return;
    }
    ADD_FAILURE() << "expected an Error containing '" << (parts.empty() ? "" : parts[0]) << "'";
}

Tensor clip_loss(const Tensor& logits_per_image) {
    int64_t B = logits_per_image.size(0);
    Tensor labels = arange(0, double(B), 1, DType::I64, logits_per_image.device());
    return (cross_entropy(logits_per_image, labels) + cross_entropy(logits_per_image.t(), labels)) * 0.5;
}

// (B, L) ids in [1, V - 1) with the end-of-text id V - 1 at a different position per row and
// zeros after it.
Tensor make_text(const CLIPConfig& c, int64_t B, Generator& gen) {
    Tensor ids = randint(1, c.vocab_size - 1, {B, c.context_length}, gen);
    std::vector<int64_t> v = ids.to_vector<int64_t>();
    for (int64_t b = 0; b < B; b++) {
        int64_t eot = (c.context_length - 1 - 5 * b) % c.context_length;
        if (eot < 0) eot += c.context_length;
        v[b * c.context_length + eot] = c.vocab_size - 1;
        for (int64_t t = eot + 1; t < c.context_length; t++) v[b * c.context_length + t] = 0;
    }
    return from_vector(v, {B, c.context_length}, DType::I64);
}

double max_abs(const Tensor& t) { return amax(abs(t.detach())).item(); }

void expect_every_gradient_nonzero(const CLIPConfig& config, int64_t B, const char* what) {
    Generator gen(7);
    CLIP model(config, gen);
    Tensor images = randn({B, 3, config.image_size, config.image_size}, gen);
    Tensor text = make_text(config, B, gen);
    Tensor loss = clip_loss(model.forward(images, text).logits_per_image);
    EXPECT_TRUE(std::isfinite(loss.item())) << what;
    loss.backward();
    int64_t checked = 0;
    for (auto& [name, p] : model.named_parameters()) {
        ASSERT_TRUE(p.grad().defined()) << what << ": " << name << " got no gradient";
        EXPECT_EQ(p.grad().shape(), p.shape()) << what << ": " << name;
        EXPECT_GT(max_abs(p.grad()), 0.0) << what << ": " << name << " has an all-zero gradient";
        checked++;
    }
    // vision: conv1, class, positional, ln_pre (2), ln_post (2), proj; text: token, positional,
    // ln_final (2), projection; logit_scale; 12 per block
    EXPECT_EQ(checked, 14 + 12 * (config.vision_layers + config.text_layers)) << what << ": parameter tensors";
}

TEST(CLIPModel, EveryParameterGetsANonZeroGradient) {
    expect_every_gradient_nonzero(clip_config("tiny"), 4, "tiny");
    CLIPConfig quick = clip_config("tiny");
    quick.quick_gelu = true;
    quick.vision_layers = quick.text_layers = 2;
    quick.vocab_size = 500;
    expect_every_gradient_nonzero(quick, 3, "tiny with QuickGELU");
}

TEST(CLIPModel, EveryParameterGetsANonZeroGradientSmall) { expect_every_gradient_nonzero(clip_config("small"), 2, "small"); }

// OpenAI's state_dict names for a ViT CLIP, written out from clip/model.py's module tree.
std::set<std::string> openai_names(const CLIPConfig& c) {
    std::set<std::string> names = {"positional_embedding", "text_projection", "logit_scale",
                                   "visual.class_embedding", "visual.positional_embedding", "visual.proj",
                                   "visual.conv1.weight", "visual.ln_pre.weight", "visual.ln_pre.bias",
                                   "visual.ln_post.weight", "visual.ln_post.bias", "token_embedding.weight",
                                   "ln_final.weight", "ln_final.bias"};
    const char* block[] = {"attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight", "attn.out_proj.bias",
                           "ln_1.weight", "ln_1.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight",
                           "mlp.c_proj.bias", "ln_2.weight", "ln_2.bias"};
    for (int64_t i = 0; i < c.vision_layers; i++)
        for (const char* n : block) names.insert("visual.transformer.resblocks." + std::to_string(i) + "." + n);
    for (int64_t i = 0; i < c.text_layers; i++)
        for (const char* n : block) names.insert("transformer.resblocks." + std::to_string(i) + "." + n);
    return names;
}

TEST(CLIPModel, NamesShapesAndCountsAreOpenAIs) {
    {
        Generator gen(0);
        CLIP b32(clip_config("b32"), gen);
        EXPECT_EQ(b32.num_parameters(), 151277313);  // OpenAI ViT-B/32
        std::set<std::string> names;
        for (auto& [n, p] : b32.named_parameters()) names.insert(n);
        EXPECT_EQ(names, openai_names(b32.config()));
        EXPECT_EQ(b32.named_parameters().size(), names.size());
        auto shape = [&](const char* n) { return b32.parameter(n).shape(); };
        EXPECT_EQ(shape("visual.conv1.weight"), (Shape{768, 3, 32, 32}));
        EXPECT_EQ(shape("visual.class_embedding"), (Shape{768}));
        EXPECT_EQ(shape("visual.positional_embedding"), (Shape{50, 768}));
        EXPECT_EQ(shape("visual.proj"), (Shape{768, 512}));
        EXPECT_EQ(shape("visual.transformer.resblocks.11.attn.in_proj_weight"), (Shape{2304, 768}));
        EXPECT_EQ(shape("visual.transformer.resblocks.11.mlp.c_fc.weight"), (Shape{3072, 768}));
        EXPECT_EQ(shape("token_embedding.weight"), (Shape{49408, 512}));
        EXPECT_EQ(shape("positional_embedding"), (Shape{77, 512}));
        EXPECT_EQ(shape("transformer.resblocks.0.mlp.c_proj.weight"), (Shape{512, 2048}));
        EXPECT_EQ(shape("text_projection"), (Shape{512, 512}));
        EXPECT_EQ(shape("logit_scale"), (Shape{}));
        EXPECT_FLOAT_EQ(float(b32.logit_scale.item()), float(std::log(1 / 0.07)));
    }
    Generator gen(0);
    CLIP b16(clip_config("b16"), gen);
    EXPECT_EQ(b16.num_parameters(), 149620737);  // OpenAI ViT-B/16
    EXPECT_EQ(b16.parameter("visual.positional_embedding").shape(), (Shape{197, 768}));
}

TEST(CLIPConfigs, PresetsHaveTheIssueShapes) {
    CLIPConfig t = clip_config("tiny");
    EXPECT_EQ(t.to_json().dump(),
              "{\"image_size\":32,\"patch_size\":4,\"vision_width\":128,\"vision_layers\":4,\"vision_heads\":4,"
              "\"context_length\":32,\"vocab_size\":49408,\"text_width\":128,\"text_layers\":4,\"text_heads\":4,"
              "\"embed_dim\":128,\"quick_gelu\":false}");
    CLIPConfig s = clip_config("small");
    EXPECT_EQ(s.to_json().dump(),
              "{\"image_size\":64,\"patch_size\":8,\"vision_width\":256,\"vision_layers\":6,\"vision_heads\":4,"
              "\"context_length\":32,\"vocab_size\":49408,\"text_width\":256,\"text_layers\":6,\"text_heads\":4,"
              "\"embed_dim\":256,\"quick_gelu\":false}");
    CLIPConfig b32 = clip_config("b32"), b16 = clip_config("b16");
    EXPECT_EQ(b32.patch_size, 32);
    EXPECT_EQ(b16.patch_size, 16);
    EXPECT_TRUE(b32.quick_gelu && b16.quick_gelu);
    EXPECT_EQ(b32.context_length, 77);
    EXPECT_EQ(b32.num_patches(), 49);
    EXPECT_EQ(b16.num_patches(), 196);
    expect_error([] { clip_config("huge"); }, {"unknown config 'huge'", "tiny, small, b32, b16"});
}

TEST(CLIPConfigs, JsonRoundTrip) {
    for (const std::string& name : clip_config_names()) {
        CLIPConfig c = clip_config(name);
        EXPECT_EQ(CLIPConfig::from_json_string(c.to_json().dump()), c) << name;
        EXPECT_EQ(CLIPConfig::from_json(Json::parse(c.to_json().dump(2))), c) << name;
    }
    CLIPConfig custom = clip_config("tiny");
    custom.vocab_size = 1000, custom.text_layers = 1, custom.quick_gelu = true;
    std::string path = ::testing::TempDir() + "/rankclip_config_test_" + std::to_string(::getpid()) + ".json";
    {
        std::ofstream f(path);
        f << custom.to_json().dump(2);
    }
    EXPECT_EQ(CLIPConfig::from_json_file(path), custom);
    // quick_gelu may be left out
    Json j = custom.to_json();
    Json::Object members;
    for (auto& m : j.as_object())
        if (m.first != "quick_gelu") members.push_back(m);
    EXPECT_FALSE(CLIPConfig::from_json(Json::object(members)).quick_gelu);
}

TEST(CLIPConfigs, BadConfigsNameTheProblem) {
    auto with = [](const std::string& key, Json value) {
        Json j = clip_config("tiny").to_json();
        j.set(key, std::move(value));
        return j;
    };
    expect_error([&] { CLIPConfig::from_json(with("patch_size", 5)); },
                 {"image_size 32 is not a multiple of patch_size 5"});
    expect_error([&] { CLIPConfig::from_json(with("vision_heads", 3)); },
                 {"vision_width 128 is not a multiple of vision_heads 3"});
    expect_error([&] { CLIPConfig::from_json(with("text_heads", 0)); }, {"text_heads must be positive, got 0"});
    expect_error([&] { CLIPConfig::from_json(with("embed_dim", -4)); }, {"embed_dim must be positive, got -4"});
    expect_error([&] { CLIPConfig::from_json(with("image_sise", 32)); }, {"unknown key 'image_sise'"});
    expect_error([&] { CLIPConfig::from_json(with("vocab_size", 1.5)); }, {"'vocab_size' must be an integer", "double"});
    expect_error([&] { CLIPConfig::from_json(with("quick_gelu", 1)); }, {"'quick_gelu' must be true or false"});
    expect_error([&] { CLIPConfig::from_json(Json::parse("{\"image_size\": 32}")); }, {"missing key 'patch_size'"});
    expect_error([&] { CLIPConfig::from_json(Json::parse("[1, 2]")); }, {"expected a JSON object", "array"});
    expect_error([&] { CLIPConfig::from_json_string("{\"image_size\": "); }, {"json"});
    expect_error([&] { CLIPConfig::from_json_file("/nonexistent/dir/config.json"); },
                 {"cannot open config file '/nonexistent/dir/config.json'"});
    // the constructor validates too
    CLIPConfig c = clip_config("tiny");
    c.text_width = 130;
    Generator gen(0);
    expect_error([&] { CLIP model(c, gen); }, {"text_width 130 is not a multiple of text_heads 4"});
}

// A tiny model quick to build: 1 layer per tower.
CLIPConfig micro_config() {
    CLIPConfig c = clip_config("tiny");
    c.vision_layers = c.text_layers = 1;
    c.vocab_size = 300;
    c.context_length = 12;
    return c;
}

TEST(CLIPModel, BadInputsNameTheProblem) {
    Generator gen(0);
    CLIPConfig c = micro_config();
    CLIP model(c, gen);
    expect_error([&] { model.encode_image(randn({2, 3, 31, 31}, gen)); }, {"(B, 3, 32, 32)", "(2, 3, 31, 31)"});
    expect_error([&] { model.encode_image(randn({2, 1, 32, 32}, gen)); }, {"(B, 3, 32, 32)", "(2, 1, 32, 32)"});
    expect_error([&] { model.encode_image(randn({3, 32, 32}, gen)); }, {"(B, 3, 32, 32)", "(3, 32, 32)"});
    expect_error([&] { model.encode_text(randn({2, 12}, gen)); }, {"token ids must be (B, T) I64 or I32", "F32"});
    expect_error([&] { model.encode_text(zeros({2, 13}, DType::I64)); }, {"sequence length 13", "context_length"});
    Tensor ids = zeros({2, 12}, DType::I64);
    ids.narrow(0, 1, 1).narrow(1, 4, 1).fill_(300);
    expect_error([&] { model.encode_text(ids); }, {"token id 300 at (1, 4)", "[0, 300)"});
}

TEST(CLIPModel, ForwardNormalisesAndScales) {
    Generator gen(3);
    CLIPConfig c = micro_config();
    CLIP model(c, gen);
    Tensor images = randn({3, 3, 32, 32}, gen);
    Tensor text = make_text(c, 2, gen);
    NoGradGuard no_grad;
    CLIPOutput out = model.forward(images, text);
    EXPECT_EQ(out.image_features.shape(), (Shape{3, 128}));
    EXPECT_EQ(out.text_features.shape(), (Shape{2, 128}));
    EXPECT_EQ(out.logits_per_image.shape(), (Shape{3, 2}));
    EXPECT_EQ(out.logits_per_text.shape(), (Shape{2, 3}));
    test::expect_close(sum(out.image_features * out.image_features, {1}), ones({3}), 1e-6);
    test::expect_close(sum(out.text_features * out.text_features, {1}), ones({2}), 1e-6);
    // logits = exp(logit_scale) * cosine similarity, from the unnormalised encoders
    Tensor img = model.encode_image(images), txt = model.encode_text(text);
    Tensor cosine = matmul(l2_normalize(img), l2_normalize(txt).t());
    test::expect_close(out.logits_per_image, cosine * (1 / 0.07), 1e-5, 1e-5);
    test::expect_close(out.logits_per_text, out.logits_per_image.t(), 0.0);
    // encode_* are the unnormalised projections (OpenAI's): not unit length
    EXPECT_GT(std::abs(sum(img.select(0, 0) * img.select(0, 0)).item() - 1.0), 1e-3);
}

TEST(CLIPModel, TextIsPooledAtTheEndOfTextToken) {
    Generator gen(4);
    CLIPConfig c = micro_config();
    CLIP model(c, gen);
    NoGradGuard no_grad;
    // row 0: eot at 5; row 1: same tokens with different ids after the eot (which attention
    // cannot see, being causal) -> the same features; row 2: the first 6 ids only (T = 6)
    std::vector<int64_t> a = {9, 8, 7, 6, 5, 299, 0, 0, 0, 0, 0, 0};
    std::vector<int64_t> b = {9, 8, 7, 6, 5, 299, 17, 3, 100, 299, 1, 2};  // a second eot later: first wins
    Tensor ids = from_vector(a, {1, 12}, DType::I64);
    Tensor ids_b = from_vector(b, {1, 12}, DType::I64);
    Tensor ids_short = from_vector(std::vector<int64_t>(a.begin(), a.begin() + 6), {1, 6}, DType::I64);
    Tensor fa = model.encode_text(ids), fb = model.encode_text(ids_b), fs = model.encode_text(ids_short);
    test::expect_close(fb, fa, 1e-5, 1e-6);
    test::expect_close(fs, fa, 1e-5, 1e-6);  // another GEMM shape: rounding may differ
    Tensor ids32 = from_vector(a, {1, 12}, DType::I32);
    test::expect_close(model.encode_text(ids32), fa, 0.0);
    // moving the eot changes the features
    std::vector<int64_t> moved = a;
    moved[4] = 299, moved[5] = 0;
    Tensor fm = model.encode_text(from_vector(moved, {1, 12}, DType::I64));
    EXPECT_GT(max_abs(fm - fa), 1e-3);
}

TEST(CLIPModel, SameSeedSameModel) {
    CLIPConfig c = micro_config();
    Generator g1(11), g2(11), g3(12);
    CLIP m1(c, g1), m2(c, g2), m3(c, g3);
    auto p1 = m1.named_parameters(), p2 = m2.named_parameters(), p3 = m3.named_parameters();
    ASSERT_EQ(p1.size(), p2.size());
    bool any_differs = false;
    for (size_t i = 0; i < p1.size(); i++) {
        test::expect_close(p1[i].second, p2[i].second, 0.0, 0.0, p1[i].first);
        any_differs = any_differs || max_abs(p1[i].second - p3[i].second) > 0;
    }
    EXPECT_TRUE(any_differs);
}

TEST(CLIPModel, CudaMatchesCpu) {
    if (!has_backend(DeviceType::CUDA)) GTEST_SKIP() << "no CUDA device: CLIP on CUDA is not tested here";
    Generator gen(5);
    CLIPConfig c = clip_config("tiny");
    CLIP cpu_model(c, gen);
    Generator gen2(5);
    CLIP gpu_model(c, gen2);
    gpu_model.to(Device::cuda());
    Tensor images = randn({4, 3, 32, 32}, gen);
    Tensor text = make_text(c, 4, gen);
    Tensor loss_cpu = clip_loss(cpu_model.forward(images, text).logits_per_image);
    Tensor loss_gpu = clip_loss(gpu_model.forward(images.to(Device::cuda()), text.to(Device::cuda())).logits_per_image);
    EXPECT_NEAR(loss_gpu.item(), loss_cpu.item(), 1e-5 * std::abs(loss_cpu.item()));
    loss_cpu.backward();
    loss_gpu.backward();
    auto pc = cpu_model.named_parameters(), pg = gpu_model.named_parameters();
    for (size_t i = 0; i < pc.size(); i++) {
        Tensor gc = pc[i].second.grad(), gg = pg[i].second.grad().to(Device::cpu());
        EXPECT_LE(max_abs(gg - gc), 1e-4 * max_abs(gc)) << pc[i].first;
    }
}

}  // namespace
