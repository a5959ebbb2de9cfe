// data/tar_dataset.h
// defines: TarDataset, WebDataset tar shards as img2dataset writes them: members "{key}.jpg"
// (or .jpeg .png .bmp .gif .tga .ppm) and "{key}.txt", optionally "{key}.cls" (an integer
// label); a key is the member path up to the first '.' of its file name; read with libarchive;
// other members (.json ...) are ignored. A dataset's shards are named by brace patterns joined by
// "::" (data/shard_pattern.h).
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
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/shard_pattern.h"

namespace rankclip {

constexpr size_t kMaxImageMemberBytes = size_t(256) << 20;  // an image member of a shard
constexpr size_t kMaxTextMemberBytes = size_t(16) << 20;    // a caption or class member

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
