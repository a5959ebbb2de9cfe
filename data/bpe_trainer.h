// data/bpe_trainer.h
// defines: train_bpe, which learns byte-level BPE merges from captions with CLIP's pre-tokenization,
// and the merges-file writer that Tokenizer::from_file reads back (`rankclip bpe-train`).
//
// Algorithm: every caption goes through clip_pre_tokenize (html-unescape, whitespace, lower-case,
// split); each piece's bytes become byte-unicode symbols with "</w>" on the last one, and pieces are
// counted. Then, until 512 + merges + 2 reaches the vocabulary size (or no adjacent pair is left),
// the most frequent adjacent pair is merged everywhere. Ties are broken by the pair's strings,
// lexicographically on their UTF-8 bytes (left symbol first, then right), so the result depends
// only on the captions' multiset of pieces. "<|startoftext|>" / "<|endoftext|>" written in a
// caption are not counted. Pair counts are updated incrementally (only the words holding the
// merged pair are revisited), so CC3M-sized caption files train in minutes, not hours.
//
// The file: "#version: 0.2\n" then one "LEFT RIGHT\n" per merge, gzip-compressed, with
// deterministic bytes. Loaded by Tokenizer, it gives vocab_size = 512 + merges + 2 with
// sot = vocab_size - 2 and eot = vocab_size - 1.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace rankclip {

using BpeMerges = std::vector<std::pair<std::string, std::string>>;

struct BpeTrainStats {
    int64_t captions = 0;      // non-empty captions read
    int64_t pieces = 0;        // pre-tokenized pieces counted
    int64_t unique_pieces = 0;
    int64_t merges = 0;
    int64_t vocab_size = 0;    // 512 + merges + 2: less than asked when the captions ran out of pairs
};

// Smallest and largest vocabulary sizes: the byte alphabet + sot/eot, and CLIP's 49408.
constexpr int64_t kBpeMinVocabSize = 514;
constexpr int64_t kBpeMaxVocabSize = 49408;

// Learns merges for a vocabulary of `vocab_size` entries. Errors: vocab_size outside
// [kBpeMinVocabSize, kBpeMaxVocabSize], or captions without a single piece.
BpeMerges train_bpe(const std::vector<std::string>& captions, int64_t vocab_size, BpeTrainStats* stats = nullptr);

// The merges file's text ("#version: 0.2" header, one merge a line).
std::string merges_file_text(const BpeMerges& merges);
// Writes merges_file_text gzip-compressed (atomic; same merges, same bytes).
void write_merges_file(const std::string& path, const BpeMerges& merges);

// The non-empty lines of a captions file (one caption a line; '\r' stripped). An Error names the
// file when it cannot be read.
std::vector<std::string> read_caption_lines(const std::string& path);

// read_caption_lines + train_bpe + write_merges_file. An empty captions file is an Error naming it.
BpeTrainStats train_bpe_file(const std::string& captions_path, int64_t vocab_size, const std::string& out_path);

}  // namespace rankclip
