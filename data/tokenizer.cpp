// data/tokenizer.cpp
// defines: the CLIP BPE tokenizer (see data/tokenizer.h): text cleaning over code points, the
// split pattern written out by hand, the byte-unicode alphabet and the merge loop.
#include "data/tokenizer.h"

#include <algorithm>
#include <functional>
#include <cstdlib>
#include <cstring>

#include "data/gzip.h"
#include "data/html_entities.h"
#include "data/unicode_tables.h"
#include "engine/error.h"
#include "engine/strings.h"

namespace rankclip {

namespace {

using U32 = std::u32string;

// UTF-8 -> code points; each byte of an invalid sequence (bad lead, bad continuation, overlong,
// surrogate, > U+10FFFF, truncated) reads as U+FFFD.
U32 utf8_decode(const std::string& s) {
    U32 out;
    out.reserve(s.size());
    size_t i = 0, n = s.size();
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) { out.push_back(c); i++; continue; }
        int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
        char32_t cp = len == 4 ? (c & 0x07) : len == 3 ? (c & 0x0F) : (c & 0x1F);
        bool ok = len > 0 && c < 0xF5 && i + len <= n;
        for (int k = 1; ok && k < len; k++) {
            unsigned char cc = (unsigned char)s[i + k];
            if ((cc & 0xC0) != 0x80) ok = false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (ok) {
            static const char32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
            if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) ok = false;
        }
        if (ok) { out.push_back(cp); i += len; }
        else { out.push_back(0xFFFD); i++; }
    }
    return out;
}

std::string utf8_encode(const char32_t* p, size_t n) {
    std::string out;
    out.reserve(n);
    for (size_t i = 0; i < n; i++) append_utf8(out, p[i]);
    return out;
}

template <size_t N>
bool in_ranges(const unicode::CodepointRange (&table)[N], char32_t cp) {
    size_t lo = 0, hi = N;  // first range with hi >= cp
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (table[mid].hi < cp) lo = mid + 1;
        else hi = mid;
    }
    return lo < N && table[lo].lo <= cp;
}

bool is_letter(char32_t c) {
    if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    return in_ranges(unicode::kLetterRanges, c);
}
bool is_number(char32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    return in_ranges(unicode::kNumberRanges, c);
}
bool is_space(char32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
    return in_ranges(unicode::kSpaceRanges, c);
}

// ---- html.unescape ----

const char* find_entity(const std::string& name) {
    const auto* begin = std::begin(html::kHtmlEntities);
    const auto* end = std::end(html::kHtmlEntities);
    const auto* it = std::lower_bound(begin, end, name, [](const html::NamedEntity& e, const std::string& k) {
        return std::strcmp(e.name, k.c_str()) < 0;
    });
    return it != end && name == it->name ? it->text : nullptr;
}

// Python's html._replace_charref for a numeric reference's value (saturated above U+10FFFF).
void append_numeric_charref(U32& out, uint64_t num) {
    static const char32_t cp1252[32] = {0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                        0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D,   0x017D, 0x8F,
                                        0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                        0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};
    if (num == 0) { out.push_back(0xFFFD); return; }
    if (num == 0x0D) { out.push_back(0x0D); return; }
    if (num >= 0x80 && num <= 0x9F) { out.push_back(cp1252[num - 0x80]); return; }
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) { out.push_back(0xFFFD); return; }
    bool invalid = (num >= 0x1 && num <= 0x8) || (num >= 0xE && num <= 0x1F) || (num >= 0x7F && num <= 0x9F) ||
                   (num >= 0xFDD0 && num <= 0xFDEF) || num == 0xB || (num & 0xFFFE) == 0xFFFE;
    if (!invalid) out.push_back((char32_t)num);
}

U32 html_unescape32(const U32& s) {
    if (s.find(U'&') == U32::npos) return s;
    U32 out;
    out.reserve(s.size());
    size_t i = 0, n = s.size();
    auto is_digit = [](char32_t c) { return c >= '0' && c <= '9'; };
    auto hex_value = [](char32_t c) -> int {
        if (c >= '0' && c <= '9') return (int)(c - '0');
        if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
        if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
        return -1;
    };
    while (i < n) {
        if (s[i] != U'&') { out.push_back(s[i++]); continue; }
        size_t j = i + 1;
        if (j < n && s[j] == U'#') {
            // &#[0-9]+;?  |  &#[xX][0-9a-fA-F]+;?
            bool hex = j + 1 < n && (s[j + 1] == U'x' || s[j + 1] == U'X');
            size_t k = j + (hex ? 2 : 1);
            if (k < n && (hex ? hex_value(s[k]) >= 0 : is_digit(s[k]))) {
                uint64_t num = 0;
                for (; k < n && (hex ? hex_value(s[k]) >= 0 : is_digit(s[k])); k++)
                    num = std::min<uint64_t>(num * (hex ? 16 : 10) + (uint64_t)(hex ? hex_value(s[k]) : s[k] - '0'),
                                             0x110000);
                if (k < n && s[k] == U';') k++;
                append_numeric_charref(out, num);
                i = k;
                continue;
            }
            out.push_back(s[i++]);  // no match: '&' stays, scanning goes on after it
            continue;
        }
        // &[^\t\n\f <&#;]{1,32};?
        size_t k = j;
        while (k < n && k - j < 32 && s[k] != U'\t' && s[k] != U'\n' && s[k] != U'\f' && s[k] != U' ' &&
               s[k] != U'<' && s[k] != U'&' && s[k] != U'#' && s[k] != U';')
            k++;
        if (k == j) { out.push_back(s[i++]); continue; }
        if (k < n && s[k] == U';') k++;
        U32 name = s.substr(j, k - j);
        i = k;
        if (const char* text = find_entity(utf8_encode(name.data(), name.size()))) {
            out += utf8_decode(text);
            continue;
        }
        bool found = false;
        for (size_t x = name.size() - 1; x >= 2 && x < name.size(); x--) {  // longest known prefix
            if (const char* text = find_entity(utf8_encode(name.data(), x))) {
                out += utf8_decode(text);
                out.append(name, x, U32::npos);
                found = true;
                break;
            }
        }
        if (!found) {
            out.push_back(U'&');
            out += name;
        }
    }
    return out;
}

// ---- str.lower() ----

bool is_cased(char32_t c) { return in_ranges(unicode::kCasedRanges, c); }
bool is_case_ignorable(char32_t c) { return in_ranges(unicode::kCaseIgnorableRanges, c); }

U32 lower32(const U32& s) {
    U32 out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); i++) {
        char32_t c = s[i];
        if (c < 0x80) { out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c); continue; }
        if (c == 0x3A3) {  // capital sigma: final form after a cased letter not followed by one
            size_t j = i;
            while (j > 0 && is_case_ignorable(s[j - 1])) j--;
            bool final_sigma = j > 0 && is_cased(s[j - 1]);
            if (final_sigma) {
                size_t k = i + 1;
                while (k < s.size() && is_case_ignorable(s[k])) k++;
                final_sigma = k == s.size() || !is_cased(s[k]);
            }
            out.push_back(final_sigma ? 0x3C2 : 0x3C3);
            continue;
        }
        const auto* begin = std::begin(unicode::kLowerMappings);
        const auto* end = std::end(unicode::kLowerMappings);
        const auto* it = std::lower_bound(begin, end, c,
                                          [](const unicode::LowerMapping& m, char32_t k) { return m.cp < k; });
        if (it != end && it->cp == c) out.append(it->out, it->out + it->n);
        else out.push_back(c);
    }
    return out;
}

U32 clean32(const std::string& text) {
    U32 s = html_unescape32(html_unescape32(utf8_decode(text)));
    U32 collapsed;
    collapsed.reserve(s.size());
    for (char32_t c : s) {
        if (is_space(c)) {
            if (!collapsed.empty() && collapsed.back() != U' ') collapsed.push_back(U' ');
        } else {
            collapsed.push_back(c);
        }
    }
    if (!collapsed.empty() && collapsed.back() == U' ') collapsed.pop_back();
    return lower32(collapsed);
}

// The `regex` module's \s: str.isspace() without U+001C..U+001F (which the cleaning step has
// turned into spaces anyway).
bool is_regex_space(char32_t c) { return is_space(c) && !(c >= 0x1C && c <= 0x1F); }

// The split pattern's matches over code points, as [begin, end) index pairs. One quirk of the
// `regex` module is kept: under IGNORECASE, U+0345 (combining ypogegrammeni, Mn) case-folds to
// iota, a letter, so [^\s\p{L}\p{N}] rejects it while [\p{L}] does not take it either: it is
// dropped. (Checked against regex 2026.5.9 for every code point assigned in Unicode 14.)
std::vector<std::pair<size_t, size_t>> split32(const U32& s) {
    static const U32 specials[2] = {U"<|startoftext|>", U"<|endoftext|>"};
    static const U32 contractions[7] = {U"s", U"t", U"re", U"ve", U"m", U"ll", U"d"};
    std::vector<std::pair<size_t, size_t>> out;
    size_t i = 0, n = s.size();
    while (i < n) {
        size_t end = i;
        for (const U32& sp : specials)
            if (end == i && s.compare(i, sp.size(), sp) == 0) end = i + sp.size();
        if (end == i && s[i] == U'\'') {
            for (const U32& c : contractions) {
                if (i + 1 + c.size() > n) continue;
                bool match = true;
                for (size_t k = 0; k < c.size() && match; k++) {
                    char32_t ch = s[i + 1 + k];
                    // re.IGNORECASE: ASCII either case, and U+017F (long s) folds to 's'.
                    match = ch == c[k] || ch == c[k] - 32 || (c[k] == U's' && ch == 0x17F);
                }
                if (match) { end = i + 1 + c.size(); break; }
            }
        }
        if (end == i && is_letter(s[i])) {
            end = i + 1;
            while (end < n && is_letter(s[end])) end++;
        }
        if (end == i && is_number(s[i])) end = i + 1;
        auto is_other = [](char32_t c) { return !is_regex_space(c) && !is_letter(c) && !is_number(c) && c != 0x345; };
        if (end == i && is_other(s[i])) {
            end = i + 1;
            while (end < n && is_other(s[end])) end++;
        }
        if (end == i) { i++; continue; }  // whitespace (or U+0345): no match here
        out.emplace_back(i, end);
        i = end;
    }
    return out;
}

// bytes_to_unicode(): byte b's symbol, and the symbols' order in the vocabulary.
struct ByteAlphabet {
    char32_t symbol[256];
    int order[256];  // the vocabulary position of byte b
    ByteAlphabet() {
        int pos = 0;
        auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
        for (int b = 0; b < 256; b++)
            if (printable(b)) { symbol[b] = (char32_t)b; order[b] = pos++; }
        int extra = 0;
        for (int b = 0; b < 256; b++)
            if (!printable(b)) { symbol[b] = (char32_t)(256 + extra++); order[b] = pos++; }
    }
};

const ByteAlphabet& byte_alphabet() {
    static const ByteAlphabet a;
    return a;
}

}  // namespace

// ---- public text pipeline ----

std::string html_unescape(const std::string& text) {
    U32 s = html_unescape32(utf8_decode(text));
    return utf8_encode(s.data(), s.size());
}

std::string clip_clean_text(const std::string& text) {
    U32 s = clean32(text);
    return utf8_encode(s.data(), s.size());
}

std::vector<std::string> clip_split(const std::string& cleaned) {
    U32 s = utf8_decode(cleaned);
    std::vector<std::string> out;
    for (auto [b, e] : split32(s)) out.push_back(utf8_encode(s.data() + b, e - b));
    return out;
}

std::vector<std::string> clip_pre_tokenize(const std::string& text) {
    U32 s = clean32(text);
    std::vector<std::string> out;
    for (auto [b, e] : split32(s)) out.push_back(utf8_encode(s.data() + b, e - b));
    return out;
}

std::string byte_encode(const std::string& bytes) {
    const ByteAlphabet& a = byte_alphabet();
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char b : bytes) append_utf8(out, a.symbol[b]);
    return out;
}

// ---- Tokenizer ----

Tokenizer Tokenizer::from_merges(const std::vector<std::pair<std::string, std::string>>& merges) {
    RC_CHECK((int64_t)merges.size() <= kMaxMerges, "Tokenizer: ", merges.size(), " merges, at most ", kMaxMerges,
             " are allowed (vocabulary size at most 49408)");
    Tokenizer t;
    const ByteAlphabet& a = byte_alphabet();
    std::vector<std::string> base(256);
    for (int b = 0; b < 256; b++) {
        std::string sym;
        append_utf8(sym, a.symbol[b]);
        base[a.order[b]] = sym;
    }
    for (const std::string& s : base) t.vocab_.push_back(s);
    for (const std::string& s : base) t.vocab_.push_back(s + "</w>");
    for (const auto& m : merges) t.vocab_.push_back(m.first + m.second);
    t.vocab_.push_back("<|startoftext|>");
    t.vocab_.push_back("<|endoftext|>");
    for (size_t id = 0; id < t.vocab_.size(); id++) t.encoder_[t.vocab_[id]] = (int64_t)id;  // last wins
    for (int b = 0; b < 256; b++) {
        t.byte_id_[b] = t.encoder_.at(base[a.order[b]]);
        t.byte_end_id_[b] = t.encoder_.at(base[a.order[b]] + "</w>");
    }
    for (size_t r = 0; r < merges.size(); r++) {
        auto l = t.encoder_.find(merges[r].first), rr = t.encoder_.find(merges[r].second);
        if (l == t.encoder_.end() || rr == t.encoder_.end()) continue;  // a pair that can never form
        uint64_t key = ((uint64_t)l->second << 32) | (uint64_t)rr->second;
        t.ranks_[key] = {(int32_t)r, (int32_t)t.encoder_.at(merges[r].first + merges[r].second)};
    }
    t.sot_ = t.vocab_size() - 2;
    t.eot_ = t.vocab_size() - 1;
    return t;
}

Tokenizer Tokenizer::from_file(const std::string& merges_path) {
    RC_CHECK(!merges_path.empty(), "Tokenizer: no merges file given (pass --vocab FILE or set RANKCLIP_VOCAB)");
    std::string data = read_gzip_file(merges_path, kMaxVocabularyBytes, "a vocabulary");
    std::vector<std::pair<std::string, std::string>> merges;
    size_t pos = 0;
    int64_t line_no = 0;
    while (pos <= data.size() && (int64_t)merges.size() < kMaxMerges) {
        size_t nl = data.find('\n', pos);
        if (nl == std::string::npos) nl = data.size();
        std::string line = data.substr(pos, nl - pos);
        pos = nl + 1;
        line_no++;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line_no == 1) {
            RC_CHECK(line.find("#version") != std::string::npos, "Tokenizer: '", merges_path,
                     "' is not a BPE merges file: the first line should be a '#version: 0.2' header, got '",
                     line.substr(0, 80), "'");
            continue;
        }
        if (line.empty()) {
            RC_CHECK(pos >= data.size(), "Tokenizer: '", merges_path, "' line ", line_no, ": empty line");
            continue;
        }
        size_t sp = line.find(' ');
        RC_CHECK(sp != std::string::npos && sp > 0 && sp + 1 < line.size() && line.find(' ', sp + 1) == std::string::npos,
                 "Tokenizer: '", merges_path, "' line ", line_no, ": expected 'LEFT RIGHT', got '", line, "'");
        merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
    }
    RC_CHECK(line_no >= 1 && !data.empty(), "Tokenizer: '", merges_path, "' is empty");
    return from_merges(merges);
}

// One piece (UTF-8 bytes) -> ids: byte symbols, "</w>" on the last, then the lowest-ranked
// adjacent pair merged everywhere (left to right) until no pair has a rank.
// The first ids of a piece: its bytes, the last one with "</w>".
std::vector<int64_t> Tokenizer::piece_ids(const std::string& piece) const {
    std::vector<int64_t> word;
    word.reserve(piece.size());
    for (size_t i = 0; i < piece.size(); i++) {
        unsigned char b = (unsigned char)piece[i];
        word.push_back(i + 1 == piece.size() ? byte_end_id_[b] : byte_id_[b]);
    }
    return word;
}

// The same merges as bpe_reference in O(n log n): the symbols form a linked list, every adjacent
// pair that has a rank sits in a min-heap keyed by (rank, position), packed in one 64-bit word.
// All occurrences of the lowest rank are taken from the heap together and merged left to right
// (an occurrence whose left symbol an earlier merge of the same round consumed is skipped),
// exactly as the reference's scan does; each merge pushes the two new pairs it forms.
// rank_at[pos] is the rank of the pair starting at pos now (-1: none), so an entry a merge made
// stale is recognised when popped and dropped. (A rank belongs to one pair, so a pair with an
// equal rank is the same pair.)
std::vector<int64_t> Tokenizer::bpe(const std::string& piece) const {
    std::vector<int64_t> sym = piece_ids(piece);
    const int64_t n = (int64_t)sym.size();
    if (n < 2) return sym;
    RC_CHECK(n < (int64_t(1) << 40), "Tokenizer: a word of ", n, " bytes is too long");
    std::vector<int64_t> next(n), prev(n);  // -1: none
    std::vector<int32_t> rank_at(n, -1);
    for (int64_t i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; }
    auto key = [](int64_t rank, int64_t pos) { return (uint64_t(rank) << 40) | uint64_t(pos); };
    std::vector<uint64_t> heap;  // a min-heap (std::greater) of key(rank, pos)
    auto rank_pair = [&](int64_t pos) {  // sets rank_at[pos]; true if the pair at pos has a rank
        rank_at[pos] = -1;
        if (next[pos] < 0) return false;
        auto it = ranks_.find(((uint64_t)sym[pos] << 32) | (uint64_t)sym[next[pos]]);
        if (it == ranks_.end()) return false;
        rank_at[pos] = it->second.first;
        return true;
    };
    for (int64_t i = 0; i + 1 < n; i++)
        if (rank_pair(i)) heap.push_back(key(rank_at[i], i));
    std::make_heap(heap.begin(), heap.end(), std::greater<uint64_t>());
    auto push_pair = [&](int64_t pos) {
        if (pos >= 0 && rank_pair(pos)) {
            heap.push_back(key(rank_at[pos], pos));
            std::push_heap(heap.begin(), heap.end(), std::greater<uint64_t>());
        }
    };
    std::vector<int64_t> round;
    while (!heap.empty()) {
        const int32_t rank = int32_t(heap.front() >> 40);
        round.clear();  // positions of this rank's pair, left to right (the heap orders them)
        while (!heap.empty() && int32_t(heap.front() >> 40) == rank) {
            const int64_t pos = int64_t(heap.front() & ((uint64_t(1) << 40) - 1));
            std::pop_heap(heap.begin(), heap.end(), std::greater<uint64_t>());
            heap.pop_back();
            if (rank_at[pos] == rank) round.push_back(pos);
        }
        if (round.empty()) continue;  // all stale
        const int64_t merged = ranks_.at(((uint64_t)sym[round[0]] << 32) | (uint64_t)sym[next[round[0]]]).second;
        for (int64_t pos : round) {
            if (rank_at[pos] != rank) continue;  // consumed by the previous merge of this round
            const int64_t right = next[pos];
            sym[pos] = merged;  // pos absorbs right
            rank_at[right] = -1;
            next[pos] = next[right];
            if (next[pos] >= 0) prev[next[pos]] = pos;
            push_pair(prev[pos]);
            push_pair(pos);
        }
    }
    std::vector<int64_t> word;
    for (int64_t i = 0; i >= 0; i = next[i]) word.push_back(sym[i]);
    return word;
}

std::vector<int64_t> Tokenizer::bpe_reference(const std::string& piece) const {
    // The definition (CLIP's Python loop): find the lowest-ranked adjacent pair, merge every
    // occurrence of it left to right, repeat. O(n^2) in the piece's length.
    std::vector<int64_t> word = piece_ids(piece);
    while (word.size() > 1) {
        int32_t best_rank = INT32_MAX, merged = -1;
        int64_t first = -1, second = -1;
        for (size_t i = 0; i + 1 < word.size(); i++) {
            auto it = ranks_.find(((uint64_t)word[i] << 32) | (uint64_t)word[i + 1]);
            if (it != ranks_.end() && it->second.first < best_rank) {
                best_rank = it->second.first;
                merged = it->second.second;
                first = word[i];
                second = word[i + 1];
            }
        }
        if (merged < 0) break;
        std::vector<int64_t> next;
        next.reserve(word.size());
        for (size_t i = 0; i < word.size();) {
            if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
                next.push_back(merged);
                i += 2;
            } else {
                next.push_back(word[i++]);
            }
        }
        word.swap(next);
    }
    return word;
}

std::vector<int64_t> Tokenizer::encode(const std::string& text) const { return encode_prefix(text, SIZE_MAX); }

// Pieces are merged independently, so the first `limit` ids need only the pieces that produce them.
std::vector<int64_t> Tokenizer::encode_prefix(const std::string& text, size_t limit) const {
    RC_CHECK(!vocab_.empty(), "Tokenizer: no vocabulary loaded (use Tokenizer::from_file)");
    std::vector<int64_t> ids;
    for (const std::string& piece : clip_pre_tokenize(text)) {
        if (ids.size() >= limit) break;
        if (piece == "<|startoftext|>" || piece == "<|endoftext|>") {
            ids.push_back(encoder_.at(piece));
            continue;
        }
        std::vector<int64_t> w = bpe(piece);
        ids.insert(ids.end(), w.begin(), w.end());
    }
    if (ids.size() > limit) ids.resize(limit);
    return ids;
}

std::vector<int64_t> Tokenizer::tokenize(const std::string& text, int context_length) const {
    RC_CHECK(context_length >= 2, "Tokenizer::tokenize: context_length ", context_length,
             " leaves no room for the start and end tokens (need >= 2)");
    std::vector<int64_t> ids = encode_prefix(text, (size_t)context_length - 2);
    std::vector<int64_t> out;
    out.reserve(context_length);
    out.push_back(sot_);
    out.insert(out.end(), ids.begin(), ids.begin() + std::min<size_t>(ids.size(), (size_t)context_length - 2));
    out.push_back(eot_);
    out.resize(context_length, 0);
    return out;
}

const std::string& Tokenizer::token(int64_t id) const {
    RC_CHECK(id >= 0 && id < vocab_size(), "Tokenizer: token id ", id, " is outside the vocabulary [0, ",
             vocab_size(), ")");
    return vocab_[id];
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
    static const auto inverse = [] {
        std::vector<int> inv(512, -1);
        const ByteAlphabet& a = byte_alphabet();
        for (int b = 0; b < 256; b++) inv[a.symbol[b]] = b;
        return inv;
    }();
    std::string joined;
    for (int64_t id : ids) joined += token(id);
    std::string bytes;
    for (char32_t c : utf8_decode(joined)) bytes.push_back((char)(c < 512 && inverse[c] >= 0 ? inverse[c] : '?'));
    // Python: bytes.decode('utf-8', errors='replace'), then '</w>' -> ' '.
    U32 text = utf8_decode(bytes);
    std::string out = utf8_encode(text.data(), text.size());
    std::string result;
    for (size_t i = 0; i < out.size();) {
        if (out.compare(i, 4, "</w>") == 0) { result.push_back(' '); i += 4; }
        else result.push_back(out[i++]);
    }
    return result;
}

std::string vocab_path_from_env() {
    const char* p = std::getenv("RANKCLIP_VOCAB");
    return p ? p : "";
}

}  // namespace rankclip
