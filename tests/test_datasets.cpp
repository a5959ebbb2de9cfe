// tests/test_datasets.cpp
// Tests the dataset sources (data/csv_dataset, tar_dataset, image_folder, fashion_mnist, packed,
// open_dataset): each format on fixtures built in a temp dir (PNGs via data/image_write.h, tars
// via libarchive's writer), and malformed input: bad CSV rows (the line named), missing files,
// corrupt images, empty shards, non-UTF-8 captions, truncated packed files.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <cstring>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "data/csv_dataset.h"
#include "data/gzip.h"
#include "data/fashion_mnist.h"
#include "data/image_folder.h"
#include "data/image_write.h"
#include "data/open_dataset.h"
#include "data/packed.h"
#include "data/tar_dataset.h"
#include "data/tokenizer.h"
#include "tests/test_util.h"
#include "tests/vector_dataset.h"

using namespace rankclip;
using rankclip::test::VectorDataset;

namespace {

// A fresh temporary directory, removed (recursively) at the end of the test.
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/rankclip_ds_XXXXXX";
        RC_CHECK(::mkdtemp(tmpl), "mkdtemp failed");
        path = tmpl;
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
    std::string operator/(const std::string& name) const { return path + "/" + name; }
};

void write_text(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary);
    f << text;
}

// A w x h image filled with one colour, with pixel (0, 0) marking `tag` so images differ.
Image solid(int w, int h, uint8_t r, uint8_t g, uint8_t b, uint8_t tag = 0) {
    Image im;
    im.width = w;
    im.height = h;
    im.rgb.resize(size_t(w) * h * 3);
    for (size_t i = 0; i < im.rgb.size(); i += 3) { im.rgb[i] = r; im.rgb[i + 1] = g; im.rgb[i + 2] = b; }
    im.rgb[0] = tag;
    return im;
}

// Expect `f` to throw rankclip::Error whose message contains every one of `parts`.
template <typename F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
    try {
        f();
        ADD_FAILURE() << "expected an Error";
    } catch (const Error& e) {
        std::string msg = e.what();
        for (auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
    }
}

// Writes a tar (optionally gzip-filtered) with the given (name, bytes) members.
void write_tar(const std::string& path, const std::vector<std::pair<std::string, std::string>>& members,
               bool gzip = false) {
    archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (gzip) archive_write_add_filter_gzip(a);
    ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
    for (auto& [name, data] : members) {
        archive_entry* e = archive_entry_new();
        archive_entry_set_pathname(e, name.c_str());
        archive_entry_set_size(e, int64_t(data.size()));
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_write_header(a, e);
        if (!data.empty()) archive_write_data(a, data.data(), data.size());
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
}

std::string png_bytes(const Image& im) {
    auto b = encode_png(im);
    return std::string(b.begin(), b.end());
}

}  // namespace

// ---------------------------------------------------------------- UTF-8, CSV parsing

TEST(Utf8, AcceptsValidRejectsInvalid) {
    EXPECT_TRUE(is_valid_utf8("plain ascii"));
    EXPECT_TRUE(is_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));  // é € 😀
    EXPECT_FALSE(is_valid_utf8("\xFF"));                 // not a lead byte
    EXPECT_FALSE(is_valid_utf8("caf\xC3"));              // truncated sequence
    EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));             // overlong '/'
    EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));         // surrogate U+D800
    EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));     // above U+10FFFF
    EXPECT_FALSE(is_valid_utf8("\x80 stray continuation"));
}

TEST(Csv, ParsesRfc4180Quoting) {
    std::string text = "a,b\r\n\"x, y\",\"say \"\"hi\"\"\"\n\"multi\nline\",z\n\nlast,\n";
    auto recs = parse_csv(text, ',', "t.csv");
    ASSERT_EQ(recs.size(), 4u);  // the blank line is skipped
    EXPECT_EQ(recs[0].fields, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(recs[1].fields, (std::vector<std::string>{"x, y", "say \"hi\""}));
    EXPECT_EQ(recs[2].fields, (std::vector<std::string>{"multi\nline", "z"}));
    EXPECT_EQ(recs[2].line, 3);
    EXPECT_EQ(recs[3].fields, (std::vector<std::string>{"last", ""}));
    EXPECT_EQ(recs[3].line, 6);  // line numbers count the newline inside the quoted field
    auto tsv = parse_csv("p\tq\nx,1\t\"a\tb\"\n", '\t', "t.tsv");
    ASSERT_EQ(tsv.size(), 2u);
    EXPECT_EQ(tsv[1].fields, (std::vector<std::string>{"x,1", "a\tb"}));
}

TEST(Csv, MalformedQuotingNamesTheLine) {
    expect_error([] { parse_csv("a,b\nx,\"open\n\n", ',', "bad.csv"); }, {"bad.csv:2", "unterminated"});
    expect_error([] { parse_csv("a,b\nx,y\n\"q\"z,w\n", ',', "bad.csv"); }, {"bad.csv:3", "after a closing quote"});
    expect_error([] { parse_csv("a,b\nx,y\"z\n", ',', "bad.csv"); }, {"bad.csv:2", "quote inside"});
}

// ---------------------------------------------------------------- CsvDataset

struct CsvFixture : ::testing::Test {
    TempDir dir;
    void SetUp() override {
        ::mkdir((dir / "img").c_str(), 0755);
        write_png(dir / "img/a.png", solid(6, 4, 255, 0, 0, 1));
        write_png(dir / "img/b.png", solid(5, 5, 0, 255, 0, 2));
        write_png(dir / "img/c.png", solid(4, 7, 0, 0, 255, 3));
        write_text(dir / "corrupt.png", "\x89PNG\r\n\x1a\n not really a png");
    }
};

TEST_F(CsvFixture, ReadsRelativePathsAndQuotedCaptions) {
    write_text(dir / "data.csv", "id,filepath,title\n1,img/a.png,\"a red, wide box\"\n2," + (dir / "img/b.png") +
                                     ",green\n3,img/c.png,\"blue \"\"tall\"\"\"\n");
    CsvDataset ds(dir / "data.csv");
    ASSERT_EQ(ds.size(), 3u);
    Sample s0 = ds.get(0), s1 = ds.get(1), s2 = ds.get(2);
    EXPECT_EQ(s0.caption, "a red, wide box");
    EXPECT_EQ(s1.caption, "green");
    EXPECT_EQ(s2.caption, "blue \"tall\"");
    EXPECT_EQ(s0.image.width, 6);
    EXPECT_EQ(s0.image.height, 4);
    EXPECT_EQ(s0.image.rgb[3], 255);       // pixel 1 is red
    EXPECT_EQ(s1.image.rgb[4], 255);       // green
    EXPECT_EQ(s2.image.rgb[5], 255);       // blue
    EXPECT_EQ(s2.image.rgb[0], 3);         // the tag pixel
    EXPECT_EQ(s0.label, -1);
    EXPECT_EQ(ds.skipped(), 0u);
    EXPECT_NE(ds.describe().find("3 image-caption pairs"), std::string::npos);
    EXPECT_THROW(ds.get(3), Error);
}

TEST_F(CsvFixture, TsvWithNamedColumns) {
    write_text(dir / "data.tsv", "caption\timage\nfirst, with comma\timg/c.png\nsecond\timg/a.png\n");
    OpenOptions o;
    o.image_column = "image";
    o.caption_column = "caption";
    auto ds = open_dataset(dir / "data.tsv", o);   // .tsv: tab separator
    ASSERT_EQ(ds->size(), 2u);
    EXPECT_EQ(ds->get(0).caption, "first, with comma");
    EXPECT_EQ(ds->get(0).image.height, 7);
    EXPECT_EQ(ds->get(1).image.width, 6);
}

TEST_F(CsvFixture, MalformedRowNamesFileAndLine) {
    write_text(dir / "bad.csv", "filepath,title\nimg/a.png,ok\nimg/b.png,too,many\n");
    expect_error([&] { CsvDataset ds(dir / "bad.csv"); }, {"bad.csv:3", "malformed row", "3 fields"});
    write_text(dir / "nocol.csv", "path,title\nimg/a.png,ok\n");
    expect_error([&] { CsvDataset ds(dir / "nocol.csv"); }, {"nocol.csv:1", "'filepath'", "'path'"});
    write_text(dir / "empty.csv", "");
    expect_error([&] { CsvDataset ds(dir / "empty.csv"); }, {"empty.csv", "empty"});
}

TEST_F(CsvFixture, MissingFilePolicy) {
    write_text(dir / "m.csv", "filepath,title\nimg/a.png,one\nimg/missing.png,two\nimg/c.png,three\n");
    CsvDataset skip(dir / "m.csv");
    ASSERT_EQ(skip.size(), 2u);
    EXPECT_EQ(skip.skipped(), 1u);
    EXPECT_EQ(skip.get(1).caption, "three");
    EXPECT_NE(skip.describe().find("1 bad samples skipped"), std::string::npos);
    CsvOptions stop;
    stop.on_bad = BadSamplePolicy::Stop;
    expect_error([&] { CsvDataset ds(dir / "m.csv", stop); }, {"m.csv:3", "missing.png", "not found"});
}

TEST_F(CsvFixture, NonUtf8CaptionPolicy) {
    write_text(dir / "u.csv", "filepath,title\nimg/a.png,caf\xE9\nimg/b.png,fine\n");
    CsvDataset skip(dir / "u.csv");
    ASSERT_EQ(skip.size(), 1u);
    EXPECT_EQ(skip.get(0).caption, "fine");
    CsvOptions stop;
    stop.on_bad = BadSamplePolicy::Stop;
    expect_error([&] { CsvDataset ds(dir / "u.csv", stop); }, {"u.csv:2", "UTF-8"});
}

TEST_F(CsvFixture, CorruptImagePolicy) {
    write_text(dir / "c.csv", "filepath,title\nimg/a.png,one\ncorrupt.png,two\nimg/c.png,three\n");
    CsvDataset skip(dir / "c.csv");
    ASSERT_EQ(skip.size(), 3u);                   // found at get() time, not at open
    Sample s = skip.get(1);                       // substituted by the next good sample
    EXPECT_EQ(s.caption, "three");
    EXPECT_EQ(skip.get(1).caption, "three");      // deterministic
    EXPECT_EQ(skip.skipped(), 2u);                // counted each time
    CsvOptions stop;
    stop.on_bad = BadSamplePolicy::Stop;
    CsvDataset strict(dir / "c.csv", stop);
    EXPECT_EQ(strict.get(0).caption, "one");
    expect_error([&] { strict.get(1); }, {"c.csv:3", "corrupt.png"});
}

// ---------------------------------------------------------------- image folders

TEST(ImageFolder, SortedClassesAreLabels) {
    TempDir dir;
    for (const char* c : {"zebra", "ant", "big_cat"}) ::mkdir((dir / c).c_str(), 0755);
    write_png(dir / "zebra/1.png", solid(3, 3, 10, 10, 10, 1));
    write_png(dir / "ant/b.PNG", solid(3, 3, 20, 20, 20, 2));
    write_png(dir / "ant/a.png", solid(3, 3, 30, 30, 30, 3));
    write_png(dir / "big_cat/x.png", solid(3, 3, 40, 40, 40, 4));
    write_text(dir / "ant/notes.txt", "ignored");
    ImageFolderDataset ds(dir.path);
    EXPECT_EQ(ds.class_names(), (std::vector<std::string>{"ant", "big_cat", "zebra"}));
    ASSERT_EQ(ds.size(), 4u);
    // Files sorted within a class: ant/a.png, ant/b.PNG, big_cat/x.png, zebra/1.png.
    std::vector<int64_t> labels;
    std::vector<int> tags;
    for (size_t i = 0; i < ds.size(); i++) {
        Sample s = ds.get(i);
        labels.push_back(s.label);
        tags.push_back(s.image.rgb[0]);
    }
    EXPECT_EQ(labels, (std::vector<int64_t>{0, 0, 1, 2}));
    EXPECT_EQ(tags, (std::vector<int>{3, 2, 4, 1}));
    EXPECT_EQ(ds.get(2).caption, "big cat");
    auto opened = open_dataset(dir.path);
    EXPECT_EQ(opened->size(), 4u);
}

TEST(ImageFolder, CorruptImageAndEmptyFolder) {
    TempDir dir;
    ::mkdir((dir / "a").c_str(), 0755);
    write_text(dir / "a/0.png", "garbage");
    write_png(dir / "a/1.png", solid(2, 2, 1, 2, 3, 9));
    ImageFolderDataset skip(dir.path);
    EXPECT_EQ(skip.get(0).image.rgb[0], 9);
    EXPECT_EQ(skip.skipped(), 1u);
    ImageFolderDataset stop(dir.path, BadSamplePolicy::Stop);
    expect_error([&] { stop.get(0); }, {"a/0.png"});
    TempDir empty;
    expect_error([&] { ImageFolderDataset ds(empty.path); }, {"no class sub-folders"});
}

// ---------------------------------------------------------------- tar shards

// Hostile patterns stop with an error naming the limit, quickly and without deep recursion.
TEST(Tar, ExpandBracesLimits) {
    expect_error([] { expand_braces("{0..9999999}{0..9999999}"); }, {"bad range", "1000000"});
    expect_error([] { expand_braces("{0..999}{0..999}{0..9}"); }, {"10000000 names", "1000000 shards"});
    std::string many;  // 10^40 names: counted without overflow, refused before any is built
    for (int i = 0; i < 40; i++) many += "{0..9}";
    expect_error([&] { expand_braces(many); }, {"over 2^64 names"});
    // a million names of 106 bytes: 106 MB of names, over the 64 MiB limit
    expect_error([] { expand_braces(std::string(100, 'x') + "{0..999}{0..999}"); }, {"bytes", "32 MiB"});
    EXPECT_EQ(expand_braces("{0..999}{0..999}").size(), 1000000u);  // exactly at the limit
    std::string deep;
    for (int i = 0; i < 60000; i++) deep += "{a";
    for (int i = 0; i < 60000; i++) deep += "}";
    expect_error([&] { expand_braces(deep); }, {"bytes", "4096"});
    std::string nested;
    for (int i = 0; i < 17; i++) nested += "{a,";
    nested += "b";
    for (int i = 0; i < 17; i++) nested += "}";
    expect_error([&] { expand_braces(nested); }, {"nested 17 deep", "16"});
    std::string groups;  // 1,000 groups in a row: no recursion, one name
    for (int i = 0; i < 1000; i++) groups += "{a}";
    EXPECT_EQ(expand_braces(groups), (std::vector<std::string>{std::string(1000, 'a')}));
    const std::string long_name(4000, 'x');  // 1,000 names of 4 KB: 4 MB, fine
    EXPECT_EQ(expand_braces(long_name + "{0..999}").size(), 1000u);
    expect_error([] { expand_braces("{a}}"); }, {"unbalanced '}'"});
    expect_error([] { expand_braces("{0..123456789012345678901}"); }, {"bad range"});
}

// A ustar header claiming `size` bytes for `name`, followed by `data` (padded to 512).
std::string crafted_tar_member(const std::string& name, uint64_t size, const std::string& data) {
    std::string h(512, '\0');
    std::memcpy(&h[0], name.data(), std::min<size_t>(name.size(), 99));
    std::snprintf(&h[100], 8, "%07o", 0644);
    std::snprintf(&h[108], 8, "%07o", 0);
    std::snprintf(&h[116], 8, "%07o", 0);
    std::snprintf(&h[124], 12, "%011llo", (unsigned long long)size);
    std::snprintf(&h[136], 12, "%011o", 0);
    h[156] = '0';
    std::memcpy(&h[257], "ustar", 6);
    std::memcpy(&h[263], "00", 2);
    std::memset(&h[148], ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(&h[148], 8, "%06o", sum);
    std::string body = data;
    body.resize((data.size() + 511) / 512 * 512, '\0');
    return h + body;
}

// Members whose headers claim more than the shard holds, or more than the stated limits: errors
// naming the shard, the member and the limit, before the claimed bytes are allocated.
TEST(Tar, MemberSizesAreCheckedBeforeAllocating) {
    TempDir dir;
    const std::string end(1024, '\0');
    // uncompressed: a 3 GB image claim in a 2 KB file
    write_text(dir / "claims.tar", crafted_tar_member("k.png", uint64_t(3) << 30, "tiny") + end);
    expect_error([&] { TarDataset t(dir / "claims.tar"); }, {"claims.tar", "k.png", "3221225472 bytes", "past the end"});
    // gzip-compressed (held in memory): over the image limit, and under it but holding less
    write_gzip_file(dir / "bomb.tar.gz", crafted_tar_member("k.png", uint64_t(64) << 30, "tiny") + end);
    expect_error([&] { TarDataset t(dir / "bomb.tar.gz"); }, {"bomb.tar.gz", "k.png", "limit of 256 MiB"});
    write_gzip_file(dir / "short.tar.gz", crafted_tar_member("k.png", uint64_t(100) << 20, "tiny") + end);
    expect_error([&] { TarDataset t(dir / "short.tar.gz"); }, {"short.tar.gz", "short read of k.png", "104857600"});
    // a caption over its limit
    write_gzip_file(dir / "caption.tar.gz", crafted_tar_member("k.txt", uint64_t(17) << 20, "a caption") + end);
    expect_error([&] { TarDataset t(dir / "caption.tar.gz"); }, {"caption.tar.gz", "k.txt", "limit of 16 MiB"});
}

TEST(Tar, ExpandBraces) {
    EXPECT_EQ(expand_braces("s-{0008..0011}.tar"),
              (std::vector<std::string>{"s-0008.tar", "s-0009.tar", "s-0010.tar", "s-0011.tar"}));
    EXPECT_EQ(expand_braces("{a,b}/{1..2}"), (std::vector<std::string>{"a/1", "a/2", "b/1", "b/2"}));
    EXPECT_EQ(expand_braces("x{a,{b,c}d}"), (std::vector<std::string>{"xa", "xbd", "xcd"}));
    EXPECT_EQ(expand_braces("plain.tar"), (std::vector<std::string>{"plain.tar"}));
    EXPECT_EQ(expand_braces("shards-{00000..00099}.tar").size(), 100u);
    EXPECT_THROW(expand_braces("s-{1..3.tar"), Error);
    EXPECT_THROW(expand_braces("s-1}.tar"), Error);
    EXPECT_THROW(expand_braces("s-{3..1}.tar"), Error);
}

TEST(Tar, ReadsShardsGroupedByKey) {
    TempDir dir;
    // Shard 0: two samples, members interleaved; shard 1 (gzip): one sample with a .cls label.
    write_tar(dir / "s-0.tar", {{"000/k1.txt", "first caption\n"},
                                {"000/k2.png", png_bytes(solid(4, 3, 9, 9, 9, 2))},
                                {"000/k1.png", png_bytes(solid(5, 2, 7, 7, 7, 1))},
                                {"000/k1.json", "{}"},
                                {"000/k2.txt", "second"}});
    write_tar(dir / "s-1.tar", {{"k3.png", png_bytes(solid(3, 3, 1, 1, 1, 3))},
                                {"k3.txt", "third"}, {"k3.cls", "7\n"}}, /*gzip=*/true);
    TarDataset ds(dir / "s-{0..1}.tar");
    EXPECT_EQ(ds.num_shards(), 2u);
    ASSERT_EQ(ds.size(), 3u);
    EXPECT_EQ(ds.key(0), "000/k1");
    Sample s0 = ds.get(0), s1 = ds.get(1), s2 = ds.get(2);
    EXPECT_EQ(s0.caption, "first caption");
    EXPECT_EQ(s0.image.width, 5);
    EXPECT_EQ(s0.image.rgb[0], 1);
    EXPECT_EQ(s1.caption, "second");
    EXPECT_EQ(s1.image.rgb[0], 2);
    EXPECT_EQ(s2.caption, "third");
    EXPECT_EQ(s2.label, 7);
    EXPECT_EQ(s2.image.rgb[0], 3);
    EXPECT_EQ(s0.label, -1);
    // "::"-joined lists and open_dataset.
    TarDataset two(dir / "s-1.tar::" + (dir / "s-0.tar"));
    EXPECT_EQ(two.get(0).caption, "third");
    EXPECT_EQ(open_dataset(dir / "s-{0..1}.tar")->size(), 3u);
}

TEST(Tar, IncompleteAndNonUtf8SamplesFollowPolicy) {
    TempDir dir;
    write_tar(dir / "a.tar", {{"k1.png", png_bytes(solid(2, 2, 0, 0, 0, 1))}, {"k1.txt", "ok"},
                              {"k2.png", png_bytes(solid(2, 2, 0, 0, 0, 2))},               // no caption
                              {"k3.txt", "caption only"},                                    // no image
                              {"k4.png", png_bytes(solid(2, 2, 0, 0, 0, 4))}, {"k4.txt", "bad \xFF"}});
    TarDataset skip(dir / "a.tar");
    ASSERT_EQ(skip.size(), 1u);
    EXPECT_EQ(skip.skipped(), 3u);
    EXPECT_EQ(skip.get(0).caption, "ok");
    TarOptions stop;
    stop.on_bad = BadSamplePolicy::Stop;
    expect_error([&] { TarDataset ds(dir / "a.tar", stop); }, {"a.tar", "'k2'", "caption"});
    write_tar(dir / "u.tar", {{"k4.png", png_bytes(solid(2, 2, 0, 0, 0, 4))}, {"k4.txt", "bad \xFF"}});
    TarDataset skip_then_empty(dir / "u.tar::" + (dir / "a.tar"));   // u.tar: all bad, warned
    EXPECT_EQ(skip_then_empty.size(), 1u);
    expect_error([&] { TarDataset ds(dir / "u.tar", stop); }, {"u.tar", "'k4'", "UTF-8"});
}

TEST(Tar, EmptyShardsAndCorruptImages) {
    TempDir dir;
    write_tar(dir / "empty.tar", {});
    write_tar(dir / "good.tar", {{"a.png", "not a png at all"}, {"a.txt", "corrupt"},
                                 {"b.png", png_bytes(solid(2, 2, 5, 5, 5, 5))}, {"b.txt", "fine"}});
    expect_error([&] { TarDataset ds(dir / "empty.tar"); }, {"no samples"});
    TarOptions stop;
    stop.on_bad = BadSamplePolicy::Stop;
    expect_error([&] { TarDataset ds(dir / "{empty,good}.tar", stop); }, {"empty.tar", "no samples"});
    TarDataset skip(dir / "{empty,good}.tar");        // the empty shard is warned about, not fatal
    ASSERT_EQ(skip.size(), 2u);
    EXPECT_EQ(skip.get(0).caption, "fine");           // corrupt a.png -> next good sample
    EXPECT_EQ(skip.skipped(), 1u);
    TarDataset strict(dir / "good.tar", stop);
    expect_error([&] { strict.get(0); }, {"good.tar:a.png"});
    expect_error([&] { TarDataset ds(dir / "nope-{1..2}.tar"); }, {"nope-1.tar", "cannot open"});
    write_text(dir / "junk.tar", std::string(3000, 'x'));
    expect_error([&] { TarDataset ds(dir / "junk.tar"); }, {"junk.tar"});
}

// ---------------------------------------------------------------- Fashion-MNIST

TEST(FashionMnist, LabelledAndCaptioned) {
    std::string dir = fashion_mnist_default_dir();
    if (!test::path_exists(dir + "/t10k-images-idx3-ubyte.gz"))
        GTEST_SKIP() << "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)";
    FashionMnistDataset test_set(dir, "test", false);
    ASSERT_EQ(test_set.size(), 10000u);
    EXPECT_EQ(test_set.class_names().size(), 10u);
    std::vector<int> counts(10, 0);
    for (size_t i = 0; i < test_set.size(); i += 1) counts[test_set.get(i).label]++;
    for (int c = 0; c < 10; c++) EXPECT_EQ(counts[c], 1000) << "class " << c;  // balanced test split
    Sample s = test_set.get(0);
    EXPECT_EQ(s.image.width, 28);
    EXPECT_EQ(s.image.height, 28);
    bool nonzero = false;
    for (size_t k = 0; k < s.image.rgb.size(); k += 3) {
        EXPECT_EQ(s.image.rgb[k], s.image.rgb[k + 1]);
        EXPECT_EQ(s.image.rgb[k], s.image.rgb[k + 2]);
        nonzero |= s.image.rgb[k] != 0;
    }
    EXPECT_TRUE(nonzero);
    EXPECT_EQ(s.caption, fashion_mnist_classes()[s.label]);

    FashionMnistDataset captioned(dir, "test", true);
    EXPECT_GE(fashion_mnist_templates().size(), 8u);
    std::set<std::string> prefixes;
    for (size_t i = 0; i < 200; i++) {
        Sample c = captioned.get(i);
        const std::string& name = fashion_mnist_classes()[c.label];
        ASSERT_NE(c.caption.find(name), std::string::npos) << c.caption;
        prefixes.insert(c.caption.substr(0, c.caption.find(name)));
        EXPECT_EQ(c.image.rgb, test_set.get(i).image.rgb);
    }
    EXPECT_GE(prefixes.size(), 8u);   // the templates vary across samples
    EXPECT_THROW(FashionMnistDataset(dir, "validation", false), Error);
    EXPECT_THROW(FashionMnistDataset("/nonexistent", "test", false), Error);
    EXPECT_EQ(open_dataset("fashion-mnist:test:captions")->get(5).caption, captioned.get(5).caption);
}

// ---------------------------------------------------------------- packed shards

TEST(Packed, RoundTripWithTokens) {
    TempDir dir;
    VectorDataset src;
    src.classes = {"zero", "one", "two"};
    Generator gen(3);
    for (int i = 0; i < 7; i++) {
        Sample s;
        int w = 9 + i, h = 12 - i;
        s.image.width = w;
        s.image.height = h;
        s.image.rgb.resize(size_t(w) * h * 3);
        for (auto& v : s.image.rgb) v = uint8_t(gen.random() & 255);
        s.caption = i == 3 ? "" : "caption number " + std::to_string(i) + " caf\xC3\xA9";
        s.label = i % 3;
        src.samples.push_back(s);
    }
    Tokenizer tok = Tokenizer::from_merges({});
    PackOptions opt;
    opt.image_size = 8;
    opt.tokenizer = &tok;
    opt.context_length = 12;
    opt.num_threads = 3;
    int progress_calls = 0;
    opt.progress = [&](size_t done, size_t total) { progress_calls++; EXPECT_LE(done, total); };
    std::string out = dir / "p.rcpack";
    EXPECT_EQ(pack_dataset(src, out, opt), 7u);
    EXPECT_GE(progress_calls, 1);
    PackedDataset p(out);
    ASSERT_EQ(p.size(), 7u);
    EXPECT_EQ(p.image_size(), 8);
    EXPECT_EQ(p.context_length(), 12);
    EXPECT_EQ(p.class_names(), src.classes);
    for (size_t i = 0; i < 7; i++) {
        Sample s = p.get(i);
        Image want = resize_short_side_center_crop(src.samples[i].image, 8);
        EXPECT_EQ(s.image.width, 8);
        EXPECT_EQ(s.image.rgb, want.rgb) << i;
        EXPECT_EQ(s.caption, src.samples[i].caption);
        EXPECT_EQ(s.label, src.samples[i].label);
        std::vector<int64_t> ids(12);
        p.tokens(i, ids.data());
        EXPECT_EQ(ids, tok.tokenize(src.samples[i].caption, 12)) << i;
    }
    EXPECT_THROW(p.get(7), Error);
    // No temp file left behind; open_dataset recognises the file.
    EXPECT_FALSE(test::path_exists(out + ".tmp." + std::to_string(::getpid())));
    EXPECT_EQ(open_dataset(out)->size(), 7u);

    // int64 tokens, no class names, no tokenizer.
    PackOptions plain;
    plain.image_size = 5;
    src.classes.clear();
    pack_dataset(src, dir / "q.rcpack", plain);
    PackedDataset q(dir / "q.rcpack");
    EXPECT_EQ(q.context_length(), 0);
    EXPECT_TRUE(q.class_names().empty());
    std::vector<int64_t> ids(4);
    EXPECT_THROW(q.tokens(0, ids.data()), Error);
    EXPECT_EQ(q.get(6).caption, src.samples[6].caption);
}

TEST(Packed, WriterIsAtomicAndReaderValidates) {
    TempDir dir;
    std::string out = dir / "w.rcpack";
    {
        PackedWriter w(out, 2, 2, 0);
        uint8_t px[12] = {};
        w.write(0, px, nullptr, 1, "a");
        // destroyed without finish(): nothing at `out`, no temp file
    }
    EXPECT_FALSE(test::path_exists(out));
    {
        PackedWriter w(out, 2, 2, 0);
        uint8_t px[12] = {};
        w.write(1, px, nullptr, 1, "b");
        expect_error([&] { w.finish(); }, {"sample 0", "never written"});
    }
    {
        PackedWriter w(out, 2, 2, 4, DType::I64);
        uint8_t px[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
        int64_t t[4] = {5, 6, 7, 0};
        w.write(1, px, t, 4, "b");
        w.write(0, px, t, 3, "a");
        expect_error([&] { w.write(2, px, t, 0, ""); }, {"out of range"});
        w.finish();
    }
    PackedDataset ok(out);
    EXPECT_EQ(ok.get(1).image.rgb[11], 12);
    std::vector<int64_t> ids(4);
    ok.tokens(1, ids.data());
    EXPECT_EQ(ids, (std::vector<int64_t>{5, 6, 7, 0}));
    // Truncated and foreign files are errors naming the file.
    auto bytes = read_file_bytes(out);
    std::string cut(bytes.begin(), bytes.end() - 3);
    write_text(dir / "cut.rcpack", cut);
    expect_error([&] { PackedDataset p(dir / "cut.rcpack"); }, {"cut.rcpack", "truncated"});
    write_text(dir / "small.rcpack", "RCPACK01");
    expect_error([&] { PackedDataset p(dir / "small.rcpack"); }, {"small.rcpack", "shorter than the header"});
    std::string foreign(bytes.begin(), bytes.end());
    foreign[0] = 'X';
    write_text(dir / "foreign.rcpack", foreign);
    expect_error([&] { PackedDataset p(dir / "foreign.rcpack"); }, {"foreign.rcpack", "magic"});
}

// Crafted headers: every size and offset is checked, without overflow, before anything is read.
TEST(Packed, CraftedHeadersAreErrorsNotCrashes) {
    TempDir dir;
    const std::string good = dir / "good.rcpack";
    {
        PackedWriter w(good, 3, 2, 4, DType::I32);
        uint8_t px[12] = {};
        int64_t t[4] = {1, 2, 3, 0};
        for (uint64_t i = 0; i < 3; i++) w.write(i, px, t, 3, "caption");
        w.finish();
    }
    const auto bytes = read_file_bytes(good);
    // the header's fields (data/packed.cpp PackedHeader): byte offset and width
    auto crafted = [&](const std::string& name, size_t offset, uint64_t value, size_t width) {
        std::string b(bytes.begin(), bytes.end());
        std::memcpy(&b[offset], &value, width);
        write_text(dir / name, b);
        return std::string(dir / name);
    };
    const size_t count = 16, image_size = 24, context = 32, off_pixels = 40, off_tokens = 48, off_cap_index = 64,
                 off_caps = 72, classes_bytes = 88;
    const uint64_t big = uint64_t(1) << 61;
    struct Case { const char* name; size_t offset; uint64_t value; size_t width; std::vector<std::string> words; };
    const std::vector<Case> cases = {
        {"count_2_61.rcpack", count, big, 8, {"claims", "samples"}},
        {"count_max.rcpack", count, UINT64_MAX, 8, {"samples"}},
        {"count_wraps.rcpack", count, (uint64_t(1) << 40) - 1, 8, {"pixels section", "does not end"}},
        {"size.rcpack", image_size, 0xFFFFFFFFu, 4, {"image size", "limit"}},
        {"size_big.rcpack", image_size, 65536, 4, {"pixels section"}},
        {"context.rcpack", context, 0xFFFFFFFFu, 4, {"context length"}},
        {"pixels_in_header.rcpack", off_pixels, 8, 8, {"inside the", "header"}},
        {"tokens_wrap.rcpack", off_tokens, UINT64_MAX - 8, 8, {"section"}},
        {"index_misaligned.rcpack", off_cap_index, bytes.size() / 2 + 1, 8, {"aligned"}},
        {"caps_past_end.rcpack", off_caps, UINT64_MAX, 8, {"section"}},
        {"classes_huge.rcpack", classes_bytes, big, 8, {"class names section", "end of the file"}},
    };
    for (const Case& c : cases) {
        const std::string path = crafted(c.name, c.offset, c.value, c.width);
        std::vector<std::string> words = c.words;
        words.push_back(c.name);
        expect_error([&] { PackedDataset p(path); }, words);
    }
    PackedDataset ok(good);  // the untouched file still reads
    EXPECT_EQ(ok.size(), 3u);
}

TEST(OpenDataset, RejectsUnknownSpecs) {
    expect_error([] { open_dataset("/nonexistent/file.csv"); }, {"no such file"});
    expect_error([] { open_dataset("fashion-mnist:valid"); }, {"unknown part 'valid'"});
    TempDir dir;
    write_text(dir / "x.bin", "hello");
    expect_error([&] { open_dataset(dir / "x.bin"); }, {"unknown format"});
}
