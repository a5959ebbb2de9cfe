// data/tokenizer.h
// defines: Tokenizer, OpenAI CLIP's byte-level BPE tokenizer (simple_tokenizer.py), exact, and the
// text pipeline pieces it shares with the BPE trainer (clip_clean_text, clip_split, byte_encode).
//
// Pipeline, as simple_tokenizer.py (ftfy.fix_text is NOT applied):
//   1. html.unescape twice (every HTML5 named reference, with Python's longest-prefix rule for
//      names without ';', and numeric &#..; / &#x..; with the HTML5 replacements for invalid ones),
//   2. runs of whitespace (Python's str.isspace) -> one space, strip,
//   3. str.lower() (full Unicode mapping, including 'İ' -> "i̇" and the final-sigma rule),
//   4. split with <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//      as the `regex` module runs it with re.IGNORECASE ("'S" and "'ſ" match 's; U+0345 matches
//      nothing and is dropped), letter/number classes from data/unicode_tables.h (Python 3.11's
//      Unicode 14: code points assigned later are neither letters nor numbers here),
//   5. each piece's UTF-8 bytes -> the byte-unicode alphabet, "</w>" on the last symbol, BPE merges
//      applied lowest rank first; "<|startoftext|>" / "<|endoftext|>" written in the text map to sot/eot.
// Input is UTF-8; an invalid byte reads as U+FFFD. Checked against a Python restatement of
// simple_tokenizer.py (tools/gen_tokenizer_ref.py) on random texts, and against the golden file.
// A Tokenizer is immutable after loading: encode/tokenize/decode are safe from many threads.
//
// Vocabulary (as CLIP): the 256 byte symbols, the same with "</w>", one entry per merge, then
// "<|startoftext|>" and "<|endoftext|>". At most 49152-256-2 = 48894 merges are read from the file
// (CLIP's file has 262144; the rest are ignored), so vocab_size = 512 + merges + 2, sot = vocab_size-2,
// eot = vocab_size-1: 49406 / 49407 for CLIP's file, and likewise for files written by bpe-train.
// Where two entries spell the same string, the later id is used (CLIP's dict does the same).
//
// tokenize(text, n): [sot] + encode(text) + [eot]; longer than n, it is cut to n tokens and the last
// one is replaced by eot (the end-of-text token is always kept last, as OpenCLIP); shorter, padded
// with 0 up to n.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace rankclip {

// Steps 1-3 above on UTF-8 text, giving UTF-8.
std::string clip_clean_text(const std::string& text);
// Python's html.unescape (one pass).
std::string html_unescape(const std::string& text);
// Step 4 on cleaned text: the pattern's matches, in order.
std::vector<std::string> clip_split(const std::string& cleaned);
// Steps 1-4.
std::vector<std::string> clip_pre_tokenize(const std::string& text);
// Each byte of `bytes` as its byte-unicode symbol (printable Latin-1 bytes stand for themselves,
// the others map to U+0100..), as UTF-8.
std::string byte_encode(const std::string& bytes);

class Tokenizer {
public:
    static constexpr int64_t kMaxMerges = 49152 - 256 - 2;

    // An empty tokenizer (vocab_size 0), to be assigned from from_file / from_merges; encoding
    // with it is an Error.
    Tokenizer() = default;

    // Reads a merges file (gzip or plain text): a header line ("#version: 0.2", possibly after a
    // file name, as CLIP's), then one merge "LEFT RIGHT" a line. Errors name the file and line.
    static Tokenizer from_file(const std::string& merges_path);
    // From merges in rank order (the symbols in the byte-unicode alphabet).
    static Tokenizer from_merges(const std::vector<std::pair<std::string, std::string>>& merges);

    std::vector<int64_t> encode(const std::string& text) const;                // no sot/eot
    std::vector<int64_t> tokenize(const std::string& text, int context_length) const;
    // The ids' text: "</w>" becomes a space (so decode(encode(t)) is clip_pre_tokenize(t) joined by
    // spaces, with a trailing space); invalid UTF-8 becomes U+FFFD. Padding (0) decodes as "!",
    // as CLIP: strip it first. An Error for an id outside [0, vocab_size).
    std::string decode(const std::vector<int64_t>& ids) const;

    int64_t vocab_size() const { return (int64_t)vocab_.size(); }
    int64_t sot() const { return sot_; }
    int64_t eot() const { return eot_; }
    int64_t num_merges() const { return vocab_size() - 514; }
    // The vocabulary entry of an id, in the byte-unicode alphabet (e.g. "cat</w>").
    const std::string& token(int64_t id) const;

    // The merges of one pre-tokenized piece: O(n log n) in its length (a heap of ranked pairs).
    std::vector<int64_t> bpe(const std::string& piece) const;
    // The definition, CLIP's Python loop (O(n^2)): what tests check bpe against.
    std::vector<int64_t> bpe_reference(const std::string& piece) const;

private:
    std::vector<int64_t> piece_ids(const std::string& piece) const;
    // encode(text) cut to its first `limit` ids; stops merging pieces once it has them.
    std::vector<int64_t> encode_prefix(const std::string& text, size_t limit) const;
    std::vector<std::string> vocab_;                       // id -> string
    std::unordered_map<std::string, int64_t> encoder_;     // string -> id (last one wins)
    std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> ranks_;  // (left id, right id) -> (rank, merged id)
    int64_t byte_id_[256] = {}, byte_end_id_[256] = {};    // a byte's symbol, and with "</w>"
    int64_t sot_ = 0, eot_ = 0;
};

// A merges file decompresses to at most this (CLIP's: 1.4 MB; 49,152 merges of long tokens fit).
constexpr size_t kMaxVocabularyBytes = size_t(64) << 20;

// The merges file named by the RANKCLIP_VOCAB environment variable, or "" when unset.
std::string vocab_path_from_env();

}  // namespace rankclip
