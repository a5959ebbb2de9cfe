// data/packed.h
// defines: the packed shard format (one file of pre-decoded, pre-resized samples, read through
// mmap so a training step never waits on JPEG decoding), PackedWriter, PackedDataset and
// pack_dataset (what `rankclip pack` runs).
//
// Layout, all integers little-endian, every section 64-byte aligned:
//   header (128 bytes): magic "RCPACK01", u32 version (1), u32 header bytes (128), u64 count N,
//     u32 image size S, u32 channels (3), u32 context length T (0: no tokens), u32 token bytes
//     (4: int32, 8: int64), then u64 offsets of: pixels, tokens, labels, caption index,
//     caption bytes, class names; u64 class-name bytes; u64 file size; zero padding.
//   pixels  uint8 (N, S, S, 3)  resized (short side, bicubic) and center-cropped, RGB
//   tokens  int32|int64 (N, T)  sot + ids + eot, zero-padded (absent when T == 0)
//   labels  int64 (N)           -1 when the source has none
//   caption index u64 (N + 1)   offsets into the caption bytes; caption i = [idx[i], idx[i+1])
//   caption bytes, class names  UTF-8; class names separated by '\n'
// The file is written to "<out>.tmp.<pid>" and renamed into place when complete.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "engine/atomic_file.h"
#include "engine/dtype.h"

namespace rankclip {

class Tokenizer;

class PackedWriter {
public:
    // token_dtype: I32 or I64; context_length 0 stores no tokens.
    PackedWriter(const std::string& path, uint64_t count, int image_size, int context_length,
                 DType token_dtype = DType::I32, std::vector<std::string> class_names = {});
    ~PackedWriter();  // removes the temp file if finish() was not reached
    PackedWriter(const PackedWriter&) = delete;
    PackedWriter& operator=(const PackedWriter&) = delete;

    // Sample `index` (any order; thread-safe for distinct indices): pixels (S, S, 3) uint8,
    // tokens (T) or nullptr when T == 0.
    void write(uint64_t index, const uint8_t* pixels, const int64_t* tokens, int64_t label,
               const std::string& caption);
    // Writes captions, class names and the header, fsyncs, renames into place.
    void finish();

private:
    std::string path_;
    std::unique_ptr<AtomicFile> file_;   // the temporary file, renamed into place by finish()
    uint64_t count_;
    int size_, ctx_, token_bytes_;
    std::vector<std::string> captions_, classes_;
    std::vector<uint8_t> written_;
    uint64_t off_pixels_, off_tokens_, off_labels_;
    bool finished_ = false;
};

class PackedDataset : public Dataset {
public:
    explicit PackedDataset(const std::string& path);
    ~PackedDataset() override;
    PackedDataset(const PackedDataset&) = delete;
    PackedDataset& operator=(const PackedDataset&) = delete;

    size_t size() const override { return count_; }
    Sample get(size_t index) const override;  // image is S x S, already cropped
    std::string describe() const override;
    std::vector<std::string> class_names() const override { return classes_; }

    int image_size() const { return size_; }
    int context_length() const { return ctx_; }  // 0: no tokens stored
    DType token_dtype() const { return token_bytes_ == 8 ? DType::I64 : DType::I32; }  // as stored
    const uint8_t* pixels(size_t index) const;   // (S, S, 3), valid while the dataset lives
    // Token ids of sample `index` into out[0..T) (widened to int64).
    void tokens(size_t index, int64_t* out) const;
    int64_t label(size_t index) const;
    std::string caption(size_t index) const;

private:
    std::string path_;
    const uint8_t* map_ = nullptr;
    size_t map_bytes_ = 0;
    uint64_t count_ = 0;
    int size_ = 0, ctx_ = 0, token_bytes_ = 0;
    uint64_t off_pixels_ = 0, off_tokens_ = 0, off_labels_ = 0, off_cap_index_ = 0, off_caps_ = 0;
    std::vector<std::string> classes_;
};

struct PackOptions {
    int image_size = 224;
    // null: no tokens stored, unless `data` is itself a packed file with token ids: those are
    // copied unchanged, with their own context length (context_length is then not used), so a
    // packed file re-packed to another size keeps its ids. A tokenizer re-tokenizes the captions.
    const Tokenizer* tokenizer = nullptr;
    int context_length = 77;
    DType token_dtype = DType::I32;
    int num_threads = 0;                   // 0: hardware concurrency
    // Called from the packing threads' coordinator with (done, total) about every 1%.
    std::function<void(size_t, size_t)> progress;
};

// Decodes every sample of `data`, resizes/crops to S, tokenizes (or copies a packed source's
// token ids, see PackOptions::tokenizer), writes `out`. Returns N.
size_t pack_dataset(const Dataset& data, const std::string& out, const PackOptions& opt);

}  // namespace rankclip
