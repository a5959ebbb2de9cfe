// data/gzip.h
// defines: read_gzip_file / write_gzip_file, whole-file gzip I/O with zlib (the BPE merges files).
#pragma once
#include <string>

namespace rankclip {

// The decompressed contents of a gzip file. A file that is not gzip-compressed is returned as
// it is (zlib reads plain files transparently). An Error names the file when it cannot be read
// or the compressed stream is corrupt or truncated, or when it decompresses to more than
// `max_bytes` (`what` names the file's role in that message, e.g. "a vocabulary").
std::string read_gzip_file(const std::string& path, size_t max_bytes = size_t(1) << 30,
                           const char* what = "a gzip file");

// Writes `data` gzip-compressed (level 9). The bytes depend only on `data`: the gzip header has
// no file name and a zero time stamp. Atomic: written to `path.tmp.<pid>` and renamed.
void write_gzip_file(const std::string& path, const std::string& data);

}  // namespace rankclip
