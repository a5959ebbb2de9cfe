// data/packed.cpp
// defines: PackedWriter (pwrite at fixed offsets into an AtomicFile), PackedDataset (mmap reader
// with the header checked against the file size) and pack_dataset (parallel decode + resize;
// token ids tokenized, or copied from a packed source).
#include "data/packed.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <mutex>
#include <thread>

#include "data/tokenizer.h"
#include "engine/error.h"

namespace rankclip {

static constexpr char kMagic[8] = {'R', 'C', 'P', 'A', 'C', 'K', '0', '1'};
static constexpr uint32_t kVersion = 1;
static constexpr uint32_t kHeaderBytes = 128;

// The header as it lies in the file (x86-64 / little-endian hosts only, checked below).
struct PackedHeader {
    char magic[8];
    uint32_t version, header_bytes;
    uint64_t count;
    uint32_t image_size, channels, context_length, token_bytes;
    uint64_t off_pixels, off_tokens, off_labels, off_cap_index, off_caps, off_classes;
    uint64_t classes_bytes, file_bytes;
};
static_assert(sizeof(PackedHeader) <= kHeaderBytes, "packed header too large");

static uint64_t align64(uint64_t x) { return (x + 63) & ~uint64_t(63); }

static void pwrite_all(int fd, const void* data, size_t n, uint64_t off, const std::string& path) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        ssize_t w = ::pwrite(fd, p, n, off_t(off));
        if (w < 0 && errno == EINTR) continue;
        RC_CHECK(w > 0, "packed: write to '", path, "' failed: ", std::strerror(errno));
        p += w; n -= size_t(w); off += uint64_t(w);
    }
}

PackedWriter::PackedWriter(const std::string& path, uint64_t count, int image_size,
                           int context_length, DType token_dtype, std::vector<std::string> class_names)
    : path_(path), count_(count), size_(image_size), ctx_(context_length),
      classes_(std::move(class_names)) {
    RC_CHECK(image_size > 0 && context_length >= 0, "packed: bad image size ", image_size,
             " or context length ", context_length);
    RC_CHECK(token_dtype == DType::I32 || token_dtype == DType::I64,
             "packed: token dtype must be I32 or I64, got ", dtype_name(token_dtype));
    token_bytes_ = int(dtype_size(token_dtype));
    for (auto& c : classes_) RC_CHECK(c.find('\n') == std::string::npos, "packed: class name with a newline");
    file_ = std::make_unique<AtomicFile>(path);
    uint64_t pix = uint64_t(size_) * size_ * 3;
    off_pixels_ = kHeaderBytes;
    off_tokens_ = align64(off_pixels_ + count * pix);
    off_labels_ = align64(off_tokens_ + count * uint64_t(ctx_) * token_bytes_);
    captions_.resize(count);
    written_.assign(count, 0);
}

PackedWriter::~PackedWriter() = default;  // AtomicFile removes the temp file unless committed

void PackedWriter::write(uint64_t index, const uint8_t* pixels, const int64_t* tokens,
                         int64_t label, const std::string& caption) {
    RC_CHECK(index < count_, "packed: sample index ", index, " out of range (", count_, ")");
    uint64_t pix = uint64_t(size_) * size_ * 3;
    pwrite_all(file_->fd(), pixels, pix, off_pixels_ + index * pix, file_->temp_path());
    if (ctx_ > 0) {
        RC_CHECK(tokens, "packed: sample ", index, " has no tokens but the context length is ", ctx_);
        if (token_bytes_ == 8) {
            pwrite_all(file_->fd(), tokens, size_t(ctx_) * 8, off_tokens_ + index * ctx_ * 8, file_->temp_path());
        } else {
            std::vector<int32_t> t32(ctx_);
            for (int k = 0; k < ctx_; k++) {
                RC_CHECK(tokens[k] >= INT32_MIN && tokens[k] <= INT32_MAX, "packed: token id ",
                         tokens[k], " does not fit int32");
                t32[k] = int32_t(tokens[k]);
            }
            pwrite_all(file_->fd(), t32.data(), size_t(ctx_) * 4, off_tokens_ + index * ctx_ * 4, file_->temp_path());
        }
    }
    pwrite_all(file_->fd(), &label, 8, off_labels_ + index * 8, file_->temp_path());
    captions_[index] = caption;   // distinct indices: distinct strings, no lock needed
    written_[index] = 1;
}

void PackedWriter::finish() {
    for (uint64_t i = 0; i < count_; i++)
        RC_CHECK(written_[i], "packed: sample ", i, " of ", count_, " was never written to '", path_, "'");
    PackedHeader h{};
    std::memcpy(h.magic, kMagic, 8);
    h.version = kVersion;
    h.header_bytes = kHeaderBytes;
    h.count = count_;
    h.image_size = uint32_t(size_);
    h.channels = 3;
    h.context_length = uint32_t(ctx_);
    h.token_bytes = uint32_t(token_bytes_);
    h.off_pixels = off_pixels_;
    h.off_tokens = off_tokens_;
    h.off_labels = off_labels_;
    h.off_cap_index = align64(off_labels_ + count_ * 8);
    std::vector<uint64_t> index(count_ + 1, 0);
    for (uint64_t i = 0; i < count_; i++) index[i + 1] = index[i] + captions_[i].size();
    pwrite_all(file_->fd(), index.data(), index.size() * 8, h.off_cap_index, file_->temp_path());
    h.off_caps = h.off_cap_index + index.size() * 8;
    std::string blob;
    blob.reserve(index[count_]);
    for (auto& c : captions_) blob += c;
    if (!blob.empty()) pwrite_all(file_->fd(), blob.data(), blob.size(), h.off_caps, file_->temp_path());
    h.off_classes = h.off_caps + blob.size();
    std::string classes;
    for (size_t c = 0; c < classes_.size(); c++) classes += (c ? "\n" : "") + classes_[c];
    if (!classes.empty()) pwrite_all(file_->fd(), classes.data(), classes.size(), h.off_classes, file_->temp_path());
    h.classes_bytes = classes.size();
    h.file_bytes = h.off_classes + classes.size();
    std::vector<uint8_t> head(kHeaderBytes, 0);
    std::memcpy(head.data(), &h, sizeof(h));
    pwrite_all(file_->fd(), head.data(), head.size(), 0, file_->temp_path());
    RC_CHECK(::ftruncate(file_->fd(), off_t(h.file_bytes)) == 0, "packed: truncate '", file_->temp_path(),
             "' failed: ", std::strerror(errno));
    file_->commit();
    finished_ = true;
}

PackedDataset::PackedDataset(const std::string& path) : path_(path) {
    int fd = ::open(path.c_str(), O_RDONLY);
    RC_CHECK(fd >= 0, "packed: cannot open '", path, "': ", std::strerror(errno));
    struct stat st;
    RC_CHECK(::fstat(fd, &st) == 0, "packed: cannot stat '", path, "'");
    size_t bytes = size_t(st.st_size);
    if (bytes < kHeaderBytes) {
        ::close(fd);
        throw Error(str_cat("packed: '", path, "' is ", bytes, " bytes, shorter than the header"));
    }
    void* m = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    RC_CHECK(m != MAP_FAILED, "packed: mmap '", path, "' failed: ", std::strerror(errno));
    map_ = static_cast<const uint8_t*>(m);
    map_bytes_ = bytes;
    try {
        PackedHeader h;
        std::memcpy(&h, map_, sizeof(h));
        RC_CHECK(std::memcmp(h.magic, kMagic, 8) == 0, "packed: '", path, "' is not a packed shard (bad magic)");
        RC_CHECK(h.version == kVersion, "packed: '", path, "' has version ", h.version, ", expected ", kVersion);
        RC_CHECK(h.channels == 3 && h.image_size > 0 && (h.token_bytes == 4 || h.token_bytes == 8),
                 "packed: '", path, "': bad header (channels ", h.channels, ", size ", h.image_size,
                 ", token bytes ", h.token_bytes, ")");
        RC_CHECK(h.file_bytes == bytes, "packed: '", path, "' is ", bytes, " bytes, the header says ",
                 h.file_bytes, " (truncated?)");
        // Every section [off, off + count * unit) must end, without overflowing 64 bits, before the
        // next one starts; the sections follow the header in this order and the 8-byte ones are aligned.
        auto section = [&](const char* name, uint64_t off, uint64_t count, uint64_t unit, uint64_t unit2,
                           uint64_t limit, const char* limit_name) {
            uint64_t bytes = 0, end = 0;
            const bool fits = !__builtin_mul_overflow(count, unit, &bytes) &&
                              !__builtin_mul_overflow(bytes, unit2, &bytes) &&
                              !__builtin_add_overflow(off, bytes, &end) && end <= limit;
            RC_CHECK(fits, "packed: '", path, "': the ", name, " section (", count, " x ", unit * unit2,
                     " bytes from offset ", off, ") does not end before the ", limit_name, " at ", limit,
                     " (corrupt header)");
        };
        RC_CHECK(h.off_pixels >= kHeaderBytes, "packed: '", path, "': the pixels start at ", h.off_pixels,
                 ", inside the ", kHeaderBytes, "-byte header (corrupt header)");
        RC_CHECK(h.off_labels % 8 == 0 && h.off_cap_index % 8 == 0, "packed: '", path,
                 "': the labels or the caption index are not 8-byte aligned (corrupt header)");
        RC_CHECK(h.count < (uint64_t(1) << 40), "packed: '", path, "': the header claims ", h.count,
                 " samples (corrupt header)");
        RC_CHECK(h.image_size <= 65536, "packed: '", path, "': image size ", h.image_size,
                 " is beyond the limit of 65536 (corrupt header)");
        // with few samples a huge context length fits in the file, but a reader sizes its token
        // buffers by it (found by fuzz_packed: 96 M tokens per sample in a 438-byte file)
        RC_CHECK(h.context_length <= 65536, "packed: '", path, "': context length ", h.context_length,
                 " is beyond the limit of 65536 (corrupt header)");
        const uint64_t pix = uint64_t(h.image_size) * h.image_size * 3;  // < 2^34: no overflow
        section("pixels", h.off_pixels, h.count, pix, 1, h.off_tokens, "tokens");
        section("tokens", h.off_tokens, h.count, h.context_length, h.token_bytes, h.off_labels, "labels");
        section("labels", h.off_labels, h.count, 8, 1, h.off_cap_index, "caption index");
        section("caption index", h.off_cap_index, h.count + 1, 8, 1, h.off_caps, "captions");
        section("captions", h.off_caps, 0, 0, 1, h.off_classes, "class names");
        section("class names", h.off_classes, h.classes_bytes, 1, 1, bytes, "end of the file");
        count_ = h.count;
        size_ = int(h.image_size);
        ctx_ = int(h.context_length);
        token_bytes_ = int(h.token_bytes);
        off_pixels_ = h.off_pixels; off_tokens_ = h.off_tokens; off_labels_ = h.off_labels;
        off_cap_index_ = h.off_cap_index; off_caps_ = h.off_caps;
        const uint64_t* idx = reinterpret_cast<const uint64_t*>(map_ + off_cap_index_);
        RC_CHECK(idx[0] == 0 && idx[count_] <= h.off_classes - off_caps_, "packed: '", path,
                 "': caption index out of range");
        for (uint64_t i = 0; i < count_; i++)
            RC_CHECK(idx[i] <= idx[i + 1], "packed: '", path, "': caption index not monotonic at ", i);
        std::string classes(reinterpret_cast<const char*>(map_ + h.off_classes), h.classes_bytes);
        size_t start = 0;
        while (!classes.empty()) {
            size_t nl = classes.find('\n', start);
            classes_.push_back(classes.substr(start, nl == std::string::npos ? nl : nl - start));
            if (nl == std::string::npos) break;
            start = nl + 1;
        }
    } catch (...) {
        ::munmap(const_cast<uint8_t*>(map_), map_bytes_);
        map_ = nullptr;
        throw;
    }
}

PackedDataset::~PackedDataset() {
    if (map_) ::munmap(const_cast<uint8_t*>(map_), map_bytes_);
}

const uint8_t* PackedDataset::pixels(size_t index) const {
    RC_CHECK(index < count_, "packed '", path_, "': index ", index, " out of range (", count_, ")");
    return map_ + off_pixels_ + index * uint64_t(size_) * size_ * 3;
}

void PackedDataset::tokens(size_t index, int64_t* out) const {
    RC_CHECK(index < count_, "packed '", path_, "': index ", index, " out of range (", count_, ")");
    RC_CHECK(ctx_ > 0, "packed '", path_, "' stores no tokens (packed without a vocabulary)");
    const uint8_t* p = map_ + off_tokens_ + index * uint64_t(ctx_) * token_bytes_;
    if (token_bytes_ == 8) {
        std::memcpy(out, p, size_t(ctx_) * 8);
    } else {
        for (int k = 0; k < ctx_; k++) {
            int32_t v;
            std::memcpy(&v, p + 4 * k, 4);
            out[k] = v;
        }
    }
}

int64_t PackedDataset::label(size_t index) const {
    RC_CHECK(index < count_, "packed '", path_, "': index ", index, " out of range (", count_, ")");
    int64_t v;
    std::memcpy(&v, map_ + off_labels_ + index * 8, 8);
    return v;
}

std::string PackedDataset::caption(size_t index) const {
    RC_CHECK(index < count_, "packed '", path_, "': index ", index, " out of range (", count_, ")");
    const uint64_t* idx = reinterpret_cast<const uint64_t*>(map_ + off_cap_index_);
    return std::string(reinterpret_cast<const char*>(map_ + off_caps_ + idx[index]),
                       idx[index + 1] - idx[index]);
}

Sample PackedDataset::get(size_t index) const {
    Sample s;
    const uint8_t* p = pixels(index);
    s.image.width = s.image.height = size_;
    s.image.rgb.assign(p, p + size_t(size_) * size_ * 3);
    s.caption = caption(index);
    s.label = label(index);
    return s;
}

std::string PackedDataset::describe() const {
    return str_cat("packed '", path_, "': ", count_, " samples, ", size_, "x", size_, " px, ",
                   ctx_ > 0 ? str_cat(ctx_, " tokens (int", token_bytes_ * 8, ")") : std::string("no tokens"),
                   classes_.empty() ? std::string() : str_cat(", ", classes_.size(), " classes"));
}

size_t pack_dataset(const Dataset& data, const std::string& out, const PackOptions& opt) {
    size_t n = data.size();
    RC_CHECK(n > 0, "pack: the dataset is empty (", data.describe(), ")");
    // No tokenizer, but the source is a packed file with token ids: copy them (re-packing keeps
    // them; its captions could only be re-tokenized with the vocabulary they were made with).
    const auto* packed_src = dynamic_cast<const PackedDataset*>(&data);
    const bool copy_tokens = !opt.tokenizer && packed_src && packed_src->context_length() > 0;
    int ctx = opt.tokenizer ? opt.context_length : copy_tokens ? packed_src->context_length() : 0;
    PackedWriter writer(out, n, opt.image_size, ctx, opt.token_dtype, data.class_names());
    int threads = opt.num_threads > 0 ? opt.num_threads : int(std::thread::hardware_concurrency());
    if (threads < 1) threads = 1;
    std::atomic<size_t> next{0}, done{0};
    std::atomic<bool> failed{false};
    std::string error;
    std::mutex mu;
    auto work = [&] {
        while (!failed) {
            size_t i = next++;
            if (i >= n) break;
            try {
                Sample s = data.get(i);
                Image img = (s.image.width == opt.image_size && s.image.height == opt.image_size)
                                ? std::move(s.image)
                                : resize_short_side_center_crop(s.image, opt.image_size);
                std::vector<int64_t> tok;
                if (opt.tokenizer) {
                    tok = opt.tokenizer->tokenize(s.caption, ctx);
                } else if (copy_tokens) {
                    tok.resize(size_t(ctx));
                    packed_src->tokens(i, tok.data());
                }
                writer.write(i, img.rgb.data(), ctx > 0 ? tok.data() : nullptr, s.label, s.caption);
            } catch (const std::exception& e) {
                std::lock_guard<std::mutex> lock(mu);
                if (!failed) error = e.what();
                failed = true;
            }
            done++;
        }
    };
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; t++) pool.emplace_back(work);
    size_t step = std::max<size_t>(1, n / 100), last = 0;
    while (opt.progress) {
        size_t d = done.load();
        if (d >= n || failed) break;
        if (d >= last + step) { opt.progress(d, n); last = d; }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (auto& t : pool) t.join();
    if (failed) throw Error(str_cat("pack: ", error));
    writer.finish();
    if (opt.progress) opt.progress(n, n);
    return n;
}

}  // namespace rankclip
