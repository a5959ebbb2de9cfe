// tests/test_checkpoint.cpp
// tests: models/checkpoint.h, CLIP checkpoints:
//   - save -> load round trip: same config, bit-identical parameters and outputs (F32); BF16
//     files hold the parameters rounded to bf16 and give close outputs; metadata and extra
//     tensors come back;
//   - PyTorch -> us: tests/ref/interop_torch_tiny.safetensors (tools/gen_interop_ref.py, the
//     mirror's state_dict in torch's order, config in the metadata) loads and gives the mirror's
//     normalised features to 1e-5; the same weights without metadata load with an explicit config;
//   - us -> PyTorch: tools/check_interop.py loads our file into the mirror with strict=True and
//     its features match ours (skipped when /usr/bin/python3 has no torch);
//   - errors: missing, unexpected, wrong-shape and wrong-dtype tensors, a truncated file, a
//     conflicting or absent config: each message names the file and the tensors.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "data/npy.h"
#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/safetensors.h"
#include "models/checkpoint.h"
#include "test_util.h"

using namespace rankclip;
using rankclip::test::error_of;
using rankclip::test::TempDir;
using rankclip::test::expect_close;
using rankclip::test::repo_root;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// tiny with one layer per tower and a 1000-token vocabulary: quick to build and run.
CLIPConfig small_config() {
    CLIPConfig c = clip_config("tiny");
    c.vision_layers = 1, c.text_layers = 1, c.vocab_size = 1000;
    return c;
}

struct Batch {
    Tensor images;  // (B, 3, S, S) F32
    Tensor ids;     // (B, L) I64, end-of-text (vocab_size - 1) at a per-row position, zeros after
};

Batch make_batch(const CLIPConfig& c, int64_t B, uint64_t seed) {
    Generator gen(seed);
    Batch b;
    b.images = randn({B, 3, c.image_size, c.image_size}, gen);
    std::vector<int64_t> ids = randint(1, c.vocab_size - 1, {B, c.context_length}, gen).to_vector<int64_t>();
    for (int64_t r = 0; r < B; r++) {
        int64_t eot = (5 + 7 * r) % c.context_length;
        ids[r * c.context_length + eot] = c.vocab_size - 1;
        for (int64_t t = eot + 1; t < c.context_length; t++) ids[r * c.context_length + t] = 0;
    }
    b.ids = from_vector(ids, {B, c.context_length}, DType::I64);
    return b;
}

CLIPOutput run(const CLIP& model, const Batch& b) {
    NoGradGuard no_grad;
    return model.forward(b.images, b.ids);
}

void expect_bit_identical(const Tensor& a, const Tensor& b, const std::string& what) {
    ASSERT_EQ(a.shape(), b.shape()) << what;
    ASSERT_EQ(a.dtype(), b.dtype()) << what;
    EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>()) << what;
}

// The model's parameters as a name -> tensor map (shared storage).
std::map<std::string, Tensor> parameters_of(const CLIP& model) {
    std::map<std::string, Tensor> out;
    for (auto& [name, p] : model.state_dict()) out[name] = p;
    return out;
}

std::vector<std::pair<std::string, Tensor>> as_list(const std::map<std::string, Tensor>& m) {
    return {m.begin(), m.end()};
}

}  // namespace

TEST(Checkpoint, F32RoundTripIsBitExact) {
    TempDir dir;
    CLIPConfig config = small_config();
    config.quick_gelu = true;  // a non-default field must come back too
    Generator gen(11);
    CLIP model(config, gen);
    const std::string path = dir.file("model.safetensors");
    save_clip(path, model, DType::F32, {{"step", "1234"}, {"note", "round trip"}});

    ClipCheckpoint ck = load_clip(path);
    EXPECT_EQ(ck.config, config);
    EXPECT_EQ(ck.model->config(), config);
    EXPECT_EQ(ck.file_dtype, DType::F32);
    EXPECT_EQ(ck.metadata.at("format"), kClipCheckpointFormat);
    EXPECT_EQ(ck.metadata.at("step"), "1234");
    EXPECT_EQ(ck.metadata.at("note"), "round trip");
    EXPECT_EQ(CLIPConfig::from_json_string(ck.metadata.at("config")), config);
    EXPECT_TRUE(ck.extra_tensors.empty());

    auto saved = model.named_parameters(), loaded = ck.model->named_parameters();
    ASSERT_EQ(saved.size(), loaded.size());
    for (size_t i = 0; i < saved.size(); i++) {
        EXPECT_EQ(saved[i].first, loaded[i].first);
        expect_bit_identical(loaded[i].second, saved[i].second, saved[i].first);
        EXPECT_TRUE(loaded[i].second.requires_grad()) << saved[i].first;
    }
    Batch b = make_batch(config, 3, 5);
    CLIPOutput want = run(model, b), got = run(*ck.model, b);
    expect_bit_identical(got.image_features, want.image_features, "image_features");
    expect_bit_identical(got.text_features, want.text_features, "text_features");
    expect_bit_identical(got.logits_per_image, want.logits_per_image, "logits_per_image");

    // The file's tensors carry OpenAI's names and F32.
    SafetensorsFile file(path);
    EXPECT_EQ(file.size(), saved.size());
    for (auto& [name, p] : saved) {
        ASSERT_TRUE(file.contains(name)) << name;
        EXPECT_EQ(file.entry(name).dtype, DType::F32) << name;
        EXPECT_EQ(file.entry(name).shape, p.shape()) << name;
    }
}

TEST(Checkpoint, Bf16RoundTripIsTheRoundedModel) {
    TempDir dir;
    CLIPConfig config = small_config();
    Generator gen(12);
    CLIP model(config, gen);
    const std::string path = dir.file("bf16.safetensors");
    save_clip(path, model, DType::BF16);
    EXPECT_EQ(SafetensorsFile(path).entry("visual.proj").dtype, DType::BF16);
    EXPECT_EQ(SafetensorsFile(path).metadata().at("dtype"), "BF16");

    ClipCheckpoint ck = load_clip(path);
    EXPECT_EQ(ck.file_dtype, DType::BF16);
    for (auto& [name, p] : model.named_parameters()) {
        Tensor q = ck.model->parameter(name);
        EXPECT_EQ(q.dtype(), DType::F32) << name;
        // exactly the parameter rounded to bf16 (round to nearest even) and back
        EXPECT_EQ(q.to_vector<float>(), p.to(DType::BF16).to(DType::F32).to_vector<float>()) << name;
    }
    Batch b = make_batch(config, 3, 6);
    CLIPOutput want = run(model, b), got = run(*ck.model, b);
    expect_close(got.image_features, want.image_features, 0, 2e-2, "image_features");
    expect_close(got.text_features, want.text_features, 0, 2e-2, "text_features");
}

TEST(Checkpoint, ExtraTensorsAndMetadataComeBack) {
    TempDir dir;
    Generator gen(13);
    CLIP model(small_config(), gen);
    Tensor step = from_vector(std::vector<int64_t>{42}, {1}, DType::I64);
    Tensor moment = randn({4, 5}, gen);
    const std::string path = dir.file("extras.safetensors");
    save_clip(path, model, DType::F32, {{"seed", "13"}}, {{"optimizer.step", step}, {"optimizer.moment", moment}});

    ClipCheckpoint ck = load_clip(path);
    ASSERT_EQ(ck.extra_tensors.size(), 2u);
    EXPECT_EQ(ck.extra_tensors.at("optimizer.step").to_vector<int64_t>(), std::vector<int64_t>{42});
    EXPECT_EQ(ck.extra_tensors.at("optimizer.moment").to_vector<float>(), moment.to_vector<float>());
    EXPECT_EQ(ck.metadata.at("seed"), "13");

    ClipCheckpointInfo info = read_clip_checkpoint_info(path);
    ASSERT_TRUE(info.config.has_value());
    EXPECT_EQ(*info.config, small_config());
    EXPECT_EQ(info.num_parameters, model.num_parameters());  // the extras are not parameters
    int extras = 0;
    for (auto& t : info.tensors) extras += t.extra;
    EXPECT_EQ(extras, 2);

    // save_clip refuses its own metadata keys and extra tensors named like parameters
    std::string msg = error_of([&] { save_clip(dir.file("x.safetensors"), model, DType::F32, {{"config", "{}"}}); });
    EXPECT_TRUE(contains(msg, "\"config\"")) << msg;
    msg = error_of([&] { save_clip(dir.file("x.safetensors"), model, DType::F32, {}, {{"visual.proj", moment}}); });
    EXPECT_TRUE(contains(msg, "'visual.proj'")) << msg;
    msg = error_of([&] { save_clip(dir.file("x.safetensors"), model, DType::F64); });
    EXPECT_TRUE(contains(msg, "F64")) << msg;
}

TEST(Checkpoint, LoadsAStateDictWrittenByPyTorch) {
    const std::string path = repo_root() + "/tests/ref/interop_torch_tiny.safetensors";
    ASSERT_TRUE(test::path_exists(path)) << "regenerate with /usr/bin/python3 tools/gen_interop_ref.py";
    ClipCheckpoint ck = load_clip(path);
    EXPECT_TRUE(ck.config.quick_gelu);  // the stored config, not a preset
    EXPECT_EQ(ck.config.vision_layers, 2);
    EXPECT_EQ(ck.config.vocab_size, 1000);
    ASSERT_EQ(ck.extra_tensors.size(), 4u);

    Batch b{ck.extra_tensors.at("input.images"), ck.extra_tensors.at("input.text")};
    CLIPOutput out = run(*ck.model, b);
    expect_close(out.image_features, ck.extra_tensors.at("out.image_features"), 1e-5, 1e-6, "image_features");
    expect_close(out.text_features, ck.extra_tensors.at("out.text_features"), 1e-5, 1e-6, "text_features");

    // The same weights with no metadata at all (as torch code that knows nothing of us writes
    // them) need the config given explicitly.
    TempDir dir;
    std::map<std::string, Tensor> weights = load_safetensors(path);
    for (auto& [name, t] : ck.extra_tensors) weights.erase(name);
    const std::string bare = dir.file("bare.safetensors");
    save_safetensors(bare, as_list(weights));
    std::string msg = error_of([&] { load_clip(bare); });
    EXPECT_TRUE(contains(msg, bare) && contains(msg, "no \"config\"")) << msg;
    ClipCheckpoint given = load_clip(bare, Device::cpu(), ck.config);
    CLIPOutput again = run(*given.model, b);
    expect_bit_identical(again.image_features, out.image_features, "image_features");

    // a given config that disagrees with the file's is an error naming both
    CLIPConfig other = ck.config;
    other.quick_gelu = false;
    msg = error_of([&] { load_clip(path, Device::cpu(), other); });
    EXPECT_TRUE(contains(msg, path) && contains(msg, "differs")) << msg;
}

TEST(Checkpoint, ErrorsNameTheTensorsAndTheFile) {
    TempDir dir;
    CLIPConfig config = small_config();
    Generator gen(14);
    CLIP model(config, gen);
    const std::map<std::string, std::string> meta = {{"config", config.to_json().dump()}};
    auto write_variant = [&](const std::string& name, const std::map<std::string, Tensor>& tensors) {
        std::string path = dir.file(name);
        save_safetensors(path, as_list(tensors), meta);
        return path;
    };

    std::map<std::string, Tensor> missing = parameters_of(model);
    missing.erase("visual.ln_post.bias");
    std::string path = write_variant("missing.safetensors", missing);
    std::string msg = error_of([&] { load_clip(path); });
    EXPECT_TRUE(contains(msg, path) && contains(msg, "1 missing (visual.ln_post.bias)")) << msg;

    std::map<std::string, Tensor> unexpected = parameters_of(model);
    unexpected["visual.transformer.resblocks.5.ln_1.weight"] = zeros({128});
    path = write_variant("unexpected.safetensors", unexpected);
    msg = error_of([&] { load_clip(path); });
    EXPECT_TRUE(contains(msg, path) && contains(msg, "1 unexpected (visual.transformer.resblocks.5.ln_1.weight)"))
        << msg;

    std::map<std::string, Tensor> shape = parameters_of(model);
    shape["text_projection"] = zeros({128, 64});
    path = write_variant("shape.safetensors", shape);
    msg = error_of([&] { load_clip(path); });
    EXPECT_TRUE(contains(msg, path) && contains(msg, "text_projection: expected F32 (128, 128), got F32 (128, 64)"))
        << msg;

    std::map<std::string, Tensor> dtype = parameters_of(model);
    dtype["ln_final.weight"] = dtype["ln_final.weight"].to(DType::F64);
    path = write_variant("dtype.safetensors", dtype);
    msg = error_of([&] { load_clip(path); });
    EXPECT_TRUE(contains(msg, path) && contains(msg, "ln_final.weight: expected F32 (128), got F64 (128)")) << msg;

    // several problems at once: all of them in one message
    std::map<std::string, Tensor> several = parameters_of(model);
    several.erase("logit_scale");
    several["visual.proj"] = zeros({3});
    several["extra.thing"] = zeros({1});
    path = write_variant("several.safetensors", several);
    msg = error_of([&] { load_clip(path); });
    EXPECT_TRUE(contains(msg, "missing (logit_scale)") && contains(msg, "unexpected (extra.thing)") &&
                contains(msg, "visual.proj: expected F32 (128, 128), got F32 (3)"))
        << msg;

    // a file with nothing of a CLIP model says so briefly
    path = write_variant("other.safetensors", {{"weight", zeros({2})}, {"bias", zeros({2})}});
    msg = error_of([&] { load_clip(path); });
    EXPECT_TRUE(contains(msg, path) && contains(msg, "not a CLIP checkpoint")) << msg;

    // truncated: the last bytes of a good file cut off
    const std::string good = dir.file("good.safetensors");
    save_clip(good, model);
    const std::string cut = dir.file("truncated.safetensors");
    std::filesystem::copy_file(good, cut);
    std::filesystem::resize_file(cut, std::filesystem::file_size(good) - 100);
    msg = error_of([&] { load_clip(cut); });
    EXPECT_TRUE(contains(msg, cut)) << msg;
    EXPECT_TRUE(contains(msg, "logit_scale") || contains(msg, "past")) << msg;  // the tensor whose bytes are gone

    msg = error_of([&] { load_clip(dir.file("absent.safetensors")); });
    EXPECT_TRUE(contains(msg, dir.file("absent.safetensors"))) << msg;

    // a bad config in the metadata names the file and the key
    std::map<std::string, Tensor> params = parameters_of(model);
    path = dir.file("badconfig.safetensors");
    save_safetensors(path, as_list(params), {{"config", "{\"image_size\": 32}"}});
    msg = error_of([&] { load_clip(path); });
    EXPECT_TRUE(contains(msg, path) && contains(msg, "missing key 'patch_size'")) << msg;

    path = dir.file("format.safetensors");
    save_safetensors(path, as_list(params), {{"config", config.to_json().dump()}, {"format", "something-else"}});
    msg = error_of([&] { load_clip(path); });
    EXPECT_TRUE(contains(msg, path) && contains(msg, "something-else")) << msg;
}

// us -> PyTorch: the mirror loads our files with strict=True and computes our features.
TEST(Checkpoint, PyTorchLoadsOurCheckpoints) {
    const std::string python = "/usr/bin/python3";
    if (!test::path_exists(python) || std::system((python + " -c 'import torch' > /dev/null 2>&1").c_str()) != 0)
        GTEST_SKIP() << python << " with torch is not available: the PyTorch side of the interop is not tested here "
                     << "(tools/install-deps.sh installs python3-torch)";
    TempDir dir;
    CLIPConfig config = small_config();
    Generator gen(15);
    CLIP model(config, gen);
    {
        // perturb every parameter so biases and LayerNorm weights are not just 0 and 1
        NoGradGuard no_grad;
        for (auto& p : model.parameters()) p.add_(randn(p.shape(), gen) * 0.01);
    }
    Batch b = make_batch(config, 4, 16);
    write_npy(dir.file("images.npy"), b.images);
    write_npy(dir.file("texts.npy"), b.ids);

    for (DType dtype : {DType::F32, DType::BF16}) {
        const std::string tag = dtype_name(dtype);
        const std::string ck_path = dir.file("ours_" + tag + ".safetensors");
        // an extra tensor too: the script must leave it out of the strict load
        save_clip(ck_path, model, dtype, {{"step", "7"}}, {{"optimizer.step", zeros({1})}});
        const std::string prefix = dir.file("torch_" + tag);
        const std::string log = dir.file("log_" + tag + ".txt");
        std::string cmd = python + " " + repo_root() + "/tools/check_interop.py " + ck_path + " --images " +
                          dir.file("images.npy") + " --texts " + dir.file("texts.npy") + " --out " + prefix + " > " +
                          log + " 2>&1";
        int status = std::system(cmd.c_str());
        std::ifstream in(log);
        std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        ASSERT_EQ(status, 0) << cmd << "\n" << output;
        EXPECT_TRUE(contains(output, "strict=True")) << output;

        ClipCheckpoint ck = load_clip(ck_path);  // ours, as PyTorch saw it (bf16-rounded for BF16)
        CLIPOutput ours = run(*ck.model, b);
        expect_close(read_npy(prefix + ".image.npy"), ours.image_features, 1e-5, 1e-6, tag + " image_features");
        expect_close(read_npy(prefix + ".text.npy"), ours.text_features, 1e-5, 1e-6, tag + " text_features");
    }
}

TEST(Checkpoint, LoadsOntoCuda) {
    if (!has_backend(DeviceType::CUDA)) GTEST_SKIP() << "no CUDA device: loading onto CUDA is not tested here";
    TempDir dir;
    CLIPConfig config = small_config();
    Generator gen(17);
    CLIP model(config, gen);
    const std::string path = dir.file("model.safetensors");
    save_clip(path, model);
    ClipCheckpoint ck = load_clip(path, Device::cuda(0));
    EXPECT_TRUE(ck.model->device().is_cuda());
    Batch b = make_batch(config, 2, 18);
    CLIPOutput want = run(model, b);
    NoGradGuard no_grad;
    CLIPOutput got = ck.model->forward(b.images.to(Device::cuda(0)), b.ids.to(Device::cuda(0)));
    expect_close(got.image_features.to(Device::cpu()), want.image_features, 1e-4, 1e-5, "image_features");
    expect_close(got.text_features.to(Device::cpu()), want.text_features, 1e-4, 1e-5, "text_features");
    // and saving from CUDA gives the same file contents
    save_clip(dir.file("from_cuda.safetensors"), *ck.model);
    ClipCheckpoint back = load_clip(dir.file("from_cuda.safetensors"));
    for (auto& [name, p] : model.named_parameters())
        EXPECT_EQ(back.model->parameter(name).to_vector<float>(), p.to_vector<float>()) << name;
}
