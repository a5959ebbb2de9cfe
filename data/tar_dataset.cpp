// data/tar_dataset.cpp
// defines: TarDataset (WebDataset shards indexed with libarchive, images read with pread at
// recorded offsets).
#include "data/tar_dataset.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>

#include "engine/error.h"

namespace rankclip {

static const char* kImageExts[] = {"jpg", "jpeg", "png", "bmp", "gif", "tga", "ppm"};

static bool is_image_ext(const std::string& ext) {
    for (const char* e : kImageExts) if (ext == e) return true;
    return false;
}

TarDataset::TarDataset(const std::string& shards, const TarOptions& opt) : pattern_(shards), opt_(opt) {
    size_t start = 0;
    while (true) {
        size_t sep = shards.find("::", start);
        for (auto& s : expand_braces(shards.substr(start, sep == std::string::npos ? sep : sep - start)))
            shards_.push_back(s);
        if (sep == std::string::npos) break;
        start = sep + 2;
    }
    RC_CHECK(shards_.size() < (size_t(1) << 32), "tar: too many shards");
    for (uint32_t s = 0; s < shards_.size(); s++) index_shard(s);
    RC_CHECK(!samples_.empty(), "tar: no samples in ", shards_.size(), " shard(s) of '", shards, "'",
             skipped_at_open_ ? str_cat(" (", skipped_at_open_, " bad samples skipped)") : std::string());
    if (skipped_at_open_ > 0)
        std::fprintf(stderr, "tar '%s': %zu bad samples skipped, %zu kept\n", shards.c_str(),
                     skipped_at_open_, samples_.size());
}

void TarDataset::index_shard(uint32_t s) {
    const std::string& path = shards_[s];
    archive* a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    auto fail = [&](const std::string& what) {
        std::string msg = str_cat("tar shard '", path, "': ", what, ": ", archive_error_string(a) ? archive_error_string(a) : "");
        archive_read_free(a);
        throw Error(msg);
    };
    if (archive_read_open_filename(a, path.c_str(), 1 << 16) != ARCHIVE_OK) fail("cannot open");
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) fail("cannot stat");
    const uint64_t shard_bytes = uint64_t(st.st_size);
    // The data of the member just read, whose header claims `size` bytes, read in 1 MiB chunks:
    // a header that claims more than the archive holds costs only what is there.
    auto read_member = [&](const std::string& name, int64_t size, size_t limit) {
        if (size < 0 || uint64_t(size) > limit)
            fail(str_cat("member ", name, " claims ", size, " bytes, more than the limit of ", limit >> 20, " MiB"));
        std::string data;
        while (data.size() < size_t(size)) {
            const size_t old = data.size(), chunk = std::min<size_t>(size_t(size) - old, size_t(1) << 20);
            data.resize(old + chunk);
            const la_ssize_t got = archive_read_data(a, &data[old], chunk);
            if (got <= 0) fail(str_cat("short read of ", name, " (", old, " of the ", size, " bytes its header claims)"));
            data.resize(old + size_t(got));
        }
        return data;
    };

    // Group members by key, in order of first appearance.
    std::map<std::string, size_t> by_key;
    std::vector<Entry> entries;
    std::vector<bool> has_image, has_caption;
    bool compressed = false;
    archive_entry* e;
    while (true) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) fail("corrupt archive");
        if (archive_filter_count(a) > 1) compressed = true;   // a filter besides "none"
        if (archive_entry_filetype(e) != AE_IFREG) continue;
        std::string name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
        size_t slash = name.find_last_of('/');
        size_t dot = name.find('.', slash == std::string::npos ? 0 : slash + 1);
        if (dot == std::string::npos) continue;
        std::string key = name.substr(0, dot), ext = name.substr(dot + 1);
        for (auto& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
        bool img = is_image_ext(ext), cap = ext == opt_.caption_ext, cls = ext == "cls";
        if (!img && !cap && !cls) continue;
        auto it = by_key.find(key);
        if (it == by_key.end()) {
            it = by_key.emplace(key, entries.size()).first;
            entries.emplace_back();
            entries.back().shard = s;
            entries.back().key = key;
            has_image.push_back(false);
            has_caption.push_back(false);
        }
        Entry& en = entries[it->second];
        int64_t size = archive_entry_size(e);
        if (img) {
            en.ext = ext;
            en.size = uint64_t(size);
            has_image[it->second] = true;
            if (compressed || archive_entry_sparse_count(e) > 0) {
                en.in_memory = true;
                const std::string bytes = read_member(name, size, kMaxImageMemberBytes);
                en.bytes.assign(bytes.begin(), bytes.end());
            } else {
                en.offset = uint64_t(archive_filter_bytes(a, 0));   // data follows the header(s)
                if (size < 0 || uint64_t(size) > kMaxImageMemberBytes || en.offset > shard_bytes ||
                    uint64_t(size) > shard_bytes - en.offset)
                    fail(str_cat("member ", name, " claims ", size, " bytes at offset ", en.offset, ", past the end of the ",
                                 shard_bytes, "-byte shard or over the limit of ", kMaxImageMemberBytes >> 20, " MiB"));
            }
        } else {
            std::string text = read_member(name, size, kMaxTextMemberBytes);
            while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
            if (cap) {
                en.caption = std::move(text);
                has_caption[it->second] = true;
            } else {
                try {
                    en.label = std::stoll(text);
                } catch (...) {
                    fail("member " + name + " is not an integer class");
                }
            }
        }
    }
    archive_read_free(a);

    size_t kept = 0;
    for (size_t k = 0; k < entries.size(); k++) {
        Entry& en = entries[k];
        std::string where = str_cat("tar shard '", path, "', key '", en.key, "'");
        std::string bad;
        if (!has_image[k]) bad = where + ": no image member";
        else if (!has_caption[k]) bad = where + ": no ." + opt_.caption_ext + " caption member";
        else if (!is_valid_utf8(en.caption)) bad = where + ": caption is not valid UTF-8";
        if (!bad.empty()) {
            if (opt_.on_bad == BadSamplePolicy::Stop) throw Error(bad);
            skipped_at_open_++;
            tracker_.report(bad, bad);
            continue;
        }
        samples_.push_back(std::move(en));
        kept++;
    }
    if (kept == 0) {
        std::string msg = str_cat("tar shard '", path, "' has no samples (", entries.size(),
                                  " keys, none with both an image and a caption)");
        if (opt_.on_bad == BadSamplePolicy::Stop) throw Error(msg);
        std::fprintf(stderr, "warning: %s\n", msg.c_str());
    }
}

Sample TarDataset::get(size_t index) const {
    auto name = [&](size_t i) { return shards_[samples_[i].shard] + ":" + samples_[i].key; };
    return get_with_policy(
        index, samples_.size(), opt_.on_bad, tracker_,
        [&](size_t i) {
            const Entry& en = samples_[i];
            std::string what = name(i) + "." + en.ext;
            Sample s;
            if (en.in_memory) {
                s.image = decode_image_memory(en.bytes.data(), en.bytes.size(), what);
            } else {
                const std::string& path = shards_[en.shard];
                int fd = ::open(path.c_str(), O_RDONLY);
                RC_CHECK(fd >= 0, "tar: cannot open '", path, "': ", std::strerror(errno));
                std::vector<uint8_t> buf(en.size);
                size_t got = 0;
                while (got < en.size) {
                    ssize_t r = ::pread(fd, buf.data() + got, en.size - got, off_t(en.offset + got));
                    if (r < 0 && errno == EINTR) continue;
                    if (r <= 0) break;
                    got += size_t(r);
                }
                ::close(fd);
                RC_CHECK(got == en.size, "tar: short read of ", what, " (", got, " of ", en.size,
                         " bytes; shard changed since it was indexed?)");
                s.image = decode_image_memory(buf.data(), buf.size(), what);
            }
            s.caption = en.caption;
            s.label = en.label;
            return s;
        },
        name);
}

std::string TarDataset::describe() const {
    return str_cat("webdataset '", pattern_, "': ", samples_.size(), " samples in ", shards_.size(),
                   " shard(s)", skipped() ? str_cat(", ", skipped(), " bad samples skipped") : std::string());
}

}  // namespace rankclip
