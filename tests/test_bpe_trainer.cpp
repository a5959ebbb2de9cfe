// tests/test_bpe_trainer.cpp
// tests: data/bpe_trainer.h — the first merges of a hand-checked corpus (including the
// lexicographic tie-break), determinism (same captions -> same file bytes, caption order
// irrelevant), the trained vocabulary loaded by Tokenizer (sizes, sot/eot, round trip through
// encode/decode) and the errors (empty captions file, vocabulary size out of range).
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "data/bpe_trainer.h"
#include "data/gzip.h"
#include "data/tokenizer.h"
#include "engine/error.h"

using namespace rankclip;

namespace {

std::string temp_path(const std::string& name) {  // per process: concurrent runs share no files
    return testing::TempDir() + "/rankclip_test_bpe_" + std::to_string(::getpid()) + "_" + name;
}

std::string file_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Captions in the style of the synthetic dataset: a small grammar, many repeated words.
std::vector<std::string> grammar_captions() {
    const char* sizes[] = {"small", "large", "tiny", "big"};
    const char* colours[] = {"red", "green", "blue", "yellow", "purple"};
    const char* shapes[] = {"circle", "square", "triangle", "star"};
    const char* relations[] = {"above", "below", "left of", "right of"};
    std::vector<std::string> out;
    int n = 0;
    for (const char* s : sizes)
        for (const char* c : colours)
            for (const char* sh : shapes) {
                const char* r = relations[n % 4];
                const char* c2 = colours[(n * 3) % 5];
                const char* sh2 = shapes[(n * 7) % 4];
                out.push_back(std::string("A ") + s + " " + c + " " + sh + " " + r + " a " + c2 + " " + sh2 + ".");
                out.push_back(std::string("a photo of a ") + c + " " + sh);
                n++;
            }
    return out;
}

}  // namespace

TEST(BpeTrainer, FirstMergesOfAHandCheckedCorpus) {
    // Pieces: low x3, lower, lowest. Pair counts: (l,o)=5, then (lo,w</w>)=3, then (lo,w) and
    // (w,e) tie at 2 and "lo" < "w", then (low,e)=2, then three pairs tie at 1 and
    // ("lowe","r</w>") is lexicographically first.
    BpeTrainStats st;
    BpeMerges m = train_bpe({"low low low", "Lower", "lowest"}, 514 + 5, &st);
    BpeMerges want = {{"l", "o"}, {"lo", "w</w>"}, {"lo", "w"}, {"low", "e"}, {"lowe", "r</w>"}};
    EXPECT_EQ(m, want);
    EXPECT_EQ(st.captions, 3);
    EXPECT_EQ(st.pieces, 5);
    EXPECT_EQ(st.unique_pieces, 3);
    EXPECT_EQ(st.merges, 5);
    EXPECT_EQ(st.vocab_size, 519);

    // Tie-break on the left symbol: "x" < "z".
    m = train_bpe({"zw xy"}, 515);
    EXPECT_EQ(m, (BpeMerges{{"x", "y</w>"}}));
    // Bytes outside ASCII are merged in their byte-unicode spelling.
    m = train_bpe({"é é"}, 515);
    EXPECT_EQ(m, (BpeMerges{{byte_encode("\xc3"), byte_encode("\xa9") + "</w>"}}));
}

TEST(BpeTrainer, StopsWhenPairsRunOut) {
    BpeTrainStats st;
    BpeMerges m = train_bpe({"ab ab cd"}, 1000, &st);
    EXPECT_EQ(m, (BpeMerges{{"a", "b</w>"}, {"c", "d</w>"}}));
    EXPECT_EQ(st.vocab_size, 516);
}

TEST(BpeTrainer, DeterministicBytesAndOrderIndependent) {
    std::vector<std::string> caps = grammar_captions();
    std::string p1 = temp_path("a.txt.gz"), p2 = temp_path("b.txt.gz"), p3 = temp_path("c.txt.gz");
    write_merges_file(p1, train_bpe(caps, 600));
    write_merges_file(p2, train_bpe(caps, 600));
    std::vector<std::string> reversed(caps.rbegin(), caps.rend());
    write_merges_file(p3, train_bpe(reversed, 600));
    std::string b1 = file_bytes(p1);
    ASSERT_FALSE(b1.empty());
    EXPECT_EQ(b1, file_bytes(p2));
    EXPECT_EQ(b1, file_bytes(p3));
    std::string text = read_gzip_file(p1);
    EXPECT_EQ(text.rfind("#version: 0.2\n", 0), 0u);
}

TEST(BpeTrainer, TrainedVocabularyRoundTrips) {
    std::vector<std::string> caps = grammar_captions();
    std::string captions_path = temp_path("captions.txt"), out = temp_path("merges.txt.gz");
    {
        std::ofstream f(captions_path);
        for (const std::string& c : caps) f << c << "\r\n";
        f << "\n";
    }
    BpeTrainStats st = train_bpe_file(captions_path, 560, out);
    EXPECT_EQ(st.captions, (int64_t)caps.size());
    ASSERT_EQ(st.vocab_size, 560) << "the grammar has enough pairs for 46 merges";
    Tokenizer tok = Tokenizer::from_file(out);
    EXPECT_EQ(tok.vocab_size(), 560);
    EXPECT_EQ(tok.num_merges(), 46);
    EXPECT_EQ(tok.sot(), 558);
    EXPECT_EQ(tok.eot(), 559);
    for (const std::string& c : caps) {
        std::vector<int64_t> ids = tok.encode(c);
        std::string want;
        for (const std::string& p : clip_pre_tokenize(c)) want += p + " ";
        EXPECT_EQ(tok.decode(ids), want) << c;
        for (int64_t id : ids) EXPECT_LT(id, 558) << c;
    }
    // Frequent words became single tokens: "circle" is 7 times in every 20 captions.
    EXPECT_EQ(tok.encode("circle").size(), 1u);
    EXPECT_EQ(tok.token(tok.encode("circle")[0]), "circle</w>");
    // Unseen text still encodes (down to bytes) and round-trips.
    EXPECT_EQ(tok.decode(tok.encode("zebra 42 ü")), "zebra 4 2 ü ");
    std::vector<int64_t> t = tok.tokenize("a red circle", 8);
    EXPECT_EQ(t.front(), 558);
    EXPECT_EQ(t[1 + tok.encode("a red circle").size()], 559);
}

TEST(BpeTrainer, ExhaustedTrainingMakesEveryPieceOneToken) {
    // Asked for more than the captions allow, training stops when no pair is left: then every
    // training piece is a single vocabulary entry, and the tokenizer must reproduce that.
    std::vector<std::string> caps = grammar_captions();
    BpeTrainStats st;
    BpeMerges m = train_bpe(caps, 5000, &st);
    EXPECT_LT(st.vocab_size, 5000);
    EXPECT_EQ(st.vocab_size, 514 + (int64_t)m.size());
    Tokenizer tok = Tokenizer::from_merges(m);
    EXPECT_EQ(tok.vocab_size(), st.vocab_size);
    for (const std::string& c : caps) {
        std::vector<std::string> pieces = clip_pre_tokenize(c);
        std::vector<int64_t> ids = tok.encode(c);
        ASSERT_EQ(ids.size(), pieces.size()) << c;
        for (size_t i = 0; i < ids.size(); i++) EXPECT_EQ(tok.token(ids[i]), byte_encode(pieces[i]) + "</w>") << c;
    }
}

TEST(BpeTrainer, Errors) {
    std::string empty = temp_path("empty.txt");
    { std::ofstream f(empty); f << "\n\r\n"; }
    try {
        train_bpe_file(empty, 600, temp_path("never.gz"));
        ADD_FAILURE() << "an empty captions file was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(empty), std::string::npos) << e.what();
    }
    EXPECT_THROW(train_bpe_file(temp_path("missing.txt"), 600, temp_path("never.gz")), Error);
    EXPECT_THROW(train_bpe({"a b"}, 513), Error);
    EXPECT_THROW(train_bpe({"a b"}, 100), Error);
    EXPECT_THROW(train_bpe({"a b"}, 49409), Error);
    EXPECT_THROW(train_bpe({"   ", "<|endoftext|>"}, 600), Error);  // no pieces to count
    EXPECT_NO_THROW(train_bpe({"a b"}, 514));
}
