// tests/test_synthetic.cpp
// tests: the anti-aliased rasteriser (data/raster.h) and the synthetic dataset (data/synthetic.h):
// determinism independent of call order and threads, variety, the held-out combinations,
// captions consistent with the structured description, zero-shot labels, layout geometry, and
// the PNG + CSV export read back, and the default vocabulary (deterministic, captions fit context
// 32 untruncated, decode round trip).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "data/csv_dataset.h"
#include "data/image.h"
#include "data/loader.h"
#include "data/raster.h"
#include "data/synthetic.h"
#include "engine/error.h"
#include "test_util.h"

using namespace rankclip;

namespace {

Image blank(int size, Rgb colour = {0, 0, 0}) {
    Image img;
    img.width = img.height = size;
    img.rgb.assign(size_t(size) * size * 3, 0);
    fill_solid(img, colour);
    return img;
}

// Sum of the red channel / 255: the area covered by a pure red shape drawn on black.
double red_area(const Image& img) {
    double sum = 0;
    for (size_t i = 0; i < img.rgb.size(); i += 3) sum += img.rgb[i] / 255.0;
    return sum;
}

int count_partial_pixels(const Image& img) {
    int n = 0;
    for (size_t i = 0; i < img.rgb.size(); i += 3) n += img.rgb[i] > 0 && img.rgb[i] < 255;
    return n;
}

std::vector<std::string> words_of(const std::string& s) {
    std::vector<std::string> out;
    std::string w;
    for (char c : s) {
        if (c == ' ' || c == ',' || c == ':') {
            if (!w.empty()) out.push_back(w);
            w.clear();
        } else {
            w += c;
        }
    }
    if (!w.empty()) out.push_back(w);
    return out;
}

bool has_word(const std::vector<std::string>& words, const std::string& w) {
    return std::find(words.begin(), words.end(), w) != words.end();
}

SyntheticDataset make(SyntheticSplit split, uint64_t seed = 7, size_t n = 2000, int size = 32) {
    SyntheticConfig c;
    c.n = n;
    c.image_size = size;
    return SyntheticDataset(c, split, seed);
}

}  // namespace

// ---- raster ----

TEST(Raster, CircleAreaAndAntialiasedEdge) {
    Image img = blank(64);
    draw_circle(img, 31.3f, 30.7f, 12.5f, Rgb{255, 0, 0});
    double expected = M_PI * 12.5 * 12.5;
    EXPECT_NEAR(red_area(img), expected, 0.01 * expected);
    // The edge crosses about 2 pi r pixels; most of them get an intermediate value.
    EXPECT_GT(count_partial_pixels(img), 40);
    // Far inside: full colour; far outside: untouched.
    EXPECT_EQ(img.rgb[(31 * 64 + 31) * 3], 255);
    EXPECT_EQ(img.rgb[(2 * 64 + 2) * 3], 0);
    EXPECT_EQ(img.rgb[(31 * 64 + 31) * 3 + 1], 0);
}

TEST(Raster, PolygonAreasAndSignedDistance) {
    // An axis-aligned square of side 20 (circumradius 10 sqrt 2, rotated 45 degrees).
    Image img = blank(48);
    std::vector<Point> square = regular_polygon(24.2f, 23.6f, 10.0f * std::sqrt(2.0f), 4, M_PI / 4);
    draw_polygon(img, square, Rgb{255, 0, 0});
    EXPECT_NEAR(red_area(img), 400.0, 4.0);
    EXPECT_GT(count_partial_pixels(img), 20);
    EXPECT_NEAR(polygon_signed_distance(square, Point{24.2f, 23.6f}), -10.0f, 1e-4);
    EXPECT_NEAR(polygon_signed_distance(square, Point{24.2f + 13.0f, 23.6f}), 3.0f, 1e-4);

    // A star is concave: its centre is inside, the middle between two tips is outside.
    std::vector<Point> star = star_polygon(0, 0, 10, 5, 0.4f, 0);
    EXPECT_EQ(star.size(), 10u);
    EXPECT_LT(polygon_signed_distance(star, Point{0, 0}), 0);
    EXPECT_GT(polygon_signed_distance(star, Point{8.0f * std::sin(float(M_PI) / 5),
                                                  -8.0f * std::cos(float(M_PI) / 5)}), 0);
    // Plus sign of half-extent 10, arm half-width 3: area = 2 * 20 * 6 - 6 * 6 = 204.
    Image cross = blank(40);
    draw_polygon(cross, cross_polygon(20, 20, 10, 0.3f, 0), Rgb{255, 0, 0});
    EXPECT_NEAR(red_area(cross), 204.0, 3.0);
}

TEST(Raster, GradientNoiseAndBadInput) {
    Image img = blank(16);
    fill_linear_gradient(img, Rgb{0, 0, 0}, Rgb{200, 100, 50}, 0.0f);   // left to right
    EXPECT_LT(img.rgb[0], img.rgb[15 * 3]);
    EXPECT_EQ(img.rgb[0], img.rgb[(5 * 16) * 3]);   // constant down a column
    Image a = blank(16, Rgb{100, 100, 100}), b = a, c = a;
    add_value_noise(a, 10, 1);
    add_value_noise(b, 10, 1);
    add_value_noise(c, 10, 2);
    EXPECT_EQ(a.rgb, b.rgb);
    EXPECT_NE(a.rgb, c.rgb);
    for (uint8_t v : a.rgb) EXPECT_TRUE(v >= 90 && v <= 110);
    Image wrong;
    wrong.width = wrong.height = 4;
    EXPECT_THROW(fill_solid(wrong, Rgb{}), Error);
    EXPECT_THROW(draw_polygon(img, {Point{0, 0}, Point{1, 1}}, Rgb{}), Error);
}

// ---- dataset ----

TEST(Synthetic, DeterministicIndependentOfOrderAndThreads) {
    SyntheticDataset a = make(SyntheticSplit::Train), b = make(SyntheticSplit::Train);
    // b is read in a different order first; the samples must not care.
    for (size_t i : {1999, 3, 500, 0}) b.get(i);
    for (size_t i = 0; i < 50; i++) {
        Sample x = a.get(i), y = b.get(i);
        EXPECT_EQ(x.image.rgb, y.image.rgb);
        EXPECT_EQ(x.caption, y.caption);
        EXPECT_EQ(x.label, y.label);
    }
    std::vector<Sample> serial(200), parallel(200);
    for (size_t i = 0; i < 200; i++) serial[i] = a.get(i);
#pragma omp parallel for schedule(dynamic, 1) num_threads(4)
    for (int i = 199; i >= 0; i--) parallel[i] = a.get(size_t(i));
    for (size_t i = 0; i < 200; i++) {
        EXPECT_EQ(serial[i].image.rgb, parallel[i].image.rgb) << "index " << i;
        EXPECT_EQ(serial[i].caption, parallel[i].caption) << "index " << i;
    }
    // Another seed, and another split with the same seed, give other images.
    SyntheticDataset other_seed = make(SyntheticSplit::Train, 8);
    SyntheticDataset val = make(SyntheticSplit::Val);
    int same_seed = 0, same_split = 0;
    for (size_t i = 0; i < 50; i++) {
        same_seed += a.get(i).image.rgb == other_seed.get(i).image.rgb;
        same_split += a.get(i).image.rgb == val.get(i).image.rgb;
    }
    EXPECT_EQ(same_seed, 0);
    EXPECT_EQ(same_split, 0);
}

TEST(Synthetic, VarietyCoversEveryAttribute) {
    SyntheticDataset ds = make(SyntheticSplit::Train);
    std::set<int> shapes, colours, counts, relations, backgrounds, kinds, sizes;
    std::set<std::string> captions;
    std::set<std::vector<uint8_t>> images;
    for (size_t i = 0; i < ds.size(); i++) {
        SyntheticSampleInfo info = ds.info(i);
        for (const SyntheticObject& o : info.objects) {
            shapes.insert(o.shape);
            colours.insert(o.colour);
            sizes.insert(o.large);
        }
        counts.insert(int(info.objects.size()));
        relations.insert(info.relation);
        backgrounds.insert(info.background_colour);
        kinds.insert(int(info.background));
        Sample s = ds.get(i);
        ASSERT_EQ(s.image.width, 32);
        ASSERT_EQ(s.image.height, 32);
        ASSERT_EQ(s.image.rgb.size(), 32u * 32 * 3);
        EXPECT_EQ(s.label, info.objects[0].shape);
        captions.insert(s.caption);
        images.insert(s.image.rgb);
    }
    EXPECT_EQ(shapes.size(), size_t(kNumShapes));
    EXPECT_EQ(colours.size(), size_t(kNumColours));
    EXPECT_EQ(counts, (std::set<int>{1, 2, 3}));
    EXPECT_EQ(relations, (std::set<int>{-1, 0, 1, 2, 3}));
    EXPECT_EQ(backgrounds.size(), size_t(kNumBackgroundColours));
    EXPECT_EQ(kinds.size(), 3u);
    EXPECT_EQ(sizes.size(), 2u);
    EXPECT_EQ(images.size(), ds.size());
    // Many different captions, yet partial captions ("a red circle") are shared by many images.
    EXPECT_GT(captions.size(), ds.size() / 3);
    EXPECT_LT(captions.size(), ds.size());
    EXPECT_EQ(ds.class_names().size(), size_t(kNumShapes));
    EXPECT_NE(ds.describe().find("train"), std::string::npos);
}

TEST(Synthetic, HeldOutCombosOnlyInHeldOutSplit) {
    for (SyntheticSplit split : {SyntheticSplit::Train, SyntheticSplit::Val}) {
        SyntheticDataset ds = make(split);
        for (size_t i = 0; i < ds.size(); i++) {
            SyntheticSampleInfo info = ds.info(i);
            for (const SyntheticObject& o : info.objects)
                ASSERT_FALSE(is_held_out_combo(o.shape, o.colour))
                    << synthetic_split_name(split) << " sample " << i << " has a held-out "
                    << colour_name(o.colour) << " " << shape_name(o.shape);
        }
    }
    SyntheticDataset held = make(SyntheticSplit::Heldout);
    std::set<std::pair<int, int>> seen;
    for (size_t i = 0; i < held.size(); i++) {
        SyntheticObject o = held.info(i).objects[0];
        ASSERT_TRUE(is_held_out_combo(o.shape, o.colour)) << "heldout sample " << i;
        seen.insert({o.shape, o.colour});
    }
    EXPECT_EQ(seen.size(), size_t(kNumHeldOutCombos));
    // Every shape and colour still occurs in training; only the pairings are new.
    std::set<int> shapes, colours;
    for (const ShapeColour& c : kHeldOutCombos) {
        shapes.insert(c.shape);
        colours.insert(c.colour);
    }
    EXPECT_EQ(shapes.size(), size_t(kNumHeldOutCombos));
    EXPECT_EQ(colours.size(), size_t(kNumHeldOutCombos));
    EXPECT_EQ(parse_synthetic_split("heldout"), SyntheticSplit::Heldout);
    EXPECT_THROW(parse_synthetic_split("test"), Error);
}

TEST(Synthetic, LayoutGeometryMatchesDescription) {
    SyntheticDataset ds = make(SyntheticSplit::Train);
    for (size_t i = 0; i < ds.size(); i++) {
        SyntheticSampleInfo info = ds.info(i);
        const auto& obj = info.objects;
        for (size_t a = 0; a < obj.size(); a++) {
            EXPECT_GE(obj[a].cx - obj[a].radius, 0.0f);
            EXPECT_LE(obj[a].cx + obj[a].radius, 1.0f);
            EXPECT_GE(obj[a].cy - obj[a].radius, 0.0f);
            EXPECT_LE(obj[a].cy + obj[a].radius, 1.0f);
            for (size_t b = 0; b < a; b++)   // no overlap
                EXPECT_GT(std::hypot(obj[a].cx - obj[b].cx, obj[a].cy - obj[b].cy),
                          obj[a].radius + obj[b].radius) << "sample " << i;
        }
        for (const SyntheticObject& o : obj) {   // sizes do not overlap within a layout
            if (obj.size() > 1) {
                EXPECT_EQ(o.large, o.radius > 0.17f) << "sample " << i;
            }
        }
        if (obj.size() != 2) {
            EXPECT_EQ(info.relation, -1);
            continue;
        }
        float dx = obj[0].cx - obj[1].cx, dy = obj[0].cy - obj[1].cy;   // image y grows down
        switch (info.relation) {
            case 0: EXPECT_LT(dy, 0); break;   // above
            case 1: EXPECT_GT(dy, 0); break;   // below
            case 2: EXPECT_LT(dx, 0); break;   // left of
            case 3: EXPECT_GT(dx, 0); break;   // right of
        }
        float along = info.relation < 2 ? std::fabs(dy) : std::fabs(dx);
        float across = info.relation < 2 ? std::fabs(dx) : std::fabs(dy);
        EXPECT_LE(across, 0.5f * along + 1e-6f) << "sample " << i;
    }
}

TEST(Synthetic, RenderedObjectsHaveTheirColour) {
    // At 64 px every object's centre pixel is fully covered by it (objects do not overlap).
    SyntheticDataset ds = make(SyntheticSplit::Train, 3, 300, 64);
    for (size_t i = 0; i < ds.size(); i++) {
        SyntheticSampleInfo info = ds.info(i);
        Image img = ds.get(i).image;
        for (const SyntheticObject& o : info.objects) {
            int x = int(o.cx * 64), y = int(o.cy * 64);
            const uint8_t* p = &img.rgb[(size_t(y) * 64 + x) * 3];
            Rgb want = colour_rgb(o.colour);
            EXPECT_LE(std::abs(p[0] - want.r), 10) << "sample " << i << " " << shape_name(o.shape);
            EXPECT_LE(std::abs(p[1] - want.g), 10) << "sample " << i;
            EXPECT_LE(std::abs(p[2] - want.b), 10) << "sample " << i;
        }
        // Anti-aliased edges: a rendered image has values strictly between the palette's.
        EXPECT_GT(count_partial_pixels(img), 0);
    }
}

// Every attribute a caption names belongs to the image it describes.
TEST(Synthetic, CaptionsConsistentWithInfo) {
    SyntheticDataset ds = make(SyntheticSplit::Train);
    const char* const count_words[] = {"one", "two", "three"};
    int relation_checked = 0;
    for (size_t i = 0; i < ds.size(); i++) {
        SyntheticSampleInfo info = ds.info(i);
        std::vector<std::string> caps = ds.captions(i, 3);
        ASSERT_EQ(caps.size(), 3u);
        EXPECT_EQ(caps[0], ds.get(i).caption);
        EXPECT_EQ(std::set<std::string>(caps.begin(), caps.end()).size(), 3u) << "sample " << i;
        for (std::string cap : caps) {
            // The background, when named, is the right one; then drop it from the colour check.
            std::string bg = std::string("on a ") + background_colour_name(info.background_colour) +
                             " background";
            size_t at = cap.find(" background");
            if (at != std::string::npos) {
                ASSERT_NE(cap.find(bg), std::string::npos) << cap;
                cap.erase(cap.find(bg), bg.size());
            }
            std::vector<std::string> words = words_of(cap);
            for (int c = 0; c < kNumColours; c++) {
                if (!has_word(words, colour_name(c))) continue;
                bool present = false;
                for (const auto& o : info.objects) present |= o.colour == c;
                EXPECT_TRUE(present) << "caption '" << cap << "' names " << colour_name(c);
            }
            for (int s = 0; s < kNumShapes; s++) {
                if (!has_word(words, shape_name(s))) continue;
                bool present = false;
                for (const auto& o : info.objects) present |= o.shape == s;
                EXPECT_TRUE(present) << "caption '" << cap << "' names " << shape_name(s);
            }
            for (const char* size : {"small", "large"}) {
                if (!has_word(words, size)) continue;
                bool present = false;
                for (const auto& o : info.objects) present |= o.large == (size[0] == 'l');
                EXPECT_TRUE(present) << "caption '" << cap << "'";
            }
            // "two shapes", "three shapes", "one shape": the count; "two other shapes": 3.
            for (size_t w = 0; w + 1 < words.size(); w++) {
                for (int k = 0; k < 3; k++) {
                    if (words[w] == count_words[k] && words[w + 1].rfind("shape", 0) == 0) {
                        EXPECT_EQ(info.objects.size(), size_t(k + 1)) << "caption '" << cap << "'";
                    }
                }
            }
            if (cap.find("two other shapes") != std::string::npos) {
                EXPECT_EQ(info.objects.size(), 3u) << "caption '" << cap << "'";
            }
            if (cap.find("another shape") != std::string::npos) {
                EXPECT_EQ(info.objects.size(), 2u) << "caption '" << cap << "'";
            }
            for (size_t w = 0; w + 1 < words.size(); w++) {   // "an" before vowels only
                if (words[w] == "a" || words[w] == "an") {
                    EXPECT_EQ(words[w] == "an",
                              std::string("aeiou").find(words[w + 1][0]) != std::string::npos)
                        << "caption '" << cap << "'";
                }
            }
            // "<colour0 ...> <relation> <colour1 ...>": the relation reads in the right order.
            if (info.objects.size() == 2 && info.objects[0].colour != info.objects[1].colour) {
                auto pos = [&](int colour) {
                    auto it = std::find(words.begin(), words.end(), colour_name(colour));
                    return it == words.end() ? -1 : int(it - words.begin());
                };
                int p0 = pos(info.objects[0].colour), p1 = pos(info.objects[1].colour);
                int said = -1;
                if (has_word(words, "above") || has_word(words, "over")) said = 0;
                if (has_word(words, "below") || has_word(words, "under")) said = 1;
                if (cap.find("left of") != std::string::npos) said = 2;
                if (cap.find("right of") != std::string::npos) said = 3;
                if (p0 >= 0 && p1 >= 0 && said >= 0) {
                    EXPECT_EQ(said, p0 < p1 ? info.relation : (info.relation ^ 1))
                        << "caption '" << cap << "'";
                    relation_checked++;
                }
            }
        }
    }
    EXPECT_GT(relation_checked, 100);
}

TEST(Synthetic, ZeroShotTasksAndLabels) {
    std::vector<ZeroShotTask> tasks = synthetic_zero_shot_tasks();
    ASSERT_EQ(tasks.size(), 4u);
    EXPECT_EQ(tasks[0].class_names.size(), size_t(kNumShapes));
    EXPECT_EQ(tasks[1].class_names.size(), size_t(kNumColours));
    EXPECT_EQ(tasks[2].class_names.size(), 3u);
    EXPECT_EQ(tasks[3].class_names.size(), size_t(kNumRelations));
    // Articles follow the class name.
    std::vector<std::string> orange = tasks[1].prompts(1);
    EXPECT_EQ(orange[0], "an orange shape");
    EXPECT_EQ(tasks[1].prompts(0)[0], "a red shape");
    EXPECT_EQ(tasks[0].prompts(2)[1], "a picture of a triangle");
    EXPECT_THROW(tasks[0].prompts(kNumShapes), Error);

    SyntheticDataset ds = make(SyntheticSplit::Heldout);
    std::vector<int> relation_counts(kNumRelations, 0);
    for (size_t i = 0; i < ds.size(); i++) {
        SyntheticSampleInfo info = ds.info(i);
        EXPECT_EQ(task_label(tasks[0], info), info.objects[0].shape);
        EXPECT_EQ(task_label(tasks[1], info), info.objects[0].colour);
        EXPECT_EQ(task_label(tasks[2], info), int64_t(info.objects.size()) - 1);
        int64_t rel = task_label(tasks[3], info);
        if (info.objects.size() != 2) {
            EXPECT_EQ(rel, -1);
            EXPECT_THROW(relation_prompts(info), Error);
            continue;
        }
        ASSERT_GE(rel, 0);
        relation_counts[rel]++;
        std::vector<std::string> p = relation_prompts(info);
        ASSERT_EQ(p.size(), size_t(kNumRelations));
        EXPECT_NE(p[rel].find(relation_name(int(rel))), std::string::npos);
        EXPECT_EQ(p[rel].find(colour_name(info.objects[0].colour)),
                  p[rel].find(' ') + 1) << p[rel];   // "a/an <colour0> <shape0> <relation> ..."
    }
    for (int r = 0; r < kNumRelations; r++) EXPECT_GT(relation_counts[r], 50);
}

TEST(Synthetic, BadConfigAndIndex) {
    SyntheticConfig c;
    c.max_objects = 4;
    EXPECT_THROW(SyntheticDataset(c, SyntheticSplit::Train, 0), Error);
    c.max_objects = 1;
    c.image_size = 2;
    EXPECT_THROW(SyntheticDataset(c, SyntheticSplit::Train, 0), Error);
    c.image_size = 16;
    c.n = 10;
    SyntheticDataset ds(c, SyntheticSplit::Train, 0);
    EXPECT_THROW(ds.get(10), Error);
    for (size_t i = 0; i < ds.size(); i++) EXPECT_EQ(ds.info(i).objects.size(), 1u);
}

// Reads captions.csv as written: filepath,"caption with "" escaped".
static std::vector<std::pair<std::string, std::string>> read_captions_csv(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "filepath,title");
    std::vector<std::pair<std::string, std::string>> rows;
    while (std::getline(in, line)) {
        size_t comma = line.find(',');
        EXPECT_NE(comma, std::string::npos);
        std::string quoted = line.substr(comma + 1), caption;
        EXPECT_TRUE(quoted.size() >= 2 && quoted.front() == '"' && quoted.back() == '"') << line;
        for (size_t k = 1; k + 1 < quoted.size(); k++) {
            caption += quoted[k];
            if (quoted[k] == '"') k++;
        }
        rows.push_back({line.substr(0, comma), caption});
    }
    return rows;
}

TEST(Synthetic, ExportWritesPngsAndCsvReadableBack) {
    rankclip::test::TempDir dir("rankclip_synth");
    SyntheticConfig c;
    c.n = 25;
    c.image_size = 24;
    SyntheticDataset ds(c, SyntheticSplit::Val, 11);
    EXPECT_EQ(export_synthetic(ds, dir.path + "/out", 2), 25u);
    auto rows = read_captions_csv(dir.path + "/out/captions.csv");
    ASSERT_EQ(rows.size(), 50u);
    for (size_t i = 0; i < 25; i++) {
        std::vector<std::string> caps = ds.captions(i, 2);
        EXPECT_EQ(rows[2 * i].first, rows[2 * i + 1].first);
        EXPECT_EQ(rows[2 * i].second, caps[0]);
        EXPECT_EQ(rows[2 * i + 1].second, caps[1]);
        Image img = decode_image_file(dir.path + "/out/" + rows[2 * i].first);
        EXPECT_EQ(img.width, 24);
        EXPECT_EQ(img.height, 24);
        EXPECT_EQ(img.rgb, ds.get(i).image.rgb) << rows[2 * i].first;   // PNG is lossless
    }
    // The DATASETS engineer's OpenCLIP CSV reader takes it as it is.
    CsvDataset csv(dir.path + "/out/captions.csv");
    ASSERT_EQ(csv.size(), 50u);
    for (size_t i = 0; i < 25; i += 6) {
        Sample s = csv.get(2 * i + 1);
        EXPECT_EQ(s.caption, ds.captions(i, 2)[1]);
        EXPECT_EQ(s.image.rgb, ds.get(i).image.rgb);
    }
    std::ifstream labels(dir.path + "/out/labels.csv");
    std::string line;
    std::getline(labels, line);
    EXPECT_EQ(line, "filepath,shape,colour,count,relation");
    for (size_t i = 0; i < 25; i++) {
        ASSERT_TRUE(std::getline(labels, line));
        SyntheticSampleInfo info = ds.info(i);
        std::string want = rows[2 * i].first + "," + shape_name(info.objects[0].shape) + "," +
                           colour_name(info.objects[0].colour) + "," +
                           std::to_string(info.objects.size()) + ",";
        EXPECT_EQ(line.substr(0, want.size()), want);
    }
}

// ---- the default vocabulary ----

TEST(SyntheticVocab, DeterministicAndCached) {
    BpeMerges a = synthetic_default_merges(), b = train_bpe(synthetic_vocab_captions(), kSyntheticDefaultVocabSize);
    ASSERT_FALSE(a.empty());
    EXPECT_EQ(a, b);   // retrained from scratch: the same merges, in the same order
    const Tokenizer& t1 = synthetic_default_tokenizer();
    const Tokenizer& t2 = synthetic_default_tokenizer();
    EXPECT_EQ(&t1, &t2);   // cached
    EXPECT_LE(t1.vocab_size(), kSyntheticDefaultVocabSize);
    EXPECT_EQ(t1.vocab_size(), 512 + int64_t(a.size()) + 2);
    EXPECT_EQ(t1.eot(), t1.vocab_size() - 1);
    // A smaller size is a prefix of the same merges (BPE is greedy).
    BpeMerges small = synthetic_default_merges(600);
    ASSERT_EQ(small.size(), size_t(600 - 514));
    EXPECT_TRUE(std::equal(small.begin(), small.end(), a.begin()));
    EXPECT_THROW(synthetic_default_tokenizer(100), Error);
}

TEST(SyntheticVocab, CaptionsFitContextAndRoundTrip) {
    const Tokenizer& tok = synthetic_default_tokenizer();
    // Captions the vocabulary was not trained on: another seed, and the held-out split.
    SyntheticConfig config;
    config.n = 300;
    SyntheticDataset val(config, SyntheticSplit::Val, 7), heldout(config, SyntheticSplit::Heldout, 7);
    size_t longest = 0;
    for (const SyntheticDataset* ds : {&val, &heldout}) {
        for (size_t i = 0; i < config.n; i++) {
            for (const std::string& c : ds->captions(i, 2)) {
                std::vector<int64_t> ids = tok.encode(c);
                longest = std::max(longest, ids.size());
                // Fits context 32 with sot/eot: tokenize() does not truncate.
                ASSERT_LE(ids.size() + 2, 32u) << c;
                std::vector<int64_t> padded = tok.tokenize(c, 32);
                EXPECT_EQ(padded[0], tok.sot());
                EXPECT_EQ(padded[ids.size() + 1], tok.eot()) << c;
                // Round trip: the words come back (decode joins pieces with spaces).
                std::string expect;
                for (const std::string& piece : clip_pre_tokenize(c)) expect += piece + " ";
                EXPECT_EQ(tok.decode(ids), expect);
            }
        }
    }
    // The grammar's words are single tokens: captions are short sequences, not byte soup.
    EXPECT_LE(longest, 24u);
    EXPECT_EQ(tok.encode("circle").size(), 1u);
    EXPECT_EQ(tok.encode("a red circle above a blue square").size(), 7u);
}

TEST(SyntheticVocab, LoaderUsesItByDefault) {
    SyntheticConfig config;
    config.n = 8;
    config.image_size = 16;
    SyntheticDataset data(config, SyntheticSplit::Train, 3);
    LoaderOptions opt;
    opt.batch_size = 4;
    opt.image_size = 16;
    opt.context_length = 32;
    opt.shuffle = false;
    opt.num_workers = 0;   // no tokenizer given
    DataLoader dl(data, opt);
    Batch b;
    ASSERT_TRUE(dl.next(b));
    ASSERT_TRUE(b.text.defined());
    ASSERT_EQ(b.text.shape(), (Shape{4, 32}));
    const Tokenizer& tok = synthetic_default_tokenizer();
    for (int64_t k = 0; k < 4; k++) {
        std::vector<int64_t> want = tok.tokenize(data.get(size_t(b.indices[k])).caption, 32);
        for (int64_t t = 0; t < 32; t++) EXPECT_EQ(b.text.data<int64_t>()[k * 32 + t], want[t]);
    }
}
