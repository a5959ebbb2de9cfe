// tests/fuzz/fuzz_util.h
// defines: what the libFuzzer harnesses (tests/fuzz/fuzz_*.cpp) share: FuzzFile, the fuzz input
// written to a temporary file for the parsers that read a path, and FUZZ_GUARD, which runs a
// parser on the input and lets only rankclip::Error through as "rejected". Any other exception,
// a crash, a sanitizer report, a hang (-timeout) or an allocation over -rss_limit_mb/-malloc_limit_mb
// is a finding.
#pragma once
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "engine/error.h"

namespace rankclip::fuzz {

// The input as a file: in $TMPDIR (else /dev/shm, else /tmp), one per process, rewritten for each
// input and removed at exit. `suffix` is kept on the name (parsers that look at the extension).
class FuzzFile {
public:
    explicit FuzzFile(const std::string& suffix) {
        const char* dir = std::getenv("TMPDIR");
        std::string d = dir && *dir ? dir : (access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        path_ = d + "/rankclip-fuzz-" + std::to_string(getpid()) + suffix;
    }
    ~FuzzFile() { std::remove(path_.c_str()); }
    // Writes the bytes; returns the path.
    const std::string& write(const uint8_t* data, size_t size) {
        FILE* f = std::fopen(path_.c_str(), "wb");
        if (!f) std::abort();
        if (size && std::fwrite(data, 1, size, f) != size) std::abort();
        std::fclose(f);
        return path_;
    }

private:
    std::string path_;
};

}  // namespace rankclip::fuzz

// Runs the statements; a rankclip::Error is a clean rejection of the input, anything else escapes.
#define FUZZ_GUARD(...)                       \
    do {                                      \
        try {                                 \
            __VA_ARGS__;                      \
        } catch (const ::rankclip::Error&) {  \
        }                                     \
    } while (0)
