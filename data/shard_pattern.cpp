// data/shard_pattern.cpp
// defines: expand_braces. A pattern is parsed into a tree (a sequence of literal text and brace
// groups; a group holds a numeric range or a list of option sequences), the tree is sized (names,
// bytes, memory) against the limits, and only then are the names built.
#include "data/shard_pattern.h"

#include <cctype>
#include <cstdint>
#include <limits>
#include <string>

#include "engine/error.h"

namespace rankclip {

namespace {

struct Part;
struct Sequence {
    std::vector<Part> parts;  // concatenated
};

struct Part {
    enum Kind { Literal, Range, Options } kind = Literal;
    std::string text;               // Literal
    long long lo = 0, hi = 0;       // Range: lo..hi, each value zero-padded to `width` digits
    size_t width = 0;
    std::vector<Sequence> options;  // Options: one of these
};

// Sizes add and multiply saturating: a pattern's count may exceed 2^64 ("{0..9}" 30 times).
constexpr uint64_t kHuge = std::numeric_limits<uint64_t>::max();
uint64_t add(uint64_t a, uint64_t b) { return a > kHuge - b ? kHuge : a + b; }
uint64_t mul(uint64_t a, uint64_t b) {
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? kHuge : r;
}

struct Size {
    uint64_t names = 1;  // how many strings the node expands to
    uint64_t bytes = 0;  // their bytes, all together
    uint64_t work = 0;   // memory of the lists built to expand the node (see kMaxExpansionWork)
};

std::string decimal(long long v, size_t width) {
    std::string s = std::to_string(v);
    return s.size() < width ? std::string(width - s.size(), '0') + s : s;
}

class Parser {
public:
    Parser(const std::string& pattern, size_t max_range) : pattern_(pattern), max_range_(max_range) {}

    // The sequence in pattern_[begin, end). Recursion follows brace nesting, which the caller
    // has checked is at most kMaxBraceDepth deep.
    Sequence sequence(size_t begin, size_t end) const {
        Sequence seq;
        std::string text;
        for (size_t i = begin; i < end; i++) {
            if (pattern_[i] != '{') {
                text += pattern_[i];
                continue;
            }
            if (!text.empty()) seq.parts.push_back(literal(std::move(text)));
            text.clear();
            const size_t close = matching_brace(i);
            seq.parts.push_back(group(i + 1, close));
            i = close;
        }
        if (!text.empty()) seq.parts.push_back(literal(std::move(text)));
        return seq;
    }

private:
    const std::string& pattern_;
    size_t max_range_;  // values a range may hold

    static Part literal(std::string text) {
        Part p;
        p.text = std::move(text);
        return p;
    }

    size_t matching_brace(size_t open) const {
        int depth = 0;
        for (size_t i = open; i < pattern_.size(); i++) {
            if (pattern_[i] == '{') depth++;
            else if (pattern_[i] == '}' && --depth == 0) return i;
        }
        throw Error(str_cat("shard pattern '", pattern_, "': unbalanced '{' at ", open));
    }

    // The body pattern_[begin, end) of one brace group: a numeric range "lo..hi" or the
    // top-level comma-separated options (which may hold braces of their own).
    Part group(size_t begin, size_t end) const {
        const std::string body = pattern_.substr(begin, end - begin);
        Part p;
        const size_t dots = body.find("..");
        if (dots != std::string::npos && body.find_first_of("{},") == std::string::npos) {
            const std::string a = body.substr(0, dots), b = body.substr(dots + 2);
            auto digits = [](const std::string& x) {
                if (x.empty() || x.size() > 18) return false;
                for (char c : x) if (!std::isdigit(static_cast<unsigned char>(c))) return false;
                return true;
            };
            RC_CHECK(digits(a) && digits(b), "shard pattern '", pattern_, "': bad range {", body, "}");
            p.kind = Part::Range;
            p.lo = std::stoll(a);
            p.hi = std::stoll(b);
            p.width = a.size();
            RC_CHECK(p.lo <= p.hi && uint64_t(p.hi - p.lo) < max_range_, "shard pattern '", pattern_,
                     "': bad range {", body, "} (from low to high, at most ", max_range_, " values)");
            return p;
        }
        p.kind = Part::Options;
        int depth = 0;
        size_t start = begin;
        for (size_t i = begin; i <= end; i++) {
            if (i == end || (pattern_[i] == ',' && depth == 0)) {
                p.options.push_back(sequence(start, i));
                start = i + 1;
            } else if (pattern_[i] == '{') depth++;
            else if (pattern_[i] == '}') depth--;
        }
        return p;
    }
};

// A list of `names` strings of `bytes` bytes in all, as memory.
uint64_t list_memory(uint64_t names, uint64_t bytes) { return add(mul(names, kStringCost), bytes); }

Size size_of(const Sequence& seq);

Size size_of(const Part& p) {
    Size s;
    if (p.kind == Part::Literal) {
        s.bytes = p.text.size();
        return s;
    }
    if (p.kind == Part::Range) {
        s.names = uint64_t(p.hi - p.lo) + 1;
        // the values with d digits, [10^(d-1), 10^d - 1], are each written with max(width, d)
        // digits; bounds have at most 18 digits, so 10^18 still fits
        long long first = 0, ten_d = 10;  // 10^d
        for (size_t d = 1; d <= 18; d++, first = ten_d, ten_d *= d <= 18 ? 10 : 1) {
            const long long from = std::max(first, p.lo), to = std::min(ten_d - 1, p.hi);
            if (from <= to) s.bytes += uint64_t(to - from + 1) * std::max(p.width, d);
        }
    } else if (p.options.size() == 1) {
        return size_of(p.options[0]);  // "{a}" is "a": its list is the option's
    } else {
        s.names = 0;
        for (const Sequence& option : p.options) {
            const Size o = size_of(option);
            s.names = add(s.names, o.names);
            s.bytes = add(s.bytes, o.bytes);
            s.work = add(s.work, o.work);
        }
    }
    s.work = add(s.work, list_memory(s.names, s.bytes));
    return s;
}

// Every name of a sequence is one choice per part: names multiply, and each part's bytes appear
// once for every choice of the other parts.
Size size_of(const Sequence& seq) {
    if (seq.parts.size() == 1) return size_of(seq.parts[0]);  // its list is the part's
    Size s;
    for (const Part& p : seq.parts) {
        const Size ps = size_of(p);
        s.bytes = add(mul(s.bytes, ps.names), mul(ps.bytes, s.names));
        s.names = mul(s.names, ps.names);
        s.work = add(s.work, ps.work);
    }
    s.work = add(s.work, list_memory(s.names, s.bytes));
    return s;
}

std::vector<std::string> expand(const Sequence& seq);

std::vector<std::string> expand(const Part& p) {
    std::vector<std::string> out;
    if (p.kind == Part::Literal) {
        out.push_back(p.text);
    } else if (p.kind == Part::Range) {
        out.reserve(size_t(p.hi - p.lo) + 1);
        for (long long v = p.lo; v <= p.hi; v++) out.push_back(decimal(v, p.width));
    } else if (p.options.size() == 1) {
        return expand(p.options[0]);
    } else {
        for (const Sequence& option : p.options)
            for (std::string& s : expand(option)) out.push_back(std::move(s));
    }
    return out;
}

// The cartesian product of the parts' lists, the last part varying fastest. Runs of parts with
// one string each are joined first, so that the product loops only over parts with a choice
// (at most log2(kMaxShards) of them): "{a}" repeated a thousand times costs one join.
std::vector<std::string> expand(const Sequence& seq) {
    if (seq.parts.size() == 1) return expand(seq.parts[0]);
    std::vector<std::vector<std::string>> lists;
    for (const Part& p : seq.parts) {
        std::vector<std::string> list = expand(p);
        if (list.size() == 1 && !lists.empty() && lists.back().size() == 1) lists.back()[0] += list[0];
        else lists.push_back(std::move(list));
    }
    size_t names = 1;  // within kMaxShards: checked before expanding
    for (const auto& list : lists) names *= list.size();
    std::vector<size_t> choice(lists.size(), 0);
    std::vector<std::string> out;
    out.reserve(names);
    for (;;) {
        std::string name;
        for (size_t k = 0; k < lists.size(); k++) name += lists[k][choice[k]];
        out.push_back(std::move(name));
        size_t k = lists.size();
        while (k > 0 && ++choice[k - 1] == lists[k - 1].size()) choice[--k] = 0;
        if (k == 0) return out;
    }
}

// "32 MiB", or the bytes when not a whole number of MiB
std::string mib(size_t bytes) {
    return bytes % (size_t(1) << 20) == 0 ? str_cat(bytes >> 20, " MiB") : str_cat(bytes, " bytes");
}

}  // namespace

std::vector<std::string> expand_braces(const std::string& pattern, const ShardPatternLimits& limits) {
    RC_CHECK(pattern.size() <= kMaxPatternBytes, "shard pattern of ", pattern.size(), " bytes: at most ",
             kMaxPatternBytes, " are allowed");
    int depth = 0, max_depth = 0;
    for (char c : pattern) {
        if (c == '{') max_depth = std::max(max_depth, ++depth);
        else if (c == '}') RC_CHECK(--depth >= 0, "shard pattern '", pattern, "': unbalanced '}'");
    }
    RC_CHECK(depth == 0, "shard pattern '", pattern, "': unbalanced '{'");
    RC_CHECK(max_depth <= kMaxBraceDepth, "shard pattern '", pattern, "': braces nested ", max_depth,
             " deep, at most ", kMaxBraceDepth, " are allowed");
    const Sequence tree = Parser(pattern, limits.names).sequence(0, pattern.size());
    const Size size = size_of(tree);
    auto shown = [](uint64_t v) { return v == kHuge ? std::string("over 2^64") : std::to_string(v); };
    RC_CHECK(size.names <= limits.names, "shard pattern '", pattern, "': expands to ", shown(size.names),
             " names, more than ", limits.names, " shards");
    RC_CHECK(size.bytes <= limits.bytes, "shard pattern '", pattern, "': its names take ", shown(size.bytes),
             " bytes, more than ", mib(limits.bytes));
    RC_CHECK(size.work <= limits.work, "shard pattern '", pattern, "': expanding it needs ", shown(size.work),
             " bytes of lists, more than ", mib(limits.work));
    return expand(tree);
}

}  // namespace rankclip
