// data/synthetic.h
// defines: SyntheticDataset, the built-in captioned-image data (no download): images of one to
// three anti-aliased shapes on varied backgrounds, captioned by a small grammar with paraphrases
// and several levels of detail, so a caption partially matches many images (the many-to-many
// structure RankCLIP is about); its zero-shot tasks (shape, colour, count, relation) and the
// held-out split of (shape, colour) combinations never seen in training; export_synthetic, which
// writes a split to disk as PNGs + an OpenCLIP captions CSV (used by `rankclip synth`);
// synthetic_default_tokenizer, the small BPE vocabulary trained on the grammar's captions that
// the synthetic data uses when no vocabulary is named.
//
// Every sample is a pure function of (seed, split, index): get(i) does not depend on call order
// or thread, and the dataset is immutable, so get() is thread-safe.
//
// Held-out combinations (kHeldOutCombos): purple circle, yellow square, blue triangle, red
// diamond, green star, orange cross. No object of the train or val split has one of them; every
// image of the heldout split has one as its first object (the one the shape and colour tasks
// label), the other objects are drawn from all combinations. Every shape and every colour still
// occurs in training, only these pairings do not.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/bpe_trainer.h"
#include "data/dataset.h"
#include "data/raster.h"
#include "data/tokenizer.h"

namespace rankclip {

// ---- vocabulary (indices are the class labels of the zero-shot tasks) ----
constexpr int kNumShapes = 6;    // circle, square, triangle, diamond, star, cross
constexpr int kNumColours = 8;   // red, orange, yellow, green, blue, purple, pink, white
constexpr int kNumBackgroundColours = 6;   // black, gray, navy, dark green, brown, teal
constexpr int kNumRelations = 4;   // above, below, left of, right of
const char* shape_name(int shape);
const char* colour_name(int colour);
const char* background_colour_name(int background_colour);
const char* relation_name(int relation);   // "above", "below", "to the left of", "to the right of"
// The nominal RGB of an object colour (rendering jitters each channel by at most +-10).
Rgb colour_rgb(int colour);

struct ShapeColour {
    int shape, colour;
};
constexpr int kNumHeldOutCombos = 6;
extern const ShapeColour kHeldOutCombos[kNumHeldOutCombos];
bool is_held_out_combo(int shape, int colour);

enum class SyntheticSplit { Train, Val, Heldout };
SyntheticSplit parse_synthetic_split(const std::string& s);   // "train" | "val" | "heldout"
const char* synthetic_split_name(SyntheticSplit split);

// ---- the structured description of one image ----
enum class BackgroundKind { Solid, Gradient, Noise };

struct SyntheticObject {
    int shape = 0, colour = 0;
    bool large = false;
    float cx = 0, cy = 0, radius = 0;   // centre and radius as fractions of the image side
    float rotation = 0;                 // radians
};

struct SyntheticSampleInfo {
    std::vector<SyntheticObject> objects;   // 1 to 3, drawn in this order
    BackgroundKind background = BackgroundKind::Solid;
    int background_colour = 0;
    // Where objects[0] is relative to objects[1] (index into relation_name) for two-object
    // images; -1 otherwise. The separation along the relation's axis is at least twice the
    // offset across it, so the relation is unambiguous.
    int relation = -1;
};

struct SyntheticConfig {
    size_t n = 10000;          // virtual length: size() of the dataset
    int image_size = 32;       // pixels per side
    int max_objects = 3;       // 1..3 objects per image, uniformly
};

class SyntheticDataset : public Dataset {
public:
    SyntheticDataset(const SyntheticConfig& config, SyntheticSplit split, uint64_t seed);

    size_t size() const override { return config_.n; }
    // The image, one caption (chosen by the grammar) and label = the first object's shape.
    Sample get(size_t index) const override;
    std::string describe() const override;
    std::vector<std::string> class_names() const override;   // the shape names

    // What image `index` shows (the same draw get() renders).
    SyntheticSampleInfo info(size_t index) const;
    // `count` different captions of image `index` (paraphrases and levels of detail; for
    // COCO-style retrieval with several captions per image). The first one is get().caption.
    std::vector<std::string> captions(size_t index, int count) const;

    const SyntheticConfig& config() const { return config_; }
    SyntheticSplit split() const { return split_; }
    uint64_t seed() const { return seed_; }

private:
    SyntheticConfig config_;
    SyntheticSplit split_;
    uint64_t seed_;
};

// Renders the image described by `info` at `size` pixels; `noise_seed` seeds a Noise background.
Image render_synthetic(const SyntheticSampleInfo& info, int size, uint64_t noise_seed);

// One caption of `info`, chosen by the grammar from `choice` (any 64-bit value; different values
// give the different paraphrases and levels of detail).
std::string synthetic_caption(const SyntheticSampleInfo& info, uint64_t choice);

// ---- zero-shot tasks ----
enum class ZeroShotKind { Shape, Colour, Count, Relation };

struct ZeroShotTask {
    std::string name;                       // "shape", "colour", "count", "relation"
    ZeroShotKind kind = ZeroShotKind::Shape;
    std::vector<std::string> class_names;
    // Templates with "{}" for the class name. Prefer prompts(c), which also turns "a {}" into
    // "an {}" before a vowel ("an orange shape").
    std::vector<std::string> templates;
    std::vector<std::string> prompts(size_t class_index) const;   // one per template
};

// shape (6 classes), colour (8), count ("one shape", "two shapes", "three shapes"), relation (4,
// two-object images only).
std::vector<ZeroShotTask> synthetic_zero_shot_tasks();

// The sample's class for the task, or -1 when the task does not apply (relation on an image
// without exactly two objects). Shape and colour label the first object.
int64_t task_label(const ZeroShotTask& task, const SyntheticSampleInfo& info);

// For the relation task with the objects named: the caption "<first> <relation> <second>" for
// each of the 4 relations (index = relation), e.g. "a red circle above a blue square".
std::vector<std::string> relation_prompts(const SyntheticSampleInfo& info);

// ---- export (rankclip synth) ----
// Writes images/NNNNNNN.png for every sample of `dataset` under out_dir (created), captions.csv
// with columns filepath,title (paths relative to the CSV, captions quoted; `captions_per_image`
// rows per image, COCO-style) and labels.csv (filepath,shape,colour,count,relation; names, with
// "none" for no relation). Runs on the engine's threads. Returns the number of images written.
size_t export_synthetic(const SyntheticDataset& dataset, const std::string& out_dir,
                        int captions_per_image = 1);

// ---- default vocabulary ----
// The captions the default vocabulary is trained on: kSyntheticVocabImages train-split images
// (seed 0), three captions each, plus every zero-shot prompt. Deterministic.
constexpr int kSyntheticVocabImages = 1500;
std::vector<std::string> synthetic_vocab_captions();
// A byte-level BPE tokenizer (data/bpe_trainer.h) trained on synthetic_vocab_captions() for at
// most `vocab_size` entries (fewer when the grammar runs out of pairs to merge), so a caption is
// a handful of tokens and fits the tiny/small configs' context of 32. Trained once per size per
// process (a fraction of a second) and cached: the reference stays valid for the program's
// lifetime. Used by DataLoader and `rankclip pack` for a SyntheticDataset when no vocabulary
// (--vocab / RANKCLIP_VOCAB) is given. Errors: vocab_size outside [514, 49408].
constexpr int64_t kSyntheticDefaultVocabSize = 1024;
const Tokenizer& synthetic_default_tokenizer(int64_t vocab_size = kSyntheticDefaultVocabSize);
// The same merges (for writing them with write_merges_file).
BpeMerges synthetic_default_merges(int64_t vocab_size = kSyntheticDefaultVocabSize);

}  // namespace rankclip
