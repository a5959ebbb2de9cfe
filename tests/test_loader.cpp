// tests/test_loader.cpp
// Tests DataLoader (data/loader.h): batches identical for 0, 1, 2 and 4 workers (order and
// seeded augmentation), epoch shuffling (differs across epochs and seeds, a permutation each
// time), drop_last, pin_memory (the same batches, in usable CPU tensors), the packed fast path
// against decoding, token batches, error propagation and the progress callback.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstring>

#include "data/loader.h"
#include "data/packed.h"
#include "data/tokenizer.h"
#include "engine/backend.h"
#include "engine/ops.h"
#include "tests/test_util.h"

using namespace rankclip;

namespace {

// N samples of varied sizes with random pixels; label = index; sample `bad` throws.
struct RandomDataset : Dataset {
    std::vector<Sample> samples;
    int64_t bad = -1;
    explicit RandomDataset(int n, uint64_t seed = 1) {
        Generator gen(seed);
        for (int i = 0; i < n; i++) {
            Sample s;
            s.image.width = 10 + i % 7;
            s.image.height = 9 + (i * 3) % 5;
            s.image.rgb.resize(size_t(s.image.width) * s.image.height * 3);
            for (auto& v : s.image.rgb) v = uint8_t(gen.random() & 255);
            s.caption = "sample " + std::to_string(i) + (i % 2 ? " is odd" : " is even");
            s.label = i;
            samples.push_back(std::move(s));
        }
    }
    size_t size() const override { return samples.size(); }
    Sample get(size_t i) const override {
        RC_CHECK(int64_t(i) != bad, "random dataset: sample ", i, " is bad");
        return samples.at(i);
    }
    std::string describe() const override { return "random"; }
};

std::vector<Batch> run_epoch(DataLoader& dl, int64_t epoch) {
    dl.start_epoch(epoch);
    std::vector<Batch> out;
    Batch b;
    while (dl.next(b)) out.push_back(std::move(b));
    return out;
}

void expect_same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b, const std::string& what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    for (size_t k = 0; k < a.size(); k++) {
        EXPECT_EQ(a[k].indices, b[k].indices) << what << " batch " << k;
        EXPECT_EQ(a[k].images.to_vector<float>(), b[k].images.to_vector<float>()) << what << " batch " << k;
        EXPECT_EQ(a[k].labels.to_vector<int64_t>(), b[k].labels.to_vector<int64_t>()) << what;
        ASSERT_EQ(a[k].text.defined(), b[k].text.defined()) << what;
        if (a[k].text.defined()) {
            EXPECT_EQ(a[k].text.to_vector<int64_t>(), b[k].text.to_vector<int64_t>()) << what;
        }
    }
}

}  // namespace

TEST(Loader, BatchesIndependentOfWorkerCount) {
    RandomDataset data(29);
    Tokenizer tok = Tokenizer::from_merges({});
    std::vector<std::vector<Batch>> runs;
    for (int workers : {0, 1, 2, 4}) {
        LoaderOptions opt;
        opt.batch_size = 4;
        opt.seed = 42;
        opt.num_workers = workers;
        opt.prefetch = 2;
        opt.augment = true;
        opt.augment_options.hflip = true;
        opt.augment_options.scale_min = 0.5;
        opt.image_size = 8;
        opt.tokenizer = &tok;
        opt.context_length = 10;
        DataLoader dl(data, opt);
        auto e0 = run_epoch(dl, 0), e1 = run_epoch(dl, 1);
        e0.insert(e0.end(), std::make_move_iterator(e1.begin()), std::make_move_iterator(e1.end()));
        runs.push_back(std::move(e0));
    }
    ASSERT_EQ(runs[0].size(), 14u);   // 2 epochs x 7 full batches of 4 (29 = 7 * 4 + 1 dropped)
    for (size_t r = 1; r < runs.size(); r++) expect_same_batches(runs[0], runs[r], "workers run " + std::to_string(r));
    // Shapes, labels (= indices here) and tokens.
    const Batch& b = runs[0][0];
    EXPECT_EQ(b.images.shape(), (Shape{4, 3, 8, 8}));
    EXPECT_EQ(b.text.shape(), (Shape{4, 10}));
    EXPECT_EQ(b.labels.shape(), (Shape{4}));
    EXPECT_EQ(b.labels.to_vector<int64_t>(), b.indices);
    auto text = b.text.to_vector<int64_t>();
    auto want = tok.tokenize(data.samples[b.indices[1]].caption, 10);
    EXPECT_TRUE(std::equal(want.begin(), want.end(), text.begin() + 10));
    // Augmentation depends on the epoch: the same sample differs between epochs.
    int64_t idx = runs[0][0].indices[0];
    std::vector<float> first(3 * 64), second(3 * 64);
    for (size_t k = 7; k < 14; k++)
        for (size_t j = 0; j < runs[0][k].indices.size(); j++)
            if (runs[0][k].indices[j] == idx) {
                auto all = runs[0][k].images.to_vector<float>();
                std::copy(all.begin() + j * 192, all.begin() + (j + 1) * 192, second.begin());
            }
    auto all0 = runs[0][0].images.to_vector<float>();
    std::copy(all0.begin(), all0.begin() + 192, first.begin());
    bool found = std::any_of(second.begin(), second.end(), [](float v) { return v != 0.f; });
    if (found) {
        EXPECT_NE(first, second);
    }
}

TEST(Loader, PinMemoryGivesTheSameBatches) {
    // pin_memory only changes where the batch tensors live: page-locked memory with a GPU, plain
    // memory without one (here, never an error). The contents are the same either way, and the
    // tensors are ordinary, usable CPU tensors.
    RandomDataset data(21);
    Tokenizer tok = Tokenizer::from_merges({});
    LoaderOptions opt;
    opt.batch_size = 5;
    opt.seed = 7;
    opt.num_workers = 2;
    opt.augment = true;
    opt.image_size = 8;
    opt.tokenizer = &tok;
    opt.context_length = 6;
    opt.drop_last = false;   // the last partial batch too
    DataLoader plain(data, opt);
    opt.pin_memory = true;
    DataLoader pinned(data, opt);
    auto a = run_epoch(plain, 3), b = run_epoch(pinned, 3);
    ASSERT_EQ(b.size(), 5u);
    expect_same_batches(a, b, "pin_memory");
    for (const Batch& batch : b) {
        for (const Tensor* t : {&batch.images, &batch.text, &batch.labels}) {
            EXPECT_TRUE(t->device().is_cpu());
            EXPECT_EQ(is_pinned(*t), has_backend(DeviceType::CUDA)) << t->str();
        }
        EXPECT_FALSE(is_pinned(a[0].images));
        Tensor twice = batch.images * 2.0;
        auto x = batch.images.to_vector<float>(), y = twice.to_vector<float>();
        for (size_t i = 0; i < x.size(); i++) ASSERT_EQ(y[i], 2 * x[i]);
    }
    EXPECT_EQ(b.back().images.shape(), (Shape{1, 3, 8, 8}));
}

TEST(Loader, ShufflingPerEpochAndSeed) {
    RandomDataset data(50);
    LoaderOptions opt;
    opt.batch_size = 5;
    opt.seed = 7;
    opt.image_size = 4;
    opt.num_workers = 2;
    DataLoader dl(data, opt);
    auto o0 = dl.epoch_order(0), o1 = dl.epoch_order(1);
    EXPECT_NE(o0, o1);
    EXPECT_EQ(o0, dl.epoch_order(0));
    for (auto order : {o0, o1}) {
        std::sort(order.begin(), order.end());
        for (int64_t i = 0; i < 50; i++) EXPECT_EQ(order[i], i);
    }
    LoaderOptions other = opt;
    other.seed = 8;
    DataLoader dl2(data, other);
    EXPECT_NE(dl2.epoch_order(0), o0);
    // The batches follow the epoch's order.
    auto batches = run_epoch(dl, 1);
    std::vector<int64_t> seen;
    for (auto& b : batches) seen.insert(seen.end(), b.indices.begin(), b.indices.end());
    EXPECT_EQ(seen, o1);
    // Without shuffle the order is 0..N-1 every epoch.
    LoaderOptions seq = opt;
    seq.shuffle = false;
    DataLoader dl3(data, seq);
    auto s = dl3.epoch_order(3);
    for (int64_t i = 0; i < 50; i++) EXPECT_EQ(s[i], i);
}

TEST(Loader, DropLast) {
    RandomDataset data(23);
    LoaderOptions opt;
    opt.batch_size = 5;
    opt.image_size = 4;
    opt.num_workers = 3;
    DataLoader drop(data, opt);
    EXPECT_EQ(drop.batches_per_epoch(), 4);
    auto a = run_epoch(drop, 0);
    ASSERT_EQ(a.size(), 4u);
    for (auto& b : a) EXPECT_EQ(b.images.size(0), 5);
    EXPECT_FALSE(a[0].text.defined());   // no tokenizer, not packed: no text
    opt.drop_last = false;
    DataLoader keep(data, opt);
    auto b = run_epoch(keep, 0);
    ASSERT_EQ(b.size(), 5u);
    EXPECT_EQ(b[4].images.shape(), (Shape{3, 3, 4, 4}));
    std::vector<int64_t> all;
    for (auto& x : b) all.insert(all.end(), x.indices.begin(), x.indices.end());
    std::sort(all.begin(), all.end());
    for (int64_t i = 0; i < 23; i++) EXPECT_EQ(all[i], i);
    opt.drop_last = true;
    opt.batch_size = 24;
    EXPECT_THROW(DataLoader(data, opt), Error);   // no full batch
}

TEST(Loader, PackedFastPathMatchesDecoding) {
    RandomDataset data(12);
    Tokenizer tok = Tokenizer::from_merges({});
    char tmpl[] = "/tmp/rankclip_loader_XXXXXX";
    ASSERT_TRUE(::mkdtemp(tmpl));
    std::string dir = tmpl, path = dir + "/d.rcpack";
    PackOptions po;
    po.image_size = 6;
    po.tokenizer = &tok;
    po.context_length = 9;
    pack_dataset(data, path, po);
    PackedDataset packed(path);
    LoaderOptions opt;
    opt.batch_size = 3;
    opt.image_size = 6;
    opt.seed = 5;
    opt.num_workers = 2;
    opt.tokenizer = &tok;
    opt.context_length = 9;
    DataLoader from_packed(packed, opt), from_source(data, opt);
    // No augmentation: packed pixels (resized + cropped once) then normalised == preprocess_clip.
    expect_same_batches(run_epoch(from_packed, 0), run_epoch(from_source, 0), "packed vs source");
    // Stored tokens are used without a tokenizer.
    LoaderOptions no_tok = opt;
    no_tok.tokenizer = nullptr;
    DataLoader stored(packed, no_tok);
    auto s = run_epoch(stored, 2);
    auto r = run_epoch(from_source, 2);
    ASSERT_TRUE(s[0].text.defined());
    EXPECT_EQ(s[0].text.to_vector<int64_t>(), r[0].text.to_vector<int64_t>());
    // Augmented packed batches are also worker-count independent.
    LoaderOptions aug = opt;
    aug.augment = true;
    aug.num_workers = 0;
    DataLoader a0(packed, aug);
    aug.num_workers = 3;
    DataLoader a3(packed, aug);
    expect_same_batches(run_epoch(a0, 1), run_epoch(a3, 1), "augmented packed");
    std::system(("rm -rf '" + dir + "'").c_str());
}

TEST(Loader, ErrorsPropagateAndProgressIsReported) {
    for (int workers : {0, 2}) {
        SCOPED_TRACE("workers " + std::to_string(workers));
        RandomDataset data(16);
        data.bad = 9;
        LoaderOptions opt;
        opt.batch_size = 4;
        opt.image_size = 4;
        opt.shuffle = false;
        opt.num_workers = workers;
        std::vector<std::pair<int64_t, int64_t>> progress;
        opt.progress = [&](int64_t done, int64_t total) { progress.push_back({done, total}); };
        DataLoader dl(data, opt);
        dl.start_epoch(0);
        Batch b;
        EXPECT_TRUE(dl.next(b));
        EXPECT_EQ(b.indices, (std::vector<int64_t>{0, 1, 2, 3}));
        EXPECT_TRUE(dl.next(b));
        try {
            dl.next(b);
            ADD_FAILURE() << "expected the bad sample's error";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("sample 9 is bad"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(dl.next(b));   // the next batch is still delivered
    EXPECT_EQ(b.indices[0], 12);
    EXPECT_FALSE(dl.next(b));
    ASSERT_EQ(progress.size(), 3u);
    EXPECT_EQ(progress.back(), (std::pair<int64_t, int64_t>{4, 4}));
    // Restarting mid-epoch is fine (workers are stopped and relaunched).
    dl.start_epoch(1);
    EXPECT_TRUE(dl.next(b));
    dl.start_epoch(2);
    EXPECT_TRUE(dl.next(b));
    }
    EXPECT_EQ(mix_seed(1, 2, 3), mix_seed(1, 2, 3));
    EXPECT_NE(mix_seed(1, 2, 3), mix_seed(1, 2, 4));
    EXPECT_NE(mix_seed(1, 2), mix_seed(1, 3));
}
