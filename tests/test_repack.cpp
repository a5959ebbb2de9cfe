// tests/test_repack.cpp
// Tests re-packing a packed file (data/packed.h, tools/cmd_pack.cpp): without a tokenizer the
// stored token ids are copied (their context length and, from the CLI, their int width kept),
// with the pixels resized from the packed ones and captions, labels and class names carried over;
// with a tokenizer the captions are re-tokenized; a packed file without ids stays without. The
// CLI part runs `rankclip pack` (the binary beside run_tests, or $RANKCLIP_BIN; skipped when it is
// not built) and checks that asking for another --context-length without --vocab fails clearly.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "data/image.h"
#include "data/packed.h"
#include "data/tokenizer.h"
#include "engine/random.h"
#include "tests/cli_test_util.h"
#include "tests/test_util.h"
#include "tests/vector_dataset.h"

using namespace rankclip;
using rankclip::test::CliResult;
using rankclip::test::TempDir;
using rankclip::test::VectorDataset;

namespace {

VectorDataset make_source(int n) {
    VectorDataset d;
    d.classes = {"cat", "dog"};
    Generator gen(11);
    for (int i = 0; i < n; i++) {
        Sample s;
        s.image.width = 20 + i;
        s.image.height = 17 - i % 3;
        s.image.rgb.resize(size_t(s.image.width) * s.image.height * 3);
        for (auto& v : s.image.rgb) v = uint8_t(gen.random() & 255);
        s.caption = "a photo of thing " + std::to_string(i) + (i % 2 ? " outside" : "");
        s.label = i % 2;
        d.samples.push_back(s);
    }
    return d;
}

std::vector<int64_t> ids_of(const PackedDataset& p, size_t i) {
    std::vector<int64_t> ids(size_t(p.context_length()));
    p.tokens(i, ids.data());
    return ids;
}

// A packed file of `src` at 16 px with ids of context length 12 (width token_dtype).
std::string pack_with_ids(const VectorDataset& src, const Tokenizer& tok, const TempDir& dir,
                          DType token_dtype) {
    PackOptions opt;
    opt.image_size = 16;
    opt.tokenizer = &tok;
    opt.context_length = 12;
    opt.token_dtype = token_dtype;
    opt.num_threads = 2;
    std::string path = dir.file(std::string("a_") + dtype_name(token_dtype) + ".rcpack");
    pack_dataset(src, path, opt);
    return path;
}

}  // namespace

TEST(Repack, KeepsStoredTokenIdsWithoutATokenizer) {
    TempDir dir;
    const VectorDataset src = make_source(7);
    const Tokenizer tok = Tokenizer::from_merges({});
    for (DType dt : {DType::I32, DType::I64}) {
        SCOPED_TRACE(dtype_name(dt));
        PackedDataset a(pack_with_ids(src, tok, dir, dt));
        ASSERT_EQ(a.context_length(), 12);
        EXPECT_EQ(a.token_dtype(), dt);
        PackOptions re;            // no tokenizer; context_length stays at its default (77)
        re.image_size = 8;         // another size: pixels resized from the packed ones
        re.num_threads = 3;
        const std::string out = dir.file("b.rcpack");
        EXPECT_EQ(pack_dataset(a, out, re), 7u);
        PackedDataset b(out);
        ASSERT_EQ(b.size(), 7u);
        EXPECT_EQ(b.image_size(), 8);
        EXPECT_EQ(b.context_length(), 12) << "the stored ids were dropped";
        EXPECT_EQ(b.class_names(), src.classes);
        for (size_t i = 0; i < 7; i++) {
            EXPECT_EQ(ids_of(b, i), ids_of(a, i)) << i;
            EXPECT_EQ(ids_of(b, i), tok.tokenize(src.samples[i].caption, 12)) << i;
            EXPECT_EQ(b.caption(i), src.samples[i].caption);
            EXPECT_EQ(b.label(i), src.samples[i].label);
            Image from_packed = resize_short_side_center_crop(a.get(i).image, 8);
            EXPECT_EQ(b.get(i).image.rgb, from_packed.rgb) << i;
        }
        // Re-packing at the same size copies the pixels as they are.
        const std::string same = dir.file("same.rcpack");
        re.image_size = 16;
        pack_dataset(a, same, re);
        PackedDataset c(same);
        for (size_t i = 0; i < 7; i++) {
            EXPECT_EQ(c.get(i).image.rgb, a.get(i).image.rgb);
            EXPECT_EQ(ids_of(c, i), ids_of(a, i));
        }
    }
}

TEST(Repack, TokenizerReTokenizesAndNoIdsStayNone) {
    TempDir dir;
    const VectorDataset src = make_source(5);
    const Tokenizer tok = Tokenizer::from_merges({});
    PackedDataset a(pack_with_ids(src, tok, dir, DType::I32));
    // With a tokenizer, its context length wins and the captions are tokenized again.
    PackOptions re;
    re.image_size = 8;
    re.tokenizer = &tok;
    re.context_length = 20;
    pack_dataset(a, dir.file("t.rcpack"), re);
    PackedDataset t(dir.file("t.rcpack"));
    ASSERT_EQ(t.context_length(), 20);
    for (size_t i = 0; i < 5; i++) EXPECT_EQ(ids_of(t, i), tok.tokenize(src.samples[i].caption, 20));
    // A packed file without ids re-packs without ids (nothing to copy, nothing to tokenize with).
    PackOptions plain;
    plain.image_size = 12;
    pack_dataset(src, dir.file("n.rcpack"), plain);
    PackedDataset n(dir.file("n.rcpack"));
    ASSERT_EQ(n.context_length(), 0);
    plain.image_size = 6;
    pack_dataset(n, dir.file("n2.rcpack"), plain);
    EXPECT_EQ(PackedDataset(dir.file("n2.rcpack")).context_length(), 0);
}

// ---- through the `rankclip pack` command ----

namespace {

// `rankclip pack args`, without a vocabulary from the environment.
CliResult run_pack(const std::string& bin, const std::string& args, const TempDir& dir) {
    return rankclip::test::run_cli("env -u RANKCLIP_VOCAB " + bin, "pack " + args, dir);
}

}  // namespace

TEST(Repack, CommandKeepsIdsAndRefusesAnotherContextLengthWithoutVocab) {
    REQUIRE_BINARY_FOR("CLI test");
    TempDir dir;
    const VectorDataset src = make_source(6);
    const Tokenizer tok = Tokenizer::from_merges({});
    const std::string a_path = pack_with_ids(src, tok, dir, DType::I64);
    PackedDataset a(a_path);

    CliResult r = run_pack(bin, "--data " + a_path + " --out " + dir.file("b.rcpack") + " --size 8 --threads 2", dir);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("keeping the token ids"), std::string::npos) << r.err;
    PackedDataset b(dir.file("b.rcpack"));
    EXPECT_EQ(b.image_size(), 8);
    ASSERT_EQ(b.context_length(), 12);
    EXPECT_EQ(b.token_dtype(), DType::I64) << "the stored int width is kept unless --token-dtype says";
    for (size_t i = 0; i < 6; i++) EXPECT_EQ(ids_of(b, i), ids_of(a, i)) << i;

    // The same context length, or another int width, is fine.
    r = run_pack(bin, "--data " + a_path + " --out " + dir.file("c.rcpack") +
                          " --size 4 --context-length 12 --token-dtype int32", dir);
    ASSERT_EQ(r.status, 0) << r.err;
    PackedDataset c(dir.file("c.rcpack"));
    EXPECT_EQ(c.token_dtype(), DType::I32);
    for (size_t i = 0; i < 6; i++) EXPECT_EQ(ids_of(c, i), ids_of(a, i)) << i;

    // Another context length cannot be had without the vocabulary: a clear error, no file.
    r = run_pack(bin, "--data " + a_path + " --out " + dir.file("d.rcpack") + " --size 8 --context-length 20", dir);
    EXPECT_NE(r.status, 0);
    for (const char* part : {"context length 12", "--context-length 20", "--vocab"})
        EXPECT_NE(r.err.find(part), std::string::npos) << part << " not in: " << r.err;
    EXPECT_FALSE(rankclip::test::path_exists(dir.file("d.rcpack")));
}
