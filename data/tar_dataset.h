// data/tar_dataset.h
// defines: TarDataset, WebDataset tar shards as img2dataset writes them: members "{key}.jpg"
// (or .jpeg .png .bmp .gif .tga .ppm) and "{key}.txt", optionally "{key}.cls" (an integer
// label); a key is the member path up to the first '.' of its file name; read with libarchive;
// other members (.json ...) are ignored. Also
// expand_braces for shard lists like "shards-{00000..00099}.tar".
//
// Random access: at open time every shard is read once, sequentially, with libarchive: captions
// (small) are kept in memory, and for an uncompressed tar (img2dataset's output) each image's
// data offset and size are recorded, so get() is one pread() and needs no libarchive state
// (thread-safe, no seeking through the archive). Shards under a compression filter (.tar.gz ...)
// have no usable offsets: their image bytes are kept in memory, which is only sensible for small
// shards. For large corpora, convert once with `rankclip pack` (sequential pass) and train on the
// packed file. Samples without an image or a caption, non-UTF-8 captions and shards with no
// samples follow the bad-sample policy (skip: warned and counted; stop: an Error naming the
// shard and key); corrupt images are detected on get().
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"

namespace rankclip {

// "a-{000..002}.tar" -> a-000.tar a-001.tar a-002.tar (numeric ranges keep the zero padding of
// the first bound); "{a,b}" lists alternatives; several groups multiply; lists may nest.
// Throws Error on an unbalanced brace, a bad range, or a pattern beyond the limits below.
std::vector<std::string> expand_braces(const std::string& pattern);
constexpr size_t kMaxImageMemberBytes = size_t(256) << 20;  // an image member of a shard
constexpr size_t kMaxTextMemberBytes = size_t(16) << 20;    // a caption or class member
constexpr size_t kMaxShards = 1000000;                   // names one pattern may expand to
constexpr size_t kMaxPatternBytes = 4096;                // a pattern's length
constexpr int kMaxBraceDepth = 16;                       // braces within braces
constexpr size_t kMaxExpansionBytes = size_t(256) << 20;  // bytes of all the names
constexpr size_t kMaxExpansionWork = size_t(1) << 30;     // bytes of all the partial expansions built

struct TarOptions {
    BadSamplePolicy on_bad = BadSamplePolicy::Skip;
    std::string caption_ext = "txt";
};

class TarDataset : public Dataset {
public:
    // `shards`: a pattern (brace-expanded) or several joined by "::" (as open_clip's --train-data).
    explicit TarDataset(const std::string& shards, const TarOptions& opt = {});
    size_t size() const override { return samples_.size(); }
    Sample get(size_t index) const override;
    std::string describe() const override;

    size_t num_shards() const { return shards_.size(); }
    size_t skipped() const { return tracker_.count(); }   // at open + at get()
    const std::string& key(size_t index) const { return samples_.at(index).key; }

private:
    struct Entry {
        uint32_t shard = 0;
        std::string key, ext, caption;
        uint64_t offset = 0, size = 0;     // image member data in the (uncompressed) shard file
        std::vector<uint8_t> bytes;        // image bytes, compressed shards only
        bool in_memory = false;
        int64_t label = -1;
    };
    void index_shard(uint32_t s);

    std::string pattern_;
    TarOptions opt_;
    std::vector<std::string> shards_;
    std::vector<Entry> samples_;
    size_t skipped_at_open_ = 0;
    BadSampleTracker tracker_;
};

}  // namespace rankclip
