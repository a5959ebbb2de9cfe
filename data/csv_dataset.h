// data/csv_dataset.h
// defines: CsvDataset, OpenCLIP's CSV/TSV format: a header row naming the columns, one row per
// image with an image path column and a caption column (RFC 4180 quoting: fields in double
// quotes may hold the separator, newlines and "" for a quote). Relative paths are relative to
// the CSV file's directory. The whole table is parsed at open time (captions validated as
// UTF-8, image files checked to exist); images are decoded on get().
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace rankclip {

struct CsvOptions {
    std::string image_column = "filepath";
    std::string caption_column = "title";
    char separator = ',';                       // '\t' for TSV
    BadSamplePolicy on_bad = BadSamplePolicy::Skip;
    bool check_files = true;                    // stat every image at open time
};

// Parses RFC 4180 text into records; each record remembers the 1-based line it starts on.
// Throws Error naming `name`:line on an unterminated quote or text after a closing quote.
struct CsvRecord {
    std::vector<std::string> fields;
    int64_t line = 0;
};
std::vector<CsvRecord> parse_csv(const std::string& text, char separator, const std::string& name);

class CsvDataset : public Dataset {
public:
    explicit CsvDataset(const std::string& path, const CsvOptions& opt = {});
    size_t size() const override { return rows_.size(); }
    Sample get(size_t index) const override;
    std::string describe() const override;

    size_t skipped() const { return tracker_.count(); }   // at open + at get()
    const std::string& image_path(size_t index) const { return rows_.at(index).image_path; }
    const std::string& caption(size_t index) const { return rows_.at(index).caption; }

private:
    struct Row {
        std::string image_path;  // resolved against the CSV's directory
        std::string caption;
        int64_t line;
    };
    std::string path_;
    CsvOptions opt_;
    std::vector<Row> rows_;
    size_t skipped_at_open_ = 0;
    BadSampleTracker tracker_;
};

}  // namespace rankclip
