// tests/test_cli.cpp
// tests: the `rankclip` program (tools/rankclip.cpp), run as a user runs it: --help, info,
// embed (pre-processed .npy inputs, image directories and lists, captions with a vocabulary; image
// files and captions bit for bit as embed_images and embed_texts give them), and
// its errors (one line on stderr, non-zero exit). The binary is $RANKCLIP_BIN, else
// `rankclip` beside the test binary (make builds both into the same directory); when it is not
// there the tests skip, saying so.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "data/bpe_trainer.h"
#include "data/image.h"
#include "data/image_write.h"
#include "data/npy.h"
#include "data/packed.h"
#include "data/synthetic.h"
#include "data/tokenizer.h"
#include "engine/ops.h"
#include "models/checkpoint.h"
#include "eval/eval.h"
#include "cli_test_util.h"
#include "test_util.h"
#include "vector_dataset.h"

using namespace rankclip;
using rankclip::test::expect_close;
using rankclip::test::TempDir;

namespace {

using rankclip::test::rankclip_binary;
using rankclip::test::slurp;
using Result = rankclip::test::CliResult;

Result run(const std::string& bin, const std::string& args, const TempDir& dir) {
    return rankclip::test::run_cli(bin, args, dir);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
int count_lines(const std::string& text) { return int(std::count(text.begin(), text.end(), '\n')); }

CLIPConfig small_config() {
    CLIPConfig c = clip_config("tiny");
    c.vision_layers = 1, c.text_layers = 1, c.vocab_size = 1000;
    return c;
}

// Expects a failure: non-zero exit, one line on stderr that contains every part.
void expect_failure(const Result& r, std::initializer_list<std::string> parts) {
    EXPECT_NE(r.status, 0) << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    for (const std::string& p : parts) EXPECT_TRUE(contains(r.err, p)) << "'" << r.err << "' lacks '" << p << "'";
}

}  // namespace

TEST(Cli, HelpListsTheCommands) {
    REQUIRE_BINARY();
    TempDir dir;
    Result r = run(bin, "--help", dir);
    EXPECT_EQ(r.status, 0);
    for (const char* command : {"demo", "train", "eval", "bench", "plot", "mlp", "info CHECKPOINT", "embed --checkpoint"})
        EXPECT_TRUE(contains(r.out, command)) << r.out;

    for (const std::string command : {"mlp", "info", "embed"}) {   // each command's own --help
        Result help = run(bin, command + " --help", dir);
        EXPECT_EQ(help.status, 0) << help.err;
        EXPECT_TRUE(contains(help.out, "usage: rankclip " + command)) << help.out;
    }

    Result unknown = run(bin, "frobnicate", dir);
    expect_failure(unknown, {"frobnicate", "embed", "bpe-train"});
    Result none = run(bin, "", dir);
    EXPECT_NE(none.status, 0);
    EXPECT_TRUE(contains(none.err, "usage")) << none.err;
}

TEST(Cli, InfoPrintsConfigCountAndTensors) {
    REQUIRE_BINARY();
    TempDir dir;
    CLIPConfig config = small_config();
    Generator gen(21);
    CLIP model(config, gen);
    const std::string path = dir.file("model.safetensors");
    save_clip(path, model, DType::BF16, {{"step", "99"}});

    Result r = run(bin, "info " + path, dir);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "format: rankclip-clip-v1")) << r.out;
    EXPECT_TRUE(contains(r.out, "dtype: BF16")) << r.out;
    EXPECT_TRUE(contains(r.out, "parameters: " + std::to_string(model.num_parameters()) + " in " +
                                    std::to_string(model.named_parameters().size()) + " tensors"))
        << r.out;
    EXPECT_TRUE(contains(r.out, "metadata step: 99")) << r.out;
    Json config_json = config.to_json();
    for (const auto& [key, value] : config_json.as_object())
        EXPECT_TRUE(contains(r.out, key + " ")) << key;
    // one line per tensor: name, dtype, shape
    for (auto& [name, p] : model.named_parameters()) {
        std::string line;
        bool found = false;
        std::istringstream lines(r.out);
        while (std::getline(lines, line)) {
            std::istringstream words(line);
            std::string first;
            words >> first;
            if (first != name) continue;
            found = true;
            EXPECT_TRUE(contains(line, "BF16") && contains(line, shape_str(p.shape()))) << line;
        }
        EXPECT_TRUE(found) << name << " not listed";
    }

    // a preset is recognised
    Generator gen2(22);
    CLIP tiny(clip_config("tiny"), gen2);
    save_clip(dir.file("tiny.safetensors"), tiny);
    Result t = run(bin, "info " + dir.file("tiny.safetensors"), dir);
    EXPECT_TRUE(contains(t.out, "config (preset tiny)")) << t.out;

    expect_failure(run(bin, "info " + dir.file("missing.safetensors"), dir), {dir.file("missing.safetensors")});
    expect_failure(run(bin, "info", dir), {"usage: rankclip info CHECKPOINT"});
}

TEST(Cli, EmbedWritesTheNormalisedFeatures) {
    REQUIRE_BINARY();
    TempDir dir;
    CLIPConfig config = small_config();
    Generator gen(23);
    CLIP model(config, gen);
    const std::string ck = dir.file("model.safetensors");
    save_clip(ck, model);

    const int64_t N = 5;  // with --batch-size 2: batches of 2, 2 and 1
    Tensor images = randn({N, 3, config.image_size, config.image_size}, gen);
    std::vector<int64_t> ids = randint(1, config.vocab_size - 1, {N, 16}, gen).to_vector<int64_t>();
    for (int64_t r = 0; r < N; r++) ids[r * 16 + 3 + 2 * r] = config.vocab_size - 1;  // end-of-text
    Tensor texts = from_vector(ids, {N, 16}, DType::I64);  // shorter than the context: allowed
    write_npy(dir.file("images.npy"), images);
    write_npy(dir.file("texts.npy"), texts);

    Result r = run(bin, "embed --checkpoint " + ck + " --images " + dir.file("images.npy") + " --texts " +
                            dir.file("texts.npy") + " --out " + dir.file("feats") + " --batch-size 2",
                   dir);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "feats.image.npy")) << r.out;

    NoGradGuard no_grad;
    Tensor want_image = l2_normalize(model.encode_image(images), -1);
    Tensor want_text = l2_normalize(model.encode_text(texts), -1);
    Tensor got_image = read_npy(dir.file("feats.image.npy")), got_text = read_npy(dir.file("feats.text.npy"));
    EXPECT_EQ(got_image.dtype(), DType::F32);
    EXPECT_EQ(got_image.shape(), (Shape{N, config.embed_dim}));
    expect_close(got_image, want_image, 1e-5, 1e-6, "image features");
    expect_close(got_text, want_text, 1e-5, 1e-6, "text features");

    // texts alone, --out ending in .npy, int32 ids
    write_npy(dir.file("texts32.npy"), texts.to(DType::I32));
    r = run(bin, "embed --checkpoint " + ck + " --texts " + dir.file("texts32.npy") + " --out " +
                     dir.file("only.npy"),
            dir);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_FALSE(test::path_exists(dir.file("only.image.npy")));
    expect_close(read_npy(dir.file("only.text.npy")), want_text, 1e-5, 1e-6, "text features, int32 ids");
}

TEST(Cli, EmbedErrorsAreOneClearLine) {
    REQUIRE_BINARY();
    TempDir dir;
    CLIPConfig config = small_config();
    Generator gen(24);
    CLIP model(config, gen);
    const std::string ck = dir.file("model.safetensors");
    save_clip(ck, model);
    write_npy(dir.file("small_images.npy"), zeros({2, 3, 16, 16}));
    write_npy(dir.file("gray.npy"), zeros({2, 1, 32, 32}));
    write_npy(dir.file("f64.npy"), zeros({2, 3, 32, 32}, DType::F64));
    write_npy(dir.file("float_ids.npy"), zeros({2, 8}));
    write_npy(dir.file("long_ids.npy"), zeros({2, 64}, DType::I64));
    write_npy(dir.file("images.npy"), zeros({2, 3, 32, 32}));
    write_npy(dir.file("no_images.npy"), zeros({0, 3, 32, 32}));
    write_npy(dir.file("no_ids.npy"), zeros({0, 8}, DType::I64));
    write_npy(dir.file("nan_images.npy"), full({2, 3, 32, 32}, std::nan("")));
    const std::string base = "embed --checkpoint " + ck + " --out " + dir.file("x");

    // empty and non-finite inputs: errors naming the file, and nothing written
    expect_failure(run(bin, base + " --images " + dir.file("no_images.npy"), dir),
                   {"no_images.npy", "no images", "(0, 3, 32, 32)"});
    expect_failure(run(bin, base + " --texts " + dir.file("no_ids.npy"), dir), {"no_ids.npy", "no token rows"});
    expect_failure(run(bin, base + " --images " + dir.file("nan_images.npy"), dir),
                   {"nan_images.npy", "6144 of 6144 values are not finite", "nothing written"});
    EXPECT_FALSE(test::path_exists(dir.file("x.image.npy")));

    expect_failure(run(bin, base + " --images " + dir.file("small_images.npy"), dir),
                   {"small_images.npy", "16x16", "32x32"});
    expect_failure(run(bin, base + " --images " + dir.file("gray.npy"), dir), {"gray.npy", "(2, 1, 32, 32)"});
    expect_failure(run(bin, base + " --images " + dir.file("f64.npy"), dir), {"f64.npy", "float32", "<f8"});
    expect_failure(run(bin, base + " --texts " + dir.file("float_ids.npy"), dir), {"float_ids.npy", "int64", "<f4"});
    expect_failure(run(bin, base + " --texts " + dir.file("long_ids.npy"), dir),
                   {"long_ids.npy", "(2, 64)", "context length is 32"});
    expect_failure(run(bin, base + " --images " + dir.file("nope.npy"), dir), {"nope.npy"});
    expect_failure(run(bin, base, dir), {"--images", "--texts"});
    expect_failure(run(bin, "embed --checkpoint " + ck + " --images " + dir.file("images.npy"), dir), {"--out"});
    expect_failure(run(bin, base + " --images " + dir.file("images.npy") + " --batch-size 0", dir), {"--batch-size"});
    expect_failure(run(bin, base + " --images " + dir.file("images.npy") + " --device tpu", dir),
                   {"--device", "tpu"});
    expect_failure(run(bin, base + " --images " + dir.file("images.npy") + " --bogus", dir), {"--bogus"});
    expect_failure(run(bin, "embed --checkpoint " + dir.file("absent.safetensors") + " --images " +
                                dir.file("images.npy") + " --out " + dir.file("x"),
                        dir),
                   {"absent.safetensors"});
    EXPECT_FALSE(test::path_exists(dir.file("x.image.npy")));
}

TEST(Cli, EmbedReadsImageFilesAndCaptions) {
    REQUIRE_BINARY();
    TempDir dir;
    CLIPConfig config = small_config();
    Generator gen(25);
    CLIP model(config, gen);
    const std::string ck = dir.file("model.safetensors");
    save_clip(ck, model);
    const int64_t S = config.image_size;

    // An image directory: files of several formats and sizes, sorted by name; other files ignored.
    std::filesystem::create_directories(dir.file("imgs"));
    std::vector<std::string> names = {"a.jpg", "b.png", "c.bmp"};
    for (size_t k = 0; k < names.size(); k++) {
        Image img;
        img.width = 40 + 8 * int(k);
        img.height = 36;
        for (int i = 0; i < img.width * img.height * 3; i++) img.rgb.push_back(uint8_t((i * (7 + k)) % 251));
        const std::string path = dir.file("imgs/" + names[k]);
        if (k == 0) write_jpeg(path, img);
        else if (k == 1) write_png(path, img);
        else write_file_bytes(path, encode_bmp(img));
    }
    std::ofstream(dir.file("imgs/notes.txt")) << "not an image\n";
    auto expected_images = [&](const std::vector<std::string>& order) {
        Tensor x = empty({int64_t(order.size()), 3, S, S}, DType::F32);
        for (size_t k = 0; k < order.size(); k++)
            preprocess_clip(decode_image_file(dir.file("imgs/" + order[k])), int(S), x.data<float>() + k * 3 * S * S);
        NoGradGuard no_grad;
        return l2_normalize(model.encode_image(x), -1);
    };
    Result r = run(bin, "embed --checkpoint " + ck + " --images " + dir.file("imgs") + " --out " + dir.file("dir") +
                            " --batch-size 2",
                   dir);
    ASSERT_EQ(r.status, 0) << r.err;
    expect_close(read_npy(dir.file("dir.image.npy")), expected_images(names), 1e-5, 1e-6, "image directory");

    // A list of paths, relative to the list file, in the list's order (blank lines skipped).
    std::filesystem::create_directories(dir.file("lists"));
    std::ofstream(dir.file("lists/images.txt")) << "../imgs/c.bmp\n\n" << dir.file("imgs/a.jpg") << "\n";
    r = run(bin, "embed --checkpoint " + ck + " --images " + dir.file("lists/images.txt") + " --out " +
                     dir.file("list"),
            dir);
    ASSERT_EQ(r.status, 0) << r.err;
    expect_close(read_npy(dir.file("list.image.npy")), expected_images({"c.bmp", "a.jpg"}), 1e-5, 1e-6, "image list");

    // Captions, one a line, tokenized at the model's context length: with the synthetic data's
    // default vocabulary, and with a merges file trained on the captions (as bpe-train writes).
    std::vector<std::string> captions = {"a red circle", "a large blue square above a small green star",
                                         "two shapes on a teal background"};
    {
        std::ofstream f(dir.file("captions.txt"));
        for (const std::string& c : captions) f << c << "\n";
    }
    write_merges_file(dir.file("merges.txt.gz"), train_bpe(captions, 600));
    Tokenizer trained = Tokenizer::from_file(dir.file("merges.txt.gz"));
    for (const Tokenizer* tok : std::initializer_list<const Tokenizer*>{&synthetic_default_tokenizer(), &trained}) {
        const bool synthetic = tok != &trained;
        std::vector<int64_t> ids;
        for (const std::string& c : captions) {
            std::vector<int64_t> t = tok->tokenize(c, int(config.context_length));
            ids.insert(ids.end(), t.begin(), t.end());
        }
        Tensor texts = from_vector(ids, {int64_t(captions.size()), config.context_length}, DType::I64);
        NoGradGuard no_grad;
        Tensor want = l2_normalize(model.encode_text(texts), -1);
        r = run(bin, "embed --checkpoint " + ck + " --texts " + dir.file("captions.txt") + " --vocab " +
                         (synthetic ? std::string("synthetic") : dir.file("merges.txt.gz")) + " --out " +
                         dir.file("cap"),
                dir);
        ASSERT_EQ(r.status, 0) << r.err;
        expect_close(read_npy(dir.file("cap.text.npy")), want, 1e-5, 1e-6, synthetic ? "synthetic vocab" : "trained vocab");
    }

    // Errors name the input.
    const std::string base = "embed --checkpoint " + ck + " --out " + dir.file("x");
    std::filesystem::create_directories(dir.file("empty"));
    expect_failure(run(bin, base + " --images " + dir.file("empty"), dir), {dir.file("empty"), "no image files"});
    std::ofstream(dir.file("lists/missing.txt")) << "../imgs/a.jpg\nghost.png\n";
    expect_failure(run(bin, base + " --images " + dir.file("lists/missing.txt"), dir),
                   {"missing.txt line 2", "ghost.png"});
    std::filesystem::create_directories(dir.file("bad"));
    std::ofstream(dir.file("bad/broken.png")) << "\x89PNG not really";
    expect_failure(run(bin, base + " --images " + dir.file("bad"), dir), {"broken.png"});
    expect_failure(run("env -u RANKCLIP_VOCAB " + bin, base + " --texts " + dir.file("captions.txt"), dir),
                   {"captions.txt", "--vocab"});
    expect_failure(run(bin, base + " --texts " + dir.file("captions.txt") + " --vocab " + dir.file("nope.gz"), dir),
                   {"nope.gz"});
    EXPECT_FALSE(test::path_exists(dir.file("x.image.npy")));
}

// embed's image files go through embed_images and its captions through embed_texts
// (eval/eval.h): the .npy files hold exactly their features, bit for bit, at the same batch size.
TEST(Cli, EmbedWritesExactlyWhatEmbedImagesAndEmbedTextsGive) {
    REQUIRE_BINARY();
    TempDir dir;
    CLIPConfig config = small_config();
    Generator gen(26);
    CLIP model(config, gen);
    const std::string ck = dir.file("model.safetensors");
    save_clip(ck, model);
    std::filesystem::create_directories(dir.file("imgs"));
    test::VectorDataset images;   // the same images, decoded, in the directory's (sorted) order
    for (int k = 0; k < 5; k++) {
        Image img;
        img.width = 33 + 5 * k;
        img.height = 40 - 3 * k;
        for (int i = 0; i < img.width * img.height * 3; i++) img.rgb.push_back(uint8_t((i * (11 + k)) % 253));
        const std::string path = dir.file("imgs/" + std::to_string(k) + (k % 2 ? ".jpg" : ".png"));
        if (k % 2) write_jpeg(path, img);
        else write_png(path, img);
        images.samples.push_back({decode_image_file(path), "", -1});
    }
    const std::vector<std::string> captions = {"a red circle", "two blue squares", "a green star on a grey background"};
    {
        std::ofstream f(dir.file("captions.txt"));
        for (const std::string& c : captions) f << c << "\n";
    }
    Result r = run(bin, "embed --checkpoint " + ck + " --images " + dir.file("imgs") + " --texts " +
                            dir.file("captions.txt") + " --vocab synthetic --batch-size 2 --out " + dir.file("e"),
                   dir);
    ASSERT_EQ(r.status, 0) << r.err;

    auto expect_same_bits = [](const Tensor& got, const Tensor& want, const char* what) {
        ASSERT_EQ(got.dtype(), DType::F32) << what;
        ASSERT_EQ(got.shape(), want.shape()) << what;
        std::vector<float> g = got.to_vector<float>(), w = want.contiguous().to_vector<float>();
        EXPECT_EQ(std::memcmp(g.data(), w.data(), g.size() * sizeof(float)), 0) << what << ": not bit for bit";
    };
    expect_same_bits(read_npy(dir.file("e.image.npy")), embed_images(model, images, {0, 1, 2, 3, 4}, 2).features,
                     "image files");
    expect_same_bits(read_npy(dir.file("e.text.npy")), embed_texts(model, synthetic_default_tokenizer(), captions, 2),
                     "captions");
}

TEST(Cli, PackSyntheticUsesItsDefaultVocabulary) {
    REQUIRE_BINARY();
    TempDir dir;
    const std::string out = dir.file("s.rcpack");
    Result r = run("env -u RANKCLIP_VOCAB " + bin,
                   "pack --data synthetic:train:6 --out " + out + " --size 16 --context-length 32", dir);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.err, "default vocabulary")) << r.err;
    PackedDataset packed(out);
    ASSERT_EQ(packed.size(), 6u);
    ASSERT_EQ(packed.context_length(), 32);
    const Tokenizer& tok = synthetic_default_tokenizer();
    for (size_t i = 0; i < packed.size(); i++) {
        std::vector<int64_t> got(32);
        packed.tokens(i, got.data());
        EXPECT_EQ(got, tok.tokenize(packed.caption(i), 32)) << packed.caption(i);
    }
}

// `rankclip experiment` reuses a finished run only when it was trained with the configuration asked
// for now; a scaled CyCLIP is its own arm, so scales sit side by side in one folder.
TEST(Cli, ExperimentReusesOnlyRunsOfTheSameConfiguration) {
    REQUIRE_BINARY();
    TempDir dir;
    const std::string out = dir.file("exp");
    const std::string base = "experiment --data synthetic --arms clip,cyclip --cyclip-scale 0.5 --seeds 1 --steps 2 "
                             "--eval-n 10 --threads 1 --out " + out;
    Result first = run(bin, base, dir);
    ASSERT_EQ(first.status, 0) << first.err;
    EXPECT_TRUE(std::filesystem::exists(out + "/clip-s0/config.json"));
    EXPECT_TRUE(std::filesystem::exists(out + "/cyclip-x0.5-s0/config.json"));
    EXPECT_TRUE(contains(slurp(out + "/results.md"), "cyclip-x0.5"));

    Result again = run(bin, base, dir);  // the same command: both runs reused
    ASSERT_EQ(again.status, 0) << again.err;
    EXPECT_TRUE(contains(again.out, "clip-s0: finished, reusing its evaluation")) << again.out;
    EXPECT_TRUE(contains(again.out, "cyclip-x0.5-s0: finished, reusing its evaluation")) << again.out;

    expect_failure(run(bin, base + " --lr 1e-3", dir), {out + "/clip-s0", "another configuration", "lr"});
}
