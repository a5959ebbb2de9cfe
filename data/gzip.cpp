// data/gzip.cpp
// defines: read_gzip_file / write_gzip_file over zlib's gzFile interface.
#include "data/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <unistd.h>

#include "engine/error.h"

namespace rankclip {

std::string read_gzip_file(const std::string& path, size_t max_bytes, const char* what) {
    gzFile f = gzopen(path.c_str(), "rb");
    RC_CHECK(f != nullptr, "read_gzip_file: cannot open '", path, "'");
    std::string out;
    char buf[1 << 16];
    for (;;) {
        int n = gzread(f, buf, sizeof(buf));
        if (n < 0) {
            int errnum = 0;
            std::string msg = gzerror(f, &errnum);
            gzclose(f);
            throw Error(str_cat("read_gzip_file: '", path, "' is corrupt: ", msg));
        }
        if (n == 0) break;
        if (out.size() + size_t(n) > max_bytes) {
            gzclose(f);
            throw Error(str_cat("read_gzip_file: '", path, "' decompresses to more than ", max_bytes >> 20,
                                " MiB, the limit for ", what));
        }
        out.append(buf, (size_t)n);
    }
    RC_CHECK(gzclose(f) == Z_OK, "read_gzip_file: '", path, "' is truncated or corrupt");
    return out;
}

void write_gzip_file(const std::string& path, const std::string& data) {
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    gzFile f = gzopen(tmp.c_str(), "wb9");
    RC_CHECK(f != nullptr, "write_gzip_file: cannot create '", tmp, "'");
    size_t done = 0;
    while (done < data.size()) {
        unsigned chunk = (unsigned)std::min<size_t>(data.size() - done, 1u << 30);
        int n = gzwrite(f, data.data() + done, chunk);
        if (n <= 0) {
            gzclose(f);
            std::remove(tmp.c_str());
            throw Error(str_cat("write_gzip_file: writing '", tmp, "' failed"));
        }
        done += (size_t)n;
    }
    if (gzclose(f) != Z_OK) {
        std::remove(tmp.c_str());
        throw Error(str_cat("write_gzip_file: closing '", tmp, "' failed (disk full?)"));
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw Error(str_cat("write_gzip_file: cannot rename '", tmp, "' to '", path, "'"));
    }
}

}  // namespace rankclip
