// data/synthetic.cpp
// defines: the synthetic captioned-image dataset of data/synthetic.h: drawing a sample's
// description from (seed, split, index), rendering it with data/raster.h, the caption grammar,
// the zero-shot tasks and the export to PNG + CSV.
#include "data/synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

#include "data/image_write.h"
#include "data/raster.h"
#include "engine/atomic_file.h"
#include "engine/error.h"
#include "engine/ops.h"

namespace rankclip {

// ---- vocabulary ----
static const char* const kShapeNames[kNumShapes] = {"circle", "square", "triangle",
                                                    "diamond", "star", "cross"};
static const char* const kColourNames[kNumColours] = {"red",  "orange", "yellow", "green",
                                                      "blue", "purple", "pink",   "white"};
static const Rgb kColourValues[kNumColours] = {{215, 40, 40},  {245, 135, 20}, {240, 215, 40},
                                               {50, 175, 60},  {45, 90, 225},  {135, 55, 190},
                                               {245, 135, 195}, {240, 240, 240}};
// Backgrounds have their own (darker) names so that "red" always means an object's colour.
static const char* const kBackgroundNames[kNumBackgroundColours] = {
    "black", "gray", "navy", "dark green", "brown", "teal"};
static const Rgb kBackgroundValues[kNumBackgroundColours] = {
    {20, 20, 20}, {105, 105, 105}, {25, 35, 85}, {25, 70, 35}, {95, 60, 30}, {20, 95, 100}};
static const char* const kRelationNames[kNumRelations] = {"above", "below", "to the left of",
                                                          "to the right of"};

const ShapeColour kHeldOutCombos[kNumHeldOutCombos] = {
    {0, 5},   // purple circle
    {1, 2},   // yellow square
    {2, 4},   // blue triangle
    {3, 0},   // red diamond
    {4, 3},   // green star
    {5, 1},   // orange cross
};

const char* shape_name(int shape) {
    RC_CHECK(shape >= 0 && shape < kNumShapes, "shape_name: no shape ", shape);
    return kShapeNames[shape];
}
const char* colour_name(int colour) {
    RC_CHECK(colour >= 0 && colour < kNumColours, "colour_name: no colour ", colour);
    return kColourNames[colour];
}
const char* background_colour_name(int background_colour) {
    RC_CHECK(background_colour >= 0 && background_colour < kNumBackgroundColours,
             "background_colour_name: no background colour ", background_colour);
    return kBackgroundNames[background_colour];
}
const char* relation_name(int relation) {
    RC_CHECK(relation >= 0 && relation < kNumRelations, "relation_name: no relation ", relation);
    return kRelationNames[relation];
}

Rgb colour_rgb(int colour) {
    RC_CHECK(colour >= 0 && colour < kNumColours, "colour_rgb: no colour ", colour);
    return kColourValues[colour];
}

bool is_held_out_combo(int shape, int colour) {
    for (const ShapeColour& c : kHeldOutCombos)
        if (c.shape == shape && c.colour == colour) return true;
    return false;
}

SyntheticSplit parse_synthetic_split(const std::string& s) {
    if (s == "train") return SyntheticSplit::Train;
    if (s == "val") return SyntheticSplit::Val;
    if (s == "heldout") return SyntheticSplit::Heldout;
    throw Error("synthetic: unknown split '" + s + "' (expected train, val or heldout)");
}

const char* synthetic_split_name(SyntheticSplit split) {
    switch (split) {
        case SyntheticSplit::Train: return "train";
        case SyntheticSplit::Val: return "val";
        case SyntheticSplit::Heldout: return "heldout";
    }
    return "?";
}

// ---- per-sample random numbers ----
// SplitMix64: a tiny generator whose whole state is one word, so each sample gets its own from a
// hash of (seed, split, index) at no cost, which makes get(i) independent of call order.
static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

struct SampleRng {
    uint64_t state;
    uint64_t next() { return mix64(state += 0x9e3779b97f4a7c15ull); }
    float uniform() { return float(next() >> 40) * (1.0f / 16777216.0f); }   // [0, 1)
    float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
    int below(int n) { return int(next() % uint64_t(n)); }
};

static uint64_t sample_hash(uint64_t seed, SyntheticSplit split, size_t index) {
    return mix64(mix64(mix64(seed) + uint64_t(split) + 1) + uint64_t(index));
}

// ---- drawing a description ----
// Radii as fractions of the image side. Sizes do not overlap between "small" and "large" within
// an image layout; single objects get more room than objects sharing the image.
static float draw_radius(SampleRng& rng, bool large, int count) {
    if (count == 1) return large ? rng.uniform(0.27f, 0.36f) : rng.uniform(0.14f, 0.19f);
    return large ? rng.uniform(0.19f, 0.23f) : rng.uniform(0.11f, 0.15f);
}

static float draw_rotation(SampleRng& rng, int shape) {
    switch (shape) {
        case 0: return 0.0f;                                     // circle
        // A square and a diamond differ only by rotation: keep them >= 30 degrees apart.
        case 1: return float(M_PI / 4) + rng.uniform(-0.12f, 0.12f);   // square: flat sides
        case 3: return rng.uniform(-0.1f, 0.1f);                       // diamond: a vertex up
        default: return rng.uniform(-0.25f, 0.25f);              // triangle, star, cross
    }
}

// Two objects with objects[0] <relation> objects[1]: along the relation's axis they are separated
// by at least r0 + r1 + gap; across it the offset is at most half the separation.
static bool place_pair(SampleRng& rng, SyntheticObject& a, SyntheticObject& b, int relation) {
    const float margin = 0.01f, gap = 0.04f;
    bool vertical = relation < 2;
    // `first` has the smaller coordinate along the axis (higher up, or further left).
    bool a_first = relation == 0 || relation == 2;
    SyntheticObject& first = a_first ? a : b;
    SyntheticObject& second = a_first ? b : a;
    float lo1 = first.radius + margin, hi2 = 1.0f - second.radius - margin;
    float need = first.radius + second.radius + gap;
    float hi1 = std::min(1.0f - first.radius - margin, hi2 - need);
    if (hi1 < lo1) return false;
    float p1 = rng.uniform(lo1, hi1);
    float p2 = rng.uniform(p1 + need, hi2);
    float d = p2 - p1;
    float q1 = rng.uniform(first.radius + margin, 1.0f - first.radius - margin);
    float lo_q2 = std::max(second.radius + margin, q1 - 0.5f * d);
    float hi_q2 = std::min(1.0f - second.radius - margin, q1 + 0.5f * d);
    float q2 = rng.uniform(lo_q2, hi_q2);
    if (vertical) {
        first.cy = p1; second.cy = p2; first.cx = q1; second.cx = q2;
    } else {
        first.cx = p1; second.cx = p2; first.cy = q1; second.cy = q2;
    }
    return true;
}

// Any number of objects without overlap, by rejection.
static bool place_free(SampleRng& rng, std::vector<SyntheticObject>& objects, int tries) {
    const float margin = 0.01f, gap = 0.03f;
    for (int t = 0; t < tries; t++) {
        bool ok = true;
        for (size_t i = 0; i < objects.size() && ok; i++) {
            SyntheticObject& o = objects[i];
            o.cx = rng.uniform(o.radius + margin, 1.0f - o.radius - margin);
            o.cy = rng.uniform(o.radius + margin, 1.0f - o.radius - margin);
            for (size_t j = 0; j < i && ok; j++) {
                const SyntheticObject& p = objects[j];
                ok = std::hypot(o.cx - p.cx, o.cy - p.cy) >= o.radius + p.radius + gap;
            }
        }
        if (ok) return true;
    }
    return false;
}

static SyntheticSampleInfo draw_info(uint64_t hash, SyntheticSplit split, int max_objects) {
    SampleRng rng{hash};
    SyntheticSampleInfo info;
    int count = 1 + rng.below(max_objects);
    info.objects.resize(count);
    for (int i = 0; i < count; i++) {
        SyntheticObject& o = info.objects[i];
        if (split == SyntheticSplit::Heldout && i == 0) {
            const ShapeColour& c = kHeldOutCombos[rng.below(kNumHeldOutCombos)];
            o.shape = c.shape;
            o.colour = c.colour;
        } else {
            do {
                o.shape = rng.below(kNumShapes);
                o.colour = rng.below(kNumColours);
            } while (split != SyntheticSplit::Heldout && is_held_out_combo(o.shape, o.colour));
        }
        o.large = rng.below(2) == 1;
        o.radius = draw_radius(rng, o.large, count);
        o.rotation = draw_rotation(rng, o.shape);
    }
    if (count == 2) {
        info.relation = rng.below(kNumRelations);
        if (!place_pair(rng, info.objects[0], info.objects[1], info.relation)) {
            for (SyntheticObject& o : info.objects) {   // two large ones do not fit: shrink
                o.large = false;
                o.radius = draw_radius(rng, false, count);
            }
            RC_CHECK(place_pair(rng, info.objects[0], info.objects[1], info.relation),
                     "synthetic: cannot place two small objects");
        }
    } else if (!place_free(rng, info.objects, 200)) {
        for (SyntheticObject& o : info.objects) {
            o.large = false;
            o.radius = draw_radius(rng, false, count);
        }
        RC_CHECK(place_free(rng, info.objects, 10000), "synthetic: cannot place ", count,
                 " small objects");
    }
    info.background = BackgroundKind(rng.below(3));
    info.background_colour = rng.below(kNumBackgroundColours);
    return info;
}

// ---- rendering ----
static Rgb jitter(Rgb c, SampleRng& rng, int amount) {
    auto j = [&](uint8_t v) {
        return uint8_t(std::min(255, std::max(0, int(v) + rng.below(2 * amount + 1) - amount)));
    };
    return Rgb{j(c.r), j(c.g), j(c.b)};
}

static Rgb scale(Rgb c, float f) {
    auto s = [&](uint8_t v) { return uint8_t(std::min(255.0f, v * f + 0.5f)); };
    return Rgb{s(c.r), s(c.g), s(c.b)};
}

Image render_synthetic(const SyntheticSampleInfo& info, int size, uint64_t render_seed) {
    RC_CHECK(size >= 4, "render_synthetic: image size must be >= 4, got ", size);
    SampleRng rng{mix64(render_seed ^ 0x5eedull)};
    Image img;
    img.width = img.height = size;
    img.rgb.assign(size_t(size) * size * 3, 0);
    Rgb bg = jitter(kBackgroundValues[info.background_colour], rng, 8);
    switch (info.background) {
        case BackgroundKind::Solid: fill_solid(img, bg); break;
        case BackgroundKind::Gradient:
            fill_linear_gradient(img, scale(bg, 1.5f), scale(bg, 0.6f),
                                 rng.uniform(0.0f, float(2 * M_PI)));
            break;
        case BackgroundKind::Noise:
            fill_solid(img, bg);
            add_value_noise(img, 14, rng.next());
            break;
    }
    float s = float(size);
    for (const SyntheticObject& o : info.objects) {
        Rgb colour = jitter(kColourValues[o.colour], rng, 10);
        float cx = o.cx * s, cy = o.cy * s, r = o.radius * s;
        switch (o.shape) {
            case 0: draw_circle(img, cx, cy, 0.85f * r, colour); break;
            case 1: draw_polygon(img, regular_polygon(cx, cy, r, 4, o.rotation), colour); break;
            case 2:   // the centroid of an equilateral triangle sits low: shift it up a little
                draw_polygon(img, regular_polygon(cx, cy + 0.1f * r, r, 3, o.rotation), colour);
                break;
            case 3:
                draw_polygon(img, regular_polygon(cx, cy, r, 4, o.rotation), colour);
                break;
            case 4: draw_polygon(img, star_polygon(cx, cy, r, 5, 0.45f, o.rotation), colour); break;
            case 5: draw_polygon(img, cross_polygon(cx, cy, 0.95f * r, 0.33f, o.rotation), colour);
                break;
        }
    }
    return img;
}

// ---- captions ----
// "a orange circle" -> "an orange circle": every word "a" before a word starting with a vowel.
static std::string fix_articles(const std::string& s) {
    std::string out;
    out.reserve(s.size() + 4);
    for (size_t i = 0; i < s.size(); i++) {
        out += s[i];
        bool word_a = s[i] == 'a' && (i == 0 || s[i - 1] == ' ') && i + 2 < s.size() &&
                      s[i + 1] == ' ';
        if (word_a && std::string("aeiou").find(s[i + 2]) != std::string::npos) out += 'n';
    }
    return out;
}

template <size_t N>
static const char* pick(SampleRng& rng, const char* const (&options)[N]) {
    return options[rng.below(int(N))];
}

// A noun phrase for one object, with the article; `detail` 0..4 picks which attributes it names.
static std::string noun_phrase(const SyntheticObject& o, int detail) {
    std::string shape = kShapeNames[o.shape], colour = kColourNames[o.colour];
    std::string size = o.large ? "large" : "small";
    switch (detail) {
        case 0: return "a " + shape;
        case 1: return "a " + colour + " " + shape;
        case 2: return "a " + size + " " + colour + " " + shape;
        case 3: return "a " + size + " " + shape;
        default: return "a " + colour + " shape";
    }
}

// Where one object sits, in words: "in the top left", "in the centre", ...
static std::string position_phrase(const SyntheticObject& o) {
    int col = o.cx < 0.4f ? 0 : o.cx > 0.6f ? 2 : 1;
    int row = o.cy < 0.4f ? 0 : o.cy > 0.6f ? 2 : 1;
    static const char* const names[3][3] = {
        {"in the top left", "at the top", "in the top right"},
        {"on the left", "in the centre", "on the right"},
        {"in the bottom left", "at the bottom", "in the bottom right"}};
    return names[row][col];
}

static const char* const kRelationWords[kNumRelations][2] = {
    {"above", "over"}, {"below", "under"}, {"to the left of", "left of"},
    {"to the right of", "right of"}};
static int inverse_relation(int r) { return r ^ 1; }   // above <-> below, left <-> right

static std::string one_object_caption(const SyntheticSampleInfo& info, SampleRng& rng) {
    const SyntheticObject& o = info.objects[0];
    // Mostly colour + shape or more; sometimes only part of the description.
    static const int kDetails[] = {0, 1, 1, 2, 2, 2, 3, 4};
    std::string np = noun_phrase(o, kDetails[rng.below(8)]);
    std::string bg = std::string(kBackgroundNames[info.background_colour]) + " background";
    static const char* const kFrames[] = {"a picture of ", "an image of ", "a drawing of ",
                                          "a photo of ", ""};
    switch (rng.below(7)) {
        case 0: return np;
        case 1: return pick(rng, kFrames) + np;
        case 2: return np + " on a " + bg;
        case 3: return pick(rng, kFrames) + np + " on a " + bg;
        case 4: return np + " " + position_phrase(o);
        case 5: return rng.below(2) ? "one shape: " + np : "a single " + np.substr(2);
        default: return "there is " + np + (rng.below(2) ? " on a " + bg : "");
    }
}

static std::string two_object_caption(const SyntheticSampleInfo& info, SampleRng& rng) {
    const SyntheticObject& a = info.objects[0];
    const SyntheticObject& b = info.objects[1];
    static const int kDetails[] = {0, 1, 1, 1, 2, 2};
    std::string na = noun_phrase(a, kDetails[rng.below(6)]);
    std::string nb = noun_phrase(b, kDetails[rng.below(6)]);
    int r = info.relation;
    std::string rel = kRelationWords[r][rng.below(2)];
    std::string inv = kRelationWords[inverse_relation(r)][rng.below(2)];
    std::string bg = std::string(kBackgroundNames[info.background_colour]) + " background";
    static const char* const kFrames[] = {"a picture of ", "an image of ", ""};
    switch (rng.below(9)) {
        case 0: return na + " " + rel + " " + nb;
        case 1: return nb + " " + inv + " " + na;
        case 2: return pick(rng, kFrames) + na + " " + rel + " " + nb + " on a " + bg;
        case 3: return rng.below(2) ? "two shapes: " + na + " and " + nb
                                    : "two shapes: " + nb + " and " + na;
        case 4: return na + " and " + nb + (rng.below(2) ? " on a " + bg : "");
        case 5: return rng.below(2) ? std::string("two shapes, one ") + kRelationNames[r] +
                                          " the other"
                                    : std::string("a shape ") + kRelationNames[r] +
                                          " another shape";
        case 6: return "a picture with " + (rng.below(2) ? na : nb) + " and another shape";
        case 7: return rng.below(2) ? "two shapes on a " + bg : "a picture of two shapes";
        default: return na + " " + rel + " " + nb;
    }
}

static std::string three_object_caption(const SyntheticSampleInfo& info, SampleRng& rng) {
    static const int kDetails[] = {0, 1, 1, 1, 2, 2};
    std::string n[3];
    for (int i = 0; i < 3; i++) n[i] = noun_phrase(info.objects[i], kDetails[rng.below(6)]);
    std::string list = n[0] + ", " + n[1] + " and " + n[2];
    std::string bg = std::string(kBackgroundNames[info.background_colour]) + " background";
    switch (rng.below(6)) {
        case 0: return "three shapes: " + list;
        case 1: return list;
        case 2: return list + " on a " + bg;
        case 3: return rng.below(2) ? "three shapes on a " + bg : "a picture of three shapes";
        case 4: return "a picture with " + n[rng.below(3)] + " and two other shapes";
        default: return (rng.below(2) ? "a picture of " : "an image of ") + list;
    }
}

std::string synthetic_caption(const SyntheticSampleInfo& info, uint64_t choice) {
    RC_CHECK(!info.objects.empty() && info.objects.size() <= 3,
             "synthetic_caption: an image has 1 to 3 objects, got ", info.objects.size());
    SampleRng rng{mix64(choice)};
    std::string caption;
    if (info.objects.size() == 1) caption = one_object_caption(info, rng);
    else if (info.objects.size() == 2) caption = two_object_caption(info, rng);
    else caption = three_object_caption(info, rng);
    return fix_articles(caption);
}

// ---- the dataset ----
SyntheticDataset::SyntheticDataset(const SyntheticConfig& config, SyntheticSplit split,
                                   uint64_t seed)
    : config_(config), split_(split), seed_(seed) {
    RC_CHECK(config.image_size >= 4, "SyntheticDataset: image_size must be >= 4, got ",
             config.image_size);
    RC_CHECK(config.max_objects >= 1 && config.max_objects <= 3,
             "SyntheticDataset: max_objects must be 1..3, got ", config.max_objects);
}

SyntheticSampleInfo SyntheticDataset::info(size_t index) const {
    RC_CHECK(index < config_.n, "SyntheticDataset: index ", index, " out of range (size ",
             config_.n, ")");
    return draw_info(sample_hash(seed_, split_, index), split_, config_.max_objects);
}

// The k-th caption choice of a sample (k = 0 is get()'s caption).
static uint64_t caption_choice(uint64_t hash, int k) { return mix64(hash ^ 0xca9710ull) + k; }

Sample SyntheticDataset::get(size_t index) const {
    SyntheticSampleInfo description = info(index);
    uint64_t hash = sample_hash(seed_, split_, index);
    Sample s;
    s.image = render_synthetic(description, config_.image_size, hash);
    s.caption = synthetic_caption(description, caption_choice(hash, 0));
    s.label = description.objects[0].shape;
    return s;
}

std::vector<std::string> SyntheticDataset::captions(size_t index, int count) const {
    SyntheticSampleInfo description = info(index);
    uint64_t hash = sample_hash(seed_, split_, index);
    std::vector<std::string> out;
    // Distinct paraphrases while the grammar has them; repeats only if it runs out.
    for (int k = 0; int(out.size()) < count && k < 50 * count; k++) {
        std::string c = synthetic_caption(description, caption_choice(hash, k));
        if (k == 0 || std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
    }
    for (int k = 0; int(out.size()) < count; k++) out.push_back(out[k]);
    return out;
}

std::string SyntheticDataset::describe() const {
    return str_cat("synthetic: split ", synthetic_split_name(split_), ", seed ", seed_, ", ",
                   config_.n, " images of ", config_.image_size, "x", config_.image_size, ", 1-",
                   config_.max_objects, " objects");
}

std::vector<std::string> SyntheticDataset::class_names() const {
    return std::vector<std::string>(kShapeNames, kShapeNames + kNumShapes);
}

// ---- zero-shot tasks ----
std::vector<std::string> ZeroShotTask::prompts(size_t class_index) const {
    RC_CHECK(class_index < class_names.size(), "ZeroShotTask ", name, ": no class ", class_index,
             " (", class_names.size(), " classes)");
    std::vector<std::string> out;
    for (const std::string& t : templates) {
        std::string p = t;
        size_t at = p.find("{}");
        RC_CHECK(at != std::string::npos, "ZeroShotTask ", name, ": template '", t,
                 "' has no {}");
        p.replace(at, 2, class_names[class_index]);
        out.push_back(fix_articles(p));
    }
    return out;
}

std::vector<ZeroShotTask> synthetic_zero_shot_tasks() {
    std::vector<ZeroShotTask> tasks(4);
    tasks[0].name = "shape";
    tasks[0].kind = ZeroShotKind::Shape;
    tasks[0].class_names.assign(kShapeNames, kShapeNames + kNumShapes);
    tasks[0].templates = {"a {}", "a picture of a {}", "a drawing of a {}", "a small {}",
                          "a large {}"};
    tasks[1].name = "colour";
    tasks[1].kind = ZeroShotKind::Colour;
    tasks[1].class_names.assign(kColourNames, kColourNames + kNumColours);
    tasks[1].templates = {"a {} shape", "a picture of a {} shape", "a small {} shape",
                          "a large {} shape"};
    tasks[2].name = "count";
    tasks[2].kind = ZeroShotKind::Count;
    tasks[2].class_names = {"one shape", "two shapes", "three shapes"};
    tasks[2].templates = {"{}", "a picture of {}", "an image with {}"};
    tasks[3].name = "relation";
    tasks[3].kind = ZeroShotKind::Relation;
    tasks[3].class_names.assign(kRelationNames, kRelationNames + kNumRelations);
    tasks[3].templates = {"two shapes, one {} the other", "a shape {} another shape"};
    return tasks;
}

int64_t task_label(const ZeroShotTask& task, const SyntheticSampleInfo& info) {
    RC_CHECK(!info.objects.empty(), "task_label: the sample has no objects");
    switch (task.kind) {
        case ZeroShotKind::Shape: return info.objects[0].shape;
        case ZeroShotKind::Colour: return info.objects[0].colour;
        case ZeroShotKind::Count: return int64_t(info.objects.size()) - 1;
        case ZeroShotKind::Relation: return info.objects.size() == 2 ? info.relation : -1;
    }
    return -1;
}

std::vector<std::string> relation_prompts(const SyntheticSampleInfo& info) {
    RC_CHECK(info.objects.size() == 2, "relation_prompts: needs a two-object image, got ",
             info.objects.size(), " objects");
    std::vector<std::string> out;
    for (int r = 0; r < kNumRelations; r++)
        out.push_back(fix_articles(noun_phrase(info.objects[0], 1) + " " + kRelationNames[r] +
                                   " " + noun_phrase(info.objects[1], 1)));
    return out;
}

// ---- export ----
static std::string csv_quote(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

size_t export_synthetic(const SyntheticDataset& dataset, const std::string& out_dir,
                        int captions_per_image) {
    RC_CHECK(captions_per_image >= 1, "export_synthetic: captions_per_image must be >= 1, got ",
             captions_per_image);
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(fs::path(out_dir) / "images", ec);
    RC_CHECK(!ec, "export_synthetic: cannot create ", (fs::path(out_dir) / "images").string(),
             ": ", ec.message());
    size_t n = dataset.size();
    std::vector<std::string> rel_paths(n);
    std::vector<std::vector<std::string>> captions(n);
    std::vector<SyntheticSampleInfo> infos(n);
    std::mutex mu;
    std::string first_error;
#pragma omp parallel for schedule(dynamic, 16) num_threads(get_num_threads())
    for (int64_t i = 0; i < int64_t(n); i++) {
        try {
            char name[32];
            std::snprintf(name, sizeof(name), "images/%07lld.png", (long long)i);
            rel_paths[i] = name;
            Sample s = dataset.get(size_t(i));
            captions[i] = dataset.captions(size_t(i), captions_per_image);
            infos[i] = dataset.info(size_t(i));
            write_png((fs::path(out_dir) / name).string(), s.image);
        } catch (const std::exception& e) {
            std::lock_guard<std::mutex> lock(mu);
            if (first_error.empty()) first_error = e.what();
        }
    }
    RC_CHECK(first_error.empty(), "export_synthetic: ", first_error);

    std::string csv_path = (fs::path(out_dir) / "captions.csv").string();
    std::ostringstream csv;
    csv << "filepath,title\n";
    for (size_t i = 0; i < n; i++)
        for (const std::string& c : captions[i]) csv << rel_paths[i] << "," << csv_quote(c) << "\n";
    write_file_atomic(csv_path, csv.str());

    std::string labels_path = (fs::path(out_dir) / "labels.csv").string();
    std::ostringstream labels;
    labels << "filepath,shape,colour,count,relation\n";
    for (size_t i = 0; i < n; i++) {
        const SyntheticSampleInfo& d = infos[i];
        labels << rel_paths[i] << "," << kShapeNames[d.objects[0].shape] << ","
               << kColourNames[d.objects[0].colour] << "," << d.objects.size() << ","
               << (d.relation >= 0 ? csv_quote(kRelationNames[d.relation]) : "none") << "\n";
    }
    write_file_atomic(labels_path, labels.str());
    return n;
}

// ---- default vocabulary ----
std::vector<std::string> synthetic_vocab_captions() {
    SyntheticConfig config;
    config.n = kSyntheticVocabImages;
    SyntheticDataset train(config, SyntheticSplit::Train, 0);
    std::vector<std::string> out;
    for (size_t i = 0; i < config.n; i++)
        for (std::string& c : train.captions(i, 3)) out.push_back(std::move(c));
    for (const ZeroShotTask& task : synthetic_zero_shot_tasks())
        for (size_t c = 0; c < task.class_names.size(); c++)
            for (std::string& p : task.prompts(c)) out.push_back(std::move(p));
    return out;
}

namespace {
struct DefaultVocab {
    BpeMerges merges;
    Tokenizer tokenizer;
};
}  // namespace

static const DefaultVocab& default_vocab(int64_t vocab_size) {
    RC_CHECK(vocab_size >= kBpeMinVocabSize && vocab_size <= kBpeMaxVocabSize,
             "synthetic_default_tokenizer: vocab_size must be in [", kBpeMinVocabSize, ", ",
             kBpeMaxVocabSize, "], got ", vocab_size);
    static std::mutex mu;
    static std::map<int64_t, std::unique_ptr<DefaultVocab>> cache;   // never shrinks: references stay valid
    std::lock_guard<std::mutex> lock(mu);
    auto& slot = cache[vocab_size];
    if (!slot) {
        auto v = std::make_unique<DefaultVocab>();
        v->merges = train_bpe(synthetic_vocab_captions(), vocab_size);
        v->tokenizer = Tokenizer::from_merges(v->merges);
        slot = std::move(v);
    }
    return *slot;
}

const Tokenizer& synthetic_default_tokenizer(int64_t vocab_size) {
    return default_vocab(vocab_size).tokenizer;
}

BpeMerges synthetic_default_merges(int64_t vocab_size) { return default_vocab(vocab_size).merges; }

}  // namespace rankclip
