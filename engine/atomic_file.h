// engine/atomic_file.h
// defines: AtomicFile and write_file_atomic, the one way the program writes a file whole: a
// temporary file beside the target ("<path>.tmp.<pid>"), written, flushed and fsync'ed, then
// renamed over the target and the directory fsync'ed. A reader (or a crash) sees the old file or
// the complete new one, never half of either. Every failure is an Error naming the target file
// and errno's text; the temporary file is removed on failure. atomic_temp_target recognises the
// temporary names, so a program can clear what a killed writer left behind.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace rankclip {

class AtomicFile {
public:
    // Creates the temporary file (an Error when it cannot be created).
    explicit AtomicFile(const std::string& path);
    // Without commit(): closes and removes the temporary file; the target is untouched.
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    const std::string& path() const { return path_; }
    const std::string& temp_path() const { return temp_; }
    // The temporary file's descriptor (read-write), for writers that seek (pwrite).
    int fd() const { return fd_; }

    // Appends `nbytes` at the current position (retrying short writes).
    void write(const void* data, size_t nbytes);
    void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
    // fsync, close, rename over the target, fsync of the directory. Once only.
    void commit();

private:
    [[noreturn]] void fail(const std::string& what, int err);

    std::string path_, temp_;
    int fd_ = -1;
    bool committed_ = false;
};

// The whole file `path` becomes `bytes`, atomically (above).
void write_file_atomic(const std::string& path, std::string_view bytes);

// For a temporary file's name (no directory), "<target>.tmp.<digits>", the target's name;
// "" for any other name.
std::string atomic_temp_target(const std::string& file_name);

}  // namespace rankclip
