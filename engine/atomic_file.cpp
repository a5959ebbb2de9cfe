// engine/atomic_file.cpp
// defines: AtomicFile, write_file_atomic and atomic_temp_target (see engine/atomic_file.h).
#include "engine/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/error.h"

namespace rankclip {

namespace {

constexpr const char* kTempInfix = ".tmp.";

// The directory holding `path` ("." for a bare name).
std::string parent_dir(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

AtomicFile::AtomicFile(const std::string& path) : path_(path), temp_(str_cat(path, kTempInfix, ::getpid())) {
    fd_ = ::open(temp_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) {
        const int err = errno;
        committed_ = true;  // nothing was created: nothing to remove
        fail(str_cat("cannot create the temporary file ", temp_), err);
    }
}

AtomicFile::~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(temp_.c_str());
}

void AtomicFile::fail(const std::string& what, int err) {
    throw Error(str_cat("cannot write ", path_, ": ", what, ": ", std::strerror(err)));
}

void AtomicFile::write(const void* data, size_t nbytes) {
    RC_CHECK(fd_ >= 0 && !committed_, "AtomicFile: ", path_, ": write after commit");
    const char* p = static_cast<const char*>(data);
    while (nbytes > 0) {
        const ssize_t n = ::write(fd_, p, nbytes);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail(str_cat("write to ", temp_), errno);
        if (n == 0) fail(str_cat("write to ", temp_, " made no progress"), EIO);
        p += n;
        nbytes -= size_t(n);
    }
}

void AtomicFile::commit() {
    RC_CHECK(fd_ >= 0 && !committed_, "AtomicFile: ", path_, ": committed twice");
    if (::fsync(fd_) != 0) fail(str_cat("fsync of ", temp_), errno);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail(str_cat("close of ", temp_), errno);
    if (::rename(temp_.c_str(), path_.c_str()) != 0) fail(str_cat("rename of ", temp_), errno);
    committed_ = true;
    // The rename itself made durable. Some filesystems refuse fsync on a directory (EINVAL):
    // the data is safe, only the rename's durability is the filesystem's business there.
    const int dir_fd = ::open(parent_dir(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) fail(str_cat("open of its directory ", parent_dir(path_)), errno);
    const int rc = ::fsync(dir_fd);
    const int err = errno;
    ::close(dir_fd);
    if (rc != 0 && err != EINVAL && err != EROFS) fail(str_cat("fsync of its directory ", parent_dir(path_)), err);
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
    AtomicFile file(path);
    file.write(bytes);
    file.commit();
}

std::string atomic_temp_target(const std::string& file_name) {
    const size_t at = file_name.rfind(kTempInfix);
    if (at == std::string::npos || at == 0) return "";
    const std::string digits = file_name.substr(at + std::strlen(kTempInfix));
    const bool numbered = !digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos;
    return numbered ? file_name.substr(0, at) : "";
}

}  // namespace rankclip
