// data/dataset.cpp
// defines: the helpers shared by the dataset sources (bad-sample policy and tracker, UTF-8
// validation, whole-file reads). The Dataset interface itself is in data/dataset.h.
#include "data/dataset.h"

#include <cstdio>
#include <fstream>
#include <iterator>

#include "engine/error.h"

namespace rankclip {

BadSamplePolicy parse_bad_sample_policy(const std::string& s) {
    if (s == "skip") return BadSamplePolicy::Skip;
    if (s == "stop") return BadSamplePolicy::Stop;
    throw Error(str_cat("bad-sample policy: expected 'skip' or 'stop', got '", s, "'"));
}

void BadSampleTracker::report(const std::string& file, const std::string& why) const {
    std::lock_guard<std::mutex> lock(mu_);
    count_++;
    if (warned_.size() > kMaxWarnings || !warned_.insert(file).second) return;
    if (warned_.size() <= kMaxWarnings)
        std::fprintf(stderr, "warning: skipping bad sample: %s\n", why.c_str());
    else
        std::fprintf(stderr, "warning: more bad samples; further warnings suppressed (see the total)\n");
}

size_t BadSampleTracker::count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
}

bool is_valid_utf8(const std::string& s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    size_t n = s.size(), i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) { i++; continue; }
        int len;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
        else return false;  // continuation byte or 0xF8..0xFF as a lead byte
        if (i + len > n) return false;
        for (int k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len]) return false;                  // overlong
        if (cp > 0x10FFFF) return false;
        if (cp >= 0xD800 && cp <= 0xDFFF) return false;      // UTF-16 surrogate
        i += len;
    }
    return true;
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    RC_CHECK(f.good(), "cannot open '", path, "'");
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    RC_CHECK(!f.bad(), "error reading '", path, "'");
    return bytes;
}

}  // namespace rankclip
