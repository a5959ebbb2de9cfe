// data/csv_dataset.cpp
// defines: parse_csv (RFC 4180) and CsvDataset (OpenCLIP CSV/TSV image-caption pairs).
#include "data/csv_dataset.h"

#include <sys/stat.h>

#include <cstdio>

#include "engine/error.h"

namespace rankclip {

std::vector<CsvRecord> parse_csv(const std::string& text, char sep, const std::string& name) {
    std::vector<CsvRecord> out;
    size_t i = 0, n = text.size();
    if (n >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;  // UTF-8 byte-order mark
    int64_t line = 1;
    while (i < n) {
        CsvRecord rec;
        rec.line = line;
        // One record: fields until an unquoted newline or the end of the text.
        while (true) {
            std::string field;
            if (i < n && text[i] == '"') {
                int64_t quote_line = line;
                i++;
                while (true) {
                    RC_CHECK(i < n, name, ":", quote_line, ": unterminated quoted field");
                    char c = text[i];
                    if (c == '"') {
                        if (i + 1 < n && text[i + 1] == '"') { field += '"'; i += 2; continue; }
                        i++;
                        break;
                    }
                    if (c == '\n') line++;
                    field += c;
                    i++;
                }
                bool ok = i >= n || text[i] == sep || text[i] == '\n' ||
                          (text[i] == '\r' && (i + 1 >= n || text[i + 1] == '\n'));
                RC_CHECK(ok, name, ":", line, ": unexpected character '", text[i],
                         "' after a closing quote");
            } else {
                while (i < n && text[i] != sep && text[i] != '\n') {
                    if (text[i] == '\r' && (i + 1 >= n || text[i + 1] == '\n')) break;
                    RC_CHECK(text[i] != '"', name, ":", line,
                             ": quote inside an unquoted field (quote the whole field, double the quote)");
                    field += text[i++];
                }
            }
            rec.fields.push_back(std::move(field));
            if (i < n && text[i] == sep) { i++; continue; }
            if (i < n && text[i] == '\r') i++;
            if (i < n && text[i] == '\n') { i++; line++; }
            break;
        }
        bool blank = rec.fields.size() == 1 && rec.fields[0].empty();
        if (!blank) out.push_back(std::move(rec));
    }
    return out;
}

static std::string dir_of(const std::string& path) {
    size_t s = path.find_last_of('/');
    return s == std::string::npos ? "." : path.substr(0, s == 0 ? 1 : s);
}

static bool is_file(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

CsvDataset::CsvDataset(const std::string& path, const CsvOptions& opt) : path_(path), opt_(opt) {
    auto bytes = read_file_bytes(path);
    std::string text(bytes.begin(), bytes.end());
    auto recs = parse_csv(text, opt.separator, path);
    RC_CHECK(!recs.empty(), path, ": empty CSV (no header row)");
    const auto& header = recs[0].fields;
    int img_col = -1, cap_col = -1;
    for (size_t c = 0; c < header.size(); c++) {
        if (header[c] == opt.image_column) img_col = int(c);
        if (header[c] == opt.caption_column) cap_col = int(c);
    }
    if (img_col < 0 || cap_col < 0) {
        std::string cols;
        for (auto& h : header) cols += (cols.empty() ? "'" : ", '") + h + "'";
        throw Error(str_cat(path, ":", recs[0].line, ": header has no column '",
                            img_col < 0 ? opt.image_column : opt.caption_column,
                            "' (columns: ", cols, "; separator '",
                            opt.separator == '\t' ? std::string("\\t") : std::string(1, opt.separator),
                            "')"));
    }
    std::string base = dir_of(path);
    for (size_t r = 1; r < recs.size(); r++) {
        const auto& rec = recs[r];
        RC_CHECK(rec.fields.size() == header.size(), path, ":", rec.line, ": malformed row: ",
                 rec.fields.size(), " fields, the header has ", header.size());
        std::string where = str_cat(path, ":", rec.line);
        std::string img = rec.fields[img_col];
        RC_CHECK(!img.empty(), where, ": empty image path");
        if (img[0] != '/') img = base + "/" + img;
        const std::string& cap = rec.fields[cap_col];
        std::string bad;
        if (!is_valid_utf8(cap)) bad = where + ": caption is not valid UTF-8";
        else if (opt.check_files && !is_file(img)) bad = where + ": image file not found: '" + img + "'";
        if (!bad.empty()) {
            if (opt.on_bad == BadSamplePolicy::Stop) throw Error(bad);
            skipped_at_open_++;
            tracker_.report(bad, bad);
            continue;
        }
        rows_.push_back({img, cap, rec.line});
    }
    RC_CHECK(!rows_.empty(), path, ": no usable rows (", skipped_at_open_, " skipped)");
    if (skipped_at_open_ > 0)
        std::fprintf(stderr, "%s: %zu bad rows skipped, %zu kept\n", path.c_str(), skipped_at_open_,
                     rows_.size());
}

Sample CsvDataset::get(size_t index) const {
    return get_with_policy(
        index, rows_.size(), opt_.on_bad, tracker_,
        [&](size_t i) {
            const Row& row = rows_[i];
            Sample s;
            try {
                s.image = decode_image_file(row.image_path);
            } catch (const Error& e) {
                throw Error(str_cat(path_, ":", row.line, ": ", e.what()));
            }
            s.caption = row.caption;
            return s;
        },
        [&](size_t i) { return rows_[i].image_path; });
}

std::string CsvDataset::describe() const {
    return str_cat("csv '", path_, "': ", rows_.size(), " image-caption pairs",
                   skipped() ? str_cat(", ", skipped(), " bad samples skipped") : std::string());
}

}  // namespace rankclip
