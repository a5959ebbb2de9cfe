// data/gzip.cpp
// defines: read_gzip_file / write_gzip_file over zlib's gzFile interface.
#include "data/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unistd.h>

#include "engine/atomic_file.h"
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
    AtomicFile file(path);   // written whole (engine/atomic_file.h); zlib writes through a copy of its fd
    const int fd = ::dup(file.fd());
    RC_CHECK(fd >= 0, "write_gzip_file: ", path, ": dup failed: ", std::strerror(errno));
    gzFile f = gzdopen(fd, "wb9");
    if (!f) {
        ::close(fd);
        throw Error(str_cat("write_gzip_file: ", path, ": cannot start the gzip stream"));
    }
    size_t done = 0;
    while (done < data.size()) {
        unsigned chunk = (unsigned)std::min<size_t>(data.size() - done, 1u << 30);
        int n = gzwrite(f, data.data() + done, chunk);
        if (n <= 0) {
            gzclose(f);
            throw Error(str_cat("write_gzip_file: writing ", file.temp_path(), " failed: ", std::strerror(errno)));
        }
        done += (size_t)n;
    }
    errno = 0;
    if (gzclose(f) != Z_OK)
        throw Error(str_cat("write_gzip_file: closing ", file.temp_path(), " failed (disk full?): ", std::strerror(errno)));
    file.commit();
}

}  // namespace rankclip
