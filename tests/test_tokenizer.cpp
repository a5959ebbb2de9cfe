// tests/test_tokenizer.cpp
// tests: data/tokenizer.h — every line of the test data's clip/tokenizer_golden.jsonl (ids from
// OpenAI's simple_tokenizer.py) and of tests/ref/tokenizer_fuzz.jsonl encoded exactly with CLIP's
// merges file (skipped, saying so, without the optional test data: tests/test_util.h); tokenize's sot/eot,
// padding and truncation; the cleaning steps (html.unescape, whitespace, lower-case incl. final
// sigma) and the split pattern on hand-written cases; decode; gzip I/O; bad merges files.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "data/gzip.h"
#include "data/tokenizer.h"
#include "engine/error.h"
#include "engine/json.h"
#include "engine/random.h"
#include "test_util.h"

using namespace rankclip;

namespace {

std::string clip_merges_path() {
    std::string dir = test::shared_data_dir();
    if (dir.empty()) return "";
    std::string p = dir + "/clip/bpe_simple_vocab_16e6.txt.gz";
    return test::path_exists(p) ? p : "";
}

const Tokenizer& clip_tokenizer() {
    static const Tokenizer t = Tokenizer::from_file(clip_merges_path());
    return t;
}

// per process: concurrent test runs (other checkouts, CI jobs) must not share files
std::string temp_path(const std::string& name) {
    return testing::TempDir() + "/rankclip_test_tokenizer_" + std::to_string(::getpid()) + "_" + name;
}

}  // namespace

#define REQUIRE_CLIP_MERGES()                                                                       \
    if (clip_merges_path().empty()) GTEST_SKIP() << "clip/bpe_simple_vocab_16e6.txt.gz of the test data ($RANKCLIP_TEST_DATA) " \
                                                    "is absent: CLIP tokenizer tests skipped"

// Every line of a {"text": ..., "ids": [...]} JSONL file encodes to exactly its ids.
static void expect_jsonl_ids(const std::string& path, int min_lines) {
    const Tokenizer& tok = clip_tokenizer();
    std::ifstream in(path);
    ASSERT_TRUE(in.good()) << "cannot open " << path;
    std::string line;
    int lines = 0, mismatches = 0;
    auto start = std::chrono::steady_clock::now();
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        Json j = Json::parse(line);
        std::vector<int64_t> want;
        for (const Json& id : j["ids"].as_array()) want.push_back(id.as_int());
        std::vector<int64_t> got = tok.encode(j["text"].as_string());
        lines++;
        if (got != want && mismatches++ < 10) {
            std::string g, w;
            for (auto v : got) g += std::to_string(v) + " ";
            for (auto v : want) w += std::to_string(v) + " ";
            ADD_FAILURE() << path << " line " << lines << ": " << j["text"].as_string() << "\n got  " << g
                          << "\n want " << w;
        }
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(mismatches, 0) << mismatches << " of " << lines << " lines differ";
    EXPECT_GE(lines, min_lines);
    EXPECT_LT(secs, 2.0) << "encoding " << path << " is too slow";
    std::printf("[          ] %s: %d lines, %d exact, %.3f s\n", path.c_str(), lines, lines - mismatches, secs);
}

TEST(Tokenizer, GoldenFileEveryLineExact) {
    REQUIRE_CLIP_MERGES();
    std::string golden = test::shared_data_dir() + "/clip/tokenizer_golden.jsonl";
    if (!test::path_exists(golden)) GTEST_SKIP() << golden << " is absent";
    expect_jsonl_ids(golden, 2975);
}

// tests/ref/tokenizer_fuzz.jsonl (tools/gen_tokenizer_ref.py): random texts with entities, odd
// whitespace, sigma, U+0345, contractions in both cases and code points from all planes.
TEST(Tokenizer, FuzzReferenceEveryLineExact) {
    REQUIRE_CLIP_MERGES();
    expect_jsonl_ids(test::repo_root() + "/tests/ref/tokenizer_fuzz.jsonl", 400);
}

TEST(Tokenizer, ClipVocabularyShape) {
    REQUIRE_CLIP_MERGES();
    const Tokenizer& tok = clip_tokenizer();
    EXPECT_EQ(tok.vocab_size(), 49408);
    EXPECT_EQ(tok.num_merges(), 48894);
    EXPECT_EQ(tok.sot(), 49406);
    EXPECT_EQ(tok.eot(), 49407);
    EXPECT_EQ(tok.token(49406), "<|startoftext|>");
    EXPECT_EQ(tok.token(0), "!");
    EXPECT_EQ(tok.token(256), "!</w>");
    EXPECT_THROW(tok.token(49408), Error);
    // Special tokens written in the text map to their ids.
    EXPECT_EQ(tok.encode("<|startoftext|>a<|endoftext|>"), (std::vector<int64_t>{49406, 320, 49407}));
}

TEST(Tokenizer, TokenizePadsAndTruncatesKeepingEotLast) {
    REQUIRE_CLIP_MERGES();
    const Tokenizer& tok = clip_tokenizer();
    std::vector<int64_t> ids = tok.encode("a photo of a cat");
    ASSERT_EQ(ids.size(), 5u);
    std::vector<int64_t> t = tok.tokenize("a photo of a cat", 10);
    std::vector<int64_t> want = {49406};
    want.insert(want.end(), ids.begin(), ids.end());
    want.push_back(49407);
    want.resize(10, 0);
    EXPECT_EQ(t, want);
    // Exactly fitting: no padding.
    t = tok.tokenize("a photo of a cat", 7);
    EXPECT_EQ(t.size(), 7u);
    EXPECT_EQ(t.back(), 49407);
    // Too long: cut, eot replaces the last kept token.
    t = tok.tokenize("a photo of a cat", 4);
    EXPECT_EQ(t, (std::vector<int64_t>{49406, ids[0], ids[1], 49407}));
    t = tok.tokenize("", 4);
    EXPECT_EQ(t, (std::vector<int64_t>{49406, 49407, 0, 0}));
    EXPECT_THROW(tok.tokenize("x", 1), Error);
}

TEST(Tokenizer, DecodeGivesPiecesJoinedBySpaces) {
    REQUIRE_CLIP_MERGES();
    const Tokenizer& tok = clip_tokenizer();
    for (std::string text : {"A Photo of a CAT!", "It's 2024: naïve café — 東京", "hello😀world &amp; more"}) {
        std::string want;
        for (const std::string& p : clip_pre_tokenize(text)) want += p + " ";
        EXPECT_EQ(tok.decode(tok.encode(text)), want) << text;
    }
    EXPECT_THROW(tok.decode({-1}), Error);
}

TEST(TokenizerText, HtmlUnescapeAsPython) {
    EXPECT_EQ(html_unescape("&amp; &lt;tag&gt; &quot;q&quot;"), "& <tag> \"q\"");
    EXPECT_EQ(html_unescape("&amp;lt;"), "&lt;");                  // one pass only
    EXPECT_EQ(clip_clean_text("&amp;lt;b&amp;gt;"), "<b>");        // CLIP unescapes twice
    EXPECT_EQ(html_unescape("&#65;&#x42;&#X43;&#100"), "ABCd");     // ';' optional
    EXPECT_EQ(html_unescape("&#128;&#0;&#xD800;&#1114112;"), "\u20ac\ufffd\ufffd\ufffd");
    EXPECT_EQ(html_unescape("a&#1;b&#xFFFF;c"), "abc");             // invalid code points vanish
    EXPECT_EQ(html_unescape("&ampfoo; &notit; &eacute &nosuch; & &#; &#x;"),
              "&foo; \u00acit; \u00e9 &nosuch; & &#; &#x;");       // longest-prefix rule
    EXPECT_EQ(html_unescape("&NotEqualTilde;"), "\u2242\u0338");    // multi-code-point entity
}

TEST(TokenizerText, CleanCollapsesWhitespaceAndLowerCases) {
    EXPECT_EQ(clip_clean_text("  Multiple \t\n spaces\u00a0and\u3000UPPER  "), "multiple spaces and upper");
    EXPECT_EQ(clip_clean_text("ÀÉÎÕÜ ßœæ"), "àéîõü ßœæ");
    EXPECT_EQ(clip_clean_text("\u0130"), "i\u0307");                 // İ: two code points, as Python
    EXPECT_EQ(clip_clean_text("ΟΔΟΣ ΣΑ"), "οδος σα");                // final sigma only at a word end
    EXPECT_EQ(clip_clean_text("\xff bad"), "\ufffd bad");            // invalid UTF-8 -> U+FFFD
    EXPECT_EQ(clip_clean_text(" \t "), "");
}

TEST(TokenizerText, SplitPattern) {
    using V = std::vector<std::string>;
    EXPECT_EQ(clip_split("don't we'll i'm"), (V{"don", "'t", "we", "'ll", "i", "'m"}));
    EXPECT_EQ(clip_split("abc123 x2"), (V{"abc", "1", "2", "3", "x", "2"}));
    EXPECT_EQ(clip_split("hi!!, ''s <|endoftext|>!<|endoftext|>"),
              (V{"hi", "!!,", "''", "s", "<|endoftext|>", "!<|", "endoftext", "|>"}));
    EXPECT_EQ(clip_split("naïve 東京😀x"), (V{"naïve", "東京", "😀", "x"}));
    EXPECT_EQ(clip_split("'ſ"), (V{"'ſ"}));  // re.IGNORECASE: long s folds to s
    EXPECT_EQ(clip_split("'S'Ll"), (V{"'S", "'Ll"}));
    EXPECT_EQ(clip_split("a\u0345b !\u0345?"), (V{"a", "b", "!", "?"}));  // regex drops U+0345
    EXPECT_EQ(clip_split("a\x1c!"), (V{"a", "\x1c!"}));  // regex's \s lacks U+001C..U+001F
}

TEST(TokenizerText, ByteEncode) {
    EXPECT_EQ(byte_encode("a!"), "a!");
    EXPECT_EQ(byte_encode(" "), "\u0120");   // space is byte-unicode U+0120 ('Ġ')
    EXPECT_EQ(byte_encode("\xc3\xa9"), "\u00c3\u00a9");
}

TEST(Gzip, RoundTripAndErrors) {
    std::string path = temp_path("gz.gz");
    std::string data;
    for (int i = 0; i < 100000; i++) data += (char)('a' + (i * 7919) % 26);
    write_gzip_file(path, data);
    EXPECT_EQ(read_gzip_file(path), data);
    // Same data, same bytes.
    std::ifstream f1(path, std::ios::binary);
    std::string bytes1((std::istreambuf_iterator<char>(f1)), std::istreambuf_iterator<char>());
    write_gzip_file(path, data);
    std::ifstream f2(path, std::ios::binary);
    std::string bytes2((std::istreambuf_iterator<char>(f2)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes1, bytes2);
    EXPECT_LT(bytes1.size(), data.size());
    // Truncated stream: an error naming the file.
    std::string cut = temp_path("cut.gz");
    {
        std::ofstream out(cut, std::ios::binary);
        out.write(bytes1.data(), (std::streamsize)bytes1.size() / 2);
    }
    try {
        read_gzip_file(cut);
        ADD_FAILURE() << "a truncated gzip file was read without error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(cut), std::string::npos) << e.what();
    }
    EXPECT_THROW(read_gzip_file(temp_path("does_not_exist.gz")), Error);
}

// A small file that inflates beyond the limit stops at the limit, with the file and the limit named.
TEST(Gzip, DecompressionBombStopsAtTheLimit) {
    const std::string bomb = temp_path("bomb.txt.gz");
    {  // 80 MiB of 'a', about 80 KB on disk (zlib's fastest level: the test's time is the reading)
        gzFile f = gzopen(bomb.c_str(), "wb1");
        ASSERT_NE(f, nullptr);
        const std::string chunk(size_t(1) << 20, 'a');
        for (int i = 0; i < 80; i++) ASSERT_EQ(gzwrite(f, chunk.data(), unsigned(chunk.size())), int(chunk.size()));
        ASSERT_EQ(gzclose(f), Z_OK);
    }
    try {
        Tokenizer::from_file(bomb);
        ADD_FAILURE() << "an 80 MiB vocabulary was accepted";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find(bomb), std::string::npos) << msg;
        EXPECT_NE(msg.find("more than 64 MiB, the limit for a vocabulary"), std::string::npos) << msg;
    }
    EXPECT_EQ(read_gzip_file(bomb, size_t(80) << 20).size(), size_t(80) << 20);  // exactly at a limit: read
}

TEST(Tokenizer, BadMergesFiles) {
    std::string p = temp_path("bad_merges.txt");
    write_gzip_file(p, "not a header\na b\n");
    EXPECT_THROW(Tokenizer::from_file(p), Error);
    write_gzip_file(p, "#version: 0.2\na b\nabc\n");
    try {
        Tokenizer::from_file(p);
        ADD_FAILURE() << "a malformed merge line was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
    }
    // A plain-text file with the header and no merges: the 514-entry byte vocabulary.
    { std::ofstream(p) << "#version: 0.2\n"; }
    Tokenizer t = Tokenizer::from_file(p);
    EXPECT_EQ(t.vocab_size(), 514);
    EXPECT_EQ(t.sot(), 512);
    EXPECT_EQ(t.encode("ab"), (std::vector<int64_t>{'a' - '!', 'b' - '!' + 256}));
    EXPECT_THROW(Tokenizer::from_file(""), Error);
    EXPECT_THROW(Tokenizer().encode("a"), Error);  // not loaded
}

TEST(Tokenizer, HandMadeVocabularyTokenizeAndDecode) {
    // One merge: vocabulary 512 + 1 + 2, sot 513, eot 514; "ab" is the merge's id 512.
    Tokenizer tok = Tokenizer::from_merges({{"a", "b</w>"}});
    EXPECT_EQ(tok.vocab_size(), 515);
    EXPECT_EQ(tok.sot(), 513);
    EXPECT_EQ(tok.eot(), 514);
    EXPECT_EQ(tok.encode("AB ab, ab"), (std::vector<int64_t>{512, 512, ',' - '!' + 256, 512}));
    EXPECT_EQ(tok.tokenize("ab ab ab", 4), (std::vector<int64_t>{513, 512, 512, 514}));  // cut, eot last
    EXPECT_EQ(tok.tokenize("ab", 5), (std::vector<int64_t>{513, 512, 514, 0, 0}));
    EXPECT_EQ(tok.decode(tok.encode("ab  cd")), "ab cd ");
    // The special tokens decode as their text.
    EXPECT_EQ(tok.decode({513, 512, 514}), "<|startoftext|>ab <|endoftext|>");
}

// The heap BPE (Tokenizer::bpe) against the definition (bpe_reference) on random words over a
// small alphabet, with merges in training order and with merges whose ranks are out of training
// order (a hand-made file: a merge of a merged symbol ranked before the merge that makes it).
TEST(Tokenizer, HeapBpeMatchesReferenceLoop) {
    const std::vector<std::vector<std::pair<std::string, std::string>>> vocabularies = {
        {{"a", "b"}, {"ab", "a"}, {"b", "a"}, {"a", "a"}, {"aa", "a"}, {"ab", "b</w>"}, {"c", "a"},
         {"ba", "ba"}, {"a", "b</w>"}, {"aa", "aa"}, {"b", "b"}, {"bb", "a</w>"}, {"a", "a</w>"}},
        {{"ab", "a"}, {"aa", "aa"}, {"a", "b"}, {"a", "a"}, {"b", "b</w>"}, {"ba", "b"}, {"b", "a"}},
    };
    Generator gen(7);
    for (const auto& merges : vocabularies) {
        Tokenizer tok = Tokenizer::from_merges(merges);
        for (int trial = 0; trial < 400; trial++) {
            const int64_t length = 1 + (int64_t)(gen.random() % (trial < 300 ? 12 : 300));
            std::string word;
            for (int64_t i = 0; i < length; i++) word.push_back("abc"[gen.random() % (trial % 2 ? 3 : 2)]);
            ASSERT_EQ(tok.bpe(word), tok.bpe_reference(word)) << "word '" << word << "'";
        }
        for (const std::string word : {"a", "aaaaaaaaaaaaaaaaa", "abababababababababa", "bbbbbbbbbbbbbbbbbbbbbb"})
            EXPECT_EQ(tok.bpe(word), tok.bpe_reference(word)) << "word '" << word << "'";
    }
}

// A one-megabyte word (no spaces) is one piece of the pre-tokenizer: its merges are exact and
// tokenize returns the context's first ids. Merges (a, b) then (ab, ab): the 500,000 "ab" of the
// word become 499,999 "ab" + "a" + "b</w>" (the last b ends the word), then 249,999 "abab" + "ab".
TEST(Tokenizer, MegabyteWordMergesExactly) {
    Tokenizer tok = Tokenizer::from_merges({{"a", "b"}, {"ab", "ab"}});
    std::string word;
    for (int i = 0; i < 500000; i++) word += "ab";
    const std::vector<int64_t> ids = tok.encode(word);
    const int64_t ab = 512, abab = 513, a = 'a' - '!', b_end = 256 + ('b' - '!');
    ASSERT_EQ(ids.size(), 249999u + 3u);
    EXPECT_TRUE(std::all_of(ids.begin(), ids.begin() + 249999, [&](int64_t id) { return id == abab; }));
    EXPECT_EQ(std::vector<int64_t>(ids.end() - 3, ids.end()), (std::vector<int64_t>{ab, a, b_end}));
    const std::vector<int64_t> context = tok.tokenize(word + " ab ab", 8);
    EXPECT_EQ(context, (std::vector<int64_t>{tok.sot(), abab, abab, abab, abab, abab, abab, tok.eot()}));
    // tokenize stops at the pieces it needs: the same first ids as the whole encoding
    // ("ab" alone ends in "b</w>", which no merge takes)
    const std::vector<int64_t> long_text = tok.tokenize("ab ab ab " + word, 5);
    EXPECT_EQ(long_text, (std::vector<int64_t>{tok.sot(), a, b_end, a, tok.eot()}));
}
