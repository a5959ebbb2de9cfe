// data/dataset.h
// defines: Sample and Dataset, the interface every data source implements (CSV/TSV, WebDataset
// tar shards, image folders, Fashion-MNIST, packed shards, synthetic); plus the helpers the
// sources share: the bad-sample policy (skip or stop), its thread-safe tracker, UTF-8 validation.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "data/image.h"
#include "engine/error.h"

namespace rankclip {

// One example: an RGB8 image, its caption (UTF-8; may be empty for labelled-only sets) and a class
// label (-1 when the source has none).
struct Sample {
    Image image;
    std::string caption;
    int64_t label = -1;
};

class Dataset {
public:
    virtual ~Dataset() = default;
    virtual size_t size() const = 0;
    // Thread-safe; throws rankclip::Error naming the file/line on bad data.
    virtual Sample get(size_t index) const = 0;
    // One line for logs: format, source, number of samples (and bad samples skipped).
    virtual std::string describe() const = 0;
    // Class names indexed by label (empty when the source has no labels).
    virtual std::vector<std::string> class_names() const { return {}; }
};

// ---- shared by the sources ----

// What a source does with a missing file, a corrupt image or a non-UTF-8 caption:
//   Skip: count it, warn once per file on stderr, and leave it out (at open time) or return the
//         next good sample (at get() time, index+1, index+2, ... wrapping; deterministic);
//   Stop: throw rankclip::Error naming the file (and line / shard member).
enum class BadSamplePolicy { Skip, Stop };
BadSamplePolicy parse_bad_sample_policy(const std::string& s);  // "skip" | "stop"

// Counts bad samples and prints one warning per distinct file (the first kMaxWarnings files;
// then one line saying further warnings are suppressed). Thread-safe.
class BadSampleTracker {
public:
    static constexpr size_t kMaxWarnings = 20;
    void report(const std::string& file, const std::string& why) const;
    size_t count() const;

private:
    mutable std::mutex mu_;
    mutable std::set<std::string> warned_;
    mutable size_t count_ = 0;
};

// True when s is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool is_valid_utf8(const std::string& s);

// Reads a whole file; throws Error naming it.
std::vector<uint8_t> read_file_bytes(const std::string& path);

}  // namespace rankclip

namespace rankclip {

// get() under a policy: load(i) returns sample i or throws Error; name(i) names its file for the
// once-per-file warning. Stop rethrows; Skip reports and tries i+1, i+2, ... (wrapping), so the
// substitute depends only on the index. Throws when every sample is bad.
template <typename Load, typename Name>
Sample get_with_policy(size_t index, size_t n, BadSamplePolicy policy,
                       const BadSampleTracker& tracker, Load&& load, Name&& name) {
    RC_CHECK(index < n, "dataset index ", index, " out of range (size ", n, ")");
    for (size_t k = 0; k < n; k++) {
        size_t i = (index + k) % n;
        try {
            return load(i);
        } catch (const Error& e) {
            if (policy == BadSamplePolicy::Stop) throw;
            tracker.report(name(i), e.what());
        }
    }
    throw Error(str_cat("dataset: all ", n, " samples are bad"));
}

}  // namespace rankclip
