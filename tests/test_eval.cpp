// tests/test_eval.cpp
// tests: model-level evaluation (eval/eval.h) with a tiny untrained CLIP: zero-shot end to end
// on an image folder the test writes (checked against the metrics of embed output computed by
// hand, and the embeddings against the model run directly), retrieval on a COCO-style CSV with
// two captions per image, the whole synthetic suite (every metric name present, values in range,
// a second run identical), option parsing and the table; and `rankclip eval` itself, which must
// write JSON with the expected keys (skipped when the program is not built).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "cli_test_util.h"
#include "data/csv_dataset.h"
#include "data/image.h"
#include "data/image_folder.h"
#include "data/image_write.h"
#include "data/packed.h"
#include "data/synthetic.h"
#include "engine/json.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "models/checkpoint.h"
#include "test_util.h"
#include "eval/eval.h"

using namespace rankclip;
using rankclip::test::CliResult;
using rankclip::test::error_of;
using rankclip::test::expect_close;
using rankclip::test::run_cli;
using rankclip::test::slurp;
using rankclip::test::TempDir;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A small, fast model (16 px, one layer per tower) with the synthetic vocabulary.
std::shared_ptr<CLIP> tiny_model(uint64_t seed = 0) {
    CLIPConfig c = clip_config("tiny");
    c.image_size = 16, c.patch_size = 4;
    c.vision_width = 32, c.vision_layers = 1, c.vision_heads = 2;
    c.text_width = 32, c.text_layers = 1, c.text_heads = 2, c.context_length = 24;
    c.embed_dim = 16;
    c.vocab_size = synthetic_default_tokenizer().vocab_size();
    Generator gen(seed);
    return std::make_shared<CLIP>(c, gen);
}

// An image of one colour with a lighter square whose place depends on k.
Image swatch(uint8_t r, uint8_t g, uint8_t b, int k, int size = 20) {
    Image img;
    img.width = img.height = size;
    img.rgb.resize(size_t(size * size * 3));
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            bool spot = (x / 5 == k % 4) && (y / 5 == k / 4 % 4);
            uint8_t* p = img.rgb.data() + (y * size + x) * 3;
            p[0] = spot ? 255 : r, p[1] = spot ? 255 : g, p[2] = spot ? 255 : b;
        }
    return img;
}

// root/<class>/<k>.png for three classes of `per_class` images each.
void write_folder(const std::string& root, int per_class) {
    const char* names[3] = {"red_thing", "green_thing", "blue_thing"};
    const uint8_t colours[3][3] = {{200, 20, 20}, {20, 200, 20}, {20, 20, 200}};
    for (int c = 0; c < 3; c++) {
        std::filesystem::create_directories(root + "/" + names[c]);
        for (int k = 0; k < per_class; k++)
            write_png(root + "/" + names[c] + "/" + std::to_string(k) + ".png",
                      swatch(colours[c][0], colours[c][1], colours[c][2], k));
    }
}

double metric(const EvalMetrics& m, const std::string& name) {
    for (const auto& [key, value] : m)
        if (key == name) return value;
    ADD_FAILURE() << "no metric " << name;
    return std::nan("");
}

bool has_metric(const EvalMetrics& m, const std::string& name) {
    for (const auto& kv : m)
        if (kv.first == name) return true;
    return false;
}

}  // namespace

TEST(Eval, SpreadIndicesAreEvenAndCapped) {
    EXPECT_EQ(spread_indices(10, 0), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
    EXPECT_EQ(spread_indices(10, 4), (std::vector<int64_t>{0, 2, 5, 7}));
    EXPECT_EQ(spread_indices(3, 10), (std::vector<int64_t>{0, 1, 2}));
}

TEST(Eval, EmbedImagesMatchesTheModelOnPreprocessedPixels) {
    TempDir dir;
    write_folder(dir.path, 2);
    auto model = tiny_model();
    ImageFolderDataset data(dir.path);
    EmbeddedImages e = embed_images(*model, data, {0, 3, 5}, /*batch_size=*/2);   // two batches
    ASSERT_EQ(e.features.shape(), (Shape{3, 16}));
    EXPECT_EQ(e.labels, (std::vector<int64_t>{0, 1, 2}));   // blue_thing, green_thing, red_thing (sorted)
    EXPECT_EQ(e.captions[0], "blue thing");
    // By hand: decode, CLIP preprocessing at 16 px, image tower, L2-normalise.
    Tensor pixels = empty({3, 3, 16, 16});
    int k = 0;
    for (int64_t i : {0, 3, 5})
        preprocess_clip(data.get(size_t(i)).image, 16, pixels.data<float>() + (k++) * 3 * 16 * 16);
    NoGradGuard no_grad;
    expect_close(e.features, l2_normalize(model->encode_image(pixels), -1), 1e-5, 1e-6, "image features");
    EXPECT_TRUE(contains(error_of([&] { embed_images(*model, data, {6}); }), "outside the dataset"));
}

TEST(Eval, ZeroShotEndToEndOnAnImageFolder) {
    TempDir dir;
    const std::string root = dir.file("swatches");
    write_folder(root, 3);
    auto model = tiny_model(1);
    const Tokenizer& tok = synthetic_default_tokenizer();
    EvalConfig cfg;
    cfg.zero_shot = {root};
    cfg.batch_size = 4;
    EvalMetrics m = evaluate(*model, cfg, tok);

    // The same numbers from the building blocks and the pure metrics.
    ImageFolderDataset data(root);
    EmbeddedImages e = embed_images(*model, data, spread_indices(9, 0));
    Tensor classes = zero_shot_classifier(*model, tok, {"blue thing", "green thing", "red thing"}, generic_templates());
    ClassificationResult expected = zero_shot_classification(e.features, classes, e.labels);
    EXPECT_EQ(metric(m, "zeroshot/swatches/top1"), expected.top(1));
    EXPECT_EQ(metric(m, "zeroshot/swatches/top3"), 1.0);   // 3 classes
    EXPECT_EQ(metric(m, "zeroshot/swatches/top5"), 1.0);
    EXPECT_EQ(metric(m, "zeroshot/swatches/mean_per_class"), expected.mean_per_class_accuracy);
    EXPECT_EQ(metric(m, "zeroshot/swatches/n"), 9.0);
    for (const char* c : {"blue_thing", "green_thing", "red_thing"})
        EXPECT_TRUE(has_metric(m, std::string("zeroshot/swatches/class/") + c)) << c;
    EXPECT_EQ(metric(m, "zeroshot/swatches/class/red_thing"), expected.per_class_accuracy[2]);

    // Class embeddings are the renormalised mean of the normalised prompt features.
    std::vector<std::string> prompts = class_prompts("red thing", generic_templates());
    ASSERT_EQ(prompts.size(), generic_templates().size());
    EXPECT_EQ(prompts[0], "a photo of a red thing.");
    Tensor t = embed_texts(*model, tok, prompts);   // (K, E)
    expect_close(classes.narrow(0, 2, 1), class_embeddings(t.unsqueeze(0)), 1e-6, 1e-7, "class embedding");

    // A templates file replaces the generic set; --limit spreads over the classes.
    std::ofstream(dir.file("templates.txt")) << "# colours\n{} swatch\n\na picture of a {}\n";
    cfg.templates_file = dir.file("templates.txt");
    cfg.limit = 3;
    EvalMetrics limited = evaluate(*model, cfg, tok);
    EXPECT_EQ(metric(limited, "zeroshot/swatches/n"), 3.0);
    EXPECT_TRUE(has_metric(limited, "zeroshot/swatches/class/green_thing"));   // one image of each class
    Tensor mine = zero_shot_classifier(*model, tok, {"blue thing", "green thing", "red thing"},
                                       {"{} swatch", "a picture of a {}"});
    EmbeddedImages few = embed_images(*model, data, {0, 3, 6});
    EXPECT_EQ(metric(limited, "zeroshot/swatches/top1"),
              zero_shot_classification(few.features, mine, few.labels).top(1));
}

TEST(Eval, RetrievalOnACsvWithTwoCaptionsPerImage) {
    TempDir dir;
    std::ofstream csv(dir.file("pairs.csv"));
    csv << "filepath,title\n";
    for (int i = 0; i < 3; i++) {
        write_png(dir.file("img" + std::to_string(i) + ".png"), swatch(uint8_t(60 * i), 100, 30, i));
        csv << "img" << i << ".png,a red circle number " << i << "\n";
        csv << "img" << i << ".png,\"a shape, the " << i << "th\"\n";
    }
    csv.close();
    auto model = tiny_model(2);
    const Tokenizer& tok = synthetic_default_tokenizer();
    EvalConfig cfg;
    cfg.retrieval = {dir.file("pairs.csv")};
    cfg.consistency = {dir.file("pairs.csv")};
    EvalMetrics m = evaluate(*model, cfg, tok);
    EXPECT_EQ(metric(m, "retrieval/pairs/images"), 3.0);
    EXPECT_EQ(metric(m, "retrieval/pairs/captions"), 6.0);
    EXPECT_EQ(metric(m, "retrieval/pairs/i2t/R@10"), 1.0);
    EXPECT_EQ(metric(m, "consistency/pairs/pairs"), 3.0);   // one caption per image

    // By hand: rows 0, 2, 4 are the images, every row a caption.
    CsvDataset data(dir.file("pairs.csv"));
    EmbeddedImages e = embed_images(*model, data, {0, 2, 4});
    std::vector<std::string> captions;
    for (size_t r = 0; r < 6; r++) captions.push_back(data.caption(r));
    Tensor t = embed_texts(*model, tok, captions);
    RetrievalResult r = retrieval_metrics(matmul(e.features.to(DType::F64), t.to(DType::F64).t()), {0, 0, 1, 1, 2, 2});
    EXPECT_EQ(metric(m, "retrieval/pairs/i2t/R@1"), r.image_to_text.recall_at(1));
    EXPECT_EQ(metric(m, "retrieval/pairs/t2i/R@1"), r.text_to_image.recall_at(1));
    EXPECT_EQ(metric(m, "retrieval/pairs/t2i/mean_rank"), r.text_to_image.mean_rank);
    EXPECT_EQ(metric(m, "retrieval/pairs/i2t/median_rank"), r.image_to_text.median_rank);
    Tensor first_captions = embed_texts(*model, tok, {captions[0], captions[2], captions[4]});
    ConsistencyResult c = ranking_consistency(e.features, first_captions);
    EXPECT_NEAR(metric(m, "consistency/pairs/kendall_in"), c.kendall_in, 1e-12);
    EXPECT_NEAR(metric(m, "consistency/pairs/spearman_cross"), c.spearman_cross, 1e-12);

    // Packed, the CSV's rows repeat their image's pixels: rows with identical pixels are one image,
    // and (the pixels being the same after CLIP's resize) every number equals the CSV's.
    PackOptions pack;
    pack.image_size = 16;
    pack_dataset(data, dir.file("pairs.rcpack"), pack);
    cfg.retrieval = {dir.file("pairs.rcpack")};
    cfg.consistency.clear();
    EvalMetrics packed = evaluate(*model, cfg, tok);
    ASSERT_EQ(packed.size(), 12u);   // images, captions, 5 per direction
    for (size_t k = 0; k < packed.size(); k++) {
        EXPECT_EQ(packed[k].first, "retrieval/pairs/" + m[k].first.substr(std::string("retrieval/pairs/").size()));
        EXPECT_EQ(packed[k].second, m[k].second) << packed[k].first;
    }
}

TEST(Eval, SyntheticSuiteHasEveryMetricAndRepeats) {
    auto model = tiny_model(3);
    EvalConfig cfg = default_eval_config();
    cfg.synthetic_n = 24;
    cfg.synthetic_probe_train_n = 30;
    cfg.captions_per_image = 2;
    cfg.probe_options.steps = 20;
    cfg.batch_size = 16;
    Evaluator evaluator(cfg, synthetic_default_tokenizer());
    EvalMetrics m = evaluator.run(*model);
    for (const char* task : {"shape", "colour", "count"})
        for (const char* split : {"synthetic", "synthetic-heldout"})
            for (const char* key : {"top1", "top3", "top5", "mean_per_class"}) {
                const double v = metric(m, str_cat("zeroshot/", split, "-", task, "/", key));
                EXPECT_TRUE(v >= 0 && v <= 1) << split << "-" << task << "/" << key << " = " << v;
            }
    EXPECT_EQ(metric(m, "zeroshot/synthetic-shape/n"), 24.0);
    EXPECT_TRUE(has_metric(m, "zeroshot/synthetic-colour/class/red"));
    EXPECT_EQ(metric(m, "retrieval/synthetic/images"), 24.0);
    EXPECT_EQ(metric(m, "retrieval/synthetic/captions"), 48.0);
    for (const char* d : {"i2t", "t2i"})
        for (const char* key : {"R@1", "R@5", "R@10", "mean_rank", "median_rank"})
            EXPECT_TRUE(has_metric(m, str_cat("retrieval/synthetic/", d, "/", key))) << d << "/" << key;
    for (const char* key : {"top1", "train_top1", "val_top1", "l2", "train_n", "test_n"})
        EXPECT_TRUE(has_metric(m, str_cat("probe/synthetic/", key))) << key;
    EXPECT_EQ(metric(m, "probe/synthetic/train_n"), 30.0);
    EXPECT_EQ(metric(m, "probe/synthetic/test_n"), 24.0);
    for (const char* key : {"kendall_in", "spearman_in", "kendall_cross", "spearman_cross"}) {
        const double v = metric(m, str_cat("consistency/synthetic/", key));
        EXPECT_TRUE(v >= -1 && v <= 1) << key << " = " << v;
    }
    std::set<std::string> names;
    for (const auto& kv : m) EXPECT_TRUE(names.insert(kv.first).second) << "duplicate " << kv.first;
    // A second run of the same Evaluator: the same numbers (nothing stale in its caches).
    EXPECT_EQ(evaluator.run(*model), m);
    // The table has one row per group.
    const std::string table = format_eval_table(m);
    EXPECT_TRUE(contains(table, "retrieval/synthetic/i2t")) << table;
    EXPECT_TRUE(contains(table, "R@1 ")) << table;
    EXPECT_TRUE(contains(table, "n 24")) << table;
}

TEST(Eval, OptionsAndErrors) {
    EvalConfig cfg;
    EXPECT_TRUE(set_eval_option(cfg, "zeroshot", "synthetic,fashion-mnist"));
    EXPECT_TRUE(set_eval_option(cfg, "zeroshot", "synthetic:heldout"));
    EXPECT_EQ(cfg.zero_shot, (std::vector<std::string>{"synthetic", "fashion-mnist", "synthetic:heldout"}));
    EXPECT_TRUE(set_eval_option(cfg, "zeroshot", "none"));
    EXPECT_TRUE(cfg.zero_shot.empty());
    EXPECT_TRUE(set_eval_option(cfg, "limit", "7"));
    EXPECT_EQ(cfg.limit, 7);
    EXPECT_FALSE(set_eval_option(cfg, "steps", "7"));
    EXPECT_TRUE(contains(error_of([&] { set_eval_option(cfg, "batch-size", "0"); }), "--batch-size"));
    EXPECT_TRUE(contains(error_of([&] { set_eval_option(cfg, "probe-lr", "fast"); }), "--probe-lr"));

    const Tokenizer& tok = synthetic_default_tokenizer();
    TempDir dir;
    EvalConfig bad;
    bad.zero_shot = {dir.file("missing")};
    EXPECT_TRUE(contains(error_of([&] { Evaluator(bad, tok); }), "missing"));
    bad.zero_shot = {"synthetic:sideways"};
    EXPECT_FALSE(error_of([&] { Evaluator(bad, tok); }).empty());
    bad.zero_shot.clear();
    bad.probe = {"synthetic:val"};
    EXPECT_TRUE(contains(error_of([&] { Evaluator(bad, tok); }), "train split"));
    std::ofstream(dir.file("t.txt")) << "a photo\n";
    EXPECT_TRUE(contains(error_of([&] { read_templates_file(dir.file("t.txt")); }), "line 1"));
}

// ---- the CLI ----

TEST(Eval, CliWritesJsonWithTheExpectedKeys) {
    REQUIRE_BINARY_FOR("CLI test");
    TempDir dir;
    const std::string root = dir.file("swatches");
    write_folder(root, 5);
    auto model = tiny_model(4);
    save_clip(dir.file("model.safetensors"), *model, DType::F32, {{"step", "12"}});
    const std::string out = dir.file("results.json");
    CliResult r = run_cli(bin,
                          "eval --checkpoint " + dir.file("model.safetensors") + " --zeroshot " + root + " --probe " +
                              root + " --probe-steps 10 --vocab synthetic --quiet --threads 2 --out " + out,
                          dir);
    ASSERT_EQ(r.status, 0) << r.err;
    Json result = Json::parse(slurp(out));
    EXPECT_EQ(result["checkpoint"].as_string(), dir.file("model.safetensors"));
    EXPECT_EQ(result["step"].as_int(), 12);
    const Json& metrics = result["metrics"];
    for (const char* key : {"zeroshot/swatches/top1", "zeroshot/swatches/top3", "zeroshot/swatches/top5",
                            "zeroshot/swatches/mean_per_class", "zeroshot/swatches/class/red_thing",
                            "probe/swatches/top1", "probe/swatches/l2"})
        EXPECT_TRUE(metrics.contains(key)) << key << " missing from " << metrics.dump();
    EXPECT_EQ(metrics["zeroshot/swatches/n"].as_double(), 15.0);
    EXPECT_EQ(metrics["probe/swatches/test_n"].as_double(), 3.0);   // every 5th image
    EXPECT_TRUE(contains(r.out, "zeroshot/swatches")) << r.out;

    // A bad dataset fails before the model loads, naming it; one line on stderr, exit 1.
    r = run_cli(bin,
                "eval --checkpoint " + dir.file("nothing.safetensors") + " --zeroshot " + dir.file("no_such_dir") +
                    " --quiet --vocab synthetic",
                dir);
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(contains(r.err, "no_such_dir")) << r.err;
}
