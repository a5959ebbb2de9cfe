// data/bpe_trainer.cpp
// defines: the BPE trainer (see data/bpe_trainer.h): piece counting, then greedy merges with
// incremental pair counts kept in an ordered set (count descending, then the pair's strings).
#include "data/bpe_trainer.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <unordered_map>

#include "data/gzip.h"
#include "data/tokenizer.h"
#include "engine/error.h"

namespace rankclip {

namespace {

uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }
int32_t key_left(uint64_t k) { return (int32_t)(k >> 32); }
int32_t key_right(uint64_t k) { return (int32_t)(k & 0xFFFFFFFFu); }

struct Trainer {
    std::vector<std::string> symbols;                // symbol id -> string
    std::unordered_map<std::string, int32_t> symbol_id;
    std::vector<std::vector<int32_t>> words;         // unique pieces as symbols
    std::vector<int64_t> freq;                       // their counts
    std::unordered_map<uint64_t, int64_t> pair_count;
    std::unordered_map<uint64_t, std::vector<int32_t>> pair_words;  // words that held the pair (may be stale)

    struct ByPriority {
        const Trainer* t;
        bool operator()(const std::pair<int64_t, uint64_t>& x, const std::pair<int64_t, uint64_t>& y) const {
            if (x.first != y.first) return x.first > y.first;  // more frequent first
            int c = t->symbols[key_left(x.second)].compare(t->symbols[key_left(y.second)]);
            if (c != 0) return c < 0;
            return t->symbols[key_right(x.second)] < t->symbols[key_right(y.second)];
        }
    };
    std::set<std::pair<int64_t, uint64_t>, ByPriority> queue{ByPriority{this}};

    int32_t intern(const std::string& s) {
        auto it = symbol_id.find(s);
        if (it != symbol_id.end()) return it->second;
        symbols.push_back(s);
        return symbol_id[s] = (int32_t)symbols.size() - 1;
    }

    void add_pair(uint64_t key, int64_t delta) {
        if (delta == 0) return;
        int64_t& c = pair_count[key];
        if (c > 0) queue.erase({c, key});
        c += delta;
        if (c > 0) queue.insert({c, key});
    }
};

}  // namespace

BpeMerges train_bpe(const std::vector<std::string>& captions, int64_t vocab_size, BpeTrainStats* stats) {
    RC_CHECK(vocab_size >= kBpeMinVocabSize && vocab_size <= kBpeMaxVocabSize, "bpe-train: vocabulary size ",
             vocab_size, " is out of range: it must be at least ", kBpeMinVocabSize,
             " (256 byte symbols, the same with </w>, start and end tokens) and at most ", kBpeMaxVocabSize,
             " (CLIP's)");
    BpeTrainStats st;
    std::map<std::string, int64_t> piece_count;  // ordered: the word order is deterministic
    for (const std::string& caption : captions) {
        if (caption.empty()) continue;
        st.captions++;
        for (const std::string& piece : clip_pre_tokenize(caption)) {
            if (piece == "<|startoftext|>" || piece == "<|endoftext|>") continue;
            piece_count[piece]++;
            st.pieces++;
        }
    }
    RC_CHECK(st.pieces > 0, "bpe-train: the captions hold no words to learn from (", st.captions,
             " non-empty captions)");
    st.unique_pieces = (int64_t)piece_count.size();

    Trainer t;
    for (const auto& [piece, count] : piece_count) {
        std::vector<int32_t> w;
        for (size_t i = 0; i < piece.size(); i++) {
            std::string sym = byte_encode(piece.substr(i, 1));
            if (i + 1 == piece.size()) sym += "</w>";
            w.push_back(t.intern(sym));
        }
        t.words.push_back(std::move(w));
        t.freq.push_back(count);
    }
    for (size_t wi = 0; wi < t.words.size(); wi++) {
        const auto& w = t.words[wi];
        for (size_t i = 0; i + 1 < w.size(); i++) {
            uint64_t k = pair_key(w[i], w[i + 1]);
            t.pair_count[k] += t.freq[wi];
            auto& list = t.pair_words[k];
            if (list.empty() || list.back() != (int32_t)wi) list.push_back((int32_t)wi);
        }
    }
    for (const auto& [k, c] : t.pair_count)
        if (c > 0) t.queue.insert({c, k});

    const int64_t want_merges = vocab_size - kBpeMinVocabSize;
    BpeMerges merges;
    std::vector<int64_t> visited(t.words.size(), -1);
    while ((int64_t)merges.size() < want_merges && !t.queue.empty()) {
        uint64_t best = t.queue.begin()->second;
        int32_t a = key_left(best), b = key_right(best);
        int32_t merged = t.intern(t.symbols[a] + t.symbols[b]);
        merges.emplace_back(t.symbols[a], t.symbols[b]);
        int64_t step = (int64_t)merges.size();
        std::unordered_map<uint64_t, int64_t> delta;
        std::vector<int32_t> holders = std::move(t.pair_words[best]);
        t.pair_words.erase(best);
        for (int32_t wi : holders) {
            if (visited[wi] == step) continue;
            visited[wi] = step;
            std::vector<int32_t>& w = t.words[wi];
            int64_t f = t.freq[wi];
            std::vector<int32_t> next;
            next.reserve(w.size());
            bool changed = false;
            for (size_t i = 0; i < w.size();) {
                if (i + 1 < w.size() && w[i] == a && w[i + 1] == b) {
                    next.push_back(merged);
                    i += 2;
                    changed = true;
                } else {
                    next.push_back(w[i++]);
                }
            }
            if (!changed) continue;
            for (size_t i = 0; i + 1 < w.size(); i++) delta[pair_key(w[i], w[i + 1])] -= f;
            for (size_t i = 0; i + 1 < next.size(); i++) {
                uint64_t k = pair_key(next[i], next[i + 1]);
                delta[k] += f;
                if (next[i] == merged || next[i + 1] == merged) {
                    auto& list = t.pair_words[k];
                    if (list.empty() || list.back() != wi) list.push_back(wi);
                }
            }
            w.swap(next);
        }
        // Apply in key order so the queue's state never depends on hash order.
        std::vector<std::pair<uint64_t, int64_t>> changes(delta.begin(), delta.end());
        std::sort(changes.begin(), changes.end());
        for (const auto& [k, d] : changes) t.add_pair(k, d);
        RC_CHECK(t.pair_count[best] == 0, "bpe-train: internal error: pair '", t.symbols[a], " ", t.symbols[b],
                 "' still counted after its merge");
    }
    st.merges = (int64_t)merges.size();
    st.vocab_size = kBpeMinVocabSize + st.merges;
    if (stats) *stats = st;
    return merges;
}

std::string merges_file_text(const BpeMerges& merges) {
    std::string text = "#version: 0.2\n";
    for (const auto& [l, r] : merges) {
        RC_CHECK(!l.empty() && !r.empty() && l.find_first_of(" \n") == std::string::npos &&
                     r.find_first_of(" \n") == std::string::npos,
                 "write_merges_file: merge '", l, "' + '", r, "' has an empty side or a space/newline");
        text += l + " " + r + "\n";
    }
    return text;
}

void write_merges_file(const std::string& path, const BpeMerges& merges) {
    write_gzip_file(path, merges_file_text(merges));
}

std::vector<std::string> read_caption_lines(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    RC_CHECK(in.good(), "bpe-train: cannot open captions file '", path, "'");
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty()) lines.push_back(line);
    }
    RC_CHECK(!in.bad(), "bpe-train: error reading captions file '", path, "'");
    return lines;
}

BpeTrainStats train_bpe_file(const std::string& captions_path, int64_t vocab_size, const std::string& out_path) {
    std::vector<std::string> captions = read_caption_lines(captions_path);
    RC_CHECK(!captions.empty(), "bpe-train: captions file '", captions_path, "' is empty");
    BpeTrainStats st;
    BpeMerges merges;
    try {
        merges = train_bpe(captions, vocab_size, &st);
    } catch (const Error& e) {
        throw Error(str_cat(e.what(), " [captions file '", captions_path, "']"));
    }
    write_merges_file(out_path, merges);
    return st;
}

}  // namespace rankclip
